// provisioner.cpp — make_provisioner(): picks the provisioner named by the config.
//
// One switch over ProvisionerType, without a default, so a new type cannot be forgotten
// here. Also the helpers the provisioners share: error constructors and redaction of the
// password from anything a peer sends back. Never logs; never holds a password itself.
// Errors: a factory's config Error (Scope::config, Retry::never) is passed through.
#include "provisioner_impl.hpp"

#include "mailferry/secret.hpp"

namespace mf {

Result<std::unique_ptr<Provisioner>> make_provisioner(const ProvisionerConfig& cfg) {
    switch (cfg.type) {
    case ProvisionerType::builtin:
        return prov::make_builtin(cfg);
    case ProvisionerType::dovecot_passwd_file:
        return prov::make_passwd_file(cfg);
    case ProvisionerType::command:
        return prov::make_command(cfg);
    case ProvisionerType::http:
        return prov::make_http(cfg);
    }
    return prov::config_error("provisioner.type", "unknown provisioner type " +
                                                      std::to_string(static_cast<int>(cfg.type)));
}

namespace prov {

Error fail(std::string what, std::string detail, Scope scope) {
    return make_error(std::move(what), std::move(detail), scope, Retry::later);
}

Error config_error(std::string what, std::string detail) {
    return make_error(std::move(what), std::move(detail), Scope::config, Retry::never);
}

void redact(std::string& text, std::string_view secret) {
    if (secret.empty()) {
        return;
    }
    std::size_t pos = text.find(secret);
    if (pos == std::string::npos) {
        return;
    }
    // Build the result beside the original, then wipe the original whole: replacing in
    // place would shift bytes around and leave copies of a later occurrence behind.
    std::string out;
    out.reserve(text.size());
    std::size_t from = 0;
    for (; pos != std::string::npos; pos = text.find(secret, from)) {
        out.append(text, from, pos - from);
        out += "***";
        from = pos + secret.size();
    }
    out.append(text, from, std::string::npos);
    wipe(text.data(), text.size());
    text.swap(out);
}

std::string first_line_for_error(std::string_view text, std::string_view secret,
                                 std::size_t max_len) {
    // Redact over the whole text: the secret may span what becomes the line's end.
    std::string copy(text);
    redact(copy, secret);
    std::string_view rest(copy);
    std::string_view line;
    while (!rest.empty()) {
        auto nl = rest.find('\n');
        line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
        if (line.find_first_not_of(" \t\r") != std::string_view::npos) {
            break;
        }
        line = {};
    }
    std::string out = sanitize_reply(line, max_len);
    wipe(copy.data(), copy.size());
    return out;
}

} // namespace prov
} // namespace mf
