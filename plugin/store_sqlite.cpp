// store_sqlite.cpp — the Store on SQLite (WAL): accounts, audit log, guard tables.
//
// Many login helpers open this database at once as separate processes, so every call is
// one short transaction; writers use BEGIN IMMEDIATE so lock waits happen up front under
// the busy timeout instead of failing half-way. A busy or locked database after the
// timeout is an Error with Retry::later (TEMPFAIL), never a guess. The schema carries a
// version in PRAGMA user_version and is migrated forward step by step, each step in its
// own transaction. This file never sees a plain password.
#include "mailferry/store.hpp"

#include "file_util.hpp"
#include "store_sqlite_private.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mf {
namespace {

// Forward migrations: kMigrations[i] takes the schema from version i to i+1.
constexpr const char* kMigrations[] = {
    // 0 → 1: accounts, audit, guard
    R"sql(
CREATE TABLE accounts (
    name        TEXT PRIMARY KEY NOT NULL,
    provider    TEXT NOT NULL,
    state       TEXT NOT NULL,
    hash        TEXT NOT NULL DEFAULT '',
    created     INTEGER NOT NULL,
    updated     INTEGER NOT NULL,
    last_login  INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX accounts_state ON accounts(state);
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    account     TEXT NOT NULL,
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    actor       TEXT NOT NULL,
    client_ip   TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_account ON audit(account, id);
CREATE TABLE guard_failures (
    key TEXT NOT NULL,
    at  INTEGER NOT NULL
);
CREATE INDEX guard_failures_key ON guard_failures(key, at);
CREATE TABLE guard_negative (
    account TEXT NOT NULL,
    digest  TEXT NOT NULL,
    expires INTEGER NOT NULL,
    PRIMARY KEY (account, digest)
) WITHOUT ROWID;
)sql",
    // 1 → 2: the copy job queue. At most one active (queued, running, retry) job per
    // account; times in milliseconds, so short leases and backoffs work in tests too.
    R"sql(
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account      TEXT NOT NULL,
    provider     TEXT NOT NULL,
    source_login TEXT NOT NULL DEFAULT '',
    kind         TEXT NOT NULL,
    state        TEXT NOT NULL,
    priority     INTEGER NOT NULL,
    run_at       INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    runs         INTEGER NOT NULL DEFAULT 0,
    claimed_by   TEXT NOT NULL DEFAULT '',
    lease_until  INTEGER NOT NULL DEFAULT 0,
    created      INTEGER NOT NULL,
    updated      INTEGER NOT NULL,
    last_error   TEXT NOT NULL DEFAULT '',
    last_result  TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX jobs_one_active ON jobs(account)
    WHERE state IN ('queued', 'running', 'retry');
CREATE INDEX jobs_due ON jobs(state, run_at);
CREATE INDEX jobs_provider ON jobs(provider, state);
)sql",
    // 2 → 3: the plan of a batched cut-over, so a second run goes on where one stopped.
    R"sql(
CREATE TABLE cutover_plan (
    account  TEXT PRIMARY KEY NOT NULL,
    position INTEGER NOT NULL UNIQUE,
    state    TEXT NOT NULL,
    detail   TEXT NOT NULL DEFAULT '',
    updated  INTEGER NOT NULL
);
)sql",
    // 3 → 4: mail the Postfix policy service put on hold for accounts in their final
    // round (released after the cut-over), and addresses the old server said it knows.
    R"sql(
CREATE TABLE held_mail (
    account   TEXT NOT NULL,
    instance  TEXT NOT NULL DEFAULT '',
    queue_id  TEXT NOT NULL DEFAULT '',
    at        INTEGER NOT NULL
);
CREATE UNIQUE INDEX held_mail_row ON held_mail(account, instance, queue_id);
CREATE INDEX held_mail_instance ON held_mail(instance);
CREATE INDEX held_mail_queue_id ON held_mail(queue_id);
CREATE TABLE known_recipients (
    address   TEXT PRIMARY KEY NOT NULL,
    provider  TEXT NOT NULL,
    at        INTEGER NOT NULL
) WITHOUT ROWID;
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

} // namespace

