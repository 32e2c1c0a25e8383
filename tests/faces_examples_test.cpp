// faces_examples_test.cpp — the shipped examples work: the Dovecot snippets pass
// `doveconf -n`, and examples/capi_example.c (built as C against mailferry.h and
// libmailferry.so) decides logins against a real old Dovecot.
//
// The checkpassword snippet also runs live in faces_checkpassword_test, the PAM service
// file in faces_pam_test, the Lua snippet and script in faces_lua_test.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "faces_util.hpp"
#include "support/dovecot_server.hpp"
#include "support/test_env.hpp"

#include <filesystem>

using namespace std::chrono_literals;

namespace {

// doveconf -n on a wrapper that includes `snippet`; returns {exit code, output}.
std::pair<int, std::string> doveconf(const mft::TempDir& dir, const std::string& snippet_path) {
    std::string wrapper = dir.file("wrapper.conf");
    mft::write_file(wrapper, "# minimal base for checking a snippet\nssl = no\n!include " +
                                 snippet_path + "\n");
    auto r = mft::run({"/usr/bin/doveconf", "-n", "-c", wrapper}, {}, 30s);
    return {r.exit_code, r.out + r.err};
}

} // namespace

TEST_CASE("examples/dovecot: every snippet passes doveconf -n") {
    mft::TempDir dir{"mf-faces-ex"};
    std::string root = std::string(MF_SOURCE_DIR) + "/examples/dovecot";
    int checked = 0;
    for (const auto& e : std::filesystem::directory_iterator(root)) {
        // The Dovecot 2.4 snippet cannot pass 2.3's doveconf; it says it is not checked.
        if (e.path().extension() != ".ext" ||
            e.path().filename().string().find("-2.4.") != std::string::npos) {
            continue;
        }
        CAPTURE(e.path().string());
        auto [rc, out] = doveconf(dir, e.path().string());
        INFO(out);
        CHECK(rc == 0);
        CHECK(out.find("passdb {") != std::string::npos);
        ++checked;
    }
    CHECK(checked == 4); // checkpassword, master user, PAM, Lua

    // The check can fail: a snippet with a typo is refused.
    mft::write_file(dir.file("broken.conf.ext"), "passdb {\n  drivr = checkpassword\n}\n");
    auto [rc, out] = doveconf(dir, dir.file("broken.conf.ext"));
    CHECK(rc != 0);
    CHECK(out.find("Unknown setting") != std::string::npos);
}

TEST_CASE("examples/capi_example: OK, FAIL, TEMPFAIL and bad input through the C ABI") {
    mft::TempDir dir{"mf-faces-ex"};
    mft::DovecotOptions o;
    o.label = "old";
    o.users = {{"anna@old.example", "anna pw"}, {"bob@old.example", "bob-pw"}};
    o.pop3 = o.pop3s = o.submission = false;
    o.extra_config = "auth_failure_delay = 0\n";
    mft::DovecotServer old(o);
    ft::EngineConfig c;
    c.db = dir.file("mf.db");
    c.imaps_port = old.imaps_port();
    c.ca_file = old.ca_file();
    c.extra = "[result.extra_fields]\nuserdb_home = \"/var/vmail/{domain}/{local}\"\n";
    std::string config = ft::write_engine_config(dir.file("mailferry.toml"), c);
    std::string prog = mft::program_path("examples", "capi_example");

    auto r = mft::run({prog, config, "imap", "192.0.2.1"}, "anna@old.example\nanna pw\n");
    INFO(r.out, r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("status: OK\n") != std::string::npos);
    CHECK(r.out.find("user: anna@new.example\n") != std::string::npos);
    CHECK(r.out.find("first_login: 1\n") != std::string::npos);
    CHECK(r.out.find("extra: userdb_home=/var/vmail/new.example/anna\n") != std::string::npos);
    CHECK(r.out.find("anna pw") == std::string::npos);

    r = mft::run({prog, config}, "bob@old.example\nwrong\n");
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("status: FAIL\n") != std::string::npos);

    r = mft::run({prog, config}, "anna@old.example\n"); // no password line
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("expected the password") != std::string::npos);
    r = mft::run({prog, dir.file("missing.toml")}, "anna@old.example\nanna pw\n");
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("missing.toml") != std::string::npos);
    r = mft::run({prog}, "");
    CHECK(r.exit_code == 2);

    old.stop();
    r = mft::run({prog, config}, "anna\nanna pw\n"); // migrated: answered locally
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("first_login: 0\n") != std::string::npos);
    r = mft::run({prog, config}, "bob@old.example\nbob-pw\n");
    CHECK(r.exit_code == 75);
    CHECK(r.out.find("status: TEMPFAIL\n") != std::string::npos);
    CHECK(ft::account_count(c.db) == 1);
}
