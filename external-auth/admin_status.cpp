// admin_status.cpp — counts and one account's record for `mailferry status`. See
// admin_status.hpp.
#include "admin_status.hpp"

#include "spool_io.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sqlite3.h>
#include <sys/stat.h>

namespace mf::cli {

const char* to_string(Bucket b) {
    switch (b) {
    case Bucket::migrated:
        return "migrated";
    case Bucket::copying:
        return "copying";
    case Bucket::failed:
        return "failed";
    case Bucket::not_seen:
        return "not_seen";
    case Bucket::disabled:
        return "disabled";
    }
    return "?";
}

std::optional<Bucket> campaign_bucket(AccountState s) {
    switch (s) {
    case AccountState::synced:
    case AccountState::resyncing:
    case AccountState::held:
    case AccountState::cutover:
        return Bucket::migrated;
    case AccountState::provisioned:
    case AccountState::copying:
        return Bucket::copying;
    case AccountState::failed:
        return Bucket::failed;
    case AccountState::verified:
        return Bucket::not_seen;
    case AccountState::disabled:
        return Bucket::disabled;
    case AccountState::unknown:
        return std::nullopt;
    }
    return std::nullopt;
}

Result<CampaignStatus> campaign_status(Store& store) {
    auto rows = store.count_by_provider_state();
    if (!rows) {
        return rows.error();
    }
    CampaignStatus st;
    for (Bucket b :
         {Bucket::migrated, Bucket::copying, Bucket::failed, Bucket::not_seen, Bucket::disabled}) {
        st.buckets[b] = 0;
    }
    for (const auto& r : *rows) {
        st.by_state[r.state] += r.count;
        st.total += r.count;
        if (st.providers.empty() || st.providers.back().provider != r.provider) {
            st.providers.push_back(ProviderCounts{r.provider, {}, 0}); // rows come by provider
        }
        st.providers.back().by_state[r.state] += r.count;
        st.providers.back().total += r.count;
        if (auto b = campaign_bucket(r.state)) {
            st.buckets[*b] += r.count;
        }
    }
    auto jobs = store.list_jobs(false);
    if (!jobs) {
        return jobs.error();
    }
    for (const auto& j : *jobs) {
        if (j.state == JobState::queued || j.state == JobState::running ||
            j.state == JobState::retry) {
            ++st.jobs_active;
        } else if (j.state == JobState::failed) {
            ++st.jobs_failed;
        }
    }
    return st;
}

namespace {

// One read-only connection to a copier state file; closed on every path.
class ReadOnlyDb {
  public:
    explicit ReadOnlyDb(const std::string& path) {
        // immutable=0, mode=ro: never creates or changes anything; a running copy's WAL is
        // still seen when the -shm is readable.
        std::string uri = "file:" + path + "?mode=ro";
        rc_ = sqlite3_open_v2(uri.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr);
        if (rc_ == SQLITE_OK) {
            sqlite3_busy_timeout(db_, 2000);
        }
    }
    ~ReadOnlyDb() { sqlite3_close_v2(db_); }
    ReadOnlyDb(const ReadOnlyDb&) = delete;
    ReadOnlyDb& operator=(const ReadOnlyDb&) = delete;

    [[nodiscard]] bool ok() const { return rc_ == SQLITE_OK; }
    [[nodiscard]] std::string message() const {
        return db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc_);
    }
    // Runs a query returning integers of its first row; false (message() says why) on error.
    bool ints(const char* sql, std::vector<std::int64_t>& out) {
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK) {
            return false;
        }
        bool good = sqlite3_step(st) == SQLITE_ROW;
        for (int c = 0; good && c < sqlite3_column_count(st); ++c) {
            out.push_back(sqlite3_column_int64(st, c));
        }
        sqlite3_finalize(st);
        return good;
    }

  private:
    sqlite3* db_ = nullptr;
    int rc_ = SQLITE_OK;
};

} // namespace

