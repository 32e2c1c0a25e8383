// authhttp_nginx_test.cpp — the transition proxy end to end: a private nginx running the
// shipped examples/nginx/mailferry-mail-proxy.conf (paths and ports replaced) in front of
// a real old and a real new Dovecot, asking a real `mailferry auth-http`.
//
// The two servers are told apart by a folder only one of them has (OnlyOld, OnlyNew) and,
// over POP3, by the number of messages in the INBOX.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "authhttp_util.hpp"

#include "mailferry/store.hpp"
#include "support/dovecot_server.hpp"
#include "support/nginx_server.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>

namespace {

using namespace std::chrono_literals;
using aht::LineClient;

const std::string kAnnaPw = "anna-secret-1";
const std::string kBobPw = "bob pass%41 \"q\""; // nginx escapes the space and the '%'
const std::string kCarlPw = "carl-secret-3";
const std::string kDavePw = "dave-secret-4";
const std::string kKey = "c2hhcmVkIHNlY3JldCBvZiB0aGUgdGVzdA==";

std::string replace_once(std::string text, const std::string& from, const std::string& to) {
    auto pos = text.find(from);
    REQUIRE_MESSAGE(pos != std::string::npos, "the example no longer has: " << from);
    return text.replace(pos, from.size(), to);
}

std::string message(const std::string& subject) {
    return "From: a@example.org\r\nSubject: " + subject + "\r\n\r\nbody\r\n";
}

mft::DovecotOptions options(const std::string& label, std::vector<mft::TestUser> users) {
    mft::DovecotOptions o;
    o.label = label;
    o.users = std::move(users);
    o.submission = false;
    return o;
}

struct World {
    mft::TempDir dir{"mft-authhttp"};
    mft::DovecotServer old_server{options("old", {{"anna@example.com", kAnnaPw},
                                                  {"bob@example.com", kBobPw},
                                                  {"carl@example.com", kCarlPw},
                                                  {"dave@example.com", kDavePw}})};
    mft::DovecotServer new_server{options("new", {{"anna@example.com", kAnnaPw},
                                                  {"bob@example.com", kBobPw},
                                                  {"carl@example.com", kCarlPw}})};
    std::uint16_t auth_port = mft::free_port();
    std::uint16_t proxy_imap = mft::free_port();
    std::uint16_t proxy_pop3 = mft::free_port();
    std::string config;
    std::unique_ptr<aht::AuthHttp> auth;
    std::unique_ptr<mft::NginxServer> nginx;

    World() {
        for (const char* user : {"anna@example.com", "bob@example.com", "carl@example.com"}) {
            old_server.save_message(user, "OnlyOld", message("old folder"));
            new_server.save_message(user, "OnlyNew", message("new folder"));
        }
        old_server.save_message("carl@example.com", "INBOX", message("old 1"));
        old_server.save_message("carl@example.com", "INBOX", message("old 2"));
        config = write_config();
        auth = std::make_unique<aht::AuthHttp>(config, dir.file("auth-http.log"));
        REQUIRE_MESSAGE(mft::wait_for_port(auth_port, 10s), auth->log());
        nginx =
            std::make_unique<mft::NginxServer>(nginx_config(), std::vector{proxy_imap, proxy_pop3});
    }

    std::string write_config() const {
        std::string p = std::to_string(old_server.imaps_port());
        std::string text =
            "[store]\npath = \"" + dir.file("mf.db") +
            "\"\nbusy_timeout = \"2s\"\n\n"
            "[identity]\ndefault_domain = \"example.com\"\n\n"
            "[[provider]]\nname = \"old\"\ndomains = [\"example.com\"]\nprotocol = \"imap\"\n"
            "host = \"127.0.0.1\"\nport = " +
            p + "\ntls = \"implicit\"\nca_file = \"" + old_server.ca_file() +
            "\"\ntimeout = \"5s\"\n\n"
            "[hash]\nscheme = \"argon2id\"\nargon2_ops = 1\nargon2_memory_kib = 8192\n\n"
            "[provisioner]\ntype = \"builtin\"\n\n"
            "[auth_http]\nlisten = \"127.0.0.1:" +
            std::to_string(auth_port) +
            "\"\n"
            "new_imap = \"127.0.0.1:" +
            std::to_string(new_server.imap_port()) +
            "\"\n"
            "new_pop3 = \"127.0.0.1:" +
            std::to_string(new_server.pop3_port()) +
            "\"\n"
            "old_imap_port = " +
            std::to_string(old_server.imap_port()) +
            "\n"
            "old_pop3_port = " +
            std::to_string(old_server.pop3_port()) +
            "\n"
            "wait = \"1s\"\nkey_file = \"" +
            dir.file("auth-http.key") + "\"\n";
        mft::write_file(dir.file("auth-http.key"), kKey + "\n", 0600);
        std::string path = dir.file("mailferry.toml");
        mft::write_file(path, text, 0644);
        return path;
    }

