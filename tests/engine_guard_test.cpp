// engine_guard_test.cpp — the brute-force guard against a real old Dovecot on loopback:
// guessing from many addresses never locks the right user out (first login at the old
// server, or later against the stored hash), the old server sees at most the account's
// budget of wrong passwords, a store that cannot record the attempt means TEMPFAIL with
// nobody asked, a limit reached is TEMPFAIL (never FAIL), the negative cache still FAILs.
//
// The old server's questions are counted in its own log: one imap-login line per login
// ("Login: user=<…>" or "Disconnected (auth failed…): user=<…>").
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "engine_util.hpp"
#include "mailferry/engine.hpp"
#include "support/dovecot_server.hpp"
#include "support/store_lock.hpp"
#include "support/test_env.hpp"

#include <atomic>
#include <chrono>
#include <sstream>
#include <thread>
#include <vector>

using namespace mf;
using mft::login;
using mft::open_engine;
using namespace std::chrono_literals;

namespace {

const char* kAnnaPw = "anna's right password";
constexpr int kBudget = 10; // guard.max_failures_per_account in the configs below
constexpr int kPerClient = 3;

std::string guard_block(const std::string& extra = "") {
    return "max_failures_per_account_ip = " + std::to_string(kPerClient) +
           "\nmax_failures_per_ip = 20\nmax_failures_per_account = " + std::to_string(kBudget) +
           "\nwindow = \"15m\"\nnegative_cache_ttl = \"5m\"\n" + extra;
}

std::string write_config(const mft::TempDir& dir, const mft::DovecotServer& old,
                         const std::string& guard) {
    return mft::old_server_config(dir, old, "[guard]\n" + guard);
}

mft::DovecotOptions old_options() {
    mft::DovecotOptions o;
    o.label = "guard";
    o.pop3 = o.pop3s = o.submission = false;
    o.users = {{"anna@example.com", kAnnaPw}, {"bob@example.com", "bobpw"}};
    return o;
}

// Logins of `user` the old server has answered so far (its log is written by another
// process: wait until the count stops moving).
int old_server_logins(const mft::DovecotServer& old, const std::string& user) {
    auto count = [&] {
        std::istringstream in(mft::read_file(old.dir() + "/dovecot.log"));
        int n = 0;
        for (std::string line; std::getline(in, line);) {
            if (line.find("imap-login:") != std::string::npos &&
                line.find("user=<" + user + ">") != std::string::npos) {
                ++n;
            }
        }
        return n;
    };
    int last = -1;
    for (int now = count(); now != last; now = count()) {
        last = now;
        std::this_thread::sleep_for(300ms);
    }
    return last;
}

struct AttackResult {
    std::atomic<int> ok{0}, fail{0}, tempfail{0}, done{0};
};

// 10 addresses, 100 different wrong passwords each, one thread per address.
std::vector<std::thread> attack(Engine& e, AttackResult& res) {
    std::vector<std::thread> threads;
    for (int a = 0; a < 10; ++a) {
        threads.emplace_back([&e, &res, a] {
            std::string ip = "198.51.100." + std::to_string(a + 1);
            for (int i = 0; i < 100; ++i) {
                auto r =
                    login(e, "anna", "guess-" + std::to_string(a) + "-" + std::to_string(i), ip);
                auto& bucket = r.status == AuthStatus::ok     ? res.ok
                               : r.status == AuthStatus::fail ? res.fail
                                                              : res.tempfail;
                ++bucket;
                ++res.done;
            }
        });
    }
    return threads;
}

// The right user, from its own address, over and over until the attack is over.
int right_user_logins(Engine& e, AttackResult& res, bool first_expected) {
    int n = 0;
    while (res.done < 1000) {
        auto r = login(e, "anna", kAnnaPw, "203.0.113.50");
        CHECK_MESSAGE(r.status == AuthStatus::ok, r.message);
        CHECK(r.first_login == (first_expected && n == 0));
        ++n;
        if (r.status != AuthStatus::ok) {
            break; // the threads still have to be joined
        }
    }
    return n;
}

} // namespace

TEST_CASE("1000 guesses from 10 addresses: the migrated user gets OK every time, old server "
          "not asked") {
    mft::TempDir dir;
    mft::DovecotServer old(old_options());
    auto engine = open_engine(write_config(dir, old, guard_block()));
    REQUIRE(login(*engine, "anna", kAnnaPw, "203.0.113.50").first_login);
    int asked_before = old_server_logins(old, "anna@example.com");

    AttackResult res;
    auto threads = attack(*engine, res);
    int right = right_user_logins(*engine, res, false);
    for (auto& t : threads) {
        t.join();
    }
    CHECK(right >= 1);
    CHECK(res.ok == 0);
    // Every address gets its kPerClient wrong answers from the stored hash, then TEMPFAIL.
    CHECK(res.fail == 10 * kPerClient);
    CHECK(res.tempfail == 1000 - 10 * kPerClient);
    CHECK(old_server_logins(old, "anna@example.com") == asked_before);
    MESSAGE("right-user logins during the attack: " << right);
}

