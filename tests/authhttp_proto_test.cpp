// authhttp_proto_test.cpp — nginx's auth_http headers without network or engine: %-escapes,
// what each request header may hold, the route per account state, and the answers.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "authhttp_proto.hpp"

#include <map>
#include <string>

using namespace mf;
using namespace mf::authhttp;

namespace {

Parsed parse(const std::map<std::string, std::string>& fields) {
    return parse_request([&fields](std::string_view name) -> std::optional<std::string_view> {
        auto it = fields.find(std::string(name));
        if (it == fields.end()) {
            return std::nullopt;
        }
        return it->second;
    });
}

const std::map<std::string, std::string> kGood = {
    {"Auth-Method", "plain"},  {"Auth-User", "anna%40example.com"}, {"Auth-Pass", "a%20b%25c"},
    {"Auth-Protocol", "imap"}, {"Auth-Login-Attempt", "3"},         {"Client-IP", "2001:db8::1"},
};

std::string header(const Answer& a, const std::string& name) {
    for (const auto& [n, v] : a.headers) {
        if (n == name) {
            return v;
        }
    }
    return "(none)";
}

AuthHttpConfig config() {
    AuthHttpConfig c;
    c.configured = true;
    c.listen = "127.0.0.1:9180";
    c.new_imap = "192.0.2.20:1143";
    c.new_pop3 = "[2001:db8::20]:1110";
    c.old_imap_port = 2143;
    c.wait = std::chrono::seconds(4);
    c.max_attempts = 3;
    return c;
}

} // namespace

TEST_CASE("unescape undoes nginx's %XX and refuses a broken escape") {
    std::string out;
    CHECK(unescape("a%20b%25c%0D%0a%7e", out));
    CHECK(out == "a b%c\r\n~");
    CHECK(unescape("", out));
    CHECK(out.empty());
    for (const char* bad : {"%", "%2", "%zz", "a%g0", "100%"}) {
        CAPTURE(bad);
        CHECK_FALSE(unescape(bad, out));
    }
}

TEST_CASE("parse_request reads nginx's headers") {
    Parsed p = parse(kGood);
    REQUIRE(p.request);
    CHECK(p.request->user == "anna@example.com");
    CHECK(p.request->password.view() == "a b%c");
    CHECK(p.request->protocol == Protocol::imap);
    CHECK(p.request->attempt == 3);
    CHECK(p.request->client_ip == "2001:db8::1");

    auto with = [](const std::string& k, const std::string& v) {
        auto f = kGood;
        f[k] = v;
        return f;
    };
    auto without = [](const std::string& k) {
        auto f = kGood;
        f.erase(k);
        return f;
    };
    // Optional ones.
    Parsed minimal = parse(without("Client-IP"));
    REQUIRE(minimal.request);
    CHECK(minimal.request->client_ip.empty());
    REQUIRE(parse(without("Auth-Login-Attempt")).request);
    CHECK(parse(without("Auth-Login-Attempt")).request->attempt == 1);
    CHECK(parse(with("Auth-Protocol", "POP3")).request->protocol == Protocol::pop3);

    struct Bad {
        std::map<std::string, std::string> fields;
        unsigned status;
        std::string reason;
    };
    const Bad bad[] = {
        {without("Auth-User"), 400, "no Auth-User"},
        {without("Auth-Pass"), 400, "no Auth-Pass"},
        {without("Auth-Protocol"), 400, "no Auth-Protocol"},
        {without("Auth-Method"), 400, "no Auth-Method"},
        {with("Auth-Protocol", "nntp"), 400, "unknown Auth-Protocol \"nntp\""},
        {with("Auth-Pass", "%"), 400, "Auth-Pass has a bad %-escape"},
        {with("Auth-User", "%zz"), 400, "Auth-User has a bad %-escape"},
        {with("Auth-Login-Attempt", "-1"), 400, "not a positive number"},
        {with("Auth-Login-Attempt", "99999999999"), 400, "not a positive number"},
        {with("Client-IP", "192.0.2.300"), 400, "not an IP address"},
        {with("Auth-Method", "cram-md5"), 200, "Auth-Method \"cram-md5\" refused"},
        {with("Auth-Method", "none"), 200, "Auth-Method \"none\" refused"},
    };
    for (const auto& b : bad) {
        CAPTURE(b.reason);
        Parsed r = parse(b.fields);
        CHECK_FALSE(r.request);
        CHECK(r.refusal.status == b.status);
        CHECK(r.reason.find(b.reason) != std::string::npos);
        CHECK(header(r.refusal, "Auth-Wait") == "(none)");
        CHECK(well_formed(r.refusal));
    }
}

