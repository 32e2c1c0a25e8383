// engine_login_test.cpp — the login decision against a real old Dovecot on loopback:
// first login, local logins after it, every FAIL and TEMPFAIL path, the guard, the
// per-provider limit, races between processes, held/disabled accounts, legacy rehash.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "engine_util.hpp"
#include "mailferry/engine.hpp"
#include "support/dovecot_server.hpp"
#include "support/test_env.hpp"

#include <atomic>
#include <chrono>
#include <fstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace mf;
using mft::login;
using mft::open_engine;
using namespace std::chrono_literals;

namespace {

const char* kAnnaPw = "anna's \"first\" pass\\word % ünï";

struct Setup {
    std::string provider_block; // [[provider]] host/port/… lines
    std::string provisioner = "type = \"builtin\"";
    std::string guard = "max_failures_per_account = 5\nmax_failures_per_ip = 50\nwindow = \"15m\"\n"
                        "negative_cache_ttl = \"5m\"";
    std::string extra;
};

std::string write_config(const mft::TempDir& dir, const Setup& s) {
    std::string text =
        "[store]\npath = \"" + dir.file("mf.db") +
        "\"\nbusy_timeout = \"5s\"\n\n"
        "[identity]\ndefault_domain = \"example.com\"\n\n"
        "[[provider]]\nname = \"old\"\ndomains = [\"example.com\"]\n" +
        s.provider_block +
        "\n[hash]\nscheme = \"argon2id\"\nargon2_ops = 1\nargon2_memory_kib = 8192\n\n"
        "[provisioner]\n" +
        s.provisioner + "\n\n[guard]\n" + s.guard + "\n" + s.extra;
    auto path = dir.file("mailferry.toml");
    mft::write_file(path, text, 0644);
    return path;
}

std::string imaps_block(const mft::DovecotServer& old, const std::string& extra = "") {
    return "protocol = \"imap\"\nhost = \"localhost\"\nport = " + std::to_string(old.imaps_port()) +
           "\ntls = \"implicit\"\nca_file = \"" + old.ca_file() + "\"\ntimeout = \"5s\"\n" + extra;
}

mft::DovecotOptions old_server_options() {
    mft::DovecotOptions o;
    o.label = "old";
    o.users = {{"anna@example.com", kAnnaPw},
               {"bob@example.com", "bobpw"},
               {"carl@example.com", "carlpw"},
               {"dora@example.com", "dorapw"}};
    for (int i = 0; i < 20; ++i) {
        o.users.push_back({"u" + std::to_string(i) + "@example.com", "pw-" + std::to_string(i)});
    }
    return o;
}

} // namespace

TEST_CASE("first login is verified at the old server, provisioned, then answered locally") {
    mft::TempDir dir;
    mft::DovecotServer old(old_server_options());
    Setup s;
    s.provider_block = imaps_block(old);
    s.extra = "[result.extra_fields]\nuserdb_home = \"/var/vmail/{domain}/{local}\"\n";
    auto engine = open_engine(write_config(dir, s));

    auto r = login(*engine, "anna", kAnnaPw);
    REQUIRE_MESSAGE(r.status == AuthStatus::ok, r.message);
    CHECK(r.user == "anna@example.com");
    CHECK(r.first_login);
    REQUIRE(r.extra.size() == 1);
    CHECK(r.extra[0].second == "/var/vmail/example.com/anna");

    auto acct = engine->store().find_account("anna@example.com");
    REQUIRE(acct.ok());
    REQUIRE(acct->has_value());
    CHECK((**acct).state == AccountState::provisioned);
    CHECK((**acct).hash.rfind("{ARGON2ID}", 0) == 0);
    CHECK((**acct).hash.find(kAnnaPw) == std::string::npos);
    auto audit = engine->store().audit_log("anna@example.com");
    REQUIRE(audit->size() == 1);
    CHECK(audit->at(0).detail.find("verified at old") != std::string::npos);

    old.stop(); // from now on nothing may need the old server
    auto again = login(*engine, "anna@EXAMPLE.com", kAnnaPw);
    CHECK_MESSAGE(again.status == AuthStatus::ok, again.message);
    CHECK_FALSE(again.first_login);
    auto wrong = login(*engine, "anna", "not it");
    CHECK(wrong.status == AuthStatus::fail);
}

