// faces_checkpassword_test.cpp — mailferry-checkpassword as Dovecot runs it: the real
// binary with credentials on fd 3 and Dovecot's checkpassword-reply on fd 4, against a real
// old Dovecot; then end to end, a NEW Dovecot whose passdb is our example config.
//
// Every bad input: the exit code Dovecot needs, a clear message on stderr, no account in
// the store, never the password in the output.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "faces_util.hpp"
#include "support/dovecot_server.hpp"
#include "support/test_env.hpp"

#include <fstream>
#include <sstream>

using namespace std::string_literals;
using namespace std::chrono_literals;

namespace {

const std::string kAnnaPw = "anna's \"old\" pass\\word % \xc3\xbcn\xc3\xaf";
const std::string kReply = "/usr/lib/dovecot/checkpassword-reply";

std::string binary() {
    return mft::program_path("external-auth", "mailferry-checkpassword");
}

mft::DovecotOptions old_options() {
    mft::DovecotOptions o;
    o.label = "old";
    o.users = {{"anna@old.example", kAnnaPw},
               {"bob@old.example", "bob-pw"},
               {"carl@old.example", "carl-pw"}};
    o.pop3 = o.pop3s = o.submission = false;
    o.extra_config = "auth_failure_delay = 0\n";
    return o;
}

struct World {
    mft::TempDir dir{"mf-faces-cp"};
    std::string state = dir.file("state");
    std::string db = state + "/mf.db";
    std::string config = dir.file("mailferry.toml");
    mft::DovecotServer old{old_options()};

    explicit World(const std::string& extra = {}, const std::string& timeout = "5s") {
        REQUIRE(::mkdir(state.c_str(), 0755) == 0);
        ft::EngineConfig c;
        c.db = db;
        c.imaps_port = old.imaps_port();
        c.ca_file = old.ca_file();
        c.timeout = timeout;
        c.extra = extra;
        ft::write_engine_config(config, c);
    }

    // Runs the program the way Dovecot does, with `fd3` (nullopt: fd 3 closed).
    ft::Spawned run(std::optional<std::string> fd3, std::vector<std::string> opts = {},
                    std::map<std::string, std::string> env = {}, bool with_reply = true,
                    bool hold_fd3 = false) const {
        ft::SpawnSpec s;
        s.argv = {binary(), "--config", config};
        s.argv.insert(s.argv.end(), opts.begin(), opts.end());
        if (with_reply) {
            s.argv.push_back(kReply);
        }
        s.env = {{"PATH", "/usr/bin:/bin"},
                 {"SERVICE", "imap"},
                 {"TCPREMOTEIP", "192.0.2.7"},
                 {"PROTO", "TCP"},
                 {"ORIG_UID", std::to_string(::getuid())}};
        for (auto& [k, v] : env) {
            s.env[k] = v;
        }
        ft::add_sanitizer_env(s.env);
        s.fd3 = std::move(fd3);
        s.fd3_hold_open = hold_fd3;
        s.fd4 = true;
        s.timeout = 60s;
        return ft::spawn_wait(s);
    }
};

std::string creds(const std::string& user, const std::string& pass) {
    return user + '\0' + pass + '\0' + '\0';
}

// checkpassword-reply's TAB-separated fields as a map.
std::map<std::string, std::string> reply_fields(const std::string& fd4) {
    std::map<std::string, std::string> m;
    std::istringstream in(fd4);
    std::string f;
    while (std::getline(in, f, '\t')) {
        auto eq = f.find('=');
        if (eq != std::string::npos) {
            m[f.substr(0, eq)] = f.substr(eq + 1);
        }
    }
    return m;
}

} // namespace

