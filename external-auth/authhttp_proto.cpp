// authhttp_proto.cpp — nginx's auth_http headers in and out (see authhttp_proto.hpp).
//
// The error texts carry the protocols' own response codes, because nginx puts Auth-Status
// after "NO " (IMAP) or "-ERR " (POP3) as it is: RFC 5530's [AUTHENTICATIONFAILED] and
// [UNAVAILABLE], RFC 3206's [AUTH] and [SYS/TEMP]; SMTP gets RFC 4954's 535 5.7.8 and
// 454 4.7.0 through Auth-Error-Code. So a client can tell "wrong password" from "try
// later" as it can at a server.
#include "authhttp_proto.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <charconv>

namespace mf::authhttp {
namespace {

constexpr std::size_t kNginxBuffer = 1024; // ngx_mail_auth_http_module's answer buffer
// Status line, Connection and Content-Length, which the server adds to every answer.
constexpr std::size_t kFixedOverhead = 96;

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

bool ascii_iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               auto lower = [](char c) {
                   return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
               };
               return lower(x) == lower(y);
           });
}

std::optional<Protocol> protocol_from(std::string_view v) {
    for (Protocol p : {Protocol::imap, Protocol::pop3, Protocol::smtp}) {
        if (ascii_iequal(v, to_string(p))) {
            return p;
        }
    }
    return std::nullopt;
}

bool is_ip(std::string_view v) {
    if (v.empty() || v.size() >= INET6_ADDRSTRLEN) {
        return false;
    }
    std::string s(v);
    unsigned char buf[sizeof(in6_addr)];
    return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

Parsed refuse(Answer a, std::string reason) {
    Parsed p;
    p.refusal = std::move(a);
    p.reason = std::move(reason);
    return p;
}

Answer with_wait(Answer a, const AuthHttpConfig& cfg, unsigned attempt) {
    if (attempt < cfg.max_attempts) {
        a.headers.emplace_back(
            "Auth-Wait",
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(cfg.wait).count()));
    }
    return a;
}

bool token_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

} // namespace

bool unescape(std::string_view in, std::string& out) {
    out.clear();
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out += in[i];
            continue;
        }
        if (i + 2 >= in.size()) {
            return false;
        }
        int hi = hex_value(in[i + 1]);
        int lo = hex_value(in[i + 2]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return true;
}

Parsed parse_request(const FieldLookup& field) {
    auto proto_text = field("Auth-Protocol");
    if (!proto_text) {
        return refuse(answer_bad_request(), "no Auth-Protocol header");
    }
    auto protocol = protocol_from(*proto_text);
    if (!protocol) {
        return refuse(answer_bad_request(), "unknown Auth-Protocol \"" +
                                                sanitize_reply(*proto_text, 20) +
                                                "\" (imap, pop3, smtp)");
    }
    auto method = field("Auth-Method");
    if (!method) {
        return refuse(answer_bad_request(), "no Auth-Method header");
    }
    if (!ascii_iequal(*method, "plain")) {
        Answer a;
        a.headers.emplace_back("Auth-Status", "Authentication method not supported");
        if (*protocol == Protocol::smtp) {
            a.headers.emplace_back("Auth-Error-Code", "504 5.5.4");
        }
        return refuse(std::move(a), "Auth-Method \"" + sanitize_reply(*method, 20) +
                                        "\" refused: only plain (nginx's PLAIN, LOGIN and "
                                        "USER/PASS) can be verified");
    }
    auto user = field("Auth-User");
    auto pass = field("Auth-Pass");
    if (!user || !pass) {
        return refuse(answer_bad_request(), !user ? "no Auth-User header" : "no Auth-Pass header");
    }
    Request req;
    req.protocol = *protocol;
    if (!unescape(*user, req.user)) {
        return refuse(answer_bad_request(), "Auth-User has a bad %-escape");
    }
    std::string plain;
    const bool pass_ok = unescape(*pass, plain);
    req.password = Secret(plain);
    wipe(plain.data(), plain.size());
    if (!pass_ok) {
        return refuse(answer_bad_request(), "Auth-Pass has a bad %-escape");
    }
    if (auto attempt = field("Auth-Login-Attempt")) {
        unsigned n = 0;
        auto [end, ec] = std::from_chars(attempt->data(), attempt->data() + attempt->size(), n);
        if (attempt->empty() || ec != std::errc() || end != attempt->data() + attempt->size() ||
            n == 0) {
            return refuse(answer_bad_request(), "Auth-Login-Attempt \"" +
                                                    sanitize_reply(*attempt, 20) +
                                                    "\" is not a positive number");
        }
        req.attempt = n;
    }
    if (auto ip = field("Client-IP")) {
        if (!is_ip(*ip)) {
            return refuse(answer_bad_request(),
                          "Client-IP \"" + sanitize_reply(*ip, 48) + "\" is not an IP address");
        }
        req.client_ip = std::string(*ip);
    }
    Parsed p;
    p.request = std::move(req);
    return p;
}

std::optional<Side> route(AccountState state, bool ever_synced) {
    switch (state) {
    case AccountState::synced:
    case AccountState::resyncing:
    case AccountState::held:
    case AccountState::cutover:
        return Side::new_server;
    case AccountState::verified:
    case AccountState::provisioned:
    case AccountState::copying:
        return Side::old_server;
    case AccountState::failed:
        return ever_synced ? Side::new_server : Side::old_server;
    case AccountState::unknown:
    case AccountState::disabled:
        return std::nullopt;
    }
    return std::nullopt;
}

