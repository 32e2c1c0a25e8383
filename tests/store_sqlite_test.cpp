// store_sqlite_test.cpp — the SQLite store: accounts, states, audit, guard, schema,
// and what happens when another process holds the database.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/store.hpp"
#include "support/test_env.hpp"

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace mf;

namespace {

std::unique_ptr<Store> open_store(const std::string& path, Millis busy = Millis(2000)) {
    auto s = open_sqlite_store(path, busy);
    REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message()));
    return std::move(*s);
}

Account account(const std::string& name, AccountState st = AccountState::provisioned) {
    Account a;
    a.name = name;
    a.provider = "old";
    a.state = st;
    a.hash = "{SHA512-CRYPT}$6$x$y";
    return a;
}

} // namespace

TEST_CASE("a new store is created group-writable and at the current schema") {
    mft::TempDir dir;
    auto path = dir.file("mf.db");
    auto store = open_store(path);
    CHECK(store->schema_version() >= 1);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0660);
    auto none = store->find_account("nobody@example.com");
    REQUIRE(none.ok());
    CHECK_FALSE(none->has_value());
}

TEST_CASE("accounts: create, find, duplicate, state changes with audit rows") {
    mft::TempDir dir;
    auto store = open_store(dir.file("mf.db"));
    AuditContext ctx{"test", "192.0.2.7", "first login"};
    REQUIRE(store->create_account(account("anna@example.com"), ctx).ok());

    auto dup = store->create_account(account("anna@example.com"), ctx);
    REQUIRE_FALSE(dup.ok());
    CHECK(dup.error().detail.find("exists") != std::string::npos);

    auto found = store->find_account("anna@example.com");
    REQUIRE(found.ok());
    REQUIRE(found->has_value());
    CHECK((**found).state == AccountState::provisioned);
    CHECK((**found).provider == "old");
    CHECK((**found).created > 0);

    REQUIRE(store->set_state("anna@example.com", AccountState::copying, ctx).ok());
    auto wrong =
        store->set_state("anna@example.com", AccountState::synced, ctx, AccountState::provisioned);
    REQUIRE_FALSE(wrong.ok());
    CHECK(wrong.error().detail.find("state is copying") != std::string::npos);
    REQUIRE(store->set_state("anna@example.com", AccountState::synced, ctx, AccountState::copying)
                .ok());
    REQUIRE_FALSE(store->set_state("ghost@example.com", AccountState::synced, ctx).ok());

    auto log = store->audit_log("anna@example.com");
    REQUIRE(log.ok());
    REQUIRE(log->size() == 3);
    CHECK((*log)[0].from_state == "unknown");
    CHECK((*log)[0].to_state == "provisioned");
    CHECK((*log)[0].client_ip == "192.0.2.7");
    CHECK((*log)[2].from_state == "copying");
    CHECK((*log)[2].to_state == "synced");

    REQUIRE(store->set_hash("anna@example.com", "{ARGON2ID}$argon2id$v=19$x", ctx).ok());
    CHECK(store->find_account("anna@example.com")->value().hash == "{ARGON2ID}$argon2id$v=19$x");
    CHECK(store->audit_log("anna@example.com")->size() == 4);

    REQUIRE(store->create_account(account("bob@example.com", AccountState::held), ctx).ok());
    auto counts = store->count_by_state();
    REQUIRE(counts.ok());
    CHECK((*counts)[AccountState::synced] == 1);
    CHECK((*counts)[AccountState::held] == 1);
    CHECK(store->list_accounts()->size() == 2);
}

TEST_CASE("guard tables: failures in a window, negative cache with expiry, pruning") {
    mft::TempDir dir;
    auto store = open_store(dir.file("mf.db"));
    UnixTime t = 1'000'000;
    for (int i = 0; i < 5; ++i) {
        REQUIRE(store->record_failure("acct:a@x", t + i).ok());
    }
    CHECK(*store->count_failures("acct:a@x", t) == 5);
    CHECK(*store->count_failures("acct:a@x", t + 3) == 2);
    CHECK(*store->count_failures("ip:192.0.2.1", t) == 0);
    REQUIRE(store->clear_failures("acct:a@x").ok());
    CHECK(*store->count_failures("acct:a@x", 0) == 0);

    REQUIRE(store->add_negative("a@x", "d1", t + 60).ok());
    CHECK(*store->has_negative("a@x", "d1", t));
    CHECK_FALSE(*store->has_negative("a@x", "d1", t + 60));
    CHECK_FALSE(*store->has_negative("a@x", "d2", t));
    REQUIRE(store->record_failure("acct:b@x", t).ok());
    REQUIRE(store->prune_guard(t + 61, t + 1).ok());
    CHECK(*store->count_failures("acct:b@x", 0) == 0);
    CHECK_FALSE(*store->has_negative("a@x", "d1", 0));
}

TEST_CASE("reopening keeps data; a newer schema is refused with advice") {
    mft::TempDir dir;
    auto path = dir.file("mf.db");
    {
        auto store = open_store(path);
        REQUIRE(store->create_account(account("c@example.com"), {}).ok());
    }
    {
        auto store = open_store(path);
        CHECK(store->find_account("c@example.com")->has_value());
    }
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "PRAGMA user_version = 999", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
    auto newer = open_sqlite_store(path, Millis(500));
    REQUIRE_FALSE(newer.ok());
    CHECK(newer.error().detail.find("newer") != std::string::npos);
}

TEST_CASE("a store locked by another process: temporary error after the busy timeout, no change") {
    mft::TempDir dir;
    auto path = dir.file("mf.db");
    auto store = open_store(path, Millis(300));
    REQUIRE(store->create_account(account("d@example.com"), {}).ok());

    sqlite3* other = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &other) == SQLITE_OK);
    REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);

    auto r = store->set_state("d@example.com", AccountState::copying, {"test", "", ""});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().temporary());
    CHECK(r.error().detail.find("busy") != std::string::npos);
    auto c = store->create_account(account("e@example.com"), {});
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().temporary());

    REQUIRE(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(other);
    CHECK(store->find_account("d@example.com")->value().state == AccountState::provisioned);
    CHECK_FALSE(store->find_account("e@example.com")->has_value());
    CHECK(store->audit_log("d@example.com")->size() == 1);
}

TEST_CASE("an unreadable store path is a clear error") {
    auto r = open_sqlite_store("/nonexistent-dir/mf.db", Millis(100));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("/nonexistent-dir/mf.db") != std::string::npos);
}

TEST_CASE("20 processes create the same account at once: exactly one succeeds") {
    mft::TempDir dir;
    auto path = dir.file("mf.db");
    { open_store(path); }
    std::vector<pid_t> kids;
    for (int i = 0; i < 20; ++i) {
        pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            auto s = open_sqlite_store(path, Millis(10000));
            if (!s) {
                ::_exit(3);
            }
            auto r = (*s)->create_account(account("race@example.com"), {"test", "", ""});
            ::_exit(r ? 0 : (r.error().detail.find("exists") != std::string::npos ? 1 : 2));
        }
        kids.push_back(pid);
    }
    int created = 0, exists = 0, other = 0;
    for (pid_t k : kids) {
        int st = 0;
        ::waitpid(k, &st, 0);
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 99;
        (code == 0 ? created : code == 1 ? exists : other)++;
    }
    CHECK(created == 1);
    CHECK(exists == 19);
    CHECK(other == 0);
    auto store = open_store(path);
    CHECK(store->audit_log("race@example.com")->size() == 1);
}
