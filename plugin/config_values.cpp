// config_values.cpp — the small value helpers of config.hpp: durations, templates, enum
// names, default ports, and where the config file is.
//
// Never: guess at a malformed duration (no "10 s", no "1h30m", no negative numbers), or
// expand a placeholder it does not know (unknown "{x}" stays as written; config.cpp
// refuses such templates at load time).
// Errors: parse_duration() returns Scope::config errors; the rest cannot fail.
#include "mailferry/config.hpp"

#include <cstdlib>
#include <limits>
#include <optional>

namespace mf {

Result<Millis> parse_duration(std::string_view text) {
    auto bad = [&] {
        return make_error("duration \"" + sanitize_reply(text, 40) + "\"",
                          "expected digits and a unit: \"500ms\", \"10s\", \"15m\", \"2h\", "
                          "\"1d\" (no unit: seconds)",
                          Scope::config);
    };
    std::size_t i = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        ++i;
    }
    if (i == 0) {
        return bad();
    }
    std::string_view unit = text.substr(i);
    constexpr std::int64_t kSecond = 1000;
    std::int64_t factor = 0;
    if (unit == "ms") {
        factor = 1;
    } else if (unit.empty() || unit == "s") {
        factor = kSecond;
    } else if (unit == "m") {
        factor = kSecond * 60;
    } else if (unit == "h") {
        factor = kSecond * 60 * 60;
    } else if (unit == "d") {
        factor = kSecond * 60 * 60 * 24;
    } else {
        return bad();
    }
    const std::int64_t limit = std::numeric_limits<std::int64_t>::max() / factor;
    std::int64_t n = 0;
    for (char c : text.substr(0, i)) {
        if (n > (limit - (c - '0')) / 10) {
            return make_error("duration \"" + sanitize_reply(text, 40) + "\"", "is too large",
                              Scope::config);
        }
        n = n * 10 + (c - '0');
    }
    return Millis(n * factor);
}

std::string format_duration(Millis d) {
    struct Unit {
        std::int64_t ms;
        const char* name;
    };
    static constexpr Unit kUnits[] = {
        {24LL * 60 * 60 * 1000, "d"}, {60LL * 60 * 1000, "h"}, {60LL * 1000, "m"}, {1000, "s"}};
    std::int64_t n = d.count();
    if (n == 0) {
        return "0s";
    }
    for (const auto& u : kUnits) {
        if (n % u.ms == 0) {
            return std::to_string(n / u.ms) + u.name;
        }
    }
    return std::to_string(n) + "ms";
}

std::string expand_template(std::string_view tmpl, std::string_view local,
                            std::string_view domain) {
    std::string address = std::string(local) + "@" + std::string(domain);
    std::string out;
    out.reserve(tmpl.size() + address.size());
    std::size_t i = 0;
    while (i < tmpl.size()) {
        if (tmpl[i] == '{') {
            auto close = tmpl.find('}', i);
            if (close != std::string_view::npos) {
                std::string_view name = tmpl.substr(i + 1, close - i - 1);
                std::optional<std::string_view> value;
                if (name == "local") {
                    value = local;
                } else if (name == "domain") {
                    value = domain;
                } else if (name == "address" || name == "user") {
                    value = address;
                }
                if (value) {
                    out += *value;
                    i = close + 1;
                    continue;
                }
            }
        }
        out += tmpl[i];
        ++i;
    }
    return out;
}

std::string config_path_from(const std::string& cli_value) {
    if (!cli_value.empty()) {
        return cli_value;
    }
    // Read once by a program's main before threads start; nothing here sets it.
    const char* env = std::getenv(kConfigEnv); // NOLINT(concurrency-mt-unsafe)
    if (env != nullptr && *env != '\0') {
        return env;
    }
    return kDefaultConfigPath;
}

std::uint16_t ProviderConfig::effective_port() const {
    if (port != 0) {
        return port;
    }
    switch (protocol) {
    case Protocol::imap:
        return tls == TlsMode::implicit ? 993 : 143;
    case Protocol::pop3:
        return tls == TlsMode::implicit ? 995 : 110;
    case Protocol::smtp:
        // Submission: AUTH is offered there, not on 25 (RFC 8314 for 465, RFC 6409 for 587).
        return tls == TlsMode::implicit ? 465 : 587;
    }
    return 0;
}

std::uint16_t TargetConfig::effective_port() const {
    if (port != 0) {
        return port;
    }
    return tls == TlsMode::implicit ? 993 : 143;
}

const char* to_string(SpoolKeep k) {
    switch (k) {
    case SpoolKeep::cutover:
        return "cutover";
    case SpoolKeep::first_sync:
        return "first-sync";
    }
    return "?";
}

const char* to_string(Protocol p) {
    switch (p) {
    case Protocol::imap:
        return "imap";
    case Protocol::pop3:
        return "pop3";
    case Protocol::smtp:
        return "smtp";
    }
    return "?";
}

const char* to_string(TlsMode t) {
    switch (t) {
    case TlsMode::implicit:
        return "implicit";
    case TlsMode::starttls:
        return "starttls";
    case TlsMode::none:
        return "none";
    }
    return "?";
}

const char* to_string(LoginForm f) {
    switch (f) {
    case LoginForm::full_address:
        return "full_address";
    case LoginForm::local_part:
        return "local_part";
    case LoginForm::templated:
        return "template";
    }
    return "?";
}

const char* to_string(SaslMech m) {
    switch (m) {
    case SaslMech::automatic:
        return "auto";
    case SaslMech::plain:
        return "plain";
    case SaslMech::login:
        return "login";
    }
    return "?";
}

const char* to_string(HashScheme s) {
    switch (s) {
    case HashScheme::argon2id:
        return "argon2id";
    case HashScheme::sha512_crypt:
        return "sha512-crypt";
    case HashScheme::yescrypt:
        return "yescrypt";
    }
    return "?";
}

const char* to_string(ProvisionerType t) {
    switch (t) {
    case ProvisionerType::builtin:
        return "builtin";
    case ProvisionerType::dovecot_passwd_file:
        return "dovecot-passwd-file";
    case ProvisionerType::command:
        return "command";
    case ProvisionerType::http:
        return "http";
    }
    return "?";
}

const char* to_string(LogLevel l) {
    switch (l) {
    case LogLevel::debug:
        return "debug";
    case LogLevel::info:
        return "info";
    case LogLevel::warning:
        return "warning";
    case LogLevel::error:
        return "error";
    }
    return "?";
}

} // namespace mf