TEST_CASE("1000 guesses from 10 addresses: the right first login is OK, the old server sees "
          "at most its budget") {
    mft::TempDir dir;
    mft::DovecotServer old(old_options());
    auto engine = open_engine(write_config(dir, old, guard_block()));

    AttackResult res;
    auto threads = attack(*engine, res);
    // The right user comes once the old server's budget for anna is used up.
    auto t0 = std::chrono::steady_clock::now();
    while (*engine->store().count_failures("acct:anna@example.com", 0) < kBudget &&
           std::chrono::steady_clock::now() - t0 < 60s) {
        std::this_thread::sleep_for(5ms);
    }
    int right = right_user_logins(*engine, res, true);
    for (auto& t : threads) {
        t.join();
    }
    CHECK(right >= 1);
    CHECK(res.ok == 0);
    CHECK(res.fail + res.tempfail == 1000);
    // The wrong passwords the old server saw: at most twice the budget (the second half
    // only from clean addresses), plus the one right login.
    int asked = old_server_logins(old, "anna@example.com");
    CHECK(asked <= 2 * kBudget + 1);
    CHECK(asked >= kBudget + 1);
    MESSAGE("old server asked " << asked << " times; right-user logins: " << right);
}

TEST_CASE("store locked during a guess: TEMPFAIL and the old server is not asked") {
    mft::TempDir dir;
    mft::DovecotServer old(old_options());
    auto engine = open_engine(write_config(dir, old, guard_block()));
    REQUIRE(login(*engine, "bob", "bobpw", "203.0.113.9").status == AuthStatus::ok);
    int anna_before = old_server_logins(old, "anna@example.com");
    {
        mft::StoreLockHolder lock(dir.file("mf.db"));
        // First login (the old server would be asked): not without a record.
        auto r = login(*engine, "anna", "wrong-1", "198.51.100.1");
        CHECK_MESSAGE(r.status == AuthStatus::tempfail, r.message);
        CHECK(r.message.find("busy") != std::string::npos);
        // Migrated account (the stored hash would be checked): not without a record either,
        // so a locked store is no oracle for right and wrong passwords.
        auto wrong = login(*engine, "bob", "wrong-2", "198.51.100.1");
        CHECK_MESSAGE(wrong.status == AuthStatus::tempfail, wrong.message);
        auto right = login(*engine, "bob", "bobpw", "198.51.100.1");
        CHECK_MESSAGE(right.status == AuthStatus::tempfail, right.message);
    }
    CHECK(old_server_logins(old, "anna@example.com") == anna_before);
    // Unlocked: the same guesses are checked and answered FAIL.
    CHECK(login(*engine, "anna", "wrong-1", "198.51.100.1").status == AuthStatus::fail);
    CHECK(old_server_logins(old, "anna@example.com") == anna_before + 1);
    CHECK(login(*engine, "bob", "wrong-2", "198.51.100.1").status == AuthStatus::fail);
    CHECK(login(*engine, "bob", "bobpw", "198.51.100.1").status == AuthStatus::ok);
}

