// admin_import.hpp — `mailferry import`: an old server's account export into the store,
// all or nothing.
//
// import_file() reads FILE strictly (TextFile), plans it (plan_import: identity map,
// hashes, per-line errors and skips), and — only when no line has an error — writes every
// account in ONE Store::import_accounts() transaction. A file with any error line imports
// nothing; a re-import of the same file changes nothing (every account "unchanged").
// A dry run plans and looks the accounts up read-only, writing nothing.
// Must never: print or return a password or a hash (the report holds names, counts, line
// numbers and reasons only).
// Errors: an unreadable or unusable FILE, or a store that cannot be opened or is busy,
// come back as mf::Error (Scope::config for the file and config, Retry::later for a busy
// store); bad lines are not errors of the call: they are in the report.
#pragma once

#include "admin_output.hpp"
#include "mailferry/import.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace mf::cli {

struct ImportCounts {
    std::int64_t created = 0;
    std::int64_t updated = 0;
    std::int64_t unchanged = 0;
    std::int64_t kept = 0;
};

struct ImportReport {
    ImportPlan plan;      // errors, skipped lines, notes, warnings (no hashes shown)
    bool applied = false; // the store was written (no error lines, not a dry run)
    bool dry_run = false;
    ImportCounts counts; // what was done (or, in a dry run, what would be done)
    double seconds_plan = 0;
    double seconds_store = 0;
};

// Plans `path` and, unless `dry_run` or the plan has errors, imports it. With `progress`,
// a bar on stderr while planning (clear-text values cost a hash each) and a line while
// the transaction runs.
Result<ImportReport> import_file(const Loaded& loaded, const std::string& path,
                                 const ImportOptions& opt, bool dry_run, bool progress = false);

} // namespace mf::cli
