// store.hpp — what mailferry remembers: accounts, their state, the audit log, the guard.
//
// One abstract interface; SQLite (plugin/store_sqlite.cpp) is the embedded default and a
// PostgreSQL back end can follow. Many login helpers run at once as separate processes,
// so every call is one short transaction and waits out a busy database up to the
// configured busy timeout (then fails with Retry::later). A Store object is thread-safe.
// No method ever takes or stores a plain password: `hash` is a {SCHEME}-prefixed hash,
// negative-cache keys are keyed digests.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/error.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mf {

// DESIGN.md: unknown → verified → provisioned → copying → synced → (resyncing ↔ synced)
// → held → cutover, plus failed and disabled. `unknown` is never stored: it is the
// absence of a row.
enum class AccountState {
    unknown,
    verified,
    provisioned,
    copying,
    synced,
    resyncing,
    held,
    cutover,
    failed,
    disabled,
};

const char* to_string(AccountState s);
std::optional<AccountState> account_state_from(std::string_view name);

// True for states in which the account exists on the new server and logins are
// answered locally.
bool is_migrated(AccountState s);

using UnixTime = std::int64_t; // seconds since the epoch

struct Account {
    std::string name;     // canonical address
    std::string provider; // old server it came from
    AccountState state = AccountState::unknown;
    std::string hash; // {SCHEME}value, empty for entries created without a password
    UnixTime created = 0;
    UnixTime updated = 0;
    UnixTime last_login = 0; // 0: never
    std::string last_error;
};

// Who caused a change, for the audit row. Never a password.
struct AuditContext {
    std::string actor;     // "checkpassword", "cgpauth", "admin:replay", "worker"
    std::string client_ip; // may be empty
    std::string detail;
};

struct AuditRow {
    std::int64_t id = 0;
    UnixTime at = 0;
    std::string account;
    std::string from_state;
    std::string to_state;
    std::string actor;
    std::string client_ip;
    std::string detail;
};

class Store {
  public:
    virtual ~Store() = default;

    [[nodiscard]] virtual int schema_version() const = 0;

    virtual Result<std::optional<Account>> find_account(const std::string& name) = 0;

    // Inserts a new account in `a.state` with an audit row (unknown → state). Fails with
    // Scope::account if the account exists already.
    virtual Result<void> create_account(const Account& a, const AuditContext& ctx) = 0;

    // Moves an account to `to` (one transaction, one audit row). With `expected_from`,
    // fails without change unless the current state is that one.
    virtual Result<void> set_state(const std::string& name, AccountState to,
                                   const AuditContext& ctx,
                                   std::optional<AccountState> expected_from = std::nullopt) = 0;

    // Replaces the stored hash (a rehash after a legacy-scheme login). Audited.
    virtual Result<void> set_hash(const std::string& name, const std::string& hash,
                                  const AuditContext& ctx) = 0;

    virtual Result<void> record_login(const std::string& name, UnixTime at) = 0;

    virtual Result<std::vector<AuditRow>> audit_log(const std::string& account) = 0;
    virtual Result<std::map<AccountState, std::int64_t>> count_by_state() = 0;
    virtual Result<std::vector<Account>> list_accounts() = 0;

    // Brute-force guard. `key` is "acct:<name>" or "ip:<address>".
    virtual Result<void> record_failure(const std::string& key, UnixTime at) = 0;
    virtual Result<std::int64_t> count_failures(const std::string& key, UnixTime since) = 0;
    virtual Result<void> clear_failures(const std::string& key) = 0;

    // Negative cache of rejected passwords, keyed by (account, keyed digest of password).
    virtual Result<void> add_negative(const std::string& account, const std::string& digest,
                                      UnixTime expires) = 0;
    virtual Result<bool> has_negative(const std::string& account, const std::string& digest,
                                      UnixTime now) = 0;
    // Drops expired guard rows; called now and then.
    virtual Result<void> prune_guard(UnixTime now, UnixTime failures_before) = 0;
};

// Opens (creating if needed, mode 0660) and migrates the SQLite store.
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path, Millis busy_timeout);

UnixTime now_unix();

} // namespace mf
