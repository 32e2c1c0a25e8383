// admin_account.hpp — the logic of `mailferry account …` (cli_account.cpp): day-two
// changes to single accounts during and after a campaign.
//
// Each call changes the store in one transaction with one audit row by
// "admin:account" (reset: its account and job rows go, the audit rows stay).
// disable keeps the state it replaces in its audit row's from_state; enable reads it back
// from there (Store::last_transition), so no column is added. A disabled account's login
// is FAIL with the reason in the log, and its queued and retry jobs wait unclaimed
// (Store::claim_job skips them) until enable.
// Must never: print, log or keep a password; write the export file other than 0600 and
// whole (temp file, fsync, rename).
// Errors: mf::Error values; Scope::account for "no" answers about one account (exit 1),
// Retry::later for a busy store or a running copy (75), Scope::config for usage (2).
#pragma once

#include "admin_output.hpp"
#include "mailferry/secret.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mf::cli {

inline constexpr const char* kAccountActor = "admin:account";

// Every state an account row can have, in lifecycle order (not `unknown`).
const std::vector<AccountState>& stored_states();

// The store for changes: an Error with Scope::config when it does not exist (it is
// created by the first login or import, never by an admin command).
Result<std::unique_ptr<Store>> open_store_for_change(const Config& cfg);

// USER as a login names it (identity map, then a spelling an older version stored).
// Not a valid login, or not in the store: Scope::account.
Result<Account> find_user(const Loaded& loaded, Store& store, const std::string& user);

// Accounts, optionally of one state and one old server, by name.
Result<std::vector<Account>> list_filtered(Store& store, std::optional<AccountState> state,
                                           const std::string& provider);

// Puts the account in `disabled` with `reason` in the audit row. Returns the state it had.
// Already disabled: Scope::account.
Result<AccountState> disable_account(Store& store, const Account& acct, const std::string& reason);

// Puts a disabled account back in the state it had before its last disable (`verified`
// when no audit row says). Not disabled: Scope::account. Returns the state restored.
Result<AccountState> enable_account(Store& store, const Account& acct);

// Queues a copy (first copy not finished) or resync job due now at login priority, the
// front of the queue. Refused (Scope::account, with the reason) when no copy may run: the
// state, no [target], or no sealed password in the spool.
Result<Job> requeue_account(const Config& cfg, Store& store, const Account& acct);

struct ResetReport {
    Account was;
    std::string spool_entry; // path, if one was deleted
    std::string state_file;  // the copier's state file, if one was deleted
    std::vector<std::string> warnings;
};
// Forgets the account: row and jobs (Store::forget_account), its spool entry, its copier
// state file. The store goes first, so a failure there leaves everything.
Result<ResetReport> reset_account(const Config& cfg, Store& store, const std::string& name);

// Reads a new password: from a private file (read_private_secret_file; one final newline
// is dropped), or from the terminal on stdin without echo, twice. No terminal and no
// file: Scope::config. The value is checked as a login would (not empty, at most
// kMaxPasswordBytes, no CR, LF or NUL).
Result<Secret> read_new_password(const std::optional<std::string>& file);

// Hashes `password` with the configured scheme, gives it to the provisioner (the new
// server's password database, when it is not mailferry's own store) and then stores it.
Result<void> set_password(const Loaded& loaded, Store& store, const Account& acct,
                          const Secret& password);

struct ExportReport {
    std::size_t written = 0;
    std::vector<std::pair<std::string, std::string>> skipped; // account, why
};
// Every account with a stored hash that a login may use, as Dovecot passwd-file lines
// "name:{SCHEME}hash::::::". Disabled accounts and those without a hash are skipped.
ExportReport export_lines(const std::vector<Account>& accounts, std::string& text);

// Writes `text` to `path` atomically with mode 0600.
Result<void> write_export(const std::string& path, const std::string& text);

} // namespace mf::cli