    // The shipped example with this test's paths and ports.
    std::string nginx_config() const {
        std::string c = mft::read_file(std::string(MF_SOURCE_DIR) +
                                       "/examples/nginx/mailferry-mail-proxy.conf");
        c = replace_once(c, "worker_processes auto;", "worker_processes 1;");
        c = replace_once(c, "pid /run/nginx-mailferry.pid;", "pid " + dir.file("nginx.pid") + ";");
        c = replace_once(c, "error_log /var/log/nginx/mailferry-mail-proxy.log info;",
                         "error_log " + dir.file("nginx-error.log") + " info;");
        c = replace_once(c, "REPLACE-WITH-THE-KEY-FILE-CONTENTS", kKey);
        c = replace_once(c, "auth_http 127.0.0.1:9180/auth;",
                         "auth_http 127.0.0.1:" + std::to_string(auth_port) + "/auth;");
        c = replace_once(c, "listen 143;", "listen 127.0.0.1:" + std::to_string(proxy_imap) + ";");
        c = replace_once(c, "listen 110;", "listen 127.0.0.1:" + std::to_string(proxy_pop3) + ";");
        return c;
    }

    [[nodiscard]] std::string logs() const {
        return "auth-http:\n" + auth->log() + "\nnginx:\n" +
               mft::file_tail(dir.file("nginx-error.log"), 30);
    }

    void set_state(const std::string& account, mf::AccountState s) const {
        auto store = mf::open_sqlite_store(dir.file("mf.db"), mf::Millis(2000));
        REQUIRE(store.ok());
        REQUIRE((*store)->set_state(account, s, {"test", "", "test"}).ok());
    }

    [[nodiscard]] mf::AccountState state_of(const std::string& account) const {
        auto store = mf::open_sqlite_store(dir.file("mf.db"), mf::Millis(2000));
        REQUIRE(store.ok());
        auto a = (*store)->find_account(account);
        REQUIRE(a.ok());
        return *a ? (**a).state : mf::AccountState::unknown;
    }
};

// Logs in through the proxy and tells which server answered: "old", "new" or the
// refusal line.
std::string imap_lands_on(const World& w, const std::string& user, const std::string& pw) {
    LineClient c(w.proxy_imap);
    std::string login =
        c.imap("a1", "LOGIN " + LineClient::quote(user) + " " + LineClient::quote(pw));
    if (login.rfind("a1 OK", 0) != 0) {
        return login;
    }
    const bool old_folder = c.imap("a2", "SELECT OnlyOld").rfind("a2 OK", 0) == 0;
    const bool new_folder = c.imap("a3", "SELECT OnlyNew").rfind("a3 OK", 0) == 0;
    c.imap("a4", "LOGOUT");
    if (old_folder == new_folder) {
        return "both or neither server (" + std::to_string(old_folder) + ")";
    }
    return old_folder ? "old" : "new";
}

// POP3 USER/PASS through the proxy; the STAT line, or the refusal.
std::string pop3_stat(const World& w, const std::string& user, const std::string& pw) {
    LineClient c(w.proxy_pop3);
    c.send_line("USER " + user);
    std::string r = c.line();
    if (r.rfind("+OK", 0) != 0) {
        return r;
    }
    c.send_line("PASS " + pw);
    r = c.line();
    if (r.rfind("+OK", 0) != 0) {
        return r;
    }
    c.send_line("STAT");
    r = c.line();
    c.send_line("QUIT");
    return r;
}

} // namespace