TEST_CASE("a guesser from one address: TEMPFAIL after the limit, never FAIL for the right "
          "password") {
    mft::TempDir dir;
    mft::DovecotServer old(old_options());
    auto engine = open_engine(write_config(dir, old, guard_block()));
    const char* ip = "198.51.100.7";

    SUBCASE("first login, at the old server") {
        for (int i = 0; i < kPerClient; ++i) {
            CHECK(login(*engine, "anna", "wrong-" + std::to_string(i), ip).status ==
                  AuthStatus::fail);
        }
        int asked = old_server_logins(old, "anna@example.com");
        auto r = login(*engine, "anna", kAnnaPw, ip);
        CHECK(r.status == AuthStatus::tempfail);
        CHECK(r.message.find("too many failed logins for this account from 198.51.100.7") !=
              std::string::npos);
        CHECK(login(*engine, "anna", "wrong-x", ip).status == AuthStatus::tempfail);
        CHECK(old_server_logins(old, "anna@example.com") == asked); // not asked
        CHECK(login(*engine, "anna", kAnnaPw, "198.51.100.8").status == AuthStatus::ok);
    }
    SUBCASE("migrated, against the stored hash") {
        REQUIRE(login(*engine, "anna", kAnnaPw, "203.0.113.1").status == AuthStatus::ok);
        for (int i = 0; i < kPerClient; ++i) {
            CHECK(login(*engine, "anna", "wrong-" + std::to_string(i), ip).status ==
                  AuthStatus::fail);
        }
        CHECK(login(*engine, "anna", kAnnaPw, ip).status == AuthStatus::tempfail);
        CHECK(login(*engine, "anna", kAnnaPw, "203.0.113.1").status == AuthStatus::ok);
    }
    SUBCASE("no client address: one bucket per account") {
        REQUIRE(login(*engine, "anna", kAnnaPw, "203.0.113.1").status == AuthStatus::ok);
        REQUIRE(login(*engine, "bob", "bobpw", "").status == AuthStatus::ok);
        for (int i = 0; i < kPerClient; ++i) {
            CHECK(login(*engine, "anna", "wrong-" + std::to_string(i), "").status ==
                  AuthStatus::fail);
        }
        CHECK(login(*engine, "anna", kAnnaPw, "").status == AuthStatus::tempfail);
        CHECK(login(*engine, "anna", kAnnaPw, "203.0.113.1").status == AuthStatus::ok);
        CHECK(login(*engine, "bob", "bobpw", "").status == AuthStatus::ok); // other account
    }
    SUBCASE("the right password clears the client's bucket") {
        REQUIRE(login(*engine, "anna", kAnnaPw, "203.0.113.1").status == AuthStatus::ok);
        for (int round = 0; round < 3; ++round) {
            for (int i = 0; i < kPerClient - 1; ++i) {
                CHECK(login(*engine, "anna", "typo-" + std::to_string(i), ip).status ==
                      AuthStatus::fail);
            }
            CHECK(login(*engine, "anna", kAnnaPw, ip).status == AuthStatus::ok);
        }
    }
}

TEST_CASE("per address over all accounts: TEMPFAIL for every account from that address") {
    mft::TempDir dir;
    mft::DovecotServer old(old_options());
    auto engine =
        open_engine(write_config(dir, old,
                                 "max_failures_per_account_ip = 3\nmax_failures_per_ip = 4\n"
                                 "window = \"15m\"\n"));
    const char* ip = "198.51.100.30";
    CHECK(login(*engine, "anna", "w1", ip).status == AuthStatus::fail);
    CHECK(login(*engine, "anna", "w2", ip).status == AuthStatus::fail);
    CHECK(login(*engine, "bob", "w3", ip).status == AuthStatus::fail);
    CHECK(login(*engine, "bob", "w4", ip).status == AuthStatus::fail);
    auto r = login(*engine, "bob", "bobpw", ip);
    CHECK(r.status == AuthStatus::tempfail);
    CHECK(r.message.find("too many failed logins from 198.51.100.30") != std::string::npos);
    CHECK(login(*engine, "bob", "bobpw", "198.51.100.31").status == AuthStatus::ok);
}

TEST_CASE("the negative cache still answers FAIL for the same wrong password") {
    mft::TempDir dir;
    mft::DovecotServer old(old_options());
    auto engine = open_engine(write_config(dir, old, guard_block()));
    CHECK(login(*engine, "anna", "same-wrong", "198.51.100.40").status == AuthStatus::fail);
    int asked = old_server_logins(old, "anna@example.com");
    for (const char* ip : {"198.51.100.40", "198.51.100.41", ""}) {
        auto r = login(*engine, "anna", "same-wrong", ip);
        CHECK(r.status == AuthStatus::fail);
        CHECK(r.message.find("negative cache") != std::string::npos);
    }
    CHECK(old_server_logins(old, "anna@example.com") == asked);
    // Answered from the cache, so not counted: the right password still passes from .40.
    CHECK(login(*engine, "anna", kAnnaPw, "198.51.100.40").status == AuthStatus::ok);
}

TEST_CASE("bad guard settings are config errors") {
    mft::TempDir dir;
    mft::DovecotServer old(old_options());
    for (const char* bad :
         {"max_failures_per_account_ip = 0\n", "max_failures_per_account_ip = -3\n",
          "max_failures_per_account_ip = \"five\"\n"}) {
        auto e = Engine::open(write_config(dir, old, bad));
        REQUIRE_FALSE(e.ok());
        CHECK(e.error().message().find("guard.max_failures_per_account_ip") != std::string::npos);
    }
}
