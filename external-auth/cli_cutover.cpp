// cli_cutover.cpp — `mailferry cutover`: the end of an account's migration.
//
// SYNOPSIS
//   mailferry cutover USER... | --all  [--wait DURATION] [--no-final-sync]
// DESCRIPTION
//   Puts each account on hold (logins answer TEMPFAIL "maintenance" for the few seconds
//   it takes) and queues its final copy round at the front of the queue; the worker runs
//   it and then marks the account `cutover` and deletes its sealed password from the
//   spool. From then on logins are answered from mailferry's store only and no copy runs.
//   --no-final-sync cuts over at once (the old server is gone already): no last round.
//   --wait waits for the final rounds and reports each account.
// EXIT STATUS
//   0 every account cut over (or on hold for its final round, without --wait); 1 some
//   could not be (unknown, disabled, never logged in, final round failed); 2 usage or
//   config error; 75 the store was busy or --wait timed out.
// SECURITY
//   Changes states with an audit row each (actor admin:cutover); never reads a password.
#include "cli_command.hpp"

#include "mailferry/config.hpp"
#include "mailferry/identity.hpp"
#include "mailferry/spool.hpp"
#include "mailferry/store.hpp"

#include <chrono>
#include <iostream>
#include <thread>

namespace mf::cli {
namespace {

struct CutoverArgs {
    std::vector<std::string> users;
    bool all = false;
    bool no_final_sync = false;
    std::string wait;
};

// What happened to one account.
struct Outcome {
    std::string account;
    std::string result; // held, cutover, already, refused, failed, waiting
    std::string detail;
};

int temp_or_usage(const Error& e) {
    return e.scope == Scope::config ? kExitUsage : kExitTempFail;
}

bool copies_may_run(AccountState s) {
    switch (s) {
    case AccountState::provisioned:
    case AccountState::copying:
    case AccountState::synced:
    case AccountState::resyncing:
    case AccountState::failed:
    case AccountState::held:
        return true;
    default:
        return false;
    }
}

// The accounts named on the command line (through the identity map, as a login would
// name them) or, with --all, every account a copy may still run for.
Result<std::vector<std::string>> targets(const Config& cfg, Store& store, const CutoverArgs& a,
                                         std::vector<Outcome>& out) {
    std::vector<std::string> names;
    if (a.all) {
        auto accounts = store.list_accounts();
        if (!accounts) {
            return accounts.error();
        }
        for (const auto& acc : *accounts) {
            if (copies_may_run(acc.state) ||
                (a.no_final_sync && acc.state == AccountState::verified)) {
                names.push_back(acc.name);
            }
        }
        return names;
    }
    auto map = IdentityMap::create(cfg);
    if (!map) {
        return map.error();
    }
    for (const auto& u : a.users) {
        auto id = map->resolve(u);
        if (!id) {
            out.push_back({u, "refused", id.error().message()});
            continue;
        }
        // As a login finds it: also under a spelling an older version stored.
        auto found =
            find_login_account(store, id->canonical, id->provider->case_insensitive, nullptr);
        if (!found) {
            return found.error();
        }
        names.push_back(found->has_value() ? (**found).name : id->canonical);
    }
    return names;
}

// Holds (or, without a final round, cuts over) one account. Appends its outcome.
Result<void> start_cutover(const Config& cfg, Store& store, const std::string& name,
                           bool final_sync, std::vector<Outcome>& out) {
    auto found = store.find_account(name);
    if (!found) {
        return found.error();
    }
    if (!found->has_value()) {
        out.push_back({name, "refused", "no such account in the store (never logged in?)"});
        return {};
    }
    const Account& acc = **found;
    AuditContext ctx{"admin:cutover", "", ""};
    if (acc.state == AccountState::cutover) {
        out.push_back({name, "already", "cut over before"});
        return {};
    }
    if (acc.state == AccountState::disabled) {
        out.push_back({name, "refused", "the account is disabled"});
        return {};
    }
    if (!final_sync) {
        ctx.detail = "cut over without a final round";
        if (auto s = store.set_state(name, AccountState::cutover, ctx, acc.state); !s) {
            return s.error();
        }
        if (auto rm = spool::Spool(cfg.spool.dir).remove(name); !rm) {
            out.push_back({name, "cutover", "spool entry not deleted: " + rm.error().message()});
            return {};
        }
        out.push_back({name, "cutover", "no final round"});
        return {};
    }
    if (!copies_may_run(acc.state)) {
        out.push_back({name, "refused",
                       std::string("the account is ") + to_string(acc.state) +
                           ": no copy has run, so there is no password for a final round; "
                           "`mailferry replay` it first, or use --no-final-sync"});
        return {};
    }
    if (acc.state != AccountState::held) {
        ctx.detail = "final round queued";
        if (auto s = store.set_state(name, AccountState::held, ctx, acc.state); !s) {
            return s.error();
        }
    }
    EnqueueRequest req;
    req.account = name;
    req.provider = acc.provider;
    req.kind = JobKind::resync;
    req.priority = kPriorityLogin;
    if (auto j = store.enqueue_job(req); !j) {
        return j.error();
    }
    out.push_back({name, "held", "final round queued"});
    return {};
}

// Polls until every held account is cut over or its job given up; false on timeout.
Result<bool> wait_for(Store& store, std::vector<Outcome>& out, Millis limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
        bool pending = false;
        for (auto& o : out) {
            if (o.result != "held") {
                continue;
            }
            auto acc = store.find_account(o.account);
            if (!acc) {
                return acc.error();
            }
            if (acc->has_value() && (**acc).state == AccountState::cutover) {
                o.result = "cutover";
                o.detail = "final round done";
                continue;
            }
            auto job = store.active_job(o.account);
            if (!job) {
                return job.error();
            }
            if (!job->has_value()) {
                // No active job and not cut over: the final round was given up.
                o.result = "failed";
                o.detail = acc->has_value() ? (**acc).last_error : std::string();
                if (o.detail.empty()) {
                    o.detail = "the final round's job ended without a cut-over";
                }
                continue;
            }
            if (!(**job).last_error.empty()) {
                o.detail = "retrying: " + (**job).last_error;
            }
            pending = true;
        }
        if (!pending) {
            return true;
        }
        if (std::chrono::steady_clock::now() > end) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
}

int run(const Context& ctx, const CutoverArgs& a) {
    if (a.all == !a.users.empty()) {
        return report_error(
            ctx, make_error("cutover", "name the accounts, or --all (not both)", Scope::config),
            kExitUsage);
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
    std::vector<Outcome> out;
    auto names = targets(*cfg, **store, a, out);
    if (!names) {
        return report_error(ctx, names.error(), temp_or_usage(names.error()));
    }
    for (const auto& n : *names) {
        if (auto r = start_cutover(*cfg, **store, n, !a.no_final_sync, out); !r) {
            return report_error(ctx, r.error(), temp_or_usage(r.error()));
        }
    }
    bool timed_out = false;
    if (wait) {
        auto done = wait_for(**store, out, *wait);
        if (!done) {
            return report_error(ctx, done.error(), temp_or_usage(done.error()));
        }
        timed_out = !*done;
    }
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
        print_json({{"ok", code == kExitOk}, {"timed_out", timed_out}, {"accounts", arr}});
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

} // namespace

const Command cutover_command = {
    "cutover",
    "end accounts' migration: a final copy round, then logins answered locally only",
    "  mailferry cutover anna@example.com bob --wait 10m\n"
    "  mailferry cutover --all                 hold every account, queue final rounds\n"
    "  mailferry cutover --all --no-final-sync the old server is gone: no last round\n"
    "Exit status: 0 done, 1 some accounts refused or failed, 2 usage, 75 busy or timed out.",
    [](CLI::App& app) -> Handler {
        auto a = std::make_shared<CutoverArgs>();
        app.add_option("users", a->users, "accounts (as users log in, or full addresses)");
        app.add_flag("--all", a->all, "every account that is provisioned or further");
        app.add_flag("--no-final-sync", a->no_final_sync,
                     "cut over at once, without a last copy round");
        app.add_option("--wait", a->wait, "wait this long for the final rounds (e.g. 10m)");
        return [a](const Context& ctx) { return run(ctx, *a); };
    },
};

} // namespace mf::cli
