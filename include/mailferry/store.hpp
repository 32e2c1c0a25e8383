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
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mf {

// unknown → verified → provisioned → copying → synced → (resyncing ↔ synced)
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

// True for states in which a copy round may run for the account (provisioned, copying,
// synced, resyncing, failed, held): it is on the new server and not yet cut over.
bool copies_may_run(AccountState s);

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

// One account of a batch import (`mailferry import`): a name, its old server and the hash
// it already has. Never a plain password.
struct ImportEntry {
    std::string name;     // canonical address
    std::string provider; // old server it belongs to
    std::string hash;     // {SCHEME}value that verify_hash() can check
    std::string detail;   // for its audit row, e.g. "imported from users.txt:12"
};

// What import_accounts() did with one entry.
enum class ImportOutcome {
    created,   // new account in state `verified` with the hash
    updated,   // an earlier import (still `verified`, never used) got the new hash
    unchanged, // the account exists with exactly this hash
    kept,      // the account exists in another state: left alone (its hash is newer)
};

// Accounts per old server and state, for `mailferry status`.
struct ProviderStateCount {
    std::string provider;
    AccountState state = AccountState::unknown;
    std::int64_t count = 0;
};

// ---- the copy job queue (one active job per account) ----

using UnixMillis = std::int64_t; // milliseconds since the epoch

// queued → running → (done | queued again for the next resync round | retry → running …
// | failed). queued, running and retry are "active": an account has at most one active
// job. failed is a job given up (last_error says why) until retried by an admin.
enum class JobState { queued, running, retry, done, failed };
// copy: the first copy after provisioning; resync: a later round until the cut-over.
enum class JobKind { copy, resync };

const char* to_string(JobState s);
const char* to_string(JobKind k);
std::optional<JobState> job_state_from(std::string_view name);
std::optional<JobKind> job_kind_from(std::string_view name);

// Claim order: higher priority first, then due time, then age. A user who just logged in
// outranks everything queued in bulk.
inline constexpr int kPriorityLogin = 100;    // the user is waiting at the new server
inline constexpr int kPriorityRecovered = 50; // found without a job (an enqueue was lost)
inline constexpr int kPriorityResync = 10;    // scheduled rounds

struct Job {
    std::int64_t id = 0;
    std::string account;
    std::string provider;     // the old server (budgets are per provider)
    std::string source_login; // the login at the old server
    JobKind kind = JobKind::copy;
    JobState state = JobState::queued;
    int priority = 0;
    UnixMillis run_at = 0;  // not claimed before
    unsigned attempts = 0;  // consecutive failures
    unsigned runs = 0;      // times claimed
    std::string claimed_by; // worker id while running
    UnixMillis lease_until = 0;
    UnixTime created = 0;
    UnixTime updated = 0;
    std::string last_error;
    std::string last_result;
    std::string taken_over_from; // set by claim_job when the job's earlier lease expired
};

struct EnqueueRequest {
    std::string account;
    std::string provider;
    std::string source_login;
    JobKind kind = JobKind::copy;
    int priority = kPriorityLogin;
    UnixMillis run_at = 0; // 0: now
};

struct ClaimRequest {
    std::string worker; // who claims: "host:pid:nonce"
    UnixMillis now = 0;
    Millis lease{120000};
    unsigned per_provider = 4; // running jobs (unexpired leases) per provider, all workers
};

// How a claimed job ended; finish_job() applies it in one transaction.
struct JobFinish {
    JobState state = JobState::done; // queued (next round), retry, done or failed
    JobKind next_kind = JobKind::resync;
    UnixMillis run_at = 0; // for queued / retry
    bool failure = false;  // counts as a consecutive failure (else resets the count)
    std::string error;     // kept in last_error on failure
    std::string result;    // summary of the run, kept in last_result
};

// ---- a batched cut-over's plan (`mailferry cutover --batch`) ----

// pending: not started; started: held, its final round queued; done: cut over;
// failed: refused or its final round given up (detail says why).
enum class CutoverStepState { pending, started, done, failed };

const char* to_string(CutoverStepState s);
std::optional<CutoverStepState> cutover_step_state_from(std::string_view name);

// One account of the plan, in the order the plan cuts them over.
struct CutoverStep {
    std::string account;
    std::int64_t position = 0; // 0-based order in the plan
    CutoverStepState state = CutoverStepState::pending;
    std::string detail;
    UnixTime updated = 0;
};

// ---- the guard's login attempts (the rules are in plugin/guard.hpp) ----

// A login whose password is about to be checked (Store::begin_guard_attempt).
struct GuardAttempt {
    std::vector<std::string> count;  // keys whose failures in the window are counted
    std::vector<std::string> record; // keys that get a pending failure row if it goes ahead
    UnixTime now = 0;
    UnixTime since = 0;        // start of the window
    UnixTime stale_before = 0; // pending rows written before this count as failures
    std::string account;       // negative cache look-up: (account, digest)
    std::string digest;
};

struct GuardTally {
    std::vector<std::int64_t> failures; // per key of GuardAttempt::count, in order
    bool negative = false;              // (account, digest) is in the negative cache
};

// Decides, inside the attempt's transaction, whether the password may be checked.
using GuardGo = std::function<bool(const GuardTally&)>;

// ---- mail the Postfix policy service put on hold (include/mailferry/mailflow.hpp) ----

// One message held for an account in its final copy round. The queue ID is known only
// late in the SMTP transaction: until then the row has smtpd's `instance` only.
struct HeldMail {
    std::string account;
    std::string instance; // smtpd's per-message instance attribute; may be empty
    std::string queue_id; // empty until END-OF-MESSAGE bound it
    UnixTime at = 0;
};

class Store {
  public:
    virtual ~Store() = default;

    [[nodiscard]] virtual int schema_version() const = 0;

    virtual Result<std::optional<Account>> find_account(const std::string& name) = 0;

    // Every account whose name equals `name` but for the letter case of ASCII letters
    // (older versions stored the spelling a user typed): the exact match first, then the
    // oldest. For old servers that ignore case (docs/ARCHITECTURE.md, "Identity").
    virtual Result<std::vector<Account>> find_account_variants(const std::string& name) = 0;

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

    // Brute-force guard, one key at a time (the engine uses the attempt calls below).
    // `key` is "acct:<name>", "ip:<address>" or "pair:<name>\x1f<address>".
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

    // One write transaction, before any password is checked, so a store that cannot be
    // written refuses the attempt instead of letting it through uncounted: counts the
    // failures of every key of a.count since a.since (a pending row written before
    // a.stale_before counts too: its attempt never reported back), looks the digest up
    // in the negative cache, asks `go`, and if it says yes writes a pending failure row
    // for every key of a.record. Returns those rows (empty when `go` said no). Pending
    // rows younger than a.stale_before are not counted, so one client's simultaneous
    // logins with the right password do not refuse each other.
    virtual Result<std::vector<std::int64_t>> begin_guard_attempt(const GuardAttempt& a,
                                                                  const GuardGo& go) = 0;
    // The password was wrong: the pending rows become failures and, with a non-empty
    // digest, (account, digest) goes into the negative cache until `negative_expires`.
    virtual Result<void> fail_guard_attempt(const std::vector<std::int64_t>& rows,
                                            const std::string& account, const std::string& digest,
                                            UnixTime negative_expires) = 0;
    // The password was right, or nobody could check it: the pending rows go, and with a
    // non-empty clear_key every failure of that key too.
    virtual Result<void> end_guard_attempt(const std::vector<std::int64_t>& rows,
                                           const std::string& clear_key) = 0;

    // ---- jobs (the copy queue) ----
    // Adds a job, or, when the account has an active one, raises its priority and brings
    // its due time forward (a retry waiting out its backoff runs now). A given-up (failed)
    // job stays as history and a new one is added. Returns the active job.
    virtual Result<Job> enqueue_job(const EnqueueRequest& req) = 0;

    // Atomically takes the best due job whose provider has fewer than `per_provider`
    // running jobs: state running, claimed_by = worker, lease until now + lease. A running
    // job whose lease expired counts as due (its worker died) and not against the budget.
    // nullopt: nothing to do now.
    virtual Result<std::optional<Job>> claim_job(const ClaimRequest& req) = 0;

    // Extends the lease of a job this worker holds. Fails with Scope::account when the job
    // is no longer ours (taken over after the lease expired): stop working on it.
    virtual Result<void> renew_job(std::int64_t id, const std::string& worker,
                                   UnixMillis lease_until) = 0;

    // Ends a run of a job this worker holds (see JobFinish). Fails with Scope::account,
    // changing nothing, when the job is no longer ours.
    virtual Result<void> finish_job(std::int64_t id, const std::string& worker,
                                    const JobFinish& how) = 0;

    // Gives a held job back unchanged (queued, due now): a worker stopping cleanly.
    virtual Result<void> release_job(std::int64_t id, const std::string& worker) = 0;

    virtual Result<std::optional<Job>> find_job(std::int64_t id) = 0;
    // The account's active job, if any.
    virtual Result<std::optional<Job>> active_job(const std::string& account) = 0;
    // All jobs (active_only: queued, running, retry), by id.
    virtual Result<std::vector<Job>> list_jobs(bool active_only) = 0;

    // Queues a job for every account that needs a copy (provisioned, copying, resyncing)
    // but has no active and no given-up job: its enqueue was lost (store locked at the
    // time, a crash). Returns how many were added.
    virtual Result<std::int64_t> enqueue_missing_jobs(int priority, UnixMillis now) = 0;

    // Puts every given-up (failed) job back in the queue, due now. Returns how many.
    virtual Result<std::int64_t> retry_failed_jobs(UnixMillis now) = 0;

    // Applies a whole import in ONE transaction: every entry is created, updated,
    // unchanged or kept (see ImportOutcome), each change with one audit row by `actor`;
    // on any error nothing at all is written. Returns one outcome per entry, in order.
    // Entries must have distinct names (the caller reports duplicates per line).
    virtual Result<std::vector<ImportOutcome>>
    import_accounts(const std::vector<ImportEntry>& entries, const std::string& actor) = 0;

    virtual Result<std::vector<ProviderStateCount>> count_by_provider_state() = 0;

    // ---- the cut-over plan: one plan at a time, kept until the next one replaces it ----
    // Replaces the plan by `accounts` (in this order, all pending), in one transaction.
    // Fails with Scope::config, changing nothing, while the current plan has a pending or
    // started step: an unfinished plan is resumed or forgotten, never overwritten.
    virtual Result<void> create_cutover_plan(const std::vector<std::string>& accounts) = 0;
    // The plan's steps by position; empty when there is none.
    virtual Result<std::vector<CutoverStep>> cutover_plan() = 0;
    // Moves one step; fails with Scope::account when the account is not in the plan.
    virtual Result<void> set_cutover_step(const std::string& account, CutoverStepState state,
                                          const std::string& detail) = 0;
    // Drops the whole plan (finished or not); the accounts' states are left as they are.
    virtual Result<std::int64_t> forget_cutover_plan() = 0;

    // ---- day-two account commands (`mailferry account`, store_sqlite_account.cpp) ----

    // The newest audit row that moved `account` into state `to`: why and from which state
    // it was disabled (AuditRow::from_state, ::detail, ::actor). nullopt: never.
    virtual Result<std::optional<AuditRow>> last_transition(const std::string& account,
                                                            AccountState to) = 0;

    // Forgets one account's migration in one transaction: its row and every job of it
    // (history too) are deleted and one audit row (its state → "unknown", by ctx) is
    // added; the older audit rows stay. Returns the row as it was. Fails with
    // Scope::account, changing nothing, when there is no such account, or (Retry::later)
    // when a worker holds a job of it under a lease that has not expired at `now`.
    virtual Result<Account> forget_account(const std::string& name, const AuditContext& ctx,
                                           UnixMillis now) = 0;
    // ---- held mail (plugin/store_sqlite_mailflow.cpp) ----
    // Remembers that mail for `account` was put on hold, by smtpd instance and/or queue
    // ID (at least one non-empty). The same row twice is one row.
    virtual Result<void> note_held_mail(const std::string& account, const std::string& instance,
                                        const std::string& queue_id, UnixTime at) = 0;
    // The rows of `instance` still without a queue ID get `queue_id`. Returns how many.
    virtual Result<std::int64_t> bind_held_mail(const std::string& instance,
                                                const std::string& queue_id) = 0;
    // The account's rows (all accounts' with an empty name), oldest first.
    virtual Result<std::vector<HeldMail>> list_held_mail(const std::string& account) = 0;
    // Forgets the rows of a message (every account), or with an empty queue_id the
    // account's rows that never got one.
    virtual Result<void> forget_held_mail(const std::string& account,
                                          const std::string& queue_id) = 0;
    // The old server said it takes mail for `address` (policy service, probe mode).
    virtual Result<void> record_known_recipient(const std::string& address,
                                                const std::string& provider, UnixTime at) = 0;
};

// The account a login named `canonical` uses (plugin/store_variants.cpp). fold_case (its
// old server ignores case): the exact name, else the oldest account spelled otherwise;
// the names of further matching rows go to *others (several accounts for one user).
Result<std::optional<Account>> find_login_account(Store& store, const std::string& canonical,
                                                  bool fold_case, std::vector<std::string>* others);

// Opens (creating if needed, mode 0660) and migrates the SQLite store.
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path, Millis busy_timeout);

// Opens an existing store for reading only (status, dry runs): creates nothing, migrates
// nothing, and every writing call fails. A missing file is an Error with Scope::config
// whose detail says so; a schema older or newer than this build is an Error too.
Result<std::unique_ptr<Store>> open_sqlite_store_readonly(const std::string& path,
                                                          Millis busy_timeout);

UnixTime now_unix();
UnixMillis now_unix_ms();

} // namespace mf