TEST_CASE("first login: verified at the old server, provisioned, reply for Dovecot; lookups") {
    World w("[result.extra_fields]\nuserdb_home = \"/var/vmail/{domain}/{local}\"\n"
            "userdb_mail = \"maildir:~/Maildir\"\nnodelay = \"y\"\n");

    auto r = w.run(creds("anna@old.example", kAnnaPw));
    INFO("stderr: ", r.err);
    REQUIRE(r.exit_code == 0);
    auto f = reply_fields(r.fd4);
    CHECK(f["user"] == "anna@new.example");
    CHECK(f["userdb_home"] == "/var/vmail/new.example/anna");
    CHECK(f["userdb_mail"] == "maildir:~/Maildir");
    CHECK(f["nodelay"] == "y");
    CHECK(f.count("userdb_uid") == 1);
    CHECK(r.err.find(kAnnaPw) == std::string::npos);
    CHECK(r.fd4.find(kAnnaPw) == std::string::npos);
    auto a = ft::account_in(w.db, "anna@new.example");
    REQUIRE(a);
    CHECK(a->state == mf::AccountState::provisioned);

    // Second login: answered from the store, the old server is not needed.
    w.old.stop();
    r = w.run(creds("anna", kAnnaPw)); // short name → default domain → renamed
    INFO("stderr: ", r.err);
    CHECK(r.exit_code == 0);
    CHECK(reply_fields(r.fd4)["user"] == "anna@new.example");

    // Lookup mode (Dovecot userdb checkpassword): found → exit 2 with a reply.
    r = w.run(creds("anna@new.example", ""), {}, {{"AUTHORIZED", "1"}});
    CHECK(r.exit_code == 2);
    CHECK(reply_fields(r.fd4)["user"] == "anna@new.example");
    CHECK(reply_fields(r.fd4)["userdb_home"] == "/var/vmail/new.example/anna");

    // Not migrated / refused name → 3 (unknown user), no reply.
    r = w.run(creds("carl@old.example", ""), {}, {{"AUTHORIZED", "1"}});
    CHECK(r.exit_code == 3);
    CHECK(r.fd4.empty());
    CHECK(r.err.find("carl@new.example is not migrated") != std::string::npos);
    r = w.run(creds("bad name@old.example", ""), {}, {{"AUTHORIZED", "1"}});
    CHECK(r.exit_code == 3);

    // Credentials lookups (CRAM-MD5 …) cannot be served: unknown, with a reason.
    r = w.run(creds("anna@new.example", ""), {},
              {{"AUTHORIZED", "1"}, {"CREDENTIALS_LOOKUP", "1"}, {"SCHEME", "CRAM-MD5"}});
    CHECK(r.exit_code == 3);
    CHECK(r.fd4.empty());
    CHECK(r.err.find("credentials lookup for scheme CRAM-MD5 refused") != std::string::npos);

    // Misuse in lookup mode must not be exit 2 (that means "found" to Dovecot).
    r = w.run(std::nullopt, {}, {{"AUTHORIZED", "1"}});
    CHECK(r.exit_code == 111);
    CHECK(r.fd4.empty());
    CHECK(ft::account_count(w.db) == 1);
}

TEST_CASE("wrong password, unknown user, old server down: 1, 1, 111 — nothing created") {
    World w;
    auto r = w.run(creds("bob@old.example", "not-bobs"));
    CHECK(r.exit_code == 1);
    CHECK(r.fd4.empty());
    CHECK(r.err.find("FAIL") != std::string::npos);
    CHECK(r.err.find("not-bobs") == std::string::npos);

    r = w.run(creds("nobody@old.example", "whatever"));
    CHECK(r.exit_code == 1);
    r = w.run(creds("someone@elsewhere.example", "whatever")); // no provider for it
    CHECK(r.exit_code == 1);

    w.old.stop();
    r = w.run(creds("carl@old.example", "carl-pw"));
    CHECK(r.exit_code == 111);
    CHECK(r.fd4.empty());
    CHECK(r.err.find("TEMPFAIL") != std::string::npos);
    CHECK(ft::account_count(w.db) == 0);
}

