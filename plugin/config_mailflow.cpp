// config_mailflow.cpp — [mailflow] and the providers' mail keys (mail_host, mail_port,
// mail_protocol, relay_transport): what `mailferry transport` and `mailferry policy`
// need to route and judge mail for accounts in migration.
//
// Never: accept a transport with blanks or control bytes (it goes verbatim into a
// socketmap reply Postfix acts on).
#include "config_mailflow.hpp"

#include <algorithm>

namespace mf {
namespace config_detail {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;

bool transport_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

std::optional<std::string> helo_rule(std::string& v) {
    bool ok = v.size() <= 253 && std::all_of(v.begin(), v.end(), [](char c) {
                  return transport_name_char(c) || c == '[' || c == ']' || c == ':';
              });
    if (!ok) {
        return "a host name for EHLO, such as mx.example.org";
    }
    return std::nullopt;
}

toml::source_region where_in(const toml::table* t, std::string_view key) {
    if (t == nullptr) {
        return {};
    }
    if (const auto* n = t->get(key)) {
        return n->source();
    }
    return t->source();
}

} // namespace

std::optional<std::string> transport_rule(std::string& v) {
    auto colon = v.find(':');
    bool ok = colon != std::string::npos && colon > 0 && v.size() <= 1000 &&
              std::all_of(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(colon),
                          transport_name_char) &&
              std::all_of(v.begin() + static_cast<std::ptrdiff_t>(colon), v.end(),
                          [](char c) { return static_cast<unsigned char>(c) > 0x20 && c != 0x7f; });
    if (!ok) {
        return "a Postfix transport:nexthop without blanks, such as \"smtp:[old.example.org]:25\" "
               "or \"lmtp:unix:private/dovecot-lmtp\"";
    }
    return std::nullopt;
}

const Keys<MailflowConfig>& mailflow_keys() {
    static const Keys<MailflowConfig> keys = {
        text("local_transport", &MailflowConfig::local_transport, transport_rule),
        choice("unmigrated", &MailflowConfig::unmigrated, {Unmigrated::relay, Unmigrated::probe}),
        duration("probe_timeout", &MailflowConfig::probe_timeout, milliseconds(100), minutes(5)),
        text("probe_helo", &MailflowConfig::probe_helo, helo_rule),
        file("postfix_config_dir", &MailflowConfig::postfix_config_dir),
        file("postfix_command_dir", &MailflowConfig::postfix_command_dir),
        file("log_file", &MailflowConfig::log_file),
    };
    return keys;
}

Result<void> validate_mailflow(const Reader& r, const toml::table& root, Config& cfg) {
    cfg.mailflow.configured = root.contains("mailflow");
    const auto* arr = root.get_as<toml::array>("provider");
    for (std::size_t i = 0; i < cfg.providers.size(); ++i) {
        auto& p = cfg.providers[i];
        const auto* t = arr == nullptr ? nullptr : arr->get(i)->as_table();
        if (p.mail_host.empty()) {
            p.mail_host = p.host;
        }
        if (p.mail_protocol == MailProtocol::lmtp && t != nullptr && !t->contains("mail_port")) {
            return r.error(where_in(t, "mail_protocol"), "provider.mail_port",
                           "missing: mail_protocol = \"lmtp\" needs it (LMTP has no "
                           "well-known TCP port)");
        }
        if (p.relay_transport.empty()) {
            const std::string port = std::to_string(p.mail_port);
            p.relay_transport = p.mail_protocol == MailProtocol::lmtp
                                    ? "lmtp:inet:" + p.mail_host + ":" + port
                                    : "smtp:[" + p.mail_host + "]:" + port;
        }
    }
    return {};
}

} // namespace config_detail

const char* to_string(MailProtocol p) {
    switch (p) {
    case MailProtocol::smtp:
        return "smtp";
    case MailProtocol::lmtp:
        return "lmtp";
    }
    return "?";
}

const char* to_string(Unmigrated u) {
    switch (u) {
    case Unmigrated::relay:
        return "relay";
    case Unmigrated::probe:
        return "probe";
    }
    return "?";
}

} // namespace mf
