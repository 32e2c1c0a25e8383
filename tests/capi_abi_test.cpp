// capi_abi_test.cpp — libmailferry.so through its C ABI only: versioning, bad arguments,
// config errors, a real first login at a loopback Dovecot, results, threads.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/mailferry.h"
#include "support/dovecot_server.hpp"
#include "support/test_env.hpp"

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string config_for(const mft::TempDir& dir, const mft::DovecotServer& old) {
    std::string text = "[store]\npath = \"" + dir.file("mf.db") +
                       "\"\n"
                       "[identity]\ndefault_domain = \"example.com\"\n"
                       "[[provider]]\nname = \"old\"\ndomains = [\"example.com\"]\n"
                       "protocol = \"imap\"\nhost = \"localhost\"\nport = " +
                       std::to_string(old.imaps_port()) + "\ntls = \"implicit\"\nca_file = \"" +
                       old.ca_file() +
                       "\"\ntimeout = \"5s\"\nmax_concurrent = 20\n"
                       "[hash]\nargon2_ops = 1\nargon2_memory_kib = 8192\n"
                       "[provisioner]\ntype = \"builtin\"\n"
                       "[result.extra_fields]\nuserdb_home = \"/var/vmail/{domain}/{local}\"\n";
    mft::write_file(dir.file("mailferry.toml"), text);
    return dir.file("mailferry.toml");
}

} // namespace

TEST_CASE("ABI version and names") {
    CHECK(mf_abi_version() == MF_ABI_VERSION);
    CHECK(std::string(mf_version()).size() >= 5);
    CHECK(std::string(mf_auth_status_name(MF_AUTH_OK)) == "OK");
    CHECK(std::string(mf_auth_status_name(MF_AUTH_FAIL)) == "FAIL");
    CHECK(std::string(mf_auth_status_name(MF_AUTH_TEMPFAIL)) == "TEMPFAIL");
    CHECK(std::string(mf_auth_status_name(static_cast<mf_auth_status>(42))) == "UNKNOWN");
}

TEST_CASE("bad arguments never crash and never answer OK") {
    char err[256] = "untouched";
    CHECK(mf_open(nullptr, nullptr, err, sizeof err) == MF_ERR_USAGE);
    CHECK(std::strlen(err) > 0);

    mf_handle* h = reinterpret_cast<mf_handle*>(0x1);
    CHECK(mf_open("/nonexistent/mailferry.toml", &h, err, sizeof err) == MF_ERR_CONFIG);
    CHECK(h == nullptr);
    CHECK(std::string(err).find("/nonexistent/mailferry.toml") != std::string::npos);

    mft::TempDir dir;
    mft::write_file(dir.file("bad.toml"), "[store]\npath = 42\n");
    CHECK(mf_open(dir.file("bad.toml").c_str(), &h, err, sizeof err) == MF_ERR_CONFIG);
    CHECK(std::string(err).find("bad.toml") != std::string::npos);

    char tiny[4];
    CHECK(mf_open("/nonexistent/x.toml", &h, tiny, sizeof tiny) == MF_ERR_CONFIG);
    CHECK(std::strlen(tiny) == 3);

    mf_result r;
    mf_result_init(&r);
    CHECK(r.size == sizeof(mf_result));
    CHECK(mf_authenticate(nullptr, "a", "b", 1, nullptr, nullptr, &r) == MF_AUTH_TEMPFAIL);
    CHECK(r.status == MF_AUTH_TEMPFAIL);
    CHECK(r.message != nullptr);
    mf_result_free(&r);
    CHECK(mf_lookup_user(nullptr, "a", &r) == MF_AUTH_TEMPFAIL);
    CHECK(r.status == MF_AUTH_TEMPFAIL);
    CHECK(std::string(r.message).find("NULL") != std::string::npos);
    mf_result_free(&r);
    mf_result_free(&r); // twice is fine
    mf_result_free(nullptr);
    mf_close(nullptr);
}

