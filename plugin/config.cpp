// config.cpp — load_config() / parse_config(): mailferry.toml into mf::Config.
//
// Every key is declared once below, in its section's key list, with its type, range and
// normalisation; the checks that span keys (a provider per domain, what a provisioner
// type needs) follow in validate(). To add a section: a struct in config.hpp, a key list
// here, one line in sections().
//
// Never: accept an unknown key or section, fill in a value the file got wrong, or keep a
// secret inline (secrets are files; a group- or world-readable one earns a warning).
// Errors: Scope::config; what = "FILE:LINE: key.path", detail = expected vs found. A TOML
// syntax error is "FILE:LINE" with the parser's description.
#include "config_auth_http.hpp"
#include "config_cleartext.hpp"
#include "config_mailflow.hpp"
#include "config_reader.hpp"
#include "file_util.hpp"

#include <algorithm>
#include <cstdio>
#include <sys/stat.h>

namespace mf {
namespace config_detail {
namespace {

constexpr std::size_t kMaxConfigBytes = 1u << 20;

// ---- rules for string values (may normalise; return what was expected on failure) ----

void lower_ascii(std::string& s) {
    for (char& c : s) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
}

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

std::optional<std::string> domain_rule(std::string& v) {
    lower_ascii(v);
    bool ok = v.size() <= 253 && v.front() != '.' && v.back() != '.' &&
              v.find("..") == std::string::npos && std::all_of(v.begin(), v.end(), [](char c) {
                  // Bytes >= 0x80: an internationalised name in UTF-8; toml++ checked UTF-8.
                  return static_cast<unsigned char>(c) >= 0x80 || (c >= 'a' && c <= 'z') ||
                         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
              });
    if (!ok) {
        return "a domain name such as mail.example.org";
    }
    return std::nullopt;
}

std::optional<std::string> name_rule(std::string& v) {
    if (v.size() > 64 || !std::all_of(v.begin(), v.end(), is_name_char)) {
        return "a name of at most 64 letters, digits, '.', '_' or '-'";
    }
    return std::nullopt;
}

std::optional<std::string> host_rule(std::string& v) {
    if (v.size() > 253 || v.find(' ') != std::string::npos || v.find('/') != std::string::npos) {
        return "a host name or IP address";
    }
    return std::nullopt;
}

// Placeholders every template knows; {user} is the same as {address}.
bool template_ok(std::string_view v, bool* has_placeholder) {
    std::size_t i = 0;
    *has_placeholder = false;
    while (i < v.size()) {
        if (v[i] == '}') {
            return false;
        }
        if (v[i] == '{') {
            auto close = v.find('}', i);
            if (close == std::string_view::npos) {
                return false;
            }
            std::string_view name = v.substr(i + 1, close - i - 1);
            if (name != "local" && name != "domain" && name != "address" && name != "user") {
                return false;
            }
            *has_placeholder = true;
            i = close + 1;
            continue;
        }
        ++i;
    }
    return true;
}

std::optional<std::string> template_rule(std::string& v) {
    bool any = false;
    if (!template_ok(v, &any)) {
        return "text with no placeholders but {local}, {domain}, {address}, {user}";
    }
    return std::nullopt;
}

std::optional<std::string> login_template_rule(std::string& v) {
    bool any = false;
    if (!template_ok(v, &any) || !any) {
        return "a template using {local}, {domain} or {address}, such as \"{local}%{domain}\"";
    }
    return std::nullopt;
}

std::optional<std::string> home_rule(std::string& v) {
    bool any = false;
    if (!template_ok(v, &any) || v.find(':') != std::string::npos || v.front() != '/') {
        return "an absolute directory template without ':' using {local}, {domain}, {address}, "
               "{user}, such as \"/var/vmail/{domain}/{local}\"";
    }
    return std::nullopt;
}

std::optional<std::string> url_rule(std::string& v) {
    auto starts = [&](std::string_view p) { return v.size() > p.size() && v.starts_with(p); };
    if (!(starts("http://") || starts("https://")) || v.find(' ') != std::string::npos) {
        return "an http:// or https:// URL";
    }
    return std::nullopt;
}

std::optional<std::string> field_name_rule(std::string& v) {
    if (!std::all_of(v.begin(), v.end(), is_name_char)) {
        return "a field name of letters, digits, '.', '_' or '-'";
    }
    return std::nullopt;
}

// uid / gid: a TOML integer or a string of digits; kept as the decimal string.
Key<ProvisionerConfig> numeric_id(std::string_view name, std::string ProvisionerConfig::*member) {
    return {name, false,
            [member](const Reader& r, const toml::node& n, const std::string& path,
                     ProvisionerConfig& out) -> Result<void> {
                constexpr std::int64_t kMaxId = 4294967294; // (uid_t)-1 means "no change"
                if (const auto* s = n.as_string()) {
                    const std::string& v = s->get();
                    bool digits = !v.empty() && v.size() <= 10 &&
                                  std::all_of(v.begin(), v.end(),
                                              [](char c) { return c >= '0' && c <= '9'; });
                    if (digits && std::stoll(v) <= kMaxId) {
                        out.*member = v;
                        return {};
                    }
                }
                auto v = read_integer(r, n, path, 0, kMaxId);
                if (!v) {
                    return v.error();
                }
                out.*member = std::to_string(*v);
                return {};
            }};
}

// ---- the key lists, one per section ----

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

const Keys<StoreConfig>& store_keys() {
    static const Keys<StoreConfig> keys = {
        file("path", &StoreConfig::path),
        file("lock_dir", &StoreConfig::lock_dir),
        duration("busy_timeout", &StoreConfig::busy_timeout, milliseconds(1), hours(1)),
    };
    return keys;
}

const Keys<ProviderConfig>& provider_keys() {
    static const Keys<ProviderConfig> keys = {
        required(text("name", &ProviderConfig::name, name_rule)),
        required(list("domains", &ProviderConfig::domains, domain_rule)),
        choice("protocol", &ProviderConfig::protocol,
               {Protocol::imap, Protocol::pop3, Protocol::smtp}),
        required(text("host", &ProviderConfig::host, host_rule)),
        number("port", &ProviderConfig::port, 1, 65535),
        choice("tls", &ProviderConfig::tls, {TlsMode::implicit, TlsMode::starttls, TlsMode::none}),
        file("ca_file", &ProviderConfig::ca_file),
        flag("verify_certificate", &ProviderConfig::verify_certificate),
        duration("timeout", &ProviderConfig::timeout, milliseconds(1), minutes(10)),
        number("max_concurrent", &ProviderConfig::max_concurrent, 1, 1000),
        choice("login_form", &ProviderConfig::login_form,
               {LoginForm::full_address, LoginForm::local_part, LoginForm::templated}),
        text("login_template", &ProviderConfig::login_template, login_template_rule),
        choice("mechanism", &ProviderConfig::mechanism,
               {SaslMech::automatic, SaslMech::plain, SaslMech::login}),
        flag("case_insensitive", &ProviderConfig::case_insensitive),
        text("master_user", &ProviderConfig::master_user),
        file("master_password_file", &ProviderConfig::master_password_file),
        text("mail_host", &ProviderConfig::mail_host, host_rule),
        number("mail_port", &ProviderConfig::mail_port, 1, 65535),
        choice("mail_protocol", &ProviderConfig::mail_protocol,
               {MailProtocol::smtp, MailProtocol::lmtp}),
        text("relay_transport", &ProviderConfig::relay_transport, transport_rule),
    };
    return keys;
}

const Keys<IdentityConfig>& identity_keys() {
    static const Keys<IdentityConfig> keys = {
        text("default_domain", &IdentityConfig::default_domain, domain_rule),
        flag("accept_short_names", &IdentityConfig::accept_short_names),
        flag("accept_full_address", &IdentityConfig::accept_full_address),
        flag("fold_local_part", &IdentityConfig::fold_local_part),
        file("conflict_map", &IdentityConfig::conflict_map),
        map("domain_renames", &IdentityConfig::domain_renames, domain_rule, domain_rule),
    };
    return keys;
}

const Keys<HashConfig>& hash_keys() {
    static const Keys<HashConfig> keys = {
        choice("scheme", &HashConfig::scheme,
               {HashScheme::argon2id, HashScheme::sha512_crypt, HashScheme::yescrypt}),
        // libsodium's argon2id limits; more than 4 GiB per login would be a mistake.
        number("argon2_ops", &HashConfig::argon2_ops, 1, 64),
        number("argon2_memory_kib", &HashConfig::argon2_memory_kib, 8,
               std::int64_t{4} * 1024 * 1024),
        // crypt(5): sha512-crypt rounds 1000–999999999; yescrypt cost 1–11.
        number("sha512_rounds", &HashConfig::sha512_rounds, 1000, 999999999),
        number("yescrypt_cost", &HashConfig::yescrypt_cost, 1, 11),
    };
    return keys;
}

const Keys<ProvisionerConfig>& provisioner_keys() {
    static const Keys<ProvisionerConfig> keys = {
        choice("type", &ProvisionerConfig::type,
               {ProvisionerType::builtin, ProvisionerType::dovecot_passwd_file,
                ProvisionerType::command, ProvisionerType::http}),
        file("passwd_file", &ProvisionerConfig::passwd_file),
        numeric_id("uid", &ProvisionerConfig::uid),
        numeric_id("gid", &ProvisionerConfig::gid),
        text("home", &ProvisionerConfig::home, home_rule),
        text("extra_fields", &ProvisionerConfig::extra_fields, template_rule),
        list("command", &ProvisionerConfig::command),
        text("url", &ProvisionerConfig::url, url_rule),
        file("token_file", &ProvisionerConfig::token_file),
        file("ca_file", &ProvisionerConfig::ca_file),
        flag("verify_certificate", &ProvisionerConfig::verify_certificate),
        duration("timeout", &ProvisionerConfig::timeout, milliseconds(1), hours(1)),
    };
    return keys;
}

const Keys<GuardConfig>& guard_keys() {
    static const Keys<GuardConfig> keys = {
        number("max_failures_per_account_ip", &GuardConfig::max_failures_per_account_ip, 1,
               1000000),
        number("max_failures_per_account", &GuardConfig::max_failures_per_account, 1, 1000000),
        number("max_failures_per_ip", &GuardConfig::max_failures_per_ip, 1, 1000000),
        duration("window", &GuardConfig::window, seconds(1), hours(24 * 30)),
        // 0 turns the negative cache off.
        duration("negative_cache_ttl", &GuardConfig::negative_cache_ttl, milliseconds(0),
                 hours(24)),
        file("key_file", &GuardConfig::key_file),
    };
    return keys;
}

const Keys<ResultConfig>& result_keys() {
    static const Keys<ResultConfig> keys = {
        map("extra_fields", &ResultConfig::extra_fields, field_name_rule, template_rule),
    };
    return keys;
}

const Keys<LogConfig>& log_keys() {
    static const Keys<LogConfig> keys = {
        choice("level", &LogConfig::level,
               {LogLevel::debug, LogLevel::info, LogLevel::warning, LogLevel::error}),
    };
    return keys;
}

const Keys<SpoolConfig>& spool_keys() {
    static const Keys<SpoolConfig> keys = {
        file("dir", &SpoolConfig::dir),
        file("public_key_file", &SpoolConfig::public_key_file),
        file("secret_key_file", &SpoolConfig::secret_key_file),
        choice("keep_until", &SpoolConfig::keep_until, {SpoolKeep::cutover, SpoolKeep::first_sync}),
    };
    return keys;
}

const Keys<TargetConfig>& target_keys() {
    static const Keys<TargetConfig> keys = {
        text("host", &TargetConfig::host, host_rule),
        file("maildir", &TargetConfig::maildir),
        number("port", &TargetConfig::port, 1, 65535),
        choice("tls", &TargetConfig::tls, {TlsMode::implicit, TlsMode::starttls, TlsMode::none}),
        file("ca_file", &TargetConfig::ca_file),
        flag("verify_certificate", &TargetConfig::verify_certificate),
        duration("timeout", &TargetConfig::timeout, seconds(1), hours(1)),
        text("master_user", &TargetConfig::master_user),
        file("master_password_file", &TargetConfig::master_password_file),
    };
    return keys;
}

const Keys<WorkerConfig>& worker_keys() {
    static const Keys<WorkerConfig> keys = {
        number("copies", &WorkerConfig::copies, 1, 256),
        number("max_copies_per_server", &WorkerConfig::max_copies_per_server, 1, 1000),
        number("connections", &WorkerConfig::connections, 1, 16),
        number("messages_per_connection", &WorkerConfig::messages_per_connection, 0, 1000000),
        // 0 turns resync rounds off.
        duration("resync_interval", &WorkerConfig::resync_interval, milliseconds(0),
                 hours(24 * 30)),
        duration("retry_min", &WorkerConfig::retry_min, milliseconds(100), hours(24)),
        duration("retry_max", &WorkerConfig::retry_max, milliseconds(100), hours(24 * 7)),
        number("max_attempts", &WorkerConfig::max_attempts, 0, 1000000),
        number("max_same_failure", &WorkerConfig::max_same_failure, 1, 1000),
        number("max_crashes", &WorkerConfig::max_crashes, 1, 1000),
        duration("lease", &WorkerConfig::lease, seconds(1), hours(24)),
        duration("poll_interval", &WorkerConfig::poll_interval, milliseconds(100), hours(1)),
        file("state_dir", &WorkerConfig::state_dir),
        file("wake_file", &WorkerConfig::wake_file),
        flag("spawn", &WorkerConfig::spawn),
        file("program", &WorkerConfig::program),
        duration("idle_exit", &WorkerConfig::idle_exit, seconds(1), hours(24 * 7)),
    };
    return keys;
}

const Keys<LoginCacheConfig>& login_cache_keys() {
    static const Keys<LoginCacheConfig> keys = {
        // 0 turns the cache off.
        duration("ttl", &LoginCacheConfig::ttl, milliseconds(0), hours(24)),
        number("max_entries", &LoginCacheConfig::max_entries, 1, 10000000),
    };
    return keys;
}

const std::vector<Section>& sections() {
    static const std::vector<Section> list = {
        table_section("store", &Config::store, store_keys()),
        array_section("provider", &Config::providers, provider_keys()),
        table_section("identity", &Config::identity, identity_keys()),
        table_section("hash", &Config::hash, hash_keys()),
        table_section("provisioner", &Config::provisioner, provisioner_keys()),
        table_section("guard", &Config::guard, guard_keys()),
        table_section("login_cache", &Config::login_cache, login_cache_keys()),
        table_section("result", &Config::result, result_keys()),
        table_section("log", &Config::log, log_keys()),
        table_section("spool", &Config::spool, spool_keys()),
        table_section("target", &Config::target, target_keys()),
        table_section("worker", &Config::worker, worker_keys()),
        table_section("mailflow", &Config::mailflow, mailflow_keys()),
        table_section("auth_http", &Config::auth_http, auth_http_keys()),
    };
    return list;
}

// ---- checks that span keys ----

// Where to point for `key` of `table`: the key's own line if present, else the table's.
toml::source_region where(const toml::table* table, std::string_view key) {
    if (table == nullptr) {
        return {};
    }
    if (const auto* n = table->get(key)) {
        return n->source();
    }
    return table->source();
}

const ProviderConfig* serving(const Config& cfg, const std::string& domain) {
    for (const auto& p : cfg.providers) {
        if (std::find(p.domains.begin(), p.domains.end(), domain) != p.domains.end()) {
            return &p;
        }
    }
    return nullptr;
}

std::string dir_of(const std::string& path) {
    auto pos = path.rfind('/');
    if (pos == std::string::npos) {
        return {};
    }
    return pos == 0 ? "/" : path.substr(0, pos + 1);
}

// provider.master_user and master_password_file: both or neither, IMAP only.
Result<void> check_provider_master(const Reader& r, const toml::table* t, const ProviderConfig& p) {
    if (p.master_user.empty() != p.master_password_file.empty()) {
        const char* have = p.master_user.empty() ? "master_password_file" : "master_user";
        const char* need = p.master_user.empty() ? "master_user" : "master_password_file";
        return r.error(where(t, have), std::string("provider.") + have,
                       std::string("needs provider.") + need + " as well");
    }
    if (p.master_user.empty()) {
        return {};
    }
    if (p.protocol != Protocol::imap) {
        return r.error(where(t, "master_user"), "provider.master_user",
                       "is for an IMAP old server, found protocol = \"" +
                           std::string(to_string(p.protocol)) + "\"");
    }
    if (auto w = secret_file_warning(p.master_password_file); !w.empty()) {
        r.warn("provider " + p.name + ": master_password_file: " + w);
    }
    return {};
}

Result<void> validate_providers(const Reader& r, const toml::table& root, Config& cfg) {
    const auto* arr = root.get_as<toml::array>("provider");
    if (arr == nullptr || cfg.providers.empty()) {
        return r.error("provider", "at least one [[provider]] section is required: the old "
                                   "server that verifies passwords");
    }
    std::map<std::string, std::size_t> names;   // name → index
    std::map<std::string, std::size_t> domains; // domain → index
    for (std::size_t i = 0; i < cfg.providers.size(); ++i) {
        auto& p = cfg.providers[i];
        const auto* t = arr->get(i)->as_table();
        if (auto [it, fresh] = names.emplace(p.name, i); !fresh) {
            return r.error(
                where(t, "name"), "provider.name",
                "\"" + p.name + "\" is already the name of the provider at line " +
                    std::to_string(where(arr->get(it->second)->as_table(), "name").begin.line));
        }
        for (const auto& d : p.domains) {
            if (auto [it, fresh] = domains.emplace(d, i); !fresh) {
                return r.error(where(t, "domains"), "provider.domains",
                               "domain " + d + " is already served by provider \"" +
                                   cfg.providers[it->second].name + "\"");
            }
        }
        bool templated = p.login_form == LoginForm::templated;
        if (templated && p.login_template.empty()) {
            return r.error(where(t, "login_form"), "provider.login_form",
                           "login_form = \"template\" needs provider.login_template");
        }
        if (!templated && !p.login_template.empty()) {
            return r.error(where(t, "login_template"), "provider.login_template",
                           "is only used with login_form = \"template\", found login_form = \"" +
                               std::string(to_string(p.login_form)) + "\"");
        }
        if (p.tls == TlsMode::none && !p.ca_file.empty()) {
            return r.error(where(t, "ca_file"), "provider.ca_file",
                           "is only used with TLS, found tls = \"none\"");
        }
        if (auto e = check_provider_master(r, t, p); !e) {
            return e;
        }
        if (p.tls != TlsMode::none && !p.verify_certificate) { // tls none: warn_clear_text
            r.warn("provider " + p.name + ": verify_certificate = false: the certificate of " +
                   p.host + " is not checked");
        }
    }
    return {};
}

Result<void> validate_identity(const Reader& r, const toml::table& root, const Config& cfg) {
    const auto* t = root.get_as<toml::table>("identity");
    const auto& id = cfg.identity;
    const auto* renames = t == nullptr ? nullptr : t->get_as<toml::table>("domain_renames");
    std::map<std::string, std::string> targets; // new → old
    for (const auto& [from, to] : id.domain_renames) {
        // Keys were lower-cased; point at the key as written, on its line.
        toml::source_region at = renames == nullptr ? toml::source_region{} : renames->source();
        std::string written = from;
        if (renames != nullptr) {
            for (auto&& [k, v] : *renames) {
                std::string lk(k.str());
                lower_ascii(lk);
                if (lk == from) {
                    at = k.source();
                    written = k.str();
                }
            }
        }
        std::string key = "identity.domain_renames.\"" + sanitize_reply(written, 60) + "\"";
        if (from == to) {
            return r.error(at, key, "renames " + from + " to itself");
        }
        if (serving(cfg, from) == nullptr) {
            return r.error(at, key,
                           "no provider serves " + from +
                               ": list it in the domains of the [[provider]] that holds its "
                               "accounts");
        }
        if (const auto* p = serving(cfg, to)) {
            return r.error(at, key,
                           "the new domain " + to + " is also served by provider \"" + p->name +
                               "\", so a login at " + to + " would be ambiguous");
        }
        if (auto [it, fresh] = targets.emplace(to, from); !fresh) {
            return r.error(at, key,
                           "both " + it->second + " and " + from + " are renamed to " + to +
                               ": a login at " + to + " would be ambiguous");
        }
    }
    if (!id.default_domain.empty() && serving(cfg, id.default_domain) == nullptr &&
        targets.count(id.default_domain) == 0) {
        return r.error(where(t, "default_domain"), "identity.default_domain",
                       "no provider serves " + id.default_domain +
                           " and no domain is renamed to it, so no short name could log in");
    }
    if (!id.accept_short_names && !id.accept_full_address) {
        return r.error(where(t, "accept_full_address"), "identity.accept_full_address",
                       "with accept_short_names = false too, no login would be accepted");
    }
    return {};
}

// identity.fold_local_part, from before letter case was set per old server: kept as the
// default of provider.case_insensitive, so an upgrade changes no account name; a
// provider's own case_insensitive wins. Always a warning, so the admin moves it over.
void apply_fold_local_part(const Reader& r, const toml::table& root, Config& cfg) {
    const auto* t = root.get_as<toml::table>("identity");
    if (t == nullptr || !t->contains("fold_local_part")) {
        return;
    }
    const auto* arr = root.get_as<toml::array>("provider");
    std::vector<std::string> inherited;
    for (std::size_t i = 0; i < cfg.providers.size(); ++i) {
        const auto* pt = arr == nullptr ? nullptr : arr->get(i)->as_table();
        if (pt == nullptr || !pt->contains("case_insensitive")) {
            cfg.providers[i].case_insensitive = cfg.identity.fold_local_part;
            inherited.push_back(cfg.providers[i].name);
        }
    }
    const std::string v = cfg.identity.fold_local_part ? "true" : "false";
    std::string text = r.source() + ":" + std::to_string(where(t, "fold_local_part").begin.line) +
                       ": identity.fold_local_part is deprecated: letter case is set per old "
                       "server with case_insensitive = true|false in each [[provider]] "
                       "(default true).";
    if (!inherited.empty()) {
        std::string names;
        for (const auto& n : inherited) {
            names += (names.empty() ? "" : ", ") + n;
        }
        text += " Until then case_insensitive = " + v + " for " + names + ".";
    }
    r.warn(text + " Remove the line.");
}

Result<void> validate_provisioner(const Reader& r, const toml::table& root, const Config& cfg) {
    const auto* t = root.get_as<toml::table>("provisioner");
    const auto& p = cfg.provisioner;
    // Keys that belong to one type only; "type" and "timeout" apply to all.
    struct Use {
        std::string_view key;
        ProvisionerType type;
    };
    static constexpr Use kUses[] = {
        {"passwd_file", ProvisionerType::dovecot_passwd_file},
        {"uid", ProvisionerType::dovecot_passwd_file},
        {"gid", ProvisionerType::dovecot_passwd_file},
        {"home", ProvisionerType::dovecot_passwd_file},
        {"extra_fields", ProvisionerType::dovecot_passwd_file},
        {"command", ProvisionerType::command},
        {"url", ProvisionerType::http},
        {"token_file", ProvisionerType::http},
        {"ca_file", ProvisionerType::http},
        {"verify_certificate", ProvisionerType::http},
    };
    if (t != nullptr) {
        for (const auto& use : kUses) {
            if (use.type != p.type && t->contains(use.key)) {
                return r.error(where(t, use.key), "provisioner." + std::string(use.key),
                               "is only used with type = \"" + std::string(to_string(use.type)) +
                                   "\", found type = \"" + to_string(p.type) + "\"");
            }
        }
    }
    auto need = [&](std::string_view key, bool missing) -> Result<void> {
        if (missing) {
            return r.error(where(t, "type"), "provisioner." + std::string(key),
                           "missing: type = \"" + std::string(to_string(p.type)) + "\" needs it");
        }
        return {};
    };
    switch (p.type) {
    case ProvisionerType::builtin:
        return {};
    case ProvisionerType::dovecot_passwd_file:
        return need("passwd_file", p.passwd_file.empty());
    case ProvisionerType::command:
        return need("command", p.command.empty());
    case ProvisionerType::http:
        if (auto ok = need("url", p.url.empty()); !ok) {
            return ok;
        }
        if (!p.verify_certificate) {
            r.warn("provisioner: verify_certificate = false: the certificate of " + p.url +
                   " is not checked");
        }
        if (!p.token_file.empty()) {
            if (auto w = secret_file_warning(p.token_file); !w.empty()) {
                r.warn("provisioner.token_file: " + w);
            }
        }
        return {};
    }
    return {};
}

Result<void> validate_copies(const Reader& r, const toml::table& root, Config& cfg) {
    TargetConfig& t = cfg.target;
    const auto* tt = root.get_as<toml::table>("target");
    t.configured = tt != nullptr;
    if (t.configured) {
        if (t.host.empty() == t.maildir.empty()) {
            return r.error(where(tt, t.host.empty() ? "" : "maildir"),
                           t.host.empty() ? "target.host" : "target.maildir",
                           t.host.empty()
                               ? "needs host (the new server over IMAP) or maildir (a Maildir "
                                 "tree of ours per account)"
                               : "host and maildir exclude each other: copy over IMAP or into "
                                 "Maildirs, not both");
        }
        if (!t.maildir.empty()) {
            const bool per_account = expand_template(t.maildir, "a", "b.example") !=
                                     expand_template(t.maildir, "c", "d.example");
            if (!per_account) {
                return r.error(where(tt, "maildir"), "target.maildir",
                               "must name each account's own tree with {local} and {domain}, "
                               "{address} or {user}, found \"" +
                                   t.maildir + "\"");
            }
            if (!t.master_user.empty()) {
                return r.error(where(tt, "master_user"), "target.master_user",
                               "is for an IMAP target (host), not for maildir");
            }
        }
        if (!t.host.empty() && t.tls == TlsMode::none && !t.ca_file.empty()) {
            return r.error(where(tt, "ca_file"), "target.ca_file",
                           "is only used with TLS, found tls = \"none\"");
        }
        if (t.master_user.empty() != t.master_password_file.empty()) {
            const char* have = t.master_user.empty() ? "master_password_file" : "master_user";
            const char* need = t.master_user.empty() ? "master_user" : "master_password_file";
            return r.error(where(tt, have), std::string("target.") + have,
                           std::string("needs target.") + need + " as well");
        }
        if (!t.master_password_file.empty()) {
            if (auto w = secret_file_warning(t.master_password_file); !w.empty()) {
                r.warn("target.master_password_file: " + w);
            }
        }
        if (t.tls != TlsMode::none && !t.verify_certificate) { // tls none: warn_clear_text
            r.warn("target: verify_certificate = false: the certificate of " + t.host +
                   " is not checked");
        }
    }
    const WorkerConfig& w = cfg.worker;
    if (w.retry_max < w.retry_min) {
        const auto* wt = root.get_as<toml::table>("worker");
        return r.error(where(wt, "retry_max"), "worker.retry_max",
                       "must not be shorter than worker.retry_min (" +
                           format_duration(w.retry_min) + ")");
    }
    return {};
}

void warn_world_readable(const Reader& r, const std::string& key, const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IROTH | S_IWOTH)) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        r.warn(key + ": " + path + " is readable or writable by everybody (mode " + mode +
               "): make it 0640 or 0600");
    }
}

