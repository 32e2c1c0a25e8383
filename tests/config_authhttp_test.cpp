// config_authhttp_test.cpp — the [auth_http] section of mailferry.toml: its defaults, the
// address forms, and each bad value as "FILE:LINE: auth_http.KEY" with what was expected.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/config.hpp"

#include <string>

using namespace mf;
using namespace std::chrono_literals;

namespace {

// Lines 1-4: the provider; 5 blank; 6 [auth_http]; 7 listen; 8 new_imap; 9 the line under test.
const std::string kBase = "[[provider]]\nname = \"old\"\ndomains = [\"example.org\"]\n"
                          "host = \"imap.example.org\"\n\n[auth_http]\n";

std::string section(const std::string& listen, const std::string& new_imap,
                    const std::string& more = {}) {
    std::string t = kBase;
    if (!listen.empty()) {
        t += "listen = " + listen + "\n";
    }
    if (!new_imap.empty()) {
        t += "new_imap = " + new_imap + "\n";
    }
    return t + more;
}

Config ok(const std::string& text) {
    auto r = parse_config(text, "t.toml");
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? std::string() : r.error().message()));
    return *r;
}

Error bad(const std::string& text) {
    auto r = parse_config(text, "t.toml");
    REQUIRE_MESSAGE(!r.ok(), "accepted:\n" << text);
    CHECK(r.error().scope == Scope::config);
    return r.error();
}

} // namespace

TEST_CASE("[auth_http] is optional; present, it takes its defaults") {
    CHECK_FALSE(ok(kBase.substr(0, kBase.find("[auth_http]"))).auth_http.configured);
    Config c = ok(section("\"127.0.0.1:9180\"", "\"192.0.2.20:143\""));
    CHECK(c.auth_http.configured);
    CHECK(c.auth_http.listen == "127.0.0.1:9180");
    CHECK(c.auth_http.new_imap == "192.0.2.20:143");
    CHECK(c.auth_http.new_pop3.empty());
    CHECK(c.auth_http.old_imap_port == 143);
    CHECK(c.auth_http.old_pop3_port == 110);
    CHECK(c.auth_http.old_smtp_port == 25);
    CHECK(c.auth_http.wait == 3s);
    CHECK(c.auth_http.max_attempts == 10);
    CHECK(c.auth_http.threads == 8);
    CHECK(c.auth_http.read_timeout == 10s);

    c = ok(section("\"unix:/run/mailferry/auth-http.sock\"", "",
                   "new_pop3 = \"[2001:db8::20]:110\"\nold_pop3_port = 1110\nwait = \"2s\"\n"));
    CHECK(c.auth_http.listen == "unix:/run/mailferry/auth-http.sock");
    CHECK(c.auth_http.new_pop3 == "[2001:db8::20]:110");
    CHECK(c.auth_http.old_pop3_port == 1110);
    CHECK(c.auth_http.wait == 2s);
    ok(section("\"[::1]:9180\"", "\"10.0.0.5:143\""));
    ok(section("\"127.1.2.3:9180\"", "\"10.0.0.5:143\""));
}

