// fuzz_authhttp_request.cpp — feeds bytes to `mailferry auth-http`'s request → decision
// code (external-auth/authhttp_proto.hpp): the input after its first byte is parsed as an
// HTTP request by Beast with the server's limits (16 KiB of header, no body), its headers
// go through parse_request(), and a parsed request is decided against every outcome the
// engine and the store can give (ok in each account state, with and without an old
// server address; fail; tempfail). The first byte picks the old server's login name: a
// fixed one, or the request's own Auth-User (which may hold any byte).
//
// A bug: any sanitizer report or crash; an answer that is not well_formed() (a control
// byte or a non-token name, more than nginx's 1 KiB); an "OK" without a parseable
// Auth-Server and Auth-Port, or a refusal that carries them; Auth-Wait on a refusal after
// max_attempts, or missing before; a password longer than its escaped form; %-unescaping
// that does not give back what nginx's escaping of the same bytes produced. Must never:
// start a server or open the engine.
#include "authhttp_proto.hpp"

#include "mailferry/secret_alloc.hpp"

#include <boost/beast/http.hpp>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using namespace mf::authhttp;

const char* const kHex = "0123456789ABCDEF";

// nginx's escaping of Auth-User and Auth-Pass: space, '%' and control bytes as %XX.
std::string nginx_escape(std::string_view in) {
    std::string out;
    for (char c : in) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || c == '%' || u == 0x7f) {
            out += '%';
            out += kHex[u >> 4];
            out += kHex[u & 15];
        } else {
            out += c;
        }
    }
    return out;
}

std::optional<std::string> field(const Answer& a, std::string_view name) {
    for (const auto& [n, v] : a.headers) {
        if (n == name) {
            return v;
        }
    }
    return std::nullopt;
}

void check(const mf::AuthHttpConfig& cfg, const Request& req, const Outcome& out) {
    std::string log;
    Answer a = decide(cfg, req, out, &log);
    auto status = field(a, "Auth-Status");
    if (!well_formed(a) || !status || log.empty()) {
        std::abort();
    }
    if (*status == "OK") {
        auto server = field(a, "Auth-Server");
        auto port = field(a, "Auth-Port");
        if (out.status != mf::AuthStatus::ok || !server || !port ||
            !mf::parse_ip_port(
                (server->find(':') != std::string::npos ? "[" + *server + "]" : *server) + ":" +
                *port)) {
            std::abort();
        }
        return;
    }
    if (field(a, "Auth-Server") || field(a, "Auth-Port")) {
        std::abort();
    }
    if (field(a, "Auth-Wait").has_value() != (req.attempt < cfg.max_attempts)) {
        std::abort();
    }
}

void decide_all(const Request& req, bool own_login) {
    mf::AuthHttpConfig cfg;
    cfg.configured = true;
    cfg.listen = "127.0.0.1:9180";
    cfg.new_imap = "192.0.2.20:143";
    cfg.new_smtp = "[2001:db8::20]:25";
    cfg.max_attempts = 5;
    Outcome out;
    out.new_login = req.user;
    out.old_login = own_login ? req.user : "anna@example.org";
    for (auto status : {mf::AuthStatus::ok, mf::AuthStatus::fail, mf::AuthStatus::tempfail}) {
        out.status = status;
        for (int s = 0; s <= static_cast<int>(mf::AccountState::disabled); ++s) {
            out.state = static_cast<mf::AccountState>(s);
            for (const char* ip : {"", "198.51.100.7", "2001:db8::7"}) {
                out.old_ip = ip;
                out.ever_synced = !out.ever_synced;
                check(cfg, req, out);
            }
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const bool own_login = (data[0] & 1) != 0;
    std::string_view raw(reinterpret_cast<const char*>(data + 1), size - 1);

    // Unescaping undoes nginx's escaping, byte for byte.
    std::string_view sample = raw.substr(0, 64);
    std::string back;
    if (!unescape(nginx_escape(sample), back) || back != sample) {
        std::abort();
    }

    http::request_parser<http::empty_body, mf::WipingAllocator<char>> parser;
    parser.header_limit(kMaxHeaderBytes);
    parser.body_limit(0);
    parser.eager(true);
    beast::error_code ec;
    std::size_t used = 0;
    while (!ec && !parser.is_done() && used < raw.size()) {
        std::size_t n = parser.put(boost::asio::buffer(raw.data() + used, raw.size() - used), ec);
        if (n == 0 && !ec) {
            break;
        }
        used += n;
    }
    if (ec || !parser.is_done()) {
        return 0;
    }
    const auto& msg = parser.get();
    FieldLookup lookup = [&msg](std::string_view name) -> std::optional<std::string_view> {
        auto it = msg.find(beast::string_view(name.data(), name.size()));
        if (it == msg.end()) {
            return std::nullopt;
        }
        return std::string_view(it->value().data(), it->value().size());
    };
    Parsed p = parse_request(lookup);
    if (!p.request) {
        if (p.reason.empty() || !well_formed(p.refusal) || !field(p.refusal, "Auth-Status")) {
            std::abort();
        }
        return 0;
    }
    auto pass = lookup("Auth-Pass");
    if (!pass || p.request->password.size() > pass->size() || p.request->attempt == 0) {
        std::abort();
    }
    decide_all(*p.request, own_login);
    return 0;
}
