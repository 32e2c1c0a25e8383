// cli_cutover.cpp — `mailferry cutover`: the end of accounts' migration.
//
// SYNOPSIS
//   mailferry cutover USER... | --all  [--wait DURATION] [--no-final-sync]
//   mailferry cutover [USER... | --all] --batch N [--wait DURATION] [--no-final-sync]
//   mailferry cutover --show-plan | --forget-plan
// DESCRIPTION
//   Puts each account on hold (logins answer TEMPFAIL "maintenance" for the few seconds
//   it takes) and queues its final copy round at the front of the queue; the worker runs
//   it and then marks the account `cutover` and deletes its sealed password from the
//   spool. From then on logins are answered from mailferry's store only and no copy runs.
//   --no-final-sync cuts over at once (the old server is gone already): no last round.
//   --wait waits for the final rounds and reports each account.
//   --batch N keeps a plan in the store and cuts over N accounts at a time, waiting for
//   each batch (--wait is then the limit per batch, 1h by default); every other account
//   keeps working. A second run without names resumes an unfinished plan.
// EXIT STATUS
//   0 every account cut over (or on hold for its final round, without --wait); 1 some
//   could not be (unknown, disabled, never logged in, final round failed); 2 usage or
//   config error; 75 the store was busy or --wait timed out (a plan stays resumable).
// SECURITY
//   Changes states with an audit row each (actor admin:cutover); never reads a password.
#include "admin_cutover.hpp"
#include "cli_command.hpp"

#include "mailferry/config.hpp"
#include "mailferry/store.hpp"

#include <iostream>

namespace mf::cli {
namespace {

using admin::CutoverOutcome;

struct CutoverArgs {
    std::vector<std::string> users;
    bool all = false;
    bool no_final_sync = false;
    std::string wait;
    std::size_t batch = 0; // 0: no plan, every account at once
    bool show_plan = false;
    bool forget_plan = false;
};

Error usage(const std::string& detail) {
    return make_error("cutover", detail, Scope::config);
}

// The usage rules between the options; empty when they fit together.
std::string check_usage(const CutoverArgs& a) {
    if (a.show_plan || a.forget_plan) {
        bool other = a.all || !a.users.empty() || a.batch > 0 || !a.wait.empty();
        return other || (a.show_plan && a.forget_plan)
                   ? "--show-plan and --forget-plan take no other option"
                   : "";
    }
    if (a.all && !a.users.empty()) {
        return "name the accounts, or --all (not both)";
    }
    if (a.batch == 0 && !a.all && a.users.empty()) {
        return "name the accounts, or --all (not both)";
    }
    return "";
}

int print_outcomes(const Context& ctx, const std::vector<CutoverOutcome>& out, bool timed_out,
                   nlohmann::json extra) {
    bool refused = false;
    for (const auto& o : out) {
        refused = refused || o.result == "refused" || o.result == "failed";
    }
    const int code = refused ? kExitNo : timed_out ? kExitTempFail : kExitOk;
    if (ctx.json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& o : out) {
            arr.push_back({{"account", o.account}, {"result", o.result}, {"detail", o.detail}});
        }
        extra["ok"] = code == kExitOk;
        extra["timed_out"] = timed_out;
        extra["accounts"] = arr;
        print_json(extra);
        return code;
    }
    for (const auto& o : out) {
        std::cout << o.account << "  " << o.result << "  " << o.detail << "\n";
    }
    if (out.empty()) {
        std::cout << "nothing to cut over\n";
    }
    if (timed_out) {
        std::cout << "timed out waiting for final rounds; `mailferry worker --jobs` shows them\n";
    }
    return code;
}

int show_plan(const Context& ctx, Store& store) {
    auto plan = store.cutover_plan();
    if (!plan) {
        return report_error(ctx, plan.error(), temp_or_usage(plan.error()));
    }
    if (ctx.json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& s : *plan) {
            arr.push_back({{"account", s.account},
                           {"position", s.position},
                           {"state", to_string(s.state)},
                           {"detail", s.detail},
                           {"updated", s.updated}});
        }
        print_json({{"ok", true}, {"plan", arr}});
        return kExitOk;
    }
    for (const auto& s : *plan) {
        std::cout << s.position + 1 << "  " << s.account << "  " << to_string(s.state) << "  "
                  << s.detail << "\n";
    }
    if (plan->empty()) {
        std::cout << "no cut-over plan\n";
    }
    return kExitOk;
}

