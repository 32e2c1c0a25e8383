// admin_status.hpp — `mailferry status`: the campaign in numbers, and one account in detail.
//
// campaign_status() counts accounts per state and per old server (provider) and sorts the
// states into the campaign's buckets (campaign_bucket()):
//   migrated      synced, resyncing, held, cutover — the first full copy is done
//   copying       provisioned, copying — logged in, first copy queued or running
//   failed        failed — the last copy failed; the worker retries it
//   not yet seen  verified — known to the store (imported) but never logged in
//   disabled      disabled
// Users who never logged in and were never imported are not in the store at all; only
// `mailferry never-logged-in` (the old server's logs) can count them.
//
// user_status() gathers what the store and the worker recorded for one account: state,
// created, first login (the audit row that provisioned it), last login, its copy jobs
// (runs = times a worker took a job of this account, so retries count), last result and
// last error with when, and the copier's state file (worker.state_dir/NAME.db) read
// read-only: folders known and complete, messages and bytes copied, open intents. The
// copier does not record how many messages the old server has, so there is no total.
// Must never: write to the store or a state file; print a hash.
// Errors: store errors come back as mf::Error; an unreadable state file is not an error
// (CopyProgress::problem says why).
#pragma once

#include "admin_output.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mf::cli {

enum class Bucket { migrated, copying, failed, not_seen, disabled };
const char* to_string(Bucket b); // "migrated", "copying", "failed", "not_seen", "disabled"
// nullopt for unknown (never stored).
std::optional<Bucket> campaign_bucket(AccountState s);

struct ProviderCounts {
    std::string provider;
    std::map<AccountState, std::int64_t> by_state;
    std::int64_t total = 0;
};

struct CampaignStatus {
    std::map<AccountState, std::int64_t> by_state;
    std::vector<ProviderCounts> providers; // by name
    std::map<Bucket, std::int64_t> buckets;
    std::int64_t total = 0;
    std::int64_t jobs_active = 0; // queued, running, retry
    std::int64_t jobs_failed = 0; // given up
};

Result<CampaignStatus> campaign_status(Store& store);

// What the copier's state file says (all zero when there is none yet).
struct CopyProgress {
    std::string path;
    bool exists = false;
    std::string problem; // why it could not be read; "" when read (or absent)
    std::int64_t folders = 0;
    std::int64_t folders_complete = 0;
    std::int64_t messages = 0;   // copied (target UID known, or appended)
    std::int64_t bytes = 0;      // of those messages
    std::int64_t intents = 0;    // appends begun whose outcome is not yet known
    std::int64_t not_copied = 0; // messages and folders the last run skipped (with reasons)
};

CopyProgress read_copy_progress(const std::string& state_file);

struct UserStatus {
    Account account;
    UnixTime first_login = 0; // 0: never logged in
    std::optional<Job> job;   // the active job, else the latest one
    std::int64_t jobs = 0;    // jobs of this account, all time
    std::int64_t runs = 0;    // times a worker took one of them
    std::string last_error;
    UnixTime last_error_at = 0;
    CopyProgress copy;
};

// nullopt: no such account in the store.
// fold_case: its old server ignores letter case, so the account is found as a login finds
// it (find_login_account), also under a spelling an older version stored.
Result<std::optional<UserStatus>> user_status(const Config& cfg, Store& store,
                                              const std::string& canonical, bool fold_case);

} // namespace mf::cli
