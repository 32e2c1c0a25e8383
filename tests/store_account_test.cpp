// store_account_test.cpp — the store calls behind `mailferry account`: last_transition()
// finds the newest audit row that moved an account into a state (not a row that only
// replaced its hash), forget_account() deletes row and jobs in one go and keeps the
// audit, refusing an unknown account or one a worker is copying, and claim_job() passes
// over a disabled account's jobs without holding up the others.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/store.hpp"
#include "support/test_env.hpp"

using namespace mf;

namespace {

struct Db {
    mft::TempDir tmp{"mf-store-account"};
    std::unique_ptr<Store> s;
    Db() {
        auto r = open_sqlite_store(tmp.file("mf.db"), Millis(2000));
        REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));
        s = std::move(*r);
    }
    void add(const std::string& name, AccountState st) const {
        Account a;
        a.name = name;
        a.provider = "old";
        a.state = st;
        a.hash = "{PLAIN}x";
        REQUIRE(s->create_account(a, AuditContext{"test", "", ""}));
    }
    [[nodiscard]] Job enqueue(const std::string& name) const {
        EnqueueRequest req;
        req.account = name;
        req.provider = "old";
        auto j = s->enqueue_job(req);
        REQUIRE(j.ok());
        return *j;
    }
    [[nodiscard]] std::optional<Job> claim(UnixMillis lease_ms = 60000) const {
        ClaimRequest req;
        req.worker = "w1";
        req.now = now_unix_ms() + 10;
        req.lease = Millis(lease_ms);
        auto j = s->claim_job(req);
        REQUIRE(j.ok());
        return *j;
    }
};

} // namespace

TEST_CASE("last_transition: the newest row into the state, with its reason") {
    Db db;
    db.add("anna@example.com", AccountState::synced);
    CHECK_FALSE(db.s->last_transition("anna@example.com", AccountState::disabled)->has_value());
    REQUIRE(db.s->set_state("anna@example.com", AccountState::disabled,
                            AuditContext{"admin:account", "", "first"}));
    REQUIRE(db.s->set_state("anna@example.com", AccountState::failed, AuditContext{"t", "", ""}));
    REQUIRE(db.s->set_state("anna@example.com", AccountState::disabled,
                            AuditContext{"admin:account", "", "second"}));
    // A hash change writes a row disabled → disabled: not a transition.
    REQUIRE(db.s->set_hash("anna@example.com", "{PLAIN}y", AuditContext{"admin", "", "pw"}));
    auto row = db.s->last_transition("anna@example.com", AccountState::disabled);
    REQUIRE(row.ok());
    REQUIRE(row->has_value());
    CHECK((**row).from_state == "failed");
    CHECK((**row).detail == "second");
    CHECK((**row).actor == "admin:account");
}

TEST_CASE("forget_account: row and jobs go, the audit stays; unknown or busy refused") {
    Db db;
    db.add("anna@example.com", AccountState::synced);
    db.add("bob@example.com", AccountState::synced);
    (void)db.enqueue("anna@example.com");
    (void)db.enqueue("bob@example.com");

    auto none = db.s->forget_account("zed@example.com", AuditContext{"t", "", ""}, now_unix_ms());
    REQUIRE_FALSE(none.ok());
    CHECK(none.error().scope == Scope::account);

    auto running = db.claim(); // anna's, the older job
    REQUIRE(running.has_value());
    const std::string busy_name = running->account;
    auto busy = db.s->forget_account(busy_name, AuditContext{"t", "", ""}, now_unix_ms());
    REQUIRE_FALSE(busy.ok());
    CHECK(busy.error().temporary());
    CHECK(db.s->find_account(busy_name)->has_value());
    // Once the lease has run out (its worker died), the account may go.
    auto later = db.s->forget_account(busy_name, AuditContext{"admin", "", "reset"},
                                      running->lease_until + 1);
    REQUIRE_MESSAGE(later.ok(), (later.ok() ? "" : later.error().message()));
    CHECK(later->state == AccountState::synced);
    CHECK_FALSE(db.s->find_account(busy_name)->has_value());
    auto jobs = db.s->list_jobs(false);
    REQUIRE(jobs.ok());
    REQUIRE(jobs->size() == 1); // the other account's job is untouched
    CHECK(jobs->front().account != busy_name);
    auto audit = db.s->audit_log(busy_name);
    REQUIRE(audit->size() == 2);
    CHECK(audit->back().to_state == "unknown");
    CHECK(audit->back().detail == "reset");
}

TEST_CASE("claim_job passes over a disabled account's jobs, not the others'") {
    Db db;
    db.add("anna@example.com", AccountState::synced);
    db.add("bob@example.com", AccountState::synced);
    (void)db.enqueue("anna@example.com");
    const Job bob = db.enqueue("bob@example.com");
    REQUIRE(db.s->set_state("anna@example.com", AccountState::disabled, AuditContext{"t", "", ""}));
    auto first = db.claim();
    REQUIRE(first.has_value());
    CHECK(first->id == bob.id);
    CHECK_FALSE(db.claim().has_value());
    REQUIRE(db.s->set_state("anna@example.com", AccountState::synced, AuditContext{"t", "", ""}));
    auto then = db.claim();
    REQUIRE(then.has_value());
    CHECK(then->account == "anna@example.com");
}
