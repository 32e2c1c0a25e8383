// engine_login_cache_test.cpp — the verified-login cache ([login_cache]) of a long-lived
// engine, with a real old Dovecot for the first logins: a repeated right password is
// answered without the hash ("login cache" in the answer), and never where it must not
// be — after a wrong password, after a password change in the store, with ttl 0, after
// the ttl, past max_entries, for a held account, or for a client the guard refuses.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "engine_util.hpp"
#include "mailferry/password.hpp"
#include "mailferry/store.hpp"
#include "support/dovecot_server.hpp"
#include "support/test_env.hpp"

#include <chrono>
#include <thread>

using namespace mf;
using mft::login;
using mft::open_engine;
using namespace std::chrono_literals;

namespace {

const char* kAnnaPw = "anna's cache password";
const char* kBobPw = "bob's cache password";

mft::DovecotOptions old_options() {
    mft::DovecotOptions o;
    o.label = "lcache";
    o.pop3 = o.pop3s = o.submission = false;
    o.users = {{"anna@example.com", kAnnaPw}, {"bob@example.com", kBobPw}};
    return o;
}

bool cached(const AuthResult& r) {
    return r.status == AuthStatus::ok && r.message.find("login cache") != std::string::npos;
}

// A first login (at the old server) and one from the store, so the next can be cached.
void migrate(Engine& e, const char* user, const char* pw) {
    auto first = login(e, user, pw);
    REQUIRE_MESSAGE(first.status == AuthStatus::ok, first.message);
    REQUIRE(first.first_login);
    auto second = login(e, user, pw);
    REQUIRE_MESSAGE(second.status == AuthStatus::ok, second.message);
    CHECK_FALSE(cached(second));
}

} // namespace

TEST_CASE("a repeated right password is answered from the cache, a wrong one drops it") {
    mft::DovecotServer old(old_options());
    mft::TempDir dir("mf-lcache");
    auto e = open_engine(mft::old_server_config(dir, old, ""));
    migrate(*e, "anna", kAnnaPw);
    auto third = login(*e, "anna", kAnnaPw);
    CHECK_MESSAGE(cached(third), third.message);
    CHECK(third.user == "anna@example.com");

    // A wrong password is still checked (no entry for it) and forgets anna's entries.
    auto wrong = login(*e, "anna", "not anna's password");
    CHECK(wrong.status == AuthStatus::fail);
    auto after = login(*e, "anna", kAnnaPw);
    CHECK(after.status == AuthStatus::ok);
    CHECK_FALSE(cached(after));
    CHECK(cached(login(*e, "anna", kAnnaPw)));
}

TEST_CASE("a password changed in the store is not answered from the cache") {
    mft::DovecotServer old(old_options());
    mft::TempDir dir("mf-lcache");
    auto e = open_engine(mft::old_server_config(dir, old, ""));
    migrate(*e, "anna", kAnnaPw);
    REQUIRE(cached(login(*e, "anna", kAnnaPw)));

    // Another process (an admin's import, another engine) sets a new password.
    HashConfig hc;
    hc.scheme = HashScheme::argon2id;
    hc.argon2_ops = 1;
    hc.argon2_memory_kib = 8192;
    auto h = make_hash(Secret(std::string("the new password")), hc);
    REQUIRE(h);
    auto store = open_sqlite_store(dir.file("mf.db"), Millis(5000));
    REQUIRE(store);
    REQUIRE((*store)->set_hash("anna@example.com", *h, AuditContext{"test", "", "new password"}));

    CHECK(login(*e, "anna", kAnnaPw).status == AuthStatus::fail);
    auto now = login(*e, "anna", "the new password");
    CHECK(now.status == AuthStatus::ok);
    CHECK_FALSE(cached(now));
}

TEST_CASE("ttl 0 keeps nothing; an entry older than the ttl is checked again") {
    mft::DovecotServer old(old_options());
    SUBCASE("ttl 0") {
        mft::TempDir dir("mf-lcache");
        auto e = open_engine(mft::old_server_config(dir, old, "[login_cache]\nttl = \"0\"\n"));
        migrate(*e, "anna", kAnnaPw);
        for (int i = 0; i < 3; ++i) {
            auto r = login(*e, "anna", kAnnaPw);
            CHECK(r.status == AuthStatus::ok);
            CHECK_FALSE(cached(r));
        }
    }
    SUBCASE("ttl 300ms") {
        mft::TempDir dir("mf-lcache");
        auto e = open_engine(mft::old_server_config(dir, old, "[login_cache]\nttl = \"300ms\"\n"));
        migrate(*e, "anna", kAnnaPw);
        std::this_thread::sleep_for(400ms);
        auto late = login(*e, "anna", kAnnaPw);
        CHECK(late.status == AuthStatus::ok);
        CHECK_FALSE(cached(late));
    }
}

TEST_CASE("max_entries bounds the cache: the oldest entry goes") {
    mft::DovecotServer old(old_options());
    mft::TempDir dir("mf-lcache");
    auto e = open_engine(mft::old_server_config(dir, old, "[login_cache]\nmax_entries = 1\n"));
    migrate(*e, "anna", kAnnaPw);
    REQUIRE(cached(login(*e, "anna", kAnnaPw)));
    migrate(*e, "bob", kBobPw); // bob's entry pushes anna's out
    CHECK(cached(login(*e, "bob", kBobPw)));
    auto anna = login(*e, "anna", kAnnaPw);
    CHECK(anna.status == AuthStatus::ok);
    CHECK_FALSE(cached(anna));
}

TEST_CASE("a held account and a client the guard refuses get no cached OK") {
    mft::DovecotServer old(old_options());
    mft::TempDir dir("mf-lcache");
    auto e = open_engine(mft::old_server_config(
        dir, old, "[guard]\nmax_failures_per_account_ip = 2\nmax_failures_per_ip = 50\n"));
    migrate(*e, "anna", kAnnaPw);
    REQUIRE(cached(login(*e, "anna", kAnnaPw)));

    // Two wrong passwords from one address: that address is refused for anna, even with
    // the password the cache knows.
    const std::string ip = "198.51.100.7";
    CHECK(login(*e, "anna", "guess 1", ip).status == AuthStatus::fail);
    CHECK(login(*e, "anna", "guess 2", ip).status == AuthStatus::fail);
    CHECK(login(*e, "anna", kAnnaPw, ip).status == AuthStatus::tempfail);
    auto elsewhere = login(*e, "anna", kAnnaPw); // another address: checked, then cached
    CHECK(elsewhere.status == AuthStatus::ok);
    REQUIRE(cached(login(*e, "anna", kAnnaPw)));

    // A cut-over holds the account: TEMPFAIL, and the entry is gone.
    auto store = open_sqlite_store(dir.file("mf.db"), Millis(5000));
    REQUIRE(store);
    REQUIRE((*store)->set_state("anna@example.com", AccountState::held,
                                AuditContext{"test", "", "cut-over"}));
    CHECK(login(*e, "anna", kAnnaPw).status == AuthStatus::tempfail);
    REQUIRE((*store)->set_state("anna@example.com", AccountState::cutover,
                                AuditContext{"test", "", "cut over"}));
    auto back = login(*e, "anna", kAnnaPw);
    CHECK(back.status == AuthStatus::ok);
    CHECK_FALSE(cached(back));
}
