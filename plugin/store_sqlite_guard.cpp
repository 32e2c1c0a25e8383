// store_sqlite_guard.cpp — the guard's tables in the SQLite store: failure rows per key,
// pending rows of attempts in flight, the negative cache.
//
// A pending row is a failure row whose key carries the prefix "pending:". It is written
// before a password is checked and then deleted (right password, or nobody could check
// it) or renamed to its plain key (wrong password). A pending row that is never settled
// (a crash, a store that broke in between) counts as a failure once it is stale.
// Must never: run outside the caller's transaction, or see a plain password.
#include "store_sqlite_private.hpp"

#include <sqlite3.h>

namespace mf::sqlite_guard {
namespace {

constexpr const char* kPending = "pending:";

// Steps a statement that returns no row: SQLITE_DONE, else the error named `what`.
Result<void> run(sqlite3* db, Stmt& s, const std::string& what) {
    if (int rc = s.step(); rc != SQLITE_DONE) {
        return db_error(db, what, rc);
    }
    return {};
}

// Failures of `key` since `since`, with its stale pending rows.
Result<std::int64_t> count_key(sqlite3* db, const std::string& key, UnixTime since,
                               UnixTime stale_before) {
    Stmt s(db, "SELECT (SELECT COUNT(*) FROM guard_failures WHERE key = ?1 AND at >= ?2) + "
               "(SELECT COUNT(*) FROM guard_failures WHERE key = ?3 AND at >= ?2 AND at < ?4)");
    if (!s.prepared()) {
        return db_error(db, "prepare: count failed logins", s.prepare_rc());
    }
    s.bind(1, key).bind(2, since).bind(3, kPending + key).bind(4, stale_before);
    if (int rc = s.step(); rc != SQLITE_ROW) {
        return db_error(db, "count failed logins", rc);
    }
    return s.int64(0);
}

Result<bool> negative_hit(sqlite3* db, const std::string& account, const std::string& digest,
                          UnixTime now) {
    Stmt s(db, "SELECT 1 FROM guard_negative WHERE account = ?1 AND digest = ?2 AND expires > ?3");
    if (!s.prepared()) {
        return db_error(db, "prepare: look up rejected passwords", s.prepare_rc());
    }
    s.bind(1, account).bind(2, digest).bind(3, now);
    int rc = s.step();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        return db_error(db, "look up rejected passwords", rc);
    }
    return rc == SQLITE_ROW;
}

// Runs `sql` once per row id (?1).
Result<void> for_rows(sqlite3* db, const char* sql, const std::vector<std::int64_t>& rows,
                      const std::string& what) {
    Stmt s(db, sql);
    if (!s.prepared()) {
        return db_error(db, "prepare: " + what, s.prepare_rc());
    }
    for (std::int64_t id : rows) {
        s.reset();
        if (auto r = run(db, s.bind(1, id), what); !r) {
            return r;
        }
    }
    return {};
}

} // namespace

Result<void> begin_attempt(sqlite3* db, const GuardAttempt& a, const GuardGo& go,
                           std::vector<std::int64_t>& rows) {
    GuardTally tally;
    for (const auto& key : a.count) {
        auto n = count_key(db, key, a.since, a.stale_before);
        if (!n) {
            return n.error();
        }
        tally.failures.push_back(*n);
    }
    if (!a.digest.empty()) {
        auto neg = negative_hit(db, a.account, a.digest, a.now);
        if (!neg) {
            return neg.error();
        }
        tally.negative = *neg;
    }
    if (!go(tally)) {
        return {};
    }
    Stmt s(db, "INSERT INTO guard_failures (key, at) VALUES (?1, ?2)");
    if (!s.prepared()) {
        return db_error(db, "prepare: record a login attempt", s.prepare_rc());
    }
    for (const auto& key : a.record) {
        s.reset();
        if (auto r = run(db, s.bind(1, kPending + key).bind(2, a.now), "record a login attempt");
            !r) {
            return r;
        }
        rows.push_back(sqlite3_last_insert_rowid(db));
    }
    return {};
}

Result<void> fail_attempt(sqlite3* db, const std::vector<std::int64_t>& rows,
                          const std::string& account, const std::string& digest,
                          UnixTime negative_expires) {
    // substr(key, 9): the key without "pending:"; rows already settled stay as they are.
    if (auto r = for_rows(db,
                          "UPDATE guard_failures SET key = substr(key, 9) WHERE rowid = ?1 "
                          "AND key LIKE 'pending:%'",
                          rows, "record failed login");
        !r) {
        return r;
    }
    return digest.empty() ? Result<void>{} : add_negative(db, account, digest, negative_expires);
}

Result<void> end_attempt(sqlite3* db, const std::vector<std::int64_t>& rows,
                         const std::string& clear_key) {
    if (auto r =
            for_rows(db, "DELETE FROM guard_failures WHERE rowid = ?1 AND key LIKE 'pending:%'",
                     rows, "drop a pending login attempt");
        !r) {
        return r;
    }
    return clear_key.empty() ? Result<void>{} : clear_failures(db, clear_key);
}

Result<void> record_failure(sqlite3* db, const std::string& key, UnixTime at) {
    Stmt s(db, "INSERT INTO guard_failures (key, at) VALUES (?1, ?2)");
    if (!s.prepared()) {
        return db_error(db, "prepare: record failed login", s.prepare_rc());
    }
    return run(db, s.bind(1, key).bind(2, at), "record failed login");
}

Result<std::int64_t> count_failures(sqlite3* db, const std::string& key, UnixTime since) {
    // Pending rows are in flight: not counted here (no stale cut-off given).
    return count_key(db, key, since, since);
}

Result<void> clear_failures(sqlite3* db, const std::string& key) {
    Stmt s(db, "DELETE FROM guard_failures WHERE key = ?1");
    if (!s.prepared()) {
        return db_error(db, "prepare: clear failed logins", s.prepare_rc());
    }
    return run(db, s.bind(1, key), "clear failed logins");
}

Result<void> add_negative(sqlite3* db, const std::string& account, const std::string& digest,
                          UnixTime expires) {
    Stmt s(db, "INSERT INTO guard_negative (account, digest, expires) VALUES (?1, ?2, ?3) "
               "ON CONFLICT (account, digest) DO UPDATE SET expires = excluded.expires");
    if (!s.prepared()) {
        return db_error(db, "prepare: remember rejected password", s.prepare_rc());
    }
    return run(db, s.bind(1, account).bind(2, digest).bind(3, expires),
               "remember rejected password");
}

Result<bool> has_negative(sqlite3* db, const std::string& account, const std::string& digest,
                          UnixTime now) {
    return negative_hit(db, account, digest, now);
}

Result<void> prune(sqlite3* db, UnixTime now, UnixTime failures_before) {
    Stmt a(db, "DELETE FROM guard_negative WHERE expires <= ?1");
    if (!a.prepared()) {
        return db_error(db, "prepare: prune negative cache", a.prepare_rc());
    }
    if (auto r = run(db, a.bind(1, now), "prune negative cache"); !r) {
        return r;
    }
    Stmt b(db, "DELETE FROM guard_failures WHERE at < ?1");
    if (!b.prepared()) {
        return db_error(db, "prepare: prune failed logins", b.prepare_rc());
    }
    return run(db, b.bind(1, failures_before), "prune failed logins");
}

} // namespace mf::sqlite_guard
