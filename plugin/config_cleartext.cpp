// config_cleartext.cpp — warns about each place mailferry would send a password without TLS.
//
// The paths a password takes, and which of them can be clear text:
//   [[provider]] host   each user's own password: the first-login check (verifier) and the
//                       worker's copy logins to the old server; with master_user, the
//                       master password at the copy logins — clear with tls = "none";
//   [target] host       with master_user: the master password, which opens every mailbox
//                       there; without: each user's own password (the worker logs in as
//                       the user) — clear with tls = "none";
//   [provisioner] url   each new password, POSTed to the admin API — clear with http://
//                       (which provisioner_http.cpp allows to loopback only).
// Not network paths: the command provisioner (argv and stdin of a local program), the
// passwd-file provisioner, the store, the spool and the guard key (local files).
// Must never: name a password itself; only where it goes and whose it is.
// Errors: none; warnings only, "FILE:LINE: key: …" like the config's errors.
#include "config_cleartext.hpp"

#include <string>

namespace mf::config_detail {
namespace {

// "FILE:LINE: key: text", the line of `key` in `table` (or of the table, if the key is
// not written there).
void warn_at(const Reader& r, const toml::table* table, std::string_view key,
             const std::string& path, const std::string& text) {
    std::string what = r.source();
    toml::source_region at{};
    if (table != nullptr) {
        const auto* node = table->get(key);
        at = node != nullptr ? node->source() : table->source();
    }
    if (at.begin.line > 0) {
        // append() rather than `+= ":" + …`: GCC 12 at -O2 reports a false -Wrestrict there.
        what.append(":").append(std::to_string(at.begin.line));
    }
    r.warn(what + ": " + path + ": " + text);
}

std::string endpoint(const std::string& host, std::uint16_t port) {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
           std::to_string(port);
}

void providers(const Reader& r, const toml::table& root, const Config& cfg) {
    const auto* arr = root.get_as<toml::array>("provider");
    for (std::size_t i = 0; i < cfg.providers.size(); ++i) {
        const auto& p = cfg.providers[i];
        if (p.tls != TlsMode::none) {
            continue;
        }
        const auto* t = arr != nullptr && i < arr->size() ? arr->get(i)->as_table() : nullptr;
        warn_at(r, t, "tls", "provider.tls",
                "provider \"" + p.name + "\" has tls = \"none\": each user's own password " +
                    "goes in clear text to the old server " + endpoint(p.host, p.effective_port()) +
                    ", at the first-login check" +
                    (p.master_user.empty()
                         ? std::string(" and at every copy login")
                         : "; the master password (master_password_file), which opens every "
                           "mailbox there, at every copy login"));
    }
}

void target(const Reader& r, const toml::table& root, const Config& cfg) {
    const TargetConfig& t = cfg.target;
    if (!t.configured || t.host.empty() || t.tls != TlsMode::none) {
        return;
    }
    const auto* tt = root.get_as<toml::table>("target");
    const std::string where = " in clear text to the new server " +
                              endpoint(t.host, t.effective_port()) + " at every copy login";
    if (!t.master_user.empty()) {
        warn_at(r, tt, "tls", "target.tls",
                "tls = \"none\" with master_user = \"" + t.master_user +
                    "\": the master password (target.master_password_file), which opens "
                    "every mailbox there, goes" +
                    where);
    } else {
        warn_at(r, tt, "tls", "target.tls",
                "tls = \"none\" without master_user: each user's own password goes" + where);
    }
}

void provisioner(const Reader& r, const toml::table& root, const Config& cfg) {
    const ProvisionerConfig& p = cfg.provisioner;
    if (p.type != ProvisionerType::http || !p.url.starts_with("http://")) {
        return;
    }
    warn_at(r, root.get_as<toml::table>("provisioner"), "url", "provisioner.url",
            p.url + " is not https: each new account's password is POSTed in clear text " +
                "(allowed to loopback only, where any local process that can read loopback " +
                "traffic or take the port sees it)");
}

} // namespace

void warn_clear_text(const Reader& r, const toml::table& root, const Config& cfg) {
    providers(r, root, cfg);
    target(r, root, cfg);
    provisioner(r, root, cfg);
}

} // namespace mf::config_detail