Result<void> validate(const Reader& r, const toml::table& root, Config& cfg) {
    if (auto ok = validate_providers(r, root, cfg); !ok) {
        return ok;
    }
    if (auto ok = validate_identity(r, root, cfg); !ok) {
        return ok;
    }
    apply_fold_local_part(r, root, cfg);
    if (auto ok = validate_mailflow(r, root, cfg); !ok) {
        return ok;
    }
    if (auto ok = validate_provisioner(r, root, cfg); !ok) {
        return ok;
    }
    // Defaults that depend on other values: beside the database.
    std::string dir = dir_of(cfg.store.path);
    if (cfg.store.lock_dir.empty()) {
        cfg.store.lock_dir = dir + "locks";
    }
    if (cfg.guard.key_file.empty()) {
        cfg.guard.key_file = dir + "guard.key";
    }
    if (auto ok = validate_copies(r, root, cfg); !ok) {
        return ok;
    }
    if (auto ok = validate_auth_http(r, root, cfg); !ok) {
        return ok;
    }
    if (cfg.spool.dir.empty()) {
        cfg.spool.dir = dir + "spool";
    }
    if (cfg.spool.public_key_file.empty()) {
        cfg.spool.public_key_file = dir + "spool.pub";
    }
    if (cfg.spool.secret_key_file.empty()) {
        cfg.spool.secret_key_file = dir + "spool.key";
    }
    if (cfg.worker.state_dir.empty()) {
        cfg.worker.state_dir = dir + "copy-state";
    }
    if (cfg.worker.wake_file.empty()) {
        cfg.worker.wake_file = cfg.spool.dir + "/wake";
    }
    // Files the mail server's auth user must read may be group-readable (0640), but not
    // readable by everybody: the guard key makes the negative cache's hashes testable,
    // and a passwd-file holds password hashes.
    warn_world_readable(r, "guard.key_file", cfg.guard.key_file);
    if (cfg.provisioner.type == ProvisionerType::dovecot_passwd_file) {
        warn_world_readable(r, "provisioner.passwd_file", cfg.provisioner.passwd_file);
    }
    warn_clear_text(r, root, cfg);
    return {};
}

} // namespace