Error db_error(sqlite3* db, const std::string& what, int rc) {
    bool busy = rc == SQLITE_BUSY || rc == SQLITE_LOCKED || (rc & 0xff) == SQLITE_BUSY ||
                (rc & 0xff) == SQLITE_LOCKED;
    std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if (busy) {
        detail += " (database busy: another process holds the lock)";
    }
    bool io = (rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_FULL ||
              (rc & 0xff) == SQLITE_CANTOPEN || (rc & 0xff) == SQLITE_READONLY;
    return make_error(what, detail, Scope::server, (busy || io) ? Retry::later : Retry::never);
}

Account account_from_row(Stmt& s) {
    Account a;
    a.name = s.text(0);
    a.provider = s.text(1);
    a.state = account_state_from(s.text(2)).value_or(AccountState::failed);
    a.hash = s.text(3);
    a.created = s.int64(4);
    a.updated = s.int64(5);
    a.last_login = s.int64(6);
    a.last_error = s.text(7);
    return a;
}

namespace {

constexpr const char* kJobColumns =
    "id, account, provider, source_login, kind, state, priority, run_at, attempts, runs, "
    "claimed_by, lease_until, created, updated, last_error, last_result";

Job job_from_row(Stmt& s) {
    Job j;
    j.id = s.int64(0);
    j.account = s.text(1);
    j.provider = s.text(2);
    j.source_login = s.text(3);
    j.kind = job_kind_from(s.text(4)).value_or(JobKind::copy);
    j.state = job_state_from(s.text(5)).value_or(JobState::failed);
    j.priority = static_cast<int>(s.int64(6));
    j.run_at = s.int64(7);
    j.attempts = static_cast<unsigned>(s.int64(8));
    j.runs = static_cast<unsigned>(s.int64(9));
    j.claimed_by = s.text(10);
    j.lease_until = s.int64(11);
    j.created = s.int64(12);
    j.updated = s.int64(13);
    j.last_error = s.text(14);
    j.last_result = s.text(15);
    return j;
}

std::string job_select(const char* where) {
    return std::string("SELECT ") + kJobColumns + " FROM jobs " + where;
}

class SqliteStore final : public Store {
  public:
    SqliteStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
    ~SqliteStore() override { sqlite3_close_v2(db_); }
    SqliteStore(const SqliteStore&) = delete;
    SqliteStore& operator=(const SqliteStore&) = delete;

    Result<void> init() {
        if (auto r = exec("PRAGMA journal_mode=WAL", "enable WAL"); !r) {
            return r;
        }
        if (auto r = exec("PRAGMA synchronous=NORMAL", "set synchronous"); !r) {
            return r;
        }
        if (auto r = exec("PRAGMA foreign_keys=ON", "enable foreign keys"); !r) {
            return r;
        }
        auto migrated = migrate();
        return migrated ? sqlite_variants::ensure_index(db_) : migrated;
    }

    [[nodiscard]] int schema_version() const override { return version_; }

    Result<std::optional<Account>> find_account(const std::string& name) override {
        std::lock_guard lock(mu_);
        Stmt s(db_, "SELECT name, provider, state, hash, created, updated, last_login, "
                    "last_error FROM accounts WHERE name = ?1");
        if (!s.prepared()) {
            return db_error(db_, "prepare find_account", s.prepare_rc());
        }
        s.bind(1, name);
        int rc = s.step();
        if (rc == SQLITE_DONE) {
            return std::optional<Account>{};
        }
        if (rc != SQLITE_ROW) {
            return db_error(db_, "look up account " + name + " in " + path_, rc);
        }
        return std::optional<Account>{account_from_row(s)};
    }

    Result<std::vector<Account>> find_account_variants(const std::string& name) override {
        std::lock_guard lock(mu_);
        return sqlite_variants::find(db_, name, path_);
    }

    Result<void> create_account(const Account& a, const AuditContext& ctx) override {
        std::lock_guard lock(mu_);
        return in_transaction("create account " + a.name, [&]() -> Result<void> {
            Stmt s(db_, "INSERT INTO accounts (name, provider, state, hash, created, updated, "
                        "last_login, last_error) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, '')");
            if (!s.prepared()) {
                return db_error(db_, "prepare create_account", s.prepare_rc());
            }
            UnixTime now = now_unix();
            s.bind(1, a.name).bind(2, a.provider).bind(3, std::string(to_string(a.state)));
            s.bind(4, a.hash).bind(5, a.created != 0 ? a.created : now).bind(6, a.last_login);
            int rc = s.step();
            if ((rc & 0xff) == SQLITE_CONSTRAINT) {
                return make_error("create account " + a.name, "account exists already",
                                  Scope::account);
            }
            if (rc != SQLITE_DONE) {
                return db_error(db_, "insert account " + a.name, rc);
            }
            return audit(a.name, "unknown", to_string(a.state), ctx);
        });
    }

    Result<void> set_state(const std::string& name, AccountState to, const AuditContext& ctx,
                           std::optional<AccountState> expected_from) override {
        std::lock_guard lock(mu_);
        return in_transaction("set state of " + name, [&]() -> Result<void> {
            Stmt q(db_, "SELECT state FROM accounts WHERE name = ?1");
            q.bind(1, name);
            int rc = q.step();
            if (rc == SQLITE_DONE) {
                return make_error("set state of " + name, "no such account", Scope::account);
            }
            if (rc != SQLITE_ROW) {
                return db_error(db_, "read state of " + name, rc);
            }
            std::string from = q.text(0);
            if (expected_from && from != to_string(*expected_from)) {
                return make_error("set state of " + name,
                                  std::string("state is ") + from + ", expected " +
                                      to_string(*expected_from),
                                  Scope::account);
            }
            Stmt u(db_, "UPDATE accounts SET state = ?2, updated = ?3, last_error = "
                        "CASE WHEN ?2 = 'failed' THEN ?4 ELSE last_error END WHERE name = ?1");
            u.bind(1, name)
                .bind(2, std::string(to_string(to)))
                .bind(3, now_unix())
                .bind(4, ctx.detail);
            if (rc = u.step(); rc != SQLITE_DONE) {
                return db_error(db_, "update state of " + name, rc);
            }
            return audit(name, from, to_string(to), ctx);
        });
    }

    Result<void> set_hash(const std::string& name, const std::string& hash,
                          const AuditContext& ctx) override {
        std::lock_guard lock(mu_);
        return in_transaction("set hash of " + name, [&]() -> Result<void> {
            Stmt u(db_, "UPDATE accounts SET hash = ?2, updated = ?3 WHERE name = ?1 "
                        "RETURNING state");
            u.bind(1, name).bind(2, hash).bind(3, now_unix());
            int rc = u.step();
            if (rc == SQLITE_DONE) {
                return make_error("set hash of " + name, "no such account", Scope::account);
            }
            if (rc != SQLITE_ROW) {
                return db_error(db_, "update hash of " + name, rc);
            }
            std::string state = u.text(0);
            while (u.step() == SQLITE_ROW) {
            }
            AuditContext c = ctx;
            if (c.detail.empty()) {
                c.detail = "password hash replaced";
            }
            return audit(name, state, state, c);
        });
    }

    Result<void> record_login(const std::string& name, UnixTime at) override {
        std::lock_guard lock(mu_);
        Stmt u(db_, "UPDATE accounts SET last_login = ?2 WHERE name = ?1");
        u.bind(1, name).bind(2, at);
        if (int rc = u.step(); rc != SQLITE_DONE) {
            return db_error(db_, "record login of " + name, rc);
        }
        return {};
    }

    Result<std::vector<AuditRow>> audit_log(const std::string& account) override {
        std::lock_guard lock(mu_);
        Stmt s(db_, "SELECT id, at, account, from_state, to_state, actor, client_ip, detail "
                    "FROM audit WHERE account = ?1 ORDER BY id");
        s.bind(1, account);
        std::vector<AuditRow> rows;
        int rc;
        while ((rc = s.step()) == SQLITE_ROW) {
            rows.push_back(AuditRow{s.int64(0), s.int64(1), s.text(2), s.text(3), s.text(4),
                                    s.text(5), s.text(6), s.text(7)});
        }
        if (rc != SQLITE_DONE) {
            return db_error(db_, "read audit log of " + account, rc);
        }
        return rows;
    }

    Result<std::map<AccountState, std::int64_t>> count_by_state() override {
        std::lock_guard lock(mu_);
        Stmt s(db_, "SELECT state, COUNT(*) FROM accounts GROUP BY state");
        std::map<AccountState, std::int64_t> out;
        int rc;
        while ((rc = s.step()) == SQLITE_ROW) {
            if (auto st = account_state_from(s.text(0))) {
                out[*st] = s.int64(1);
            }
        }
        if (rc != SQLITE_DONE) {
            return db_error(db_, "count accounts by state", rc);
        }
        return out;
    }

    Result<std::vector<Account>> list_accounts() override {
        std::lock_guard lock(mu_);
        Stmt s(db_, "SELECT name, provider, state, hash, created, updated, last_login, "
                    "last_error FROM accounts ORDER BY name");
        std::vector<Account> out;
        int rc;
        while ((rc = s.step()) == SQLITE_ROW) {
            out.push_back(account_from_row(s));
        }
        if (rc != SQLITE_DONE) {
            return db_error(db_, "list accounts", rc);
        }
        return out;
    }

    Result<void> record_failure(const std::string& key, UnixTime at) override {
        std::lock_guard lock(mu_);
        return sqlite_guard::record_failure(db_, key, at);
    }
    Result<std::int64_t> count_failures(const std::string& key, UnixTime since) override {
        std::lock_guard lock(mu_);
        return sqlite_guard::count_failures(db_, key, since);
    }
    Result<void> clear_failures(const std::string& key) override {
        std::lock_guard lock(mu_);
        return sqlite_guard::clear_failures(db_, key);
    }

    Result<std::vector<std::int64_t>> begin_guard_attempt(const GuardAttempt& a,
                                                          const GuardGo& go) override {
        std::lock_guard lock(mu_);
        std::vector<std::int64_t> rows;
        auto r = in_transaction("guard: count and record a login attempt",
                                [&] { return sqlite_guard::begin_attempt(db_, a, go, rows); });
        if (!r) {
            return r.error();
        }
        return rows;
    }
    Result<void> fail_guard_attempt(const std::vector<std::int64_t>& rows,
                                    const std::string& account, const std::string& digest,
                                    UnixTime negative_expires) override {
        std::lock_guard lock(mu_);
        return in_transaction("guard: record a failed login", [&] {
            return sqlite_guard::fail_attempt(db_, rows, account, digest, negative_expires);
        });
    }
    Result<void> end_guard_attempt(const std::vector<std::int64_t>& rows,
                                   const std::string& clear_key) override {
        std::lock_guard lock(mu_);
        return in_transaction("guard: settle a login attempt",
                              [&] { return sqlite_guard::end_attempt(db_, rows, clear_key); });
    }

    Result<void> add_negative(const std::string& account, const std::string& digest,
                              UnixTime expires) override {
        std::lock_guard lock(mu_);
        return sqlite_guard::add_negative(db_, account, digest, expires);
    }
    Result<bool> has_negative(const std::string& account, const std::string& digest,
                              UnixTime now) override {
        std::lock_guard lock(mu_);
        return sqlite_guard::has_negative(db_, account, digest, now);
    }

    // ---- jobs ----

    Result<Job> enqueue_job(const EnqueueRequest& req) override {
        std::lock_guard lock(mu_);
        std::optional<Job> out;
        UnixMillis run_at = req.run_at != 0 ? req.run_at : now_unix_ms();
        auto r = in_transaction("queue a copy of " + req.account, [&]() -> Result<void> {
            auto active = active_job_locked(req.account);
            if (!active) {
                return active.error();
            }
            int rc;
            if (active->has_value()) {
                // A new login (a fresh password in the spool) makes a waiting retry due now.
                Stmt u(db_, "UPDATE jobs SET priority = MAX(priority, ?2), "
                            "run_at = CASE WHEN state = 'running' THEN run_at "
                            "ELSE MIN(run_at, ?3) END, "
                            "state = CASE WHEN state = 'retry' THEN 'queued' ELSE state END, "
                            "kind = CASE WHEN ?4 = 'copy' THEN 'copy' ELSE kind END, "
                            "provider = ?5, source_login = CASE WHEN ?6 = '' THEN source_login "
                            "ELSE ?6 END, updated = ?7 WHERE id = ?1");
                u.bind(1, (**active).id).bind(2, std::int64_t{req.priority}).bind(3, run_at);
                u.bind(4, std::string(to_string(req.kind))).bind(5, req.provider);
                u.bind(6, req.source_login).bind(7, now_unix());
                rc = u.step();
            } else {
                Stmt i(db_, "INSERT INTO jobs (account, provider, source_login, kind, state, "
                            "priority, run_at, created, updated) "
                            "VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7, ?7)");
                i.bind(1, req.account).bind(2, req.provider).bind(3, req.source_login);
                i.bind(4, std::string(to_string(req.kind))).bind(5, std::int64_t{req.priority});
                i.bind(6, run_at).bind(7, now_unix());
                rc = i.step();
            }
            if (rc != SQLITE_DONE) {
                return db_error(db_, "queue a copy of " + req.account + " in " + path_, rc);
            }
            auto now_active = active_job_locked(req.account);
            if (!now_active) {
                return now_active.error();
            }
            out = std::move(*now_active);
            return {};
        });
        if (!r) {
            return r.error();
        }
        if (!out) {
            return make_error("queue a copy of " + req.account, "the job vanished",
                              Scope::internal);
        }
        return std::move(*out);
    }

    Result<std::optional<Job>> claim_job(const ClaimRequest& req) override {
        std::lock_guard lock(mu_);
        std::optional<Job> claimed;
        auto r = in_transaction("claim a copy job", [&]() -> Result<void> {
            // Candidates in claim order; a bounded look-ahead past providers whose budget
            // is used up.
            // A disabled account's jobs wait (`mailferry account enable` resumes them).
            Stmt q(db_, job_select("WHERE ((state IN ('queued', 'retry') AND run_at <= ?1) OR "
                                   "(state = 'running' AND lease_until <= ?1)) AND account NOT IN "
                                   "(SELECT name FROM accounts WHERE state = 'disabled') "
                                   "ORDER BY priority DESC, run_at ASC, id ASC LIMIT 500")
                            .c_str());
            q.bind(1, req.now);
            std::vector<Job> due;
            int rc;
            while ((rc = q.step()) == SQLITE_ROW) {
                due.push_back(job_from_row(q));
            }
            if (rc != SQLITE_DONE) {
                return db_error(db_, "look for due copy jobs in " + path_, rc);
            }
            std::map<std::string, std::int64_t> running; // provider → live leases
            for (auto& j : due) {
                auto it = running.find(j.provider);
                if (it == running.end()) {
                    Stmt c(db_, "SELECT COUNT(*) FROM jobs WHERE provider = ?1 AND "
                                "state = 'running' AND lease_until > ?2");
                    c.bind(1, j.provider).bind(2, req.now);
                    if (rc = c.step(); rc != SQLITE_ROW) {
                        return db_error(db_, "count running copies of " + j.provider, rc);
                    }
                    it = running.emplace(j.provider, c.int64(0)).first;
                }
                if (it->second >= static_cast<std::int64_t>(req.per_provider)) {
                    continue;
                }
                // A lease that ran out means its worker died mid-copy: a failed attempt, so a
                // message that crashes the copier cannot crash a worker per lease for ever.
                const bool takeover = j.state == JobState::running;
                if (takeover) {
                    j.taken_over_from = j.claimed_by;
                    j.attempts += 1;
                    j.last_error = "worker " + j.claimed_by + " died mid-copy (its lease expired)";
                }
                Stmt u(db_, "UPDATE jobs SET state = 'running', claimed_by = ?2, lease_until = ?3, "
                            "runs = runs + 1, updated = ?4, attempts = attempts + ?5, "
                            "last_error = CASE WHEN ?5 THEN ?6 ELSE last_error END WHERE id = ?1");
                u.bind(1, j.id).bind(2, req.worker).bind(3, req.now + req.lease.count());
                u.bind(4, now_unix()).bind(5, std::int64_t{takeover ? 1 : 0}).bind(6, j.last_error);
                if (rc = u.step(); rc != SQLITE_DONE) {
                    return db_error(db_, "claim copy job " + std::to_string(j.id), rc);
                }
                j.state = JobState::running;
                j.claimed_by = req.worker;
                j.lease_until = req.now + req.lease.count();
                j.runs += 1;
                claimed = std::move(j);
                return {};
            }
            return {};
        });
        if (!r) {
            return r.error();
        }
        return claimed;
    }

    Result<void> renew_job(std::int64_t id, const std::string& worker,
                           UnixMillis lease_until) override {
        std::lock_guard lock(mu_);
        Stmt u(db_, "UPDATE jobs SET lease_until = ?3 WHERE id = ?1 AND claimed_by = ?2 AND "
                    "state = 'running'");
        u.bind(1, id).bind(2, worker).bind(3, lease_until);
        if (int rc = u.step(); rc != SQLITE_DONE) {
            return db_error(db_, "renew the lease of copy job " + std::to_string(id), rc);
        }
        if (sqlite3_changes(db_) == 0) {
            return lost_job(id, "renew the lease of");
        }
        return {};
    }

    Result<void> finish_job(std::int64_t id, const std::string& worker,
                            const JobFinish& how) override {
        std::lock_guard lock(mu_);
        return in_transaction("finish copy job " + std::to_string(id), [&]() -> Result<void> {
            Stmt u(
                db_,
                "UPDATE jobs SET state = ?3, kind = ?4, run_at = ?5, "
                "attempts = CASE WHEN ?6 THEN attempts + 1 ELSE 0 END, "
                "last_error = CASE WHEN ?6 THEN ?7 ELSE last_error END, "
                "last_result = CASE WHEN ?8 = '' THEN last_result ELSE ?8 END, "
                "priority = CASE WHEN ?4 = 'resync' AND ?3 = 'queued' THEN ?9 ELSE priority END, "
                "claimed_by = '', lease_until = 0, updated = ?10 "
                "WHERE id = ?1 AND claimed_by = ?2 AND state = 'running'");
            u.bind(1, id).bind(2, worker).bind(3, std::string(to_string(how.state)));
            u.bind(4, std::string(to_string(how.next_kind))).bind(5, how.run_at);
            u.bind(6, std::int64_t{how.failure ? 1 : 0}).bind(7, how.error).bind(8, how.result);
            u.bind(9, std::int64_t{kPriorityResync}).bind(10, now_unix());
            if (int rc = u.step(); rc != SQLITE_DONE) {
                return db_error(db_, "finish copy job " + std::to_string(id), rc);
            }
            if (sqlite3_changes(db_) == 0) {
                return lost_job(id, "finish");
            }
            return {};
        });
    }

    Result<void> release_job(std::int64_t id, const std::string& worker) override {
        std::lock_guard lock(mu_);
        Stmt u(db_, "UPDATE jobs SET state = 'queued', claimed_by = '', lease_until = 0, "
                    "runs = MAX(runs - 1, 0), updated = ?3 "
                    "WHERE id = ?1 AND claimed_by = ?2 AND state = 'running'");
        u.bind(1, id).bind(2, worker).bind(3, now_unix());
        if (int rc = u.step(); rc != SQLITE_DONE) {
            return db_error(db_, "release copy job " + std::to_string(id), rc);
        }
        if (sqlite3_changes(db_) == 0) {
            return lost_job(id, "release");
        }
        return {};
    }

    Result<std::optional<Job>> find_job(std::int64_t id) override {
        std::lock_guard lock(mu_);
        Stmt q(db_, job_select("WHERE id = ?1").c_str());
        q.bind(1, id);
        int rc = q.step();
        if (rc == SQLITE_DONE) {
            return std::optional<Job>{};
        }
        if (rc != SQLITE_ROW) {
            return db_error(db_, "read copy job " + std::to_string(id), rc);
        }
        return std::optional<Job>{job_from_row(q)};
    }

    Result<std::optional<Job>> active_job(const std::string& account) override {
        std::lock_guard lock(mu_);
        return active_job_locked(account);
    }

    Result<std::vector<Job>> list_jobs(bool active_only) override {
        std::lock_guard lock(mu_);
        Stmt q(db_, job_select(active_only ? "WHERE state IN ('queued', 'running', 'retry') "
                                             "ORDER BY id"
                                           : "ORDER BY id")
                        .c_str());
        std::vector<Job> out;
        int rc;
        while ((rc = q.step()) == SQLITE_ROW) {
            out.push_back(job_from_row(q));
        }
        if (rc != SQLITE_DONE) {
            return db_error(db_, "list copy jobs", rc);
        }
        return out;
    }

    Result<std::int64_t> enqueue_missing_jobs(int priority, UnixMillis now) override {
        std::lock_guard lock(mu_);
        std::int64_t added = 0;
        auto r = in_transaction("queue copies of accounts without a job", [&]() -> Result<void> {
            Stmt i(db_, "INSERT INTO jobs (account, provider, source_login, kind, state, "
                        "priority, run_at, created, updated) "
                        "SELECT a.name, a.provider, '', CASE a.state WHEN 'resyncing' THEN "
                        "'resync' ELSE 'copy' END, 'queued', ?1, ?2, ?3, ?3 FROM accounts a "
                        "WHERE a.state IN ('provisioned', 'copying', 'resyncing') AND NOT EXISTS "
                        "(SELECT 1 FROM jobs j WHERE j.account = a.name AND j.state IN "
                        "('queued', 'running', 'retry', 'failed'))");
            i.bind(1, std::int64_t{priority}).bind(2, now).bind(3, now_unix());
            if (int rc = i.step(); rc != SQLITE_DONE) {
                return db_error(db_, "queue copies of accounts without a job", rc);
            }
            added = sqlite3_changes(db_);
            return {};
        });
        if (!r) {
            return r.error();
        }
        return added;
    }

    Result<std::int64_t> retry_failed_jobs(UnixMillis now) override {
        std::lock_guard lock(mu_);
        std::int64_t moved = 0;
        auto r = in_transaction("retry given-up copy jobs", [&]() -> Result<void> {
            // The newest given-up job per account, unless the account has an active one.
            Stmt u(db_, "UPDATE jobs SET state = 'queued', run_at = ?1, attempts = 0, "
                        "updated = ?2 WHERE state = 'failed' AND id = (SELECT MAX(id) FROM jobs "
                        "j WHERE j.account = jobs.account AND j.state = 'failed') AND NOT EXISTS "
                        "(SELECT 1 FROM jobs k WHERE k.account = jobs.account AND k.state IN "
                        "('queued', 'running', 'retry'))");
            u.bind(1, now).bind(2, now_unix());
            if (int rc = u.step(); rc != SQLITE_DONE) {
                return db_error(db_, "retry given-up copy jobs", rc);
            }
            moved = sqlite3_changes(db_);
            return {};
        });
        if (!r) {
            return r.error();
        }
        return moved;
    }

    Result<void> prune_guard(UnixTime now, UnixTime failures_before) override {
        std::lock_guard lock(mu_);
        return in_transaction("prune guard tables",
                              [&] { return sqlite_guard::prune(db_, now, failures_before); });
    }

    Result<std::vector<ImportOutcome>> import_accounts(const std::vector<ImportEntry>& entries,
                                                       const std::string& actor) override {
        std::lock_guard lock(mu_);
        std::vector<ImportOutcome> out;
        out.reserve(entries.size());
        auto r = in_transaction("import " + std::to_string(entries.size()) + " accounts",
                                [&]() -> Result<void> { return import_rows(entries, actor, out); });
        if (!r) {
            return r.error();
        }
        return out;
    }

    Result<std::vector<ProviderStateCount>> count_by_provider_state() override {
        std::lock_guard lock(mu_);
        Stmt s(db_, "SELECT provider, state, COUNT(*) FROM accounts GROUP BY provider, state "
                    "ORDER BY provider, state");
        if (!s.prepared()) {
            return db_error(db_, "prepare count_by_provider_state", s.prepare_rc());
        }
        std::vector<ProviderStateCount> out;
        int rc;
        while ((rc = s.step()) == SQLITE_ROW) {
            if (auto st = account_state_from(s.text(1))) {
                out.push_back(ProviderStateCount{s.text(0), *st, s.int64(2)});
            }
        }
        if (rc != SQLITE_DONE) {
            return db_error(db_, "count accounts by old server and state", rc);
        }
        return out;
    }

    Result<void> create_cutover_plan(const std::vector<std::string>& accounts) override {
        std::lock_guard lock(mu_);
        return in_transaction("make a cut-over plan of " + std::to_string(accounts.size()) +
                                  " accounts",
                              [&] { return sqlite_cutover::create(db_, accounts, now_unix()); });
    }
    Result<std::vector<CutoverStep>> cutover_plan() override {
        std::lock_guard lock(mu_);
        return sqlite_cutover::read(db_);
    }
    Result<void> set_cutover_step(const std::string& account, CutoverStepState state,
                                  const std::string& detail) override {
        std::lock_guard lock(mu_);
        return in_transaction("cut-over plan: " + account + " " + to_string(state), [&] {
            return sqlite_cutover::set_step(db_, account, state, detail, now_unix());
        });
    }
    Result<std::int64_t> forget_cutover_plan() override {
        std::lock_guard lock(mu_);
        std::int64_t n = 0;
        auto r = in_transaction("drop the cut-over plan", [&]() -> Result<void> {
            auto f = sqlite_cutover::forget(db_);
            if (!f) {
                return f.error();
            }
            n = *f;
            return {};
        });
        if (!r) {
            return r.error();
        }
        return n;
    }

    Result<std::optional<AuditRow>> last_transition(const std::string& account,
                                                    AccountState to) override {
        std::lock_guard lock(mu_);
        return sqlite_account::last_transition(db_, account, to);
    }

    Result<Account> forget_account(const std::string& name, const AuditContext& ctx,
                                   UnixMillis now) override {
        std::lock_guard lock(mu_);
        std::optional<Account> was;
        auto r = in_transaction("forget account " + name, [&]() -> Result<void> {
            auto f = sqlite_account::forget(db_, name, ctx, now);
            if (!f) {
                return f.error();
            }
            was = std::move(*f);
            return {};
        });
        if (!r) {
            return r.error();
        }
        return std::move(*was);
    }

    // ---- held mail ----

    Result<void> note_held_mail(const std::string& account, const std::string& instance,
                                const std::string& queue_id, UnixTime at) override {
        std::lock_guard lock(mu_);
        return in_transaction("remember held mail of " + account, [&] {
            return sqlite_mailflow::note(db_, account, instance, queue_id, at);
        });
    }
    Result<std::int64_t> bind_held_mail(const std::string& instance,
                                        const std::string& queue_id) override {
        std::lock_guard lock(mu_);
        std::int64_t n = 0;
        auto r = in_transaction("bind held mail to queue id " + queue_id,
                                [&] { return sqlite_mailflow::bind(db_, instance, queue_id, n); });
        if (!r) {
            return r.error();
        }
        return n;
    }
    Result<std::vector<HeldMail>> list_held_mail(const std::string& account) override {
        std::lock_guard lock(mu_);
        return sqlite_mailflow::list(db_, account);
    }
    Result<void> forget_held_mail(const std::string& account,
                                  const std::string& queue_id) override {
        std::lock_guard lock(mu_);
        return in_transaction("forget held mail " + queue_id,
                              [&] { return sqlite_mailflow::forget(db_, account, queue_id); });
    }
    Result<void> record_known_recipient(const std::string& address, const std::string& provider,
                                        UnixTime at) override {
        std::lock_guard lock(mu_);
        return sqlite_mailflow::known(db_, address, provider, at);
    }

    // The schema version of a store opened read-only; nothing is created or migrated.
    Result<void> init_readonly() {
        Stmt v(db_, "PRAGMA user_version");
        if (int rc = v.step(); rc != SQLITE_ROW) {
            return db_error(db_, "read schema version of " + path_, rc);
        }
        version_ = static_cast<int>(v.int64(0));
        if (version_ == 0) {
            return make_error("open store " + path_ + " read-only",
                              "not a mailferry store (schema version 0)", Scope::config);
        }
        if (version_ > kSchemaVersion) {
            return make_error("open store " + path_ + " read-only",
                              "schema version " + std::to_string(version_) +
                                  " is newer than this mailferry understands (" +
                                  std::to_string(kSchemaVersion) + "): upgrade mailferry",
                              Scope::config);
        }
        return {};
    }

  private:
    // The body of import_accounts(), inside its transaction: one statement of each kind,
    // prepared once and reset per row (an import may hold 100,000 accounts).
    Result<void> import_rows(const std::vector<ImportEntry>& entries, const std::string& actor,
                             std::vector<ImportOutcome>& out) {
        Stmt find(db_, "SELECT state, hash FROM accounts WHERE name = ?1");
        Stmt insert(db_, "INSERT INTO accounts (name, provider, state, hash, created, updated, "
                         "last_login, last_error) VALUES (?1, ?2, 'verified', ?3, ?4, ?4, 0, '')");
        Stmt update(db_, "UPDATE accounts SET hash = ?2, updated = ?3 WHERE name = ?1");
        Stmt log(db_, "INSERT INTO audit (at, account, from_state, to_state, actor, client_ip, "
                      "detail) VALUES (?1, ?2, ?3, 'verified', ?4, '', ?5)");
        for (Stmt* st : {&find, &insert, &update, &log}) {
            if (!st->prepared()) {
                return db_error(db_, "prepare import", st->prepare_rc());
            }
        }
        const std::string verified = to_string(AccountState::verified);
        for (const auto& e : entries) {
            UnixTime now = now_unix();
            find.reset();
            find.bind(1, e.name);
            int rc = find.step();
            std::string from = "unknown";
            if (rc == SQLITE_ROW) {
                std::string state = find.text(0);
                std::string hash = find.text(1);
                if (hash == e.hash) {
                    out.push_back(ImportOutcome::unchanged);
                    continue;
                }
                if (state != verified) {
                    out.push_back(ImportOutcome::kept);
                    continue;
                }
                update.reset();
                update.bind(1, e.name).bind(2, e.hash).bind(3, now);
                if (rc = update.step(); rc != SQLITE_DONE) {
                    return db_error(db_, "update imported hash of " + e.name, rc);
                }
                from = verified;
                out.push_back(ImportOutcome::updated);
            } else if (rc == SQLITE_DONE) {
                insert.reset();
                insert.bind(1, e.name).bind(2, e.provider).bind(3, e.hash).bind(4, now);
                if (rc = insert.step(); rc != SQLITE_DONE) {
                    return db_error(db_, "insert imported account " + e.name, rc);
                }
                out.push_back(ImportOutcome::created);
            } else {
                return db_error(db_, "look up account " + e.name, rc);
            }
            log.reset();
            log.bind(1, now).bind(2, e.name).bind(3, from).bind(4, actor);
            log.bind(5, from == "unknown" ? e.detail : "hash replaced: " + e.detail);
            if (rc = log.step(); rc != SQLITE_DONE) {
                return db_error(db_, "write audit row for " + e.name, rc);
            }
        }
        return {};
    }

    // Callers hold mu_.
    Result<std::optional<Job>> active_job_locked(const std::string& account) {
        Stmt q(
            db_,
            job_select("WHERE account = ?1 AND state IN ('queued', 'running', 'retry')").c_str());
        q.bind(1, account);
        int rc = q.step();
        if (rc == SQLITE_DONE) {
            return std::optional<Job>{};
        }
        if (rc != SQLITE_ROW) {
            return db_error(db_, "look up the copy job of " + account, rc);
        }
        return std::optional<Job>{job_from_row(q)};
    }

    // A job this worker no longer holds: say who does, if anybody.
    Error lost_job(std::int64_t id, const char* doing) {
        std::string detail = "not held by this worker any more";
        Stmt q(db_, "SELECT state, claimed_by FROM jobs WHERE id = ?1");
        q.bind(1, id);
        if (q.step() == SQLITE_ROW) {
            detail += " (state " + q.text(0) +
                      (q.text(1).empty() ? std::string() : ", held by " + q.text(1)) +
                      "): its lease expired and another worker took it over";
        } else {
            detail += ": the job is gone";
        }
        return make_error(std::string(doing) + " copy job " + std::to_string(id), detail,
                          Scope::account);
    }

    Result<void> exec(const char* sql, const std::string& what) {
        char* msg = nullptr;
        int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg);
        sqlite3_free(msg); // sqlite3_errmsg() still has the same text
        if (rc != SQLITE_OK) {
            return db_error(db_, what + " on " + path_, rc);
        }
        return {};
    }

    // BEGIN IMMEDIATE … COMMIT around `body`; ROLLBACK if body or COMMIT fails.
    template <typename F>
    Result<void> in_transaction(const std::string& what, F&& body) {
        if (auto r = exec("BEGIN IMMEDIATE", what + ": begin"); !r) {
            return r;
        }
        Result<void> r = body();
        if (r) {
            r = exec("COMMIT", what + ": commit");
        }
        if (!r) {
            sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        }
        return r;
    }

    Result<void> audit(const std::string& account, const std::string& from, const std::string& to,
                       const AuditContext& ctx) {
        Stmt s(db_, "INSERT INTO audit (at, account, from_state, to_state, actor, client_ip, "
                    "detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
        s.bind(1, now_unix()).bind(2, account).bind(3, from).bind(4, to);
        s.bind(5, ctx.actor).bind(6, ctx.client_ip).bind(7, ctx.detail);
        if (int rc = s.step(); rc != SQLITE_DONE) {
            return db_error(db_, "write audit row for " + account, rc);
        }
        return {};
    }

    Result<void> migrate() {
        Stmt v(db_, "PRAGMA user_version");
        if (int rc = v.step(); rc != SQLITE_ROW) {
            return db_error(db_, "read schema version of " + path_, rc);
        }
        version_ = static_cast<int>(v.int64(0));
        if (version_ > kSchemaVersion) {
            return make_error("open store " + path_,
                              "schema version " + std::to_string(version_) +
                                  " is newer than this mailferry understands (" +
                                  std::to_string(kSchemaVersion) + "): upgrade mailferry",
                              Scope::config);
        }
        while (version_ < kSchemaVersion) {
            int next = version_ + 1;
            auto r = in_transaction("migrate store to schema " + std::to_string(next), [&]() {
                // Re-check inside the lock: another process may have migrated meanwhile.
                Stmt again(db_, "PRAGMA user_version");
                again.step();
                if (again.int64(0) != version_) {
                    return Result<void>{};
                }
                if (auto e = exec(kMigrations[version_], "apply migration"); !e) {
                    return e;
                }
                return exec(("PRAGMA user_version = " + std::to_string(next)).c_str(),
                            "set schema version");
            });
            if (!r) {
                return r;
            }
            Stmt now(db_, "PRAGMA user_version");
            now.step();
            version_ = static_cast<int>(now.int64(0));
        }
        return {};
    }

    sqlite3* db_;
    std::string path_;
    std::mutex mu_;
    int version_ = 0;
};

} // namespace

Result<std::unique_ptr<Store>> open_sqlite_store_readonly(const std::string& path,
                                                          Millis busy_timeout) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        int e = errno;
        return make_error("open store " + path + " read-only",
                          e == ENOENT ? std::string("no such file: no account has been "
                                                    "migrated or imported with this config yet")
                                      : errno_text(e),
                          Scope::config, e == ENOENT ? Retry::never : Retry::later);
    }
    sqlite3* db = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        Error e = db_error(db, "open store " + path + " read-only", rc);
        sqlite3_close_v2(db);
        return e;
    }
    sqlite3_busy_timeout(db, static_cast<int>(busy_timeout.count()));
    sqlite3_extended_result_codes(db, 1);
    auto store = std::make_unique<SqliteStore>(db, path);
    if (auto r = store->init_readonly(); !r) {
        return r.error();
    }
    return std::unique_ptr<Store>(std::move(store));
}