int run_batches(const Context& ctx, const Config& cfg, Store& store, const CutoverArgs& a,
                std::optional<Millis> wait) {
    std::vector<CutoverOutcome> refused;
    std::optional<std::vector<std::string>> names;
    if (a.all || !a.users.empty()) {
        auto t = admin::cutover_targets(cfg, store, a.users, a.all, a.no_final_sync, refused);
        if (!t) {
            return report_error(ctx, t.error(), temp_or_usage(t.error()));
        }
        names = std::move(*t);
    }
    admin::BatchRun run;
    run.batch = a.batch;
    run.per_batch = wait.value_or(run.per_batch);
    run.final_sync = !a.no_final_sync;
    if (!ctx.json) {
        run.progress = [](const std::string& line) { std::cout << line << std::endl; };
    }
    auto report = admin::run_cutover_plan(cfg, store, names ? &*names : nullptr, run);
    if (!report) {
        return report_error(ctx, report.error(), temp_or_usage(report.error()));
    }
    if (report->resumed && names && !ctx.json) {
        std::cout << "resumed the unfinished plan; the accounts named now were not added\n";
    }
    refused.insert(refused.end(), report->outcomes.begin(), report->outcomes.end());
    return print_outcomes(ctx, refused, report->timed_out,
                          {{"resumed", report->resumed},
                           {"planned", report->planned},
                           {"remaining", report->remaining}});
}

int run_at_once(const Context& ctx, const Config& cfg, Store& store, const CutoverArgs& a,
                std::optional<Millis> wait) {
    std::vector<CutoverOutcome> out;
    auto names = admin::cutover_targets(cfg, store, a.users, a.all, a.no_final_sync, out);
    if (!names) {
        return report_error(ctx, names.error(), temp_or_usage(names.error()));
    }
    for (const auto& n : *names) {
        if (auto r = admin::start_cutover(cfg, store, n, !a.no_final_sync, out); !r) {
            return report_error(ctx, r.error(), temp_or_usage(r.error()));
        }
    }
    bool timed_out = false;
    if (wait) {
        auto done = admin::wait_for_cutover(store, out, *wait);
        if (!done) {
            return report_error(ctx, done.error(), temp_or_usage(done.error()));
        }
        timed_out = !*done;
    }
    for (auto& o : out) {
        admin::release_held_mail(cfg, store, o);
    }
    return print_outcomes(ctx, out, timed_out, nlohmann::json::object());
}

int run(const Context& ctx, const CutoverArgs& a) {
    if (auto problem = check_usage(a); !problem.empty()) {
        return report_error(ctx, usage(problem), kExitUsage);
    }
    std::optional<Millis> wait;
    if (!a.wait.empty()) {
        auto d = parse_duration(a.wait);
        if (!d) {
            return report_error(ctx,
                                make_error("--wait " + a.wait, d.error().message(), Scope::config),
                                kExitUsage);
        }
        wait = *d;
    }
    auto cfg = load_config(ctx.config_path);
    if (!cfg) {
        return report_error(ctx, cfg.error(), kExitUsage);
    }
    auto store = open_sqlite_store(cfg->store.path, cfg->store.busy_timeout);
    if (!store) {
        return report_error(ctx, store.error(), temp_or_usage(store.error()));
    }
    if (a.show_plan) {
        return show_plan(ctx, **store);
    }
    if (a.forget_plan) {
        auto n = (**store).forget_cutover_plan();
        if (!n) {
            return report_error(ctx, n.error(), temp_or_usage(n.error()));
        }
        if (ctx.json) {
            print_json({{"ok", true}, {"forgotten", *n}});
        } else {
            std::cout << "cut-over plan of " << *n << " accounts dropped\n";
        }
        return kExitOk;
    }
    return a.batch > 0 ? run_batches(ctx, *cfg, **store, a, wait)
                       : run_at_once(ctx, *cfg, **store, a, wait);
}

} // namespace

const Command cutover_command = {
    "cutover",
    "end accounts' migration: a final copy round, then logins answered locally only",
    "  mailferry cutover anna@example.com bob --wait 10m\n"
    "  mailferry cutover --all                 hold every account, queue final rounds\n"
    "  mailferry cutover --all --no-final-sync the old server is gone: no last round\n"
    "  mailferry cutover --all --batch 50 --wait 30m   50 at a time, by a plan in the store\n"
    "  mailferry cutover --batch 50            resume the unfinished plan\n"
    "  mailferry cutover --show-plan           where the plan stands\n"
    "Exit status: 0 done, 1 some accounts refused or failed, 2 usage, 75 busy or timed out.",
    [](CLI::App& app) -> Handler {
        auto a = std::make_shared<CutoverArgs>();
        app.add_option("users", a->users, "accounts (as users log in, or full addresses)");
        app.add_flag("--all", a->all, "every account that is provisioned or further");
        app.add_flag("--no-final-sync", a->no_final_sync,
                     "cut over at once, without a last copy round");
        app.add_option("--wait", a->wait,
                       "wait this long for the final rounds (e.g. 10m); with --batch, per batch");
        app.add_option("--batch", a->batch, "cut over this many accounts at a time, by a plan")
            ->check(CLI::Range(1, 1000000));
        app.add_flag("--show-plan", a->show_plan, "print the cut-over plan and exit");
        app.add_flag("--forget-plan", a->forget_plan, "drop the cut-over plan and exit");
        return [a](const Context& ctx) { return run(ctx, *a); };
    },
};

} // namespace mf::cli
