// engine_case_test.cpp — one person, one account, whatever the letter case: logins against
// a real old Dovecot (which folds user names, auth_username_format = %Lu, unless told
// otherwise), provisioned into a Dovecot passwd-file so the accounts made can be counted.
//
// Covers: many case variants of one user → one store row and one passwd-file line, also
// when the first logins race; a case-sensitive old server keeps spellings apart; an
// account stored under another spelling by an older version is found (oldest first when
// there are several) and keeps its name; an internationalised domain folds to xn--; the
// guard's budget is the account's, not the spelling's.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "engine_util.hpp"
#include "mailferry/engine.hpp"
#include "mailferry/password.hpp"
#include "support/dovecot_server.hpp"
#include "support/test_env.hpp"

#include <set>
#include <sstream>
#include <thread>

using namespace mf;
using mft::login;
using mft::open_engine;

namespace {

const char* kPw = "anna's pass wörd";

std::string write_config(const mft::TempDir& dir, const mft::DovecotServer& old,
                         const std::string& provider_extra, const std::string& domain,
                         const std::string& guard = "") {
    std::string text = "[store]\npath = \"" + dir.file("mf.db") +
                       "\"\n\n[identity]\ndefault_domain = \"" + domain +
                       "\"\n\n[[provider]]\nname = \"old\"\ndomains = [\"" + domain +
                       "\"]\nhost = \"localhost\"\nport = " + std::to_string(old.imaps_port()) +
                       "\ntls = \"implicit\"\nca_file = \"" + old.ca_file() +
                       "\"\ntimeout = \"5s\"\n" + provider_extra +
                       "\n[hash]\nscheme = \"argon2id\"\nargon2_ops = 1\nargon2_memory_kib = 8192\n"
                       "\n[provisioner]\ntype = \"dovecot-passwd-file\"\npasswd_file = \"" +
                       dir.file("users") + "\"\n\n[guard]\n" + guard + "\n";
    auto path = dir.file("mailferry.toml");
    mft::write_file(path, text, 0644);
    return path;
}

// Lines of the provisioner's passwd-file: one per account made on the new server.
std::vector<std::string> passwd_users(const mft::TempDir& dir) {
    std::vector<std::string> out;
    std::istringstream in(mft::read_file(dir.file("users")));
    for (std::string line; std::getline(in, line);) {
        if (!line.empty()) {
            out.push_back(line.substr(0, line.find(':')));
        }
    }
    return out;
}

// `n` different spellings of `address` (bit i of k upper-cases letter i).
std::vector<std::string> variants(const std::string& address, std::size_t n) {
    std::vector<std::string> out;
    for (std::size_t k = 0; out.size() < n; ++k) {
        std::string v = address;
        std::size_t bit = 0;
        for (char& c : v) {
            if (c >= 'a' && c <= 'z') {
                if ((k >> bit) & 1U) {
                    c = static_cast<char>(c - 'a' + 'A');
                }
                ++bit;
            }
        }
        out.push_back(v);
    }
    return out;
}

mft::DovecotOptions users(std::vector<mft::TestUser> list) {
    mft::DovecotOptions o;
    o.label = "old";
    o.users = std::move(list);
    return o;
}

AuditContext by_test() {
    return AuditContext{"test", "", "made by an older version"};
}

Account stored(const std::string& name, UnixTime created,
               AccountState state = AccountState::provisioned) {
    Secret pw(kPw);
    auto h = make_hash(pw, HashConfig{HashScheme::argon2id, 1, 8192});
    REQUIRE(h.ok());
    Account a;
    a.name = name;
    a.provider = "old";
    a.state = state;
    a.hash = *h;
    a.created = created;
    return a;
}

} // namespace

TEST_CASE("50 case variants of one user land in ONE account, also when first logins race") {
    mft::TempDir dir;
    mft::DovecotServer old(users({{"anna@example.com", kPw}}));
    auto engine = open_engine(write_config(dir, old, "", "example.com"));

    auto all = variants("anna@example.com", 50);
    REQUIRE(std::set<std::string>(all.begin(), all.end()).size() == 50);
    all.push_back("ANNA"); // a short name too
    // The first eight race each other: all are first logins of one account.
    std::vector<AuthResult> raced(8);
    {
        std::vector<std::thread> threads;
        for (std::size_t i = 0; i < raced.size(); ++i) {
            threads.emplace_back([&, i] { raced[i] = login(*engine, all[i], kPw); });
        }
        for (auto& t : threads) {
            t.join();
        }
    }
    int first = 0;
    for (const auto& r : raced) {
        CHECK_MESSAGE(r.status == AuthStatus::ok, r.message);
        CHECK(r.user == "anna@example.com");
        first += r.first_login ? 1 : 0;
    }
    CHECK(first == 1);
    for (std::size_t i = raced.size(); i < all.size(); ++i) {
        CAPTURE(all[i]);
        auto r = login(*engine, all[i], kPw);
        CHECK_MESSAGE(r.status == AuthStatus::ok, r.message);
        CHECK(r.user == "anna@example.com");
        CHECK_FALSE(r.first_login);
    }
    auto rows = engine->store().list_accounts();
    REQUIRE(rows.ok());
    REQUIRE(rows->size() == 1);
    CHECK(rows->front().name == "anna@example.com");
    CHECK(passwd_users(dir) == std::vector<std::string>{"anna@example.com"});
    auto audit = engine->store().audit_log("anna@example.com");
    REQUIRE(audit.ok());
    CHECK(audit->size() == 1); // provisioned once
}