TEST_CASE("wrong password and unknown user: FAIL and nothing created") {
    mft::TempDir dir;
    mft::DovecotServer old(old_server_options());
    Setup s;
    s.provider_block = imaps_block(old);
    auto engine = open_engine(write_config(dir, s));

    CHECK(login(*engine, "bob", "wrong").status == AuthStatus::fail);
    CHECK(login(*engine, "nobody@example.com", "whatever").status == AuthStatus::fail);
    CHECK_FALSE(engine->store().find_account("bob@example.com")->has_value());
    CHECK_FALSE(engine->store().find_account("nobody@example.com")->has_value());
    CHECK(engine->store().list_accounts()->empty());
}

TEST_CASE("old server down or silent: TEMPFAIL within the timeout, nothing created") {
    mft::TempDir dir;
    mft::SilentServer silent;
    Setup s;
    s.provider_block =
        "protocol = \"imap\"\nhost = \"127.0.0.1\"\nport = " + std::to_string(silent.port()) +
        "\ntls = \"none\"\ntimeout = \"1s\"\n";
    auto engine = open_engine(write_config(dir, s));
    auto t0 = std::chrono::steady_clock::now();
    auto r = login(*engine, "carl", "carlpw");
    auto took = std::chrono::steady_clock::now() - t0;
    CHECK(r.status == AuthStatus::tempfail);
    CHECK(took < 3s);
    CHECK_FALSE(engine->store().find_account("carl@example.com")->has_value());

    mft::TempDir dir2;
    Setup closed;
    closed.provider_block =
        "protocol = \"imap\"\nhost = \"127.0.0.1\"\nport = " + std::to_string(mft::free_port()) +
        "\ntls = \"none\"\ntimeout = \"2s\"\n";
    auto engine2 = open_engine(write_config(dir2, closed));
    auto r2 = login(*engine2, "carl", "carlpw");
    CHECK(r2.status == AuthStatus::tempfail);
    CHECK(engine2->store().list_accounts()->empty());
}

TEST_CASE("garbage logins and passwords are refused without contacting anybody") {
    mft::TempDir dir;
    mft::SilentServer silent; // any contact would hang until the 5 s timeout
    Setup s;
    s.provider_block =
        "protocol = \"imap\"\nhost = \"127.0.0.1\"\nport = " + std::to_string(silent.port()) +
        "\ntls = \"none\"\ntimeout = \"5s\"\n";
    auto engine = open_engine(write_config(dir, s));
    const std::string nul_pw("a\0b", 3);
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"", "pw"},
        {std::string(321, 'a'), "pw"},
        {"an na", "pw"},
        {"anna@ex@ample.com", "pw"},
        {"an\x01na", "pw"},
        {"\xff\xfe", "pw"},
        {"anna@unknown-domain.example", "pw"},
        {"anna", ""},
        {"anna", "line\r\nbreak"},
        {"anna", "lf\nonly"},
        {"anna", nul_pw},
        {"anna", std::string(mf::kMaxPasswordBytes + 1, 'x')},
    };
    for (const auto& [user, pw] : cases) {
        auto t0 = std::chrono::steady_clock::now();
        auto r = login(*engine, user, pw);
        CHECK(r.status == AuthStatus::fail);
        CHECK(std::chrono::steady_clock::now() - t0 < 1s);
        CHECK(r.message.find(pw.empty() ? "\x01\x02" : pw) == std::string::npos);
    }
    CHECK(engine->store().list_accounts()->empty());
}

