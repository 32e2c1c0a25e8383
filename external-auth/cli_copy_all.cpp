// cli_copy_all.cpp — `mailferry copy-all --imported`: copy imported accounts that never
// logged in, with master users at both servers (admin_copy_all.hpp).
//
// EXIT STATUS
//   0 every imported account queued (or nothing to do); 1 some skipped (each with its
//   reason); 2 usage or a config that cannot copy without passwords; 75 store busy or the
//   provisioner failed for now (a re-run goes on: queued accounts are no longer verified).
// SECURITY
//   Reads no password; hashes go to the provisioner only.
#include "admin_copy_all.hpp"
#include "cli_command.hpp"

#include "mailferry/config.hpp"
#include "mailferry/store.hpp"

#include <iostream>

namespace mf::cli {
namespace {

struct CopyAllArgs {
    bool imported = false;
    bool dry_run = false;
};

int run(const Context& ctx, const CopyAllArgs& a) {
    if (!a.imported) {
        return report_error(ctx,
                            make_error("copy-all", "say which accounts: --imported", Scope::config),
                            kExitUsage);
    }
    auto cfg = load_config(ctx.config_path);
    if (!cfg) {
        return report_error(ctx, cfg.error(), kExitUsage);
    }
    auto store = open_sqlite_store(cfg->store.path, cfg->store.busy_timeout);
    if (!store) {
        return report_error(ctx, store.error(),
                            store.error().scope == Scope::config ? kExitUsage : kExitTempFail);
    }
    auto out = admin::copy_all_imported(*cfg, **store, a.dry_run);
    if (!out) {
        return report_error(ctx, out.error(),
                            out.error().scope == Scope::config ? kExitUsage : kExitTempFail);
    }
    bool skipped = false;
    for (const auto& o : *out) {
        skipped = skipped || o.result == "skipped";
    }
    const int code = skipped ? kExitNo : kExitOk;
    if (ctx.json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& o : *out) {
            arr.push_back({{"account", o.account}, {"result", o.result}, {"detail", o.detail}});
        }
        print_json({{"ok", code == kExitOk}, {"accounts", arr}});
        return code;
    }
    for (const auto& o : *out) {
        std::cout << o.account << "  " << o.result << "  " << o.detail << "\n";
    }
    if (out->empty()) {
        std::cout << "no imported account waits for a copy\n";
    }
    return code;
}

} // namespace

const Command copy_all_command = {
    "copy-all",
    "copy imported accounts that never logged in, with master users at both servers",
    "  mailferry copy-all --imported --dry-run   which accounts, and why not the others\n"
    "  mailferry copy-all --imported             provision them with their hash, queue copies\n"
    "Needs [[provider]] master_user at each old server and [target] master_user (or\n"
    "target.maildir). Exit status: 0 all queued, 1 some skipped, 2 usage or config, 75 busy.",
    [](CLI::App& app) -> Handler {
        auto a = std::make_shared<CopyAllArgs>();
        app.add_flag("--imported", a->imported,
                     "the accounts imported with their old hash and never logged in");
        app.add_flag("--dry-run", a->dry_run, "list what would be queued; change nothing");
        return [a](const Context& ctx) { return run(ctx, *a); };
    },
};

} // namespace mf::cli