TEST_CASE("a case-sensitive old server keeps Anna and anna apart") {
    mft::TempDir dir;
    mft::DovecotOptions o;
    o.label = "old";
    o.users = {{"anna@example.com", "lower pw"}, {"Anna@example.com", "upper pw"}};
    o.extra_config = "auth_username_format = %u\n";
    mft::DovecotServer old(o);
    auto engine = open_engine(write_config(dir, old, "case_insensitive = false\n", "example.com"));

    auto lower = login(*engine, "anna@example.com", "lower pw");
    REQUIRE_MESSAGE(lower.status == AuthStatus::ok, lower.message);
    CHECK(lower.user == "anna@example.com");
    auto upper = login(*engine, "Anna@EXAMPLE.com", "upper pw");
    REQUIRE_MESSAGE(upper.status == AuthStatus::ok, upper.message);
    CHECK(upper.user == "Anna@example.com"); // the domain still folds
    CHECK(upper.first_login);
    // Each spelling has its own password: no account answers for the other.
    CHECK(login(*engine, "Anna@example.com", "lower pw").status == AuthStatus::fail);
    CHECK(engine->store().list_accounts()->size() == 2);
    CHECK(passwd_users(dir).size() == 2);
}

TEST_CASE("an account stored under another spelling by an older version is found, and keeps its "
          "name") {
    mft::TempDir dir;
    mft::DovecotServer old(users({{"anna@example.com", kPw}, {"bob@example.com", "bob pw"}}));
    auto path = write_config(dir, old, "", "example.com");
    {
        auto engine = open_engine(path);
        auto& st = engine->store();
        // Made by versions that kept the spelling typed: two rows for Anna (the older one
        // wins), one imported (verified) row for Bob.
        REQUIRE(st.create_account(stored("Anna@example.com", 1000), by_test()).ok());
        REQUIRE(st.create_account(stored("ANNA@example.com", 2000), by_test()).ok());
        REQUIRE(
            st.create_account(stored("Bob@example.com", 1000, AccountState::verified), by_test())
                .ok());
    }
    auto engine = open_engine(path);
    old.stop(); // Anna's stored hash answers; nothing may need the old server
    for (const char* v : {"anna@example.com", "aNNa", "ANNA@example.com", "Anna@Example.COM"}) {
        CAPTURE(v);
        auto r = login(*engine, v, kPw);
        CHECK_MESSAGE(r.status == AuthStatus::ok, r.message);
        // The canonical name, anna@example.com, is not stored: every spelling gets the
        // oldest row spelled otherwise (a warning names the others).
        CHECK(r.user == "Anna@example.com");
        CHECK_FALSE(r.first_login);
    }
    CHECK(login(*engine, "anna", "wrong").status == AuthStatus::fail);

    // Bob's imported row under "Bob@": his first login provisions THAT account.
    auto bob = login(*engine, "BOB@example.com", kPw); // the imported hash was made from kPw
    REQUIRE_MESSAGE(bob.status == AuthStatus::ok, bob.message);
    CHECK(bob.user == "Bob@example.com");
    CHECK(bob.first_login);
    auto row = engine->store().find_account("Bob@example.com");
    REQUIRE(row.ok());
    REQUIRE(row->has_value());
    CHECK((**row).state == AccountState::provisioned);
    CHECK(engine->store().list_accounts()->size() == 3); // nothing new
    CHECK(passwd_users(dir) == std::vector<std::string>{"Bob@example.com"});
}

TEST_CASE("an internationalised domain folds to its xn-- form: one account") {
    mft::TempDir dir;
    // The old server knows the domain in its ASCII form (Dovecot's auth_username_chars
    // has no room for ü), as the provider lists it; users type either form.
    mft::DovecotServer old(users({{"anna@xn--bcher-kva.example", kPw}}));
    auto engine = open_engine(write_config(dir, old, "", "xn--bcher-kva.example"));
    for (const char* v : {"anna@bücher.example", "Anna@BÜCHER.example",
                          "anna@xn--bcher-kva.example", "ANNA@XN--BCHER-KVA.EXAMPLE", "anna"}) {
        CAPTURE(v);
        auto r = login(*engine, v, kPw);
        CHECK_MESSAGE(r.status == AuthStatus::ok, r.message);
        CHECK(r.user == "anna@xn--bcher-kva.example");
    }
    CHECK(engine->store().list_accounts()->size() == 1);
    CHECK(passwd_users(dir) == std::vector<std::string>{"anna@xn--bcher-kva.example"});
    auto bad = login(*engine, "anna@a\u200Db.example", kPw);
    CHECK(bad.status == AuthStatus::fail);
    CHECK(bad.message.find("not a valid internationalised domain name") != std::string::npos);
}

TEST_CASE("the guard's budget is the account's: a lockout of Anna applies to aNna") {
    mft::TempDir dir;
    mft::DovecotServer old(users({{"anna@example.com", kPw}}));
    auto engine = open_engine(write_config(
        dir, old, "", "example.com",
        "max_failures_per_account_ip = 3\nmax_failures_per_account = 3\nwindow = \"15m\"\n"
        "negative_cache_ttl = \"0s\"\n"));
    for (int i = 0; i < 3; ++i) {
        auto r = login(*engine, "Anna", "wrong " + std::to_string(i));
        REQUIRE_MESSAGE(r.status == AuthStatus::fail, r.message);
    }
    old.stop(); // a refused attempt must not need the old server
    for (const char* v : {"aNna", "anNa@example.com", "ANNA@EXAMPLE.COM", "anna"}) {
        CAPTURE(v);
        auto r = login(*engine, v, "wrong again");
        CHECK(r.status != AuthStatus::ok);
        CHECK_MESSAGE(r.message.find("too many failed logins") != std::string::npos, r.message);
    }
}