TEST_CASE("passwords up to 4 KiB: 4096 bytes verified at the old server, 4097 refused at once") {
    // Printable and varied (quotes, backslash, UTF-8), so no byte pattern hides a cut.
    const std::vector<std::string> pieces = {"abc", "XYZ", "019", " ",        "\"",
                                             "\\",  "%",   "{}",  "\xc3\xbc", "-"};
    std::string long_pw;
    for (std::size_t i = 0; long_pw.size() < mf::kMaxPasswordBytes; ++i) {
        long_pw += pieces[(i * 7) % pieces.size()];
    }
    long_pw.resize(mf::kMaxPasswordBytes - 1);
    if (static_cast<unsigned char>(long_pw.back()) == 0xc3) {
        long_pw.back() = 'q'; // never half a UTF-8 character
    }
    long_pw += 'Z';
    REQUIRE(long_pw.size() == 4096);
    mft::DovecotOptions o;
    o.label = "old-long";
    o.users = {{"long@example.com", long_pw}};
    mft::DovecotServer old(o);
    mft::TempDir dir;
    Setup s;
    s.provider_block = imaps_block(old);
    auto engine = open_engine(write_config(dir, s));

    // One byte over: FAIL with the reason, before the old server is asked; nothing written.
    auto over = login(*engine, "long", long_pw + "x");
    CHECK(over.status == AuthStatus::fail);
    CHECK(over.message.find("password longer than 4096 bytes") != std::string::npos);
    CHECK(over.message.find(long_pw.substr(0, 32)) == std::string::npos);
    CHECK(engine->store().list_accounts()->empty());

    auto first = login(*engine, "long", long_pw);
    REQUIRE_MESSAGE(first.status == AuthStatus::ok, first.message);
    CHECK(first.first_login);
    CHECK(first.user == "long@example.com");
    old.stop(); // from now on the stored hash answers
    auto again = login(*engine, "long", long_pw);
    CHECK_MESSAGE(again.status == AuthStatus::ok, again.message);
    CHECK_FALSE(again.first_login);
    CHECK(login(*engine, "long", long_pw.substr(0, 4095)).status == AuthStatus::fail);
}

TEST_CASE("brute-force guard and negative cache answer locally") {
    mft::TempDir dir;
    mft::DovecotServer old(old_server_options());
    Setup s;
    s.provider_block = imaps_block(old);
    s.guard = "max_failures_per_account_ip = 3\nmax_failures_per_account = 3\n"
              "max_failures_per_ip = 5\nwindow = \"15m\"\nnegative_cache_ttl = \"5m\"";
    auto engine = open_engine(write_config(dir, s));

    // The same wrong password twice: the second answer comes from the negative cache.
    CHECK(login(*engine, "dora", "guess-1").status == AuthStatus::fail);
    old.stop();
    auto cached = login(*engine, "dora", "guess-1");
    CHECK(cached.status == AuthStatus::fail); // not TEMPFAIL: nobody was asked
    CHECK(cached.message.find("negative cache") != std::string::npos);
    old.start();

    CHECK(login(*engine, "dora", "guess-2").status == AuthStatus::fail);
    CHECK(login(*engine, "dora", "guess-3").status == AuthStatus::fail);
    // Three failures from this client: even the right password is TEMPFAIL (never FAIL)
    // from it for the window, and nothing is created.
    auto locked = login(*engine, "dora", "dorapw");
    CHECK(locked.status == AuthStatus::tempfail);
    CHECK(locked.message.find("too many") != std::string::npos);
    CHECK_FALSE(engine->store().find_account("dora@example.com")->has_value());
    // The same account from a clean address is still checked at the old server.
    CHECK(login(*engine, "dora", "dorapw", "192.0.2.77").status == AuthStatus::ok);

    // Per client address: five failures from one IP over several accounts.
    for (int i = 0; i < 5; ++i) {
        CHECK(login(*engine, "u" + std::to_string(i), "bad", "198.51.100.9").status ==
              AuthStatus::fail);
    }
    auto by_ip = login(*engine, "u6", "pw-6", "198.51.100.9");
    CHECK(by_ip.status == AuthStatus::tempfail);
    CHECK(by_ip.message.find("198.51.100.9") != std::string::npos);
    CHECK(login(*engine, "u6", "pw-6", "198.51.100.10").status == AuthStatus::ok);
}

