// admin_copy_all.hpp — `mailferry copy-all --imported`: copy accounts that were imported
// with their old hash and never logged in, without their passwords.
//
// The worker opens both servers with master users: [[provider]] master_user at the old
// server and [target] master_user (or a local Maildir tree) at the new one. Each such
// account is provisioned with its stored hash (builtin: mailferry's store is the passdb;
// dovecot-passwd-file: the hash is written there), moved verified → provisioned (audited)
// and queued for its first copy at the back of the queue, behind users who log in.
// The command and http provisioners need the clear-text password, so they are refused:
// replay saved passwords for those sites.
//
// Must never: provision an account without a hash, or queue one whose old server has no
// master user (its copy could only fail).
// Errors: a config that cannot work is Scope::config (exit 2); an account that cannot be
// copied this way is a "skipped" outcome with its reason.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/error.hpp"
#include "mailferry/store.hpp"

#include <string>
#include <vector>

namespace mf::admin {

struct CopyAllOutcome {
    std::string account;
    std::string result; // queued, would-queue (dry run), skipped
    std::string detail;
};

// Empty when the config lets the worker copy without users' passwords; else why not.
std::string copy_without_password_problem(const Config& cfg);

// Every `verified` account, provisioned and queued (or, with dry_run, only checked).
Result<std::vector<CopyAllOutcome>> copy_all_imported(const Config& cfg, Store& store,
                                                      bool dry_run);

} // namespace mf::admin
