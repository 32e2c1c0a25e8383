// admin_replay.hpp — `mailferry replay`: saved credentials verified and migrated in bulk.
//
// plan_replay() reads a credentials file (CommuniGate's MoveAccounts tab file, or plain
// `user<TAB>password`) into the lines to replay — login, identity (canonical account, old
// server) and the password in a wiped Secret — and a report for every line that cannot be
// replayed (malformed, a name the identity map refuses, a duplicate, an unsupported
// NewName/NewPassword). run_replay() sends each line through Engine::authenticate with
// face "replay": the same guard, the same per-server budget and the same provisioned hook
// (spool + copy queue) as a login at the new server. dry_run_replay() tells what a run
// would do, from a read-only store, contacting nobody.
//
// MoveAccounts' NewName: mailferry names the account on the new server through its
// identity map (default domain, conflict map, domain renames). A NewName that names the
// same account (equal to the canonical address, to its local part, or resolving to it
// through the identity map) is accepted; any other NewName is reported as unsupported for
// that line — honouring it would create an account the identity map does not know, which
// later logins would never find. The admin adds "Name  NewName" to identity.conflict_map
// and replays again. A non-empty NewPassword is unsupported the same way: replay moves the
// verified old password, it never sets another one.
//
// Resumable without storing passwords: an account already migrated in the store
// (is_migrated(): provisioned, copying, synced, …) is skipped, so a re-run replays only
// what is not done yet. Duplicates (two lines, one account) are replayed once; with
// different passwords the later line is reported, since which one is right is unknown.
//
// Must never: put a password, or any field of a line that may hold one, into a report, an
// error, a log line or a warning (line numbers, column counts and byte positions only).
// Errors: file-level problems (empty file, broken header) are an Error (exit 2); line
// problems are LineReports.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/engine.hpp"
#include "mailferry/error.hpp"
#include "mailferry/identity.hpp"
#include "mailferry/import.hpp"
#include "mailferry/secret.hpp"
#include "mailferry/store.hpp"

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mf::cli {

enum class ReplayFormat { automatic, moveaccounts, tab };

const char* to_string(ReplayFormat f); // "auto", "moveaccounts", "tab"
std::optional<ReplayFormat> replay_format_from(std::string_view name);

// What happened to a line (or, with --dry-run, would happen).
enum class LineResult {
    ok,             // verified (at the old server, or locally) and migrated
    skipped,        // already migrated, or the same account and password as an earlier line
    wrong_password, // FAIL: the old server (or the guard, the stored hash) said no
    temporary,      // TEMPFAIL: retry later
    malformed,      // the line cannot be read
    duplicate,      // the account is on an earlier line with another password
    unsupported,    // NewName / NewPassword that cannot be honoured safely
    refused,        // the identity map refuses the name
    would_replay,   // --dry-run: would be sent to the old server
};

const char* to_string(LineResult r); // "ok", "skipped", "wrong password", …
// True for the results that make the exit code 1 (a definite no).
bool is_definite_no(LineResult r);

struct LineReport {
    std::size_t line = 0;
    std::string user;    // the name as the file gives it, printable; "" when malformed
    std::string account; // canonical account, when known
    std::string server;  // old server (provider name), when known
    LineResult result = LineResult::malformed;
    std::string detail; // why; never the password
};

// One line to replay.
struct ReplayLine {
    std::size_t line = 0;
    std::string login; // as the file gives it
    Identity identity;
    Secret password;
};

struct ReplayPlan {
    ReplayFormat format = ReplayFormat::tab; // as detected
    std::size_t data_lines = 0;              // not blank, not a comment, not the header
    std::vector<ReplayLine> lines;           // to replay, file order
    std::vector<LineReport> reports;         // lines not to replay, with the reason
    std::vector<std::string> warnings;       // file-level: NewPassword column ignored, …
};

// Reads `file` as `format` (automatic: a first line naming the columns Name and Password
// means MoveAccounts, anything else user<TAB>password).
Result<ReplayPlan> plan_replay(const TextFile& file, ReplayFormat format, const IdentityMap& ids);

struct ReplayOptions {
    unsigned jobs = 1;           // parallel authentications
    Millis busy_wait{5 * 60000}; // per line: how long to wait for a free server slot
    // The guard's per-address key. Empty: no per-address limit — every line of a replay
    // comes from the admin, so 50 wrong passwords in a file (max_failures_per_ip) must not
    // turn the rest of it into local refusals; per-account limits still apply.
    std::string client_ip;
};

// Replays `plan.lines` through `engine` with `opt.jobs` threads; `tick` after each line
// (any thread). At most max_concurrent of our threads per old server call the engine at
// once; when the engine still answers that the server's budget is full (logins from the
// mail server hold slots too), the line waits and is retried (5 ms doubling to 50 ms, with
// jitter) until a slot is free or busy_wait has passed — then it is temporary.
// Each password is wiped as soon as its line is done. Reports in file order.
std::vector<LineReport> run_replay(Engine& engine, ReplayPlan& plan, const ReplayOptions& opt,
                                   const std::function<void()>& tick);

// What run_replay() would do, from `store` (nullptr: no database yet, nothing migrated).
std::vector<LineReport> dry_run_replay(const ReplayPlan& plan, Store* store);

// The plan's own reports merged with `done` (the lines' outcomes), sorted by line.
std::vector<LineReport> all_reports(const ReplayPlan& plan, std::vector<LineReport> done);

// Exit code for a finished report: 75 if any line is temporary (a re-run can still help),
// else 1 if any line is a definite no (wrong password, malformed, refused, duplicate,
// unsupported), else 0 (every line ok, skipped or, with --dry-run, would be replayed).
int replay_exit_code(const std::vector<LineReport>& reports);

} // namespace mf::cli