TEST_CASE("per-provider concurrency limit: TEMPFAIL above max_concurrent") {
    mft::TempDir dir;
    mft::SilentServer silent;
    Setup s;
    s.provider_block =
        "protocol = \"imap\"\nhost = \"127.0.0.1\"\nport = " + std::to_string(silent.port()) +
        "\ntls = \"none\"\ntimeout = \"3s\"\nmax_concurrent = 1\n";
    auto engine = open_engine(write_config(dir, s));
    std::thread slow([&] { login(*engine, "u1", "pw-1"); });
    std::this_thread::sleep_for(500ms);
    auto t0 = std::chrono::steady_clock::now();
    auto r = login(*engine, "u2", "pw-2");
    CHECK(r.status == AuthStatus::tempfail);
    CHECK(r.message.find("max_concurrent") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
    slow.join();
}

TEST_CASE("20 processes log in the same new user at once: one account, all OK") {
    mft::TempDir dir;
    mft::DovecotServer old(old_server_options());
    Setup s;
    s.provider_block = imaps_block(old);
    s.provisioner = "type = \"command\"\ncommand = [\"" + dir.file("create.sh") + "\"]\n";
    mft::write_file(dir.file("create.sh"),
                    "#!/bin/sh\necho \"$1\" >> " + dir.file("created.log") + "\n", 0755);
    auto config = write_config(dir, s);
    { open_engine(config); } // create the store before the race
    std::vector<pid_t> kids;
    for (int i = 0; i < 20; ++i) {
        pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            auto e = Engine::open(config);
            if (!e) {
                ::_exit(3);
            }
            auto r = (*e)->authenticate(AuthRequest{"u7", "pw-7", "imap", "", "race"});
            ::_exit(r.status == AuthStatus::ok ? 0 : r.status == AuthStatus::fail ? 1 : 2);
        }
        kids.push_back(pid);
    }
    int ok = 0;
    for (pid_t k : kids) {
        int st = 0;
        ::waitpid(k, &st, 0);
        ok += (WIFEXITED(st) && WEXITSTATUS(st) == 0) ? 1 : 0;
    }
    CHECK(ok == 20);
    CHECK(mft::read_file(dir.file("created.log")) == "u7@example.com\n");
    auto engine = open_engine(config);
    CHECK(engine->store().audit_log("u7@example.com")->size() == 1);
}

TEST_CASE("a failing provisioner: TEMPFAIL, account stays unknown, next login retries") {
    mft::TempDir dir;
    mft::DovecotServer old(old_server_options());
    Setup s;
    s.provider_block = imaps_block(old);
    auto script = dir.file("create.sh");
    s.provisioner = "type = \"command\"\ncommand = [\"" + script + "\"]\n";
    mft::write_file(script, "#!/bin/sh\necho 'quota service down' >&2\nexit 1\n", 0755);
    auto engine = open_engine(write_config(dir, s));
    auto r = login(*engine, "u3", "pw-3");
    CHECK(r.status == AuthStatus::tempfail);
    CHECK(r.message.find("provision") != std::string::npos);
    CHECK_FALSE(engine->store().find_account("u3@example.com")->has_value());

    mft::write_file(script, "#!/bin/sh\nexit 0\n", 0755);
    CHECK(login(*engine, "u3", "pw-3").status == AuthStatus::ok);
    CHECK(engine->store().find_account("u3@example.com")->has_value());
}

TEST_CASE("held accounts get TEMPFAIL, disabled ones FAIL; a legacy hash is upgraded") {
    mft::TempDir dir;
    mft::DovecotServer old(old_server_options());
    Setup s;
    s.provider_block = imaps_block(old);
    auto engine = open_engine(write_config(dir, s));
    REQUIRE(login(*engine, "u4", "pw-4").status == AuthStatus::ok);
    REQUIRE(
        engine->store().set_state("u4@example.com", AccountState::held, {"admin", "", ""}).ok());
    auto held = login(*engine, "u4", "pw-4");
    CHECK(held.status == AuthStatus::tempfail);
    CHECK(held.message.find("maintenance") != std::string::npos);
    REQUIRE(engine->store()
                .set_state("u4@example.com", AccountState::disabled, {"admin", "", ""})
                .ok());
    CHECK(login(*engine, "u4", "pw-4").status == AuthStatus::fail);

    // An imported account with a SHA512-CRYPT hash made by Dovecot's own tool.
    std::string out;
    REQUIRE(old.doveadm({"pw", "-s", "SHA512-CRYPT", "-p", "legacy pw"}, &out) == 0);
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) {
        out.pop_back();
    }
    Account a;
    a.name = "u5@example.com";
    a.provider = "old";
    a.state = AccountState::provisioned;
    a.hash = out;
    REQUIRE(engine->store().create_account(a, {"import", "", ""}).ok());
    old.stop();
    CHECK(login(*engine, "u5", "wrong").status == AuthStatus::fail);
    auto r = login(*engine, "u5", "legacy pw");
    CHECK_MESSAGE(r.status == AuthStatus::ok, r.message);
    auto after = engine->store().find_account("u5@example.com");
    CHECK((**after).hash.rfind("{ARGON2ID}", 0) == 0);
    CHECK(login(*engine, "u5", "legacy pw").status == AuthStatus::ok);
}