std::vector<std::string> config_keys() {
    std::vector<std::string> out;
    for (const auto& s : sections()) {
        for (const auto& k : s.keys) {
            out.push_back(std::string(s.name) + "." + k);
        }
    }
    return out;
}

} // namespace config_detail

Result<Config> parse_config(std::string_view text, const std::string& source_name) {
    using namespace config_detail;
    Config cfg;
    cfg.source_path = source_name;
    Reader r(source_name, cfg.warnings);
    toml::table root;
    try {
        root = toml::parse(text, source_name);
    } catch (const toml::parse_error& e) {
        std::string what = source_name;
        if (e.source().begin.line > 0) {
            what += ":" + std::to_string(e.source().begin.line);
        }
        return make_error(what,
                          "TOML syntax: " + std::string(e.description()) + " (column " +
                              std::to_string(e.source().begin.column) + ")",
                          Scope::config);
    }
    for (auto&& [k, node] : root) {
        const Section* sec = nullptr;
        for (const auto& s : sections()) {
            if (s.name == k.str()) {
                sec = &s;
            }
        }
        if (sec == nullptr) {
            std::string known;
            for (const auto& s : sections()) {
                known += (known.empty() ? "" : ", ") + std::string(s.name);
            }
            return r.error(k.source(), k.str(), "unknown section or key; known sections: " + known);
        }
        if (auto ok = sec->read(r, node, cfg); !ok) {
            return ok.error();
        }
    }
    if (auto ok = validate(r, root, cfg); !ok) {
        return ok.error();
    }
    return cfg;
}

Result<Config> load_config(const std::string& path) {
    auto text = read_file(path, config_detail::kMaxConfigBytes);
    if (!text) {
        return text.error(); // "open(PATH) failed: reason"
    }
    return parse_config(*text, path);
}

} // namespace mf
