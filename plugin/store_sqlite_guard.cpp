// store_sqlite_guard.cpp — the guard's tables in the SQLite store: failure rows per key,
// pending rows of attempts in flight, the negative cache.
//
// A pending row is a failure row whose key carries the prefix "pending:". It is written
// before a password is checked and then deleted (right password, or nobody could check
// it) or renamed to its plain key (wrong password). A pending row that is never settled
// (a crash, a store that broke in between) counts as a failure once it is stale.
// Must never: run outside the caller's transaction, or see a plain password.
#include "store_sqlite_private.hpp"

#include <memory>
#include <sqlite3.h>

namespace mf::sqlite_guard {
namespace {

constexpr const char* kPending = "pending:";

struct Finalize {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, Finalize>;

Result<StmtPtr> prepare(sqlite3* db, const char* sql, const std::string& what) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
    StmtPtr s(raw);
    if (rc != SQLITE_OK) {
        return db_error(db, "prepare: " + what, rc);
    }
    return s;
}

void bind_text(sqlite3_stmt* s, int i, const std::string& v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

// Failures of `key` since `since`, with its stale pending rows.
Result<std::int64_t> count_key(sqlite3* db, const std::string& key, UnixTime since,
                               UnixTime stale_before) {
    auto s = prepare(db,
                     "SELECT (SELECT COUNT(*) FROM guard_failures WHERE key = ?1 AND at >= ?2) + "
                     "(SELECT COUNT(*) FROM guard_failures WHERE key = ?3 AND at >= ?2 AND "
                     "at < ?4)",
                     "count failed logins");
    if (!s) {
        return s.error();
    }
    bind_text(s->get(), 1, key);
    sqlite3_bind_int64(s->get(), 2, since);
    bind_text(s->get(), 3, kPending + key);
    sqlite3_bind_int64(s->get(), 4, stale_before);
    if (int rc = sqlite3_step(s->get()); rc != SQLITE_ROW) {
        return db_error(db, "count failed logins", rc);
    }
    return sqlite3_column_int64(s->get(), 0);
}

Result<bool> negative_hit(sqlite3* db, const std::string& account, const std::string& digest,
                          UnixTime now) {
    auto s = prepare(db,
                     "SELECT 1 FROM guard_negative WHERE account = ?1 AND digest = ?2 AND "
                     "expires > ?3",
                     "look up rejected passwords");
    if (!s) {
        return s.error();
    }
    bind_text(s->get(), 1, account);
    bind_text(s->get(), 2, digest);
    sqlite3_bind_int64(s->get(), 3, now);
    int rc = sqlite3_step(s->get());
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        return db_error(db, "look up rejected passwords", rc);
    }
    return rc == SQLITE_ROW;
}

// Runs `sql` once per row id (?1).
Result<void> for_rows(sqlite3* db, const char* sql, const std::vector<std::int64_t>& rows,
                      const std::string& what) {
    auto s = prepare(db, sql, what);
    if (!s) {
        return s.error();
    }
    for (std::int64_t id : rows) {
        sqlite3_reset(s->get());
        sqlite3_bind_int64(s->get(), 1, id);
        if (int rc = sqlite3_step(s->get()); rc != SQLITE_DONE) {
            return db_error(db, what, rc);
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
    auto s = prepare(db, "INSERT INTO guard_failures (key, at) VALUES (?1, ?2)",
                     "record a login attempt");
    if (!s) {
        return s.error();
    }
    for (const auto& key : a.record) {
        sqlite3_reset(s->get());
        bind_text(s->get(), 1, kPending + key);
        sqlite3_bind_int64(s->get(), 2, a.now);
        if (int rc = sqlite3_step(s->get()); rc != SQLITE_DONE) {
            return db_error(db, "record a login attempt", rc);
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
    auto s =
        prepare(db, "INSERT INTO guard_failures (key, at) VALUES (?1, ?2)", "record failed login");
    if (!s) {
        return s.error();
    }
    bind_text(s->get(), 1, key);
    sqlite3_bind_int64(s->get(), 2, at);
    if (int rc = sqlite3_step(s->get()); rc != SQLITE_DONE) {
        return db_error(db, "record failed login", rc);
    }
    return {};
}

Result<std::int64_t> count_failures(sqlite3* db, const std::string& key, UnixTime since) {
    // Pending rows are in flight: not counted here (no stale cut-off given).
    return count_key(db, key, since, since);
}

Result<void> clear_failures(sqlite3* db, const std::string& key) {
    auto s = prepare(db, "DELETE FROM guard_failures WHERE key = ?1", "clear failed logins");
    if (!s) {
        return s.error();
    }
    bind_text(s->get(), 1, key);
    if (int rc = sqlite3_step(s->get()); rc != SQLITE_DONE) {
        return db_error(db, "clear failed logins", rc);
    }
    return {};
}

Result<void> add_negative(sqlite3* db, const std::string& account, const std::string& digest,
                          UnixTime expires) {
    auto s = prepare(db,
                     "INSERT INTO guard_negative (account, digest, expires) VALUES (?1, ?2, ?3) "
                     "ON CONFLICT (account, digest) DO UPDATE SET expires = excluded.expires",
                     "remember rejected password");
    if (!s) {
        return s.error();
    }
    bind_text(s->get(), 1, account);
    bind_text(s->get(), 2, digest);
    sqlite3_bind_int64(s->get(), 3, expires);
    if (int rc = sqlite3_step(s->get()); rc != SQLITE_DONE) {
        return db_error(db, "remember rejected password", rc);
    }
    return {};
}

Result<bool> has_negative(sqlite3* db, const std::string& account, const std::string& digest,
                          UnixTime now) {
    return negative_hit(db, account, digest, now);
}

Result<void> prune(sqlite3* db, UnixTime now, UnixTime failures_before) {
    auto a = prepare(db, "DELETE FROM guard_negative WHERE expires <= ?1", "prune negative cache");
    if (!a) {
        return a.error();
    }
    sqlite3_bind_int64(a->get(), 1, now);
    if (int rc = sqlite3_step(a->get()); rc != SQLITE_DONE) {
        return db_error(db, "prune negative cache", rc);
    }
    auto b = prepare(db, "DELETE FROM guard_failures WHERE at < ?1", "prune failed logins");
    if (!b) {
        return b.error();
    }
    sqlite3_bind_int64(b->get(), 1, failures_before);
    if (int rc = sqlite3_step(b->get()); rc != SQLITE_DONE) {
        return db_error(db, "prune failed logins", rc);
    }
    return {};
}

} // namespace mf::sqlite_guard