UnixMillis now_unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

const char* to_string(JobState s) {
    switch (s) {
    case JobState::queued:
        return "queued";
    case JobState::running:
        return "running";
    case JobState::retry:
        return "retry";
    case JobState::done:
        return "done";
    case JobState::failed:
        return "failed";
    }
    return "?";
}

const char* to_string(JobKind k) {
    switch (k) {
    case JobKind::copy:
        return "copy";
    case JobKind::resync:
        return "resync";
    }
    return "?";
}

std::optional<JobState> job_state_from(std::string_view name) {
    for (auto s :
         {JobState::queued, JobState::running, JobState::retry, JobState::done, JobState::failed}) {
        if (name == to_string(s)) {
            return s;
        }
    }
    return std::nullopt;
}

std::optional<JobKind> job_kind_from(std::string_view name) {
    for (auto k : {JobKind::copy, JobKind::resync}) {
        if (name == to_string(k)) {
            return k;
        }
    }
    return std::nullopt;
}

UnixTime now_unix() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

const char* to_string(AccountState s) {
    switch (s) {
    case AccountState::unknown:
        return "unknown";
    case AccountState::verified:
        return "verified";
    case AccountState::provisioned:
        return "provisioned";
    case AccountState::copying:
        return "copying";
    case AccountState::synced:
        return "synced";
    case AccountState::resyncing:
        return "resyncing";
    case AccountState::held:
        return "held";
    case AccountState::cutover:
        return "cutover";
    case AccountState::failed:
        return "failed";
    case AccountState::disabled:
        return "disabled";
    }
    return "?";
}