TEST_CASE("route: synced and later to the new server, before to the old one") {
    using S = AccountState;
    for (S s : {S::synced, S::resyncing, S::held, S::cutover}) {
        CHECK(route(s, false) == Side::new_server);
    }
    for (S s : {S::verified, S::provisioned, S::copying}) {
        CHECK(route(s, true) == Side::old_server);
    }
    CHECK(route(S::failed, false) == Side::old_server);
    CHECK(route(S::failed, true) == Side::new_server);
    CHECK_FALSE(route(S::disabled, true));
    CHECK_FALSE(route(S::unknown, false));
}

TEST_CASE("decide: the answers nginx acts on") {
    const AuthHttpConfig cfg = config();
    Request req;
    req.user = "anna";
    req.protocol = Protocol::imap;
    req.attempt = 1;
    Outcome out;
    out.status = AuthStatus::ok;
    out.new_login = "anna@example.com";
    out.old_login = "anna@old.example";
    out.old_ip = "198.51.100.7";
    std::string log;

    out.state = AccountState::synced;
    Answer a = decide(cfg, req, out, &log);
    CHECK(header(a, "Auth-Status") == "OK");
    CHECK(header(a, "Auth-Server") == "192.0.2.20");
    CHECK(header(a, "Auth-Port") == "1143");
    CHECK(header(a, "Auth-User") == "anna@example.com");
    CHECK(log.find("new server 192.0.2.20:1143") != std::string::npos);

    out.state = AccountState::copying;
    a = decide(cfg, req, out, &log);
    CHECK(header(a, "Auth-Server") == "198.51.100.7");
    CHECK(header(a, "Auth-Port") == "2143");
    CHECK(header(a, "Auth-User") == "anna@old.example");

    req.protocol = Protocol::pop3;
    out.state = AccountState::cutover;
    a = decide(cfg, req, out, &log);
    CHECK(header(a, "Auth-Server") == "2001:db8::20");
    CHECK(header(a, "Auth-Port") == "1110");

    // Routes that cannot be served are temporary, never "invalid".
    out.state = AccountState::provisioned;
    out.old_ip.clear();
    a = decide(cfg, req, out, &log);
    CHECK(header(a, "Auth-Status") == "[SYS/TEMP] Temporary server problem, try again later");
    CHECK(header(a, "Auth-Wait") == "4");
    req.protocol = Protocol::smtp;
    out.state = AccountState::synced;
    a = decide(cfg, req, out, &log);
    CHECK(header(a, "Auth-Error-Code") == "454 4.7.0");
    out.state = AccountState::disabled;
    CHECK(header(decide(cfg, req, out, &log), "Auth-Error-Code") == "454 4.7.0");
    // A login name no header may carry.
    req.protocol = Protocol::imap;
    out.state = AccountState::synced;
    out.new_login = "anna\r\nAuth-Server: 203.0.113.66";
    a = decide(cfg, req, out, &log);
    CHECK(header(a, "Auth-Server") == "(none)");
    CHECK(header(a, "Auth-Status").find("Temporary") != std::string::npos);

    out.status = AuthStatus::fail;
    a = decide(cfg, req, out, &log);
    CHECK(header(a, "Auth-Status") == "[AUTHENTICATIONFAILED] Invalid login or password");
    CHECK(header(a, "Auth-Wait") == "4");
    req.attempt = 3; // max_attempts: nginx hangs up
    a = decide(cfg, req, out, &log);
    CHECK(header(a, "Auth-Wait") == "(none)");
    req.protocol = Protocol::smtp;
    a = decide(cfg, req, out, &log);
    CHECK(header(a, "Auth-Error-Code") == "535 5.7.8");
    out.status = AuthStatus::tempfail;
    req.attempt = 2;
    req.protocol = Protocol::imap;
    a = decide(cfg, req, out, &log);
    CHECK(header(a, "Auth-Status") == "[UNAVAILABLE] Temporary server problem, try again later");
    CHECK(header(a, "Auth-Wait") == "4");
}

TEST_CASE("well_formed keeps answers within nginx's buffer and header syntax") {
    Answer a;
    a.headers.emplace_back("Auth-Status", "OK");
    CHECK(well_formed(a));
    a.headers.emplace_back("Auth-User", std::string(1000, 'a'));
    CHECK_FALSE(well_formed(a));
    Answer b;
    b.headers.emplace_back("Auth Status", "OK");
    CHECK_FALSE(well_formed(b));
    Answer c;
    c.headers.emplace_back("Auth-Status", std::string("O\0K", 3));
    CHECK_FALSE(well_formed(c));
}
