// store_sqlite_private.hpp — what store_sqlite.cpp shares with the files that hold parts
// of the SQLite store (store_sqlite_guard.cpp, store_sqlite_cutover.cpp,
// store_sqlite_account.cpp, store_variants.cpp), so no one file grows past its size.
//
// Must never: open a transaction of its own in the functions below (the caller holds
// one, BEGIN IMMEDIATE, and the store's mutex), or see a plain password.
#pragma once

#include "mailferry/store.hpp"

#include <cstdint>
#include <sqlite3.h>
#include <string>
#include <vector>

namespace mf {

// A failed SQLite call as an Error: busy, locked, I/O, full disk → Retry::later.
Error db_error(sqlite3* db, const std::string& what, int rc);

// A prepared statement, finalized on scope exit.
class Stmt {
  public:
    Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &st_, nullptr); }
    ~Stmt() { sqlite3_finalize(st_); }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    [[nodiscard]] bool prepared() const { return rc_ == SQLITE_OK; }
    [[nodiscard]] int prepare_rc() const { return rc_; }

    Stmt& bind(int i, const std::string& v) {
        sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
        return *this;
    }
    Stmt& bind(int i, std::int64_t v) {
        sqlite3_bind_int64(st_, i, v);
        return *this;
    }
    int step() { return sqlite3_step(st_); }
    // For a statement run once per row of a batch: forget the last run and its values.
    void reset() {
        sqlite3_reset(st_);
        sqlite3_clear_bindings(st_);
    }
    std::string text(int col) {
        const auto* p = sqlite3_column_text(st_, col);
        return p != nullptr ? std::string(reinterpret_cast<const char*>(p),
                                          static_cast<std::size_t>(sqlite3_column_bytes(st_, col)))
                            : std::string();
    }
    std::int64_t int64(int col) { return sqlite3_column_int64(st_, col); }

  private:
    sqlite3_stmt* st_ = nullptr;
    int rc_;
};

// An accounts row read with the columns "name, provider, state, hash, created, updated,
// last_login, last_error", in that order.
Account account_from_row(Stmt& s);

namespace sqlite_guard {

// The bodies of Store's guard methods, run inside the caller's transaction.
Result<void> begin_attempt(sqlite3* db, const GuardAttempt& a, const GuardGo& go,
                           std::vector<std::int64_t>& rows);
Result<void> fail_attempt(sqlite3* db, const std::vector<std::int64_t>& rows,
                          const std::string& account, const std::string& digest,
                          UnixTime negative_expires);
Result<void> end_attempt(sqlite3* db, const std::vector<std::int64_t>& rows,
                         const std::string& clear_key);

// The older one-key calls (kept for callers and tests that count by hand).
Result<void> record_failure(sqlite3* db, const std::string& key, UnixTime at);
Result<std::int64_t> count_failures(sqlite3* db, const std::string& key, UnixTime since);
Result<void> clear_failures(sqlite3* db, const std::string& key);
Result<void> add_negative(sqlite3* db, const std::string& account, const std::string& digest,
                          UnixTime expires);
Result<bool> has_negative(sqlite3* db, const std::string& account, const std::string& digest,
                          UnixTime now);
// Drops expired negative-cache rows and failure rows (pending ones too) older than
// failures_before.
Result<void> prune(sqlite3* db, UnixTime now, UnixTime failures_before);

} // namespace sqlite_guard

// Held mail and known recipients (store_sqlite_mailflow.cpp); the callers hold the
// transaction where there is one.
namespace sqlite_mailflow {

Result<void> note(sqlite3* db, const std::string& account, const std::string& instance,
                  const std::string& queue_id, UnixTime at);
Result<void> bind(sqlite3* db, const std::string& instance, const std::string& queue_id,
                  std::int64_t& bound);
Result<std::vector<HeldMail>> list(sqlite3* db, const std::string& account);
Result<void> forget(sqlite3* db, const std::string& account, const std::string& queue_id);
Result<void> known(sqlite3* db, const std::string& address, const std::string& provider,
                   UnixTime at);

} // namespace sqlite_mailflow

// Accounts by name whatever the ASCII letter case (store_variants.cpp).
namespace sqlite_variants {

// Store::find_account_variants() on `db` (`path` for messages).
Result<std::vector<Account>> find(sqlite3* db, const std::string& name, const std::string& path);
// The index it uses; idempotent, not a schema version of its own (a store opened
// read-only without it answers the same, only slower).
Result<void> ensure_index(sqlite3* db);

} // namespace sqlite_variants

// The cut-over plan (store_sqlite_cutover.cpp): the bodies of Store's plan methods.
namespace sqlite_cutover {

Result<void> create(sqlite3* db, const std::vector<std::string>& accounts, UnixTime now);
Result<std::vector<CutoverStep>> read(sqlite3* db);
Result<void> set_step(sqlite3* db, const std::string& account, CutoverStepState state,
                      const std::string& detail, UnixTime now);
Result<std::int64_t> forget(sqlite3* db);

} // namespace sqlite_cutover

// The day-two account calls (store_sqlite_account.cpp).
namespace sqlite_account {

Result<std::optional<AuditRow>> last_transition(sqlite3* db, const std::string& account,
                                                AccountState to);
// Store::forget_account()'s body, inside the caller's transaction.
Result<Account> forget(sqlite3* db, const std::string& name, const AuditContext& ctx,
                       UnixMillis now);

} // namespace sqlite_account
} // namespace mf