TEST_CASE("a first login through the C ABI, then a local one, from many threads") {
    mft::DovecotOptions o;
    o.label = "capi-old";
    for (int i = 0; i < 16; ++i) {
        o.users.push_back({"t" + std::to_string(i) + "@example.com", "pw " + std::to_string(i)});
    }
    mft::DovecotServer old(o);
    mft::TempDir dir;
    auto config = config_for(dir, old);
    char err[512];
    mf_handle* h = nullptr;
    REQUIRE_MESSAGE(mf_open(config.c_str(), &h, err, sizeof err) == MF_OK, err);

    mf_result r;
    mf_result_init(&r);
    const std::string pw = "pw 0";
    CHECK(mf_authenticate(h, "t0", pw.data(), pw.size(), "imap", "192.0.2.1", &r) == MF_AUTH_OK);
    REQUIRE(r.user != nullptr);
    CHECK(std::string(r.user) == "t0@example.com");
    CHECK(r.first_login == 1);
    REQUIRE(r.extra_count == 1);
    CHECK(std::string(r.extra[0].name) == "userdb_home");
    CHECK(std::string(r.extra[0].value) == "/var/vmail/example.com/t0");
    mf_result_free(&r);

    CHECK(mf_authenticate(h, "t0", "wrong", 5, "imap", nullptr, &r) == MF_AUTH_FAIL);
    mf_result_free(&r);
    // The password is pointer + length: a NUL inside is a FAIL, not a truncation.
    const char with_nul[] = {'p', 'w', ' ', '0', '\0', 'x'};
    CHECK(mf_authenticate(h, "t0", with_nul, sizeof with_nul, "imap", nullptr, nullptr) ==
          MF_AUTH_FAIL);

    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int i = 1; i < 16; ++i) {
        threads.emplace_back([&, i] {
            std::string p = "pw " + std::to_string(i);
            std::string u = "t" + std::to_string(i);
            for (int round = 0; round < 2; ++round) {
                mf_result rr;
                mf_result_init(&rr);
                if (mf_authenticate(h, u.c_str(), p.data(), p.size(), "imap", nullptr, &rr) ==
                    MF_AUTH_OK) {
                    ok++;
                }
                mf_result_free(&rr);
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    CHECK(ok == 30);
    mf_close(h);
}

TEST_CASE("mf_lookup_user: a migrated account with its fields, FAIL for others, TEMPFAIL") {
    mft::DovecotOptions o;
    o.label = "capi-lookup";
    o.users = {{"anna@example.com", "anna pw"}, {"bob@example.com", "bob pw"}};
    mft::DovecotServer old(o);
    mft::TempDir dir;
    auto config = config_for(dir, old);
    char err[512];
    mf_handle* h = nullptr;
    REQUIRE_MESSAGE(mf_open(config.c_str(), &h, err, sizeof err) == MF_OK, err);
    mf_result r;
    mf_result_init(&r);

    // Before anybody logged in nobody is known, and the lookup asks no old server.
    CHECK(mf_lookup_user(h, "anna", &r) == MF_AUTH_FAIL);
    REQUIRE(r.message != nullptr);
    CHECK(std::string(r.message).find("not migrated") != std::string::npos);
    CHECK(r.extra_count == 0);
    const std::string pw = "anna pw";
    REQUIRE(mf_authenticate(h, "anna", pw.data(), pw.size(), "imap", nullptr, nullptr) ==
            MF_AUTH_OK);

    old.stop();
    for (const char* login : {"anna", "anna@example.com", "ANNA@Example.COM"}) {
        CAPTURE(login);
        CHECK(mf_lookup_user(h, login, &r) == MF_AUTH_OK);
        CHECK(r.status == MF_AUTH_OK);
        REQUIRE(r.user != nullptr);
        CHECK(std::string(r.user) == "anna@example.com");
        CHECK(r.first_login == 0);
        REQUIRE(r.extra_count == 1);
        CHECK(std::string(r.extra[0].name) == "userdb_home");
        CHECK(std::string(r.extra[0].value) == "/var/vmail/example.com/anna");
        mf_result_free(&r);
    }
    CHECK(mf_lookup_user(h, "bob", &r) == MF_AUTH_FAIL); // exists only at the old server
    CHECK(mf_lookup_user(h, "bad name", &r) == MF_AUTH_FAIL);
    CHECK(mf_lookup_user(h, "x@elsewhere.example", nullptr) == MF_AUTH_FAIL);
    mf_result_free(&r);
    // A store that cannot answer (here: its accounts table gone, as after a failed
    // migration by hand): TEMPFAIL, never FAIL; and OK again once it is back.
    auto sql = [&dir](const std::string& statement) {
        auto r = mft::run({"sqlite3", dir.file("mf.db"), statement});
        REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    };
    sql("ALTER TABLE accounts RENAME TO accounts_away");
    CHECK(mf_lookup_user(h, "anna", &r) == MF_AUTH_TEMPFAIL);
    CHECK(r.status == MF_AUTH_TEMPFAIL);
    CHECK(std::string(r.message).find("accounts") != std::string::npos);
    mf_result_free(&r);
    sql("ALTER TABLE accounts_away RENAME TO accounts");
    CHECK(mf_lookup_user(h, "anna", nullptr) == MF_AUTH_OK);
    mf_close(h);
}
