// config_auth_http.cpp — the [auth_http] section of mailferry.toml (`mailferry auth-http`):
// its keys, the address forms they take, and the checks that span them.
//
// Never: accept a host name where nginx needs an IP address (Auth-Server), or a listening
// address other than loopback or a UNIX socket (the service answers whether a password is
// right: nobody off the machine may ask).
// Errors: Scope::config, "FILE:LINE: auth_http.KEY" with what was expected.
#include "config_auth_http.hpp"

#include "file_util.hpp"

#include <arpa/inet.h>
#include <charconv>
#include <sys/un.h>

namespace mf {

std::optional<IpPort> parse_ip_port(std::string_view text) {
    std::string_view host;
    std::string_view port;
    bool v6 = false;
    if (text.starts_with('[')) {
        auto close = text.find("]:");
        if (close == std::string_view::npos) {
            return std::nullopt;
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
        v6 = true;
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return std::nullopt;
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    std::string ip(host);
    unsigned char buf[sizeof(in6_addr)];
    if (ip.empty() || ::inet_pton(v6 ? AF_INET6 : AF_INET, ip.c_str(), buf) != 1) {
        return std::nullopt;
    }
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 ||
        value > 65535) {
        return std::nullopt;
    }
    return IpPort{ip, static_cast<std::uint16_t>(value)};
}

namespace config_detail {
namespace {

constexpr std::string_view kUnixPrefix = "unix:";

bool is_loopback(const std::string& ip) {
    in_addr v4{};
    if (::inet_pton(AF_INET, ip.c_str(), &v4) == 1) {
        return (ntohl(v4.s_addr) >> 24) == 127;
    }
    in6_addr v6{};
    return ::inet_pton(AF_INET6, ip.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

std::optional<std::string> listen_rule(std::string& v) {
    if (v.starts_with(kUnixPrefix)) {
        std::string_view path = std::string_view(v).substr(kUnixPrefix.size());
        if (path.starts_with('/') && path.size() < sizeof(sockaddr_un{}.sun_path)) {
            return std::nullopt;
        }
    } else if (auto a = parse_ip_port(v); a && is_loopback(a->ip)) {
        return std::nullopt;
    }
    return "a loopback address and port such as \"127.0.0.1:9180\" or \"[::1]:9180\", or "
           "\"unix:/absolute/path\" (at most 107 bytes)";
}

std::optional<std::string> ip_port_rule(std::string& v) {
    if (parse_ip_port(v)) {
        return std::nullopt;
    }
    return "an IP address and port such as \"192.0.2.20:143\" or \"[2001:db8::20]:143\" "
           "(nginx needs an address, not a host name)";
}

} // namespace

const Keys<AuthHttpConfig>& auth_http_keys() {
    using std::chrono::hours;
    using std::chrono::milliseconds;
    using std::chrono::seconds;
    static const Keys<AuthHttpConfig> keys = {
        required(text("listen", &AuthHttpConfig::listen, listen_rule)),
        text("new_imap", &AuthHttpConfig::new_imap, ip_port_rule),
        text("new_pop3", &AuthHttpConfig::new_pop3, ip_port_rule),
        text("new_smtp", &AuthHttpConfig::new_smtp, ip_port_rule),
        number("old_imap_port", &AuthHttpConfig::old_imap_port, 1, 65535),
        number("old_pop3_port", &AuthHttpConfig::old_pop3_port, 1, 65535),
        number("old_smtp_port", &AuthHttpConfig::old_smtp_port, 1, 65535),
        // Auth-Wait is whole seconds; nginx reads 0 as "no wait".
        duration("wait", &AuthHttpConfig::wait, seconds(1), hours(1)),
        // nginx keeps every attempt's memory until the session ends; its documentation asks
        // for a hang-up after 10-20 attempts.
        number("max_attempts", &AuthHttpConfig::max_attempts, 1, 20),
        number("threads", &AuthHttpConfig::threads, 1, 256),
        duration("read_timeout", &AuthHttpConfig::read_timeout, milliseconds(100), hours(1)),
        file("key_file", &AuthHttpConfig::key_file),
    };
    return keys;
}

Result<void> validate_auth_http(const Reader& r, const toml::table& root, Config& cfg) {
    const auto* t = root.get_as<toml::table>("auth_http");
    AuthHttpConfig& a = cfg.auth_http;
    a.configured = t != nullptr;
    if (!a.configured) {
        return {};
    }
    if (a.new_imap.empty() && a.new_pop3.empty() && a.new_smtp.empty()) {
        return r.error(t->source(), "auth_http.new_imap",
                       "missing: [auth_http] needs the new server for at least one protocol "
                       "(new_imap, new_pop3 or new_smtp)");
    }
    if (a.wait.count() % 1000 != 0) {
        const auto* n = t->get("wait");
        return r.error(n != nullptr ? n->source() : t->source(), "auth_http.wait",
                       "expected whole seconds (nginx's Auth-Wait), found " +
                           format_duration(a.wait));
    }
    if (!a.key_file.empty()) {
        if (auto w = secret_file_warning(a.key_file); !w.empty()) {
            r.warn("auth_http.key_file: " + w);
        }
    }
    return {};
}

} // namespace config_detail
} // namespace mf