CopyProgress read_copy_progress(const std::string& state_file) {
    CopyProgress p;
    p.path = state_file;
    struct stat st {};
    if (::stat(state_file.c_str(), &st) != 0) {
        if (errno != ENOENT) {
            p.problem = "stat(" + state_file + ") failed: " + std::strerror(errno) +
                        " (run as root or as the worker's user)";
        }
        return p;
    }
    p.exists = true;
    ReadOnlyDb db(state_file);
    std::vector<std::int64_t> f;
    std::vector<std::int64_t> m;
    if (!db.ok() ||
        !db.ints("SELECT COUNT(*), COALESCE(SUM(complete != 0), 0) FROM copy_folder", f) ||
        !db.ints("SELECT COALESCE(SUM(state IN (1, 2)), 0), "
                 "COALESCE(SUM(CASE WHEN state IN (1, 2) THEN size ELSE 0 END), 0), "
                 "COALESCE(SUM(state = 0), 0) FROM copy_message",
                 m)) {
        p.problem = "read " + state_file + ": " + db.message();
        return p;
    }
    p.folders = f[0];
    p.folders_complete = f[1];
    p.messages = m[0];
    p.bytes = m[1];
    p.intents = m[2];
    // Files from before the copier kept its skipped items have no copy_failure table.
    std::vector<std::int64_t> has;
    std::vector<std::int64_t> n;
    if (!db.ints("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND "
                 "name = 'copy_failure'",
                 has) ||
        (has[0] != 0 && !db.ints("SELECT COUNT(*) FROM copy_failure", n))) {
        p.problem = "read " + state_file + ": " + db.message();
        return p;
    }
    p.not_copied = has[0] != 0 ? n[0] : 0;
    return p;
}

Result<std::optional<UserStatus>> user_status(const Config& cfg, Store& store,
                                              const std::string& canonical, bool fold_case) {
    auto acct = find_login_account(store, canonical, fold_case, nullptr);
    if (!acct) {
        return acct.error();
    }
    if (!acct->has_value()) {
        return std::optional<UserStatus>();
    }
    UserStatus us;
    us.account = std::move(**acct);
    us.account.hash.clear(); // never shown; nobody below needs it
    auto audit = store.audit_log(canonical);
    if (!audit) {
        return audit.error();
    }
    const std::string provisioned = to_string(AccountState::provisioned);
    const std::string failed = to_string(AccountState::failed);
    for (const auto& row : *audit) {
        // The row that provisioned the account is its first successful login (a first
        // login creates it provisioned; an imported one moves verified → provisioned).
        if (us.first_login == 0 && row.to_state == provisioned &&
            (row.from_state == "unknown" || row.from_state == "verified")) {
            us.first_login = row.at;
        }
        if (row.to_state == failed) {
            us.last_error_at = std::max(us.last_error_at, row.at);
        }
    }
    auto jobs = store.list_jobs(false);
    if (!jobs) {
        return jobs.error();
    }
    for (const auto& j : *jobs) {
        if (j.account != canonical) {
            continue;
        }
        ++us.jobs;
        us.runs += j.runs;
        const bool active = j.state == JobState::queued || j.state == JobState::running ||
                            j.state == JobState::retry;
        const bool have_active =
            us.job && (us.job->state == JobState::queued || us.job->state == JobState::running ||
                       us.job->state == JobState::retry);
        if (active || !have_active) {
            us.job = j; // jobs come by id: the active one, else the latest
        }
    }
    us.last_error = us.account.last_error;
    if (us.last_error.empty() && us.job && !us.job->last_error.empty()) {
        us.last_error = us.job->last_error;
        us.last_error_at = us.job->updated;
    }
    if (!us.last_error.empty() && us.last_error_at == 0 && us.job) {
        us.last_error_at = us.job->updated;
    }
    if (!cfg.worker.state_dir.empty()) {
        us.copy = read_copy_progress(cfg.worker.state_dir + "/" +
                                     spool::detail::encode_name(canonical) + ".db");
    }
    return std::optional<UserStatus>(std::move(us));
}

} // namespace mf::cli