const std::string& new_server(const AuthHttpConfig& cfg, Protocol p) {
    switch (p) {
    case Protocol::pop3:
        return cfg.new_pop3;
    case Protocol::smtp:
        return cfg.new_smtp;
    case Protocol::imap:
        break;
    }
    return cfg.new_imap;
}

std::uint16_t old_port(const AuthHttpConfig& cfg, Protocol p) {
    switch (p) {
    case Protocol::pop3:
        return cfg.old_pop3_port;
    case Protocol::smtp:
        return cfg.old_smtp_port;
    case Protocol::imap:
        break;
    }
    return cfg.old_imap_port;
}

Answer answer_invalid(const AuthHttpConfig& cfg, Protocol p, unsigned attempt) {
    Answer a;
    switch (p) {
    case Protocol::imap:
        a.headers.emplace_back("Auth-Status", "[AUTHENTICATIONFAILED] Invalid login or password");
        break;
    case Protocol::pop3:
        a.headers.emplace_back("Auth-Status", "[AUTH] Invalid login or password");
        break;
    case Protocol::smtp:
        a.headers.emplace_back("Auth-Status", "Invalid login or password");
        a.headers.emplace_back("Auth-Error-Code", "535 5.7.8");
        break;
    }
    return with_wait(std::move(a), cfg, attempt);
}

Answer answer_temporary(const AuthHttpConfig& cfg, Protocol p, unsigned attempt) {
    Answer a;
    switch (p) {
    case Protocol::imap:
        a.headers.emplace_back("Auth-Status",
                               "[UNAVAILABLE] Temporary server problem, try again later");
        break;
    case Protocol::pop3:
        a.headers.emplace_back("Auth-Status", "[SYS/TEMP] Temporary server problem, try again "
                                              "later");
        break;
    case Protocol::smtp:
        a.headers.emplace_back("Auth-Status", "Temporary server problem, try again later");
        a.headers.emplace_back("Auth-Error-Code", "454 4.7.0");
        break;
    }
    return with_wait(std::move(a), cfg, attempt);
}

Answer answer_bad_request() {
    Answer a;
    a.status = 400;
    a.headers.emplace_back("Auth-Status", "Internal server error");
    return a;
}

Answer answer_forbidden() {
    Answer a = answer_bad_request();
    a.status = 403;
    return a;
}

Answer answer_not_served(Protocol p) {
    Answer a;
    a.headers.emplace_back("Auth-Status", "Service not available");
    if (p == Protocol::smtp) {
        a.headers.emplace_back("Auth-Error-Code", "554 5.3.2");
    }
    return a;
}

Answer decide(const AuthHttpConfig& cfg, const Request& req, const Outcome& out, std::string* log) {
    const char* proto = to_string(req.protocol);
    switch (out.status) {
    case AuthStatus::fail:
        *log = std::string(proto) + ": wrong password or unknown user" +
               (out.why.empty() ? "" : " (" + out.why + ")");
        return answer_invalid(cfg, req.protocol, req.attempt);
    case AuthStatus::tempfail:
        *log = std::string(proto) + ": temporary failure" +
               (out.why.empty() ? "" : " (" + out.why + ")");
        return answer_temporary(cfg, req.protocol, req.attempt);
    case AuthStatus::ok:
        break;
    }
    auto side = route(out.state, out.ever_synced);
    const std::string state = to_string(out.state);
    if (!side) {
        *log = std::string(proto) + ": password right but account state " + state +
               " has no server: temporary failure";
        return answer_temporary(cfg, req.protocol, req.attempt);
    }
    IpPort to;
    std::string user;
    if (*side == Side::new_server) {
        auto parsed = parse_ip_port(new_server(cfg, req.protocol));
        if (!parsed) {
            *log = std::string(proto) + ": no new server configured for it (auth_http.new_" +
                   proto + "): temporary failure";
            return answer_temporary(cfg, req.protocol, req.attempt);
        }
        to = *parsed;
        user = out.new_login;
    } else {
        if (out.old_ip.empty()) {
            *log = std::string(proto) + ": old server's address unknown" +
                   (out.why.empty() ? "" : " (" + out.why + ")") + ": temporary failure";
            return answer_temporary(cfg, req.protocol, req.attempt);
        }
        to = IpPort{out.old_ip, old_port(cfg, req.protocol)};
        user = out.old_login;
    }
    Answer a;
    a.headers.emplace_back("Auth-Status", "OK");
    a.headers.emplace_back("Auth-Server", to.ip);
    a.headers.emplace_back("Auth-Port", std::to_string(to.port));
    if (!user.empty()) {
        a.headers.emplace_back("Auth-User", user);
    }
    if (!well_formed(a)) {
        *log = std::string(proto) + ": the answer would not fit nginx's buffer: temporary failure";
        return answer_temporary(cfg, req.protocol, req.attempt);
    }
    *log = std::string(proto) + ": ok, state " + state + " -> " +
           (*side == Side::new_server ? "new" : "old") + " server " + to.ip + ":" +
           std::to_string(to.port);
    return a;
}

bool well_formed(const Answer& a) {
    std::size_t total = kFixedOverhead;
    for (const auto& [name, value] : a.headers) {
        if (name.empty() || !std::all_of(name.begin(), name.end(), token_char)) {
            return false;
        }
        // nginx ends a value at CR or LF and trims spaces; control bytes have no place.
        if (std::any_of(value.begin(), value.end(), [](char c) {
                auto u = static_cast<unsigned char>(c);
                return u < 0x20 || u == 0x7f;
            })) {
            return false;
        }
        total += name.size() + 2 + value.size() + 2;
    }
    return total <= kNginxBuffer;
}

} // namespace mf::authhttp