TEST_CASE("bad [auth_http] values name the key and its line") {
    struct Case {
        std::string text;
        std::string what;
        std::string expected; // part of the detail
    };
    const Case cases[] = {
        {section("", "\"192.0.2.20:143\""), "t.toml:6: auth_http.listen", "required"},
        {section("\"0.0.0.0:9180\"", "\"192.0.2.20:143\""), "t.toml:7: auth_http.listen",
         "loopback"},
        {section("\"192.0.2.1:9180\"", "\"192.0.2.20:143\""), "t.toml:7: auth_http.listen",
         "loopback"},
        {section("\"localhost:9180\"", "\"192.0.2.20:143\""), "t.toml:7: auth_http.listen",
         "loopback"},
        {section("\"127.0.0.1\"", "\"192.0.2.20:143\""), "t.toml:7: auth_http.listen", "loopback"},
        {section("\"unix:relative.sock\"", "\"192.0.2.20:143\""), "t.toml:7: auth_http.listen",
         "unix:/absolute/path"},
        {section("\"unix:/" + std::string(120, 'a') + "\"", "\"192.0.2.20:143\""),
         "t.toml:7: auth_http.listen", "107 bytes"},
        {section("\"127.0.0.1:9180\"", ""), "t.toml:6: auth_http.new_imap",
         "at least one protocol"},
        {section("\"127.0.0.1:9180\"", "\"mail.example.org:143\""), "t.toml:8: auth_http.new_imap",
         "not a host name"},
        {section("\"127.0.0.1:9180\"", "\"192.0.2.20:0\""), "t.toml:8: auth_http.new_imap",
         "IP address and port"},
        {section("\"127.0.0.1:9180\"", "\"192.0.2.20:70000\""), "t.toml:8: auth_http.new_imap",
         "IP address and port"},
        {section("\"127.0.0.1:9180\"", "\"2001:db8::20:143\""), "t.toml:8: auth_http.new_imap",
         "[2001:db8::20]:143"},
        {section("\"127.0.0.1:9180\"", "143"), "t.toml:8: auth_http.new_imap", "a string"},
        {section("\"127.0.0.1:9180\"", "\"192.0.2.20:143\"", "new_pop3 = \"192.0.2.20\"\n"),
         "t.toml:9: auth_http.new_pop3", "IP address and port"},
        {section("\"127.0.0.1:9180\"", "\"192.0.2.20:143\"", "old_imap_port = 0\n"),
         "t.toml:9: auth_http.old_imap_port", "from 1 to 65535"},
        {section("\"127.0.0.1:9180\"", "\"192.0.2.20:143\"", "wait = \"1500ms\"\n"),
         "t.toml:9: auth_http.wait", "whole seconds"},
        {section("\"127.0.0.1:9180\"", "\"192.0.2.20:143\"", "wait = \"0s\"\n"),
         "t.toml:9: auth_http.wait", "from 1s to 1h"},
        {section("\"127.0.0.1:9180\"", "\"192.0.2.20:143\"", "max_attempts = 21\n"),
         "t.toml:9: auth_http.max_attempts", "from 1 to 20"},
        {section("\"127.0.0.1:9180\"", "\"192.0.2.20:143\"", "threads = 0\n"),
         "t.toml:9: auth_http.threads", "from 1 to 256"},
        {section("\"127.0.0.1:9180\"", "\"192.0.2.20:143\"", "read_timeout = \"soon\"\n"),
         "t.toml:9: auth_http.read_timeout", "duration"},
        {section("\"127.0.0.1:9180\"", "\"192.0.2.20:143\"", "new_imap4 = \"1.2.3.4:1\"\n"),
         "t.toml:9: auth_http.new_imap4", "unknown key"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.text);
        Error e = bad(c.text);
        CHECK(e.what == c.what);
        CHECK_MESSAGE(e.detail.find(c.expected) != std::string::npos, e.detail);
    }
}

TEST_CASE("parse_ip_port takes IP literals only") {
    auto v4 = parse_ip_port("192.0.2.1:143");
    REQUIRE(v4);
    CHECK(v4->ip == "192.0.2.1");
    CHECK(v4->port == 143);
    auto v6 = parse_ip_port("[::1]:9180");
    REQUIRE(v6);
    CHECK(v6->ip == "::1");
    CHECK(v6->port == 9180);
    for (const char* no : {"", ":143", "192.0.2.1", "192.0.2.1:", "192.0.2.1:x", "192.0.2.1:-1",
                           "192.0.2.1:65536", "[::1]", "[::1]143", "::1:143", "host:143",
                           "[192.0.2.1]:143", "192.0.2.1:143 ", " 192.0.2.1:143"}) {
        CAPTURE(no);
        CHECK_FALSE(parse_ip_port(no));
    }
}