TEST_CASE("nginx in front of both servers: each login lands where the account's state says") {
    World w;
    INFO(w.logs());

    // Not yet migrated: the first login is verified at the old server and lands there;
    // the account is provisioned on the way.
    CHECK(imap_lands_on(w, "anna@example.com", kAnnaPw) == "old");
    CHECK(w.state_of("anna@example.com") == mf::AccountState::provisioned);
    // A short name: the old server is given the login it knows (Auth-User).
    CHECK(imap_lands_on(w, "anna", kAnnaPw) == "old");
    // A password nginx must %-escape (space, '%') arrives whole.
    CHECK(imap_lands_on(w, "bob@example.com", kBobPw) == "old");
    // POP3 too: the old INBOX holds 2 messages, the new one none.
    CHECK(pop3_stat(w, "carl@example.com", kCarlPw).rfind("+OK 2 ", 0) == 0);

    // Synced: the new server.
    w.set_state("anna@example.com", mf::AccountState::synced);
    CHECK(imap_lands_on(w, "anna@example.com", kAnnaPw) == "new");
    w.set_state("carl@example.com", mf::AccountState::cutover);
    CHECK(pop3_stat(w, "carl@example.com", kCarlPw).rfind("+OK 0 ", 0) == 0);
    // What a proxied login costs (nginx, auth-http with the login cache warm, the new
    // server): printed for the record, not judged.
    auto t0 = std::chrono::steady_clock::now();
    constexpr int kRounds = 10;
    for (int i = 0; i < kRounds; ++i) {
        REQUIRE(imap_lands_on(w, "anna@example.com", kAnnaPw) == "new");
    }
    auto per_login = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - t0) /
                     kRounds;
    MESSAGE("IMAP login + 2 SELECT + LOGOUT through nginx to the new server: " << per_login.count()
                                                                               << " ms each");
    // A failed resync round keeps a synced user on the new server.
    w.set_state("anna@example.com", mf::AccountState::resyncing);
    w.set_state("anna@example.com", mf::AccountState::failed);
    CHECK(imap_lands_on(w, "anna@example.com", kAnnaPw) == "new");
    // Held for its final round: the engine says "maintenance", the client waits.
    w.set_state("anna@example.com", mf::AccountState::held);
    CHECK(imap_lands_on(w, "anna@example.com", kAnnaPw) ==
          "a1 NO [UNAVAILABLE] Temporary server problem, try again later");
    w.set_state("anna@example.com", mf::AccountState::cutover);

    // Wrong passwords: of a migrated user (stored hash) and of one the old server refuses.
    CHECK(imap_lands_on(w, "anna@example.com", "wrong") ==
          "a1 NO [AUTHENTICATIONFAILED] Invalid login or password");
    CHECK(imap_lands_on(w, "dave@example.com", "wrong") ==
          "a1 NO [AUTHENTICATIONFAILED] Invalid login or password");
    CHECK(pop3_stat(w, "carl@example.com", "wrong") == "-ERR [AUTH] Invalid login or password");
    CHECK(w.state_of("dave@example.com") == mf::AccountState::unknown);

    // The old server down: a user it must verify gets a temporary error, never "invalid";
    // a migrated user still logs in.
    w.old_server.stop();
    CHECK(imap_lands_on(w, "dave@example.com", kDavePw) ==
          "a1 NO [UNAVAILABLE] Temporary server problem, try again later");
    CHECK(imap_lands_on(w, "anna@example.com", kAnnaPw) == "new");
    CHECK(w.state_of("dave@example.com") == mf::AccountState::unknown);

    // Nothing the service logged holds a password.
    std::string log = mft::read_file(w.dir.file("auth-http.log"));
    for (const auto& pw : {kAnnaPw, kBobPw, kCarlPw, kDavePw}) {
        CHECK(log.find(pw) == std::string::npos);
    }
    CHECK(log.find("pass%2541") == std::string::npos);
}