TEST_CASE("bad fd 3 input and misuse: right exit code, clear message, nothing created") {
    World w;
    struct Case {
        const char* name;
        std::optional<std::string> fd3;
        int exit_code;
        const char* message;
    };
    const std::string long_login = std::string(400, 'a') + "@old.example";
    const std::vector<Case> cases = {
        {"fd 3 not open", std::nullopt, 2, "fd 3 is not open"},
        {"fd 3 empty", ""s, 2, "no data before end of file"},
        {"login without NUL", "bob@old.example"s, 2, "no NUL after the login name"},
        {"truncated password", "bob@old.example\0bob-p"s, 2, "no NUL after the password"},
        {"over 512 bytes", creds("bob@old.example", std::string(600, 'p')), 1,
         "more than 512 bytes"},
        {"513 bytes exactly", creds("bob@old.example", std::string(513 - 18, 'p')), 1,
         "more than 512 bytes"},
        {"over-long login", creds(long_login, "bob-pw"), 1, "login refused"},
        {"non-UTF-8 login", creds("b\xff\xfeob@old.example", "bob-pw"), 1, "login refused"},
        {"empty login", creds("", "bob-pw"), 1, "login refused"},
        {"empty password", creds("bob@old.example", ""), 1, "empty password"},
        {"LF in password", creds("bob@old.example", "bob\npw"), 1, "CR, LF or NUL"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        auto r = w.run(c.fd3);
        INFO("stderr: ", r.err);
        CHECK(r.exit_code == c.exit_code);
        CHECK(r.err.find(c.message) != std::string::npos);
        CHECK(r.fd4.empty());
        CHECK(r.err.find("bob-p") == std::string::npos); // the password, whole or cut
    }

    // fd 3 never reaches EOF: our own read deadline → temporary failure.
    auto r = w.run(creds("bob@old.example", "bob-pw"), {"--read-timeout", "1"}, {}, true, true);
    CHECK(r.exit_code == 111);
    CHECK(r.err.find("did not reach end of file within 1 s") != std::string::npos);

    // No program to run on success, unknown option, bad option value.
    r = w.run(creds("bob@old.example", "bob-pw"), {}, {}, false);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("no program to run on success") != std::string::npos);
    r = w.run(creds("bob@old.example", "bob-pw"), {"--frobnicate"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("option --frobnicate: unknown option") != std::string::npos);
    r = w.run(creds("bob@old.example", "bob-pw"), {"--timeout", "soon"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("option --timeout") != std::string::npos);

    // The reply program cannot be run: temporary, even though the password was right.
    {
        ft::SpawnSpec s;
        s.argv = {binary(), "--config", w.config, "/nonexistent/checkpassword-reply"};
        s.env = {{"PATH", "/usr/bin:/bin"}};
        ft::add_sanitizer_env(s.env);
        s.fd3 = creds("bob@old.example", "bob-pw");
        auto x = ft::spawn_wait(s);
        CHECK(x.exit_code == 111);
        CHECK(x.err.find("exec /nonexistent/checkpassword-reply failed") != std::string::npos);
    }
    // That login was verified and provisioned (the engine's answer was OK); everything
    // before it created nothing.
    CHECK(ft::account_count(w.db) == 1);
    CHECK(ft::account_in(w.db, "bob@new.example"));
}

TEST_CASE("config problems and our own timeout are temporary failures (111)") {
    World w;
    {
        ft::SpawnSpec s;
        s.argv = {binary(), "--config", w.dir.file("missing.toml"), kReply};
        s.env = {{"PATH", "/usr/bin:/bin"}};
        ft::add_sanitizer_env(s.env);
        s.fd3 = creds("bob@old.example", "bob-pw");
        auto r = ft::spawn_wait(s);
        CHECK(r.exit_code == 111);
        CHECK(r.err.find("missing.toml") != std::string::npos);
    }
    // An old server that accepts and never speaks: --timeout ends us before its timeout.
    mft::SilentServer silent;
    ft::EngineConfig c;
    c.db = w.db;
    c.imaps_host = "127.0.0.1";
    c.imaps_port = silent.port();
    c.ca_file = w.old.ca_file();
    c.timeout = "60s";
    ft::write_engine_config(w.config, c);
    auto r = w.run(creds("carl@old.example", "carl-pw"), {"--timeout", "2"});
    CHECK(r.exit_code == 111);
    CHECK(r.err.find("--timeout reached") != std::string::npos);
    CHECK(r.took < 20s);
    CHECK(ft::account_count(w.db) == 0);
}

TEST_CASE("end to end: a NEW Dovecot authenticating through examples/dovecot checkpassword") {
    World w("[result.extra_fields]\nuserdb_quota_rule = \"*:storage=1G\"\n");
    ft::give_to_mfvmail(w.state);

    // The example config, with this build's program and this test's config file.
    std::string conf = mft::read_file(std::string(MF_SOURCE_DIR) +
                                      "/examples/dovecot/auth-mailferry-checkpassword.conf.ext");
    auto replace_all = [&conf](const std::string& from, const std::string& to) {
        REQUIRE(conf.find(from) != std::string::npos);
        for (auto p = conf.find(from); p != std::string::npos; p = conf.find(from, p + to.size())) {
            conf.replace(p, from.size(), to);
        }
    };
    replace_all("/usr/local/bin/mailferry-checkpassword", binary());
    replace_all("/etc/mailferry/mailferry.toml", w.config);

    mft::DovecotOptions n;
    n.label = "new";
    n.pop3 = n.pop3s = n.submission = n.imaps = false;
    n.tls = false;
    n.auth_config = conf;
    // The auth process's address-space limit (256 MB) is inherited by the programs it
    // forks; a sanitizer build needs more than that for its shadow memory.
    n.extra_config = "auth_failure_delay = 0\nservice auth {\n  vsz_limit = 0\n}\n";
    mft::DovecotServer fresh(n);

    {
        ft::ImapClient c(fresh.imap_port());
        auto reply = c.login("anna@old.example", kAnnaPw);
        INFO("new server log:\n", fresh.log_tail());
        REQUIRE(reply.rfind("a1 OK", 0) == 0);
        c.command("a2", "LOGOUT");
    }
    auto a = ft::account_in(w.db, "anna@new.example");
    REQUIRE(a);
    CHECK(a->state == mf::AccountState::provisioned);
    ft::give_to_mfvmail(w.state);

    { // wrong password: NO, nothing created
        ft::ImapClient c(fresh.imap_port());
        auto reply = c.login("bob@old.example", "not-bobs");
        CHECK(reply.rfind("a1 NO [AUTHENTICATIONFAILED]", 0) == 0);
    }
    CHECK_FALSE(ft::account_in(w.db, "bob@new.example"));
    ft::give_to_mfvmail(w.state);

    // userdb lookups through the same program (AUTHORIZED=1).
    std::string out;
    CHECK(fresh.doveadm({"user", "anna@new.example"}, &out) == 0);
    CHECK(out.find("*:storage=1G") != std::string::npos);
    CHECK(fresh.doveadm({"user", "carl@new.example"}, &out) == 67); // EX_NOUSER

    w.old.stop();
    { // migrated: still OK with the old server gone
        ft::ImapClient c(fresh.imap_port());
        auto reply = c.login("anna", kAnnaPw);
        INFO("new server log:\n", fresh.log_tail());
        CHECK(reply.rfind("a1 OK", 0) == 0);
    }
    { // not migrated, old server gone: Dovecot's temporary failure, nothing created
        ft::ImapClient c(fresh.imap_port());
        auto reply = c.login("carl@old.example", "carl-pw");
        INFO("new server log:\n", fresh.log_tail());
        CHECK(reply.rfind("a1 NO [UNAVAILABLE]", 0) == 0);
    }
    CHECK_FALSE(ft::account_in(w.db, "carl@new.example"));
    CHECK(ft::account_count(w.db) == 1);
    // Nothing the new server ran (our code inside it) reported a sanitizer error.
    CHECK(fresh.log_tail(400).find("Sanitizer") == std::string::npos);
}