std::optional<AccountState> account_state_from(std::string_view name) {
    for (auto s :
         {AccountState::unknown, AccountState::verified, AccountState::provisioned,
          AccountState::copying, AccountState::synced, AccountState::resyncing, AccountState::held,
          AccountState::cutover, AccountState::failed, AccountState::disabled}) {
        if (name == to_string(s)) {
            return s;
        }
    }
    return std::nullopt;
}

bool copies_may_run(AccountState s) {
    switch (s) {
    case AccountState::provisioned:
    case AccountState::copying:
    case AccountState::synced:
    case AccountState::resyncing:
    case AccountState::failed:
    case AccountState::held:
        return true;
    case AccountState::unknown:
    case AccountState::verified:
    case AccountState::cutover:
    case AccountState::disabled:
        return false;
    }
    return false;
}

bool is_migrated(AccountState s) {
    switch (s) {
    case AccountState::provisioned:
    case AccountState::copying:
    case AccountState::synced:
    case AccountState::resyncing:
    case AccountState::held:
    case AccountState::cutover:
    case AccountState::failed:
        return true;
    case AccountState::unknown:
    case AccountState::verified:
    case AccountState::disabled:
        return false;
    }
    return false;
}

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path, Millis busy_timeout) {
    // Group-writable: login helpers of the mail server's auth user share it with the
    // mailferry worker through the group (docs/ARCHITECTURE.md, Security).
    // SQLite gives the -wal and -shm files the database file's mode, so setting it once
    // on creation is enough (no process-wide umask change: we may run inside a server).
    struct stat st {};
    bool created = ::stat(path.c_str(), &st) != 0;
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             nullptr);
    if (rc == SQLITE_OK && created) {
        ::chmod(path.c_str(), 0660);
    }
    if (rc != SQLITE_OK) {
        Error e = db_error(db, "open store " + path, rc);
        sqlite3_close_v2(db);
        return e;
    }
    sqlite3_busy_timeout(db, static_cast<int>(busy_timeout.count()));
    sqlite3_extended_result_codes(db, 1);
    // Keep -wal and -shm when the last connection closes. Otherwise the next opener
    // creates them again, and when that is root (an admin command) SQLite opens them with
    // root's umask before it fixes owner and mode: a worker or login helper opening the
    // store in that instant gets a read-only -shm and fails its write with
    // "attempt to write a readonly database". Kept, they are created once, at setup.
    int persist = 1;
    sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
    auto store = std::make_unique<SqliteStore>(db, path);
    if (auto r = store->init(); !r) {
        return r.error();
    }
    return std::unique_ptr<Store>(std::move(store));
}

} // namespace mf
