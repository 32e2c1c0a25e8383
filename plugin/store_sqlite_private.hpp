// store_sqlite_private.hpp — what store_sqlite.cpp shares with the files that hold parts
// of the SQLite store (store_sqlite_guard.cpp, store_variants.cpp), so no one file grows
// past its size.
//
// Must never: open a transaction of its own in the functions below (the caller holds
// one, BEGIN IMMEDIATE, and the store's mutex), or see a plain password.
#pragma once

#include "mailferry/store.hpp"

#include <cstdint>
#include <string>
#include <vector>

struct sqlite3;

namespace mf {

// A failed SQLite call as an Error: busy, locked, I/O, full disk → Retry::later.
Error db_error(sqlite3* db, const std::string& what, int rc);

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

// Accounts by name whatever the ASCII letter case (store_variants.cpp).
namespace sqlite_variants {

// Store::find_account_variants() on `db` (`path` for messages).
Result<std::vector<Account>> find(sqlite3* db, const std::string& name, const std::string& path);
// The index it uses; idempotent, not a schema version of its own (a store opened
// read-only without it answers the same, only slower).
Result<void> ensure_index(sqlite3* db);

} // namespace sqlite_variants
} // namespace mf
