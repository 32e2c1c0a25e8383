// cli_worker.cpp — `mailferry worker`: run the background copies (see worker.hpp).
//
// SYNOPSIS
//   mailferry worker [--copies N] [--once] [--idle-exit DURATION] [--no-host-lock] [--syslog]
//   mailferry worker --jobs            list the copy jobs and exit
//   mailferry worker --retry-failed    put given-up jobs back in the queue and exit
// DESCRIPTION
//   Claims copy jobs from the store and runs them until SIGTERM/SIGINT, which stop it
//   cleanly: running copies stop at their next safe point and their jobs are given back.
//   Logs to stderr (journald under systemd) or, with --syslog, to syslog (mail facility).
//   One worker per host unless --no-host-lock; a second one exits 0 at once.
// EXIT STATUS
//   0 stopped or done; 2 config error (no [target], unreadable secret key …); 75 the
//   store or a file was temporarily unavailable.
// SECURITY
//   Runs as the `mailferry` user, the only one that can read the spool's secret key; it
//   refuses a key file others may read. Never prints a password.
#include "cli_command.hpp"

#include "mailferry/log.hpp"
#include "mailferry/store.hpp"
#include "worker.hpp"

#include <iostream>

namespace mf::cli {
namespace {

struct WorkerArgs {
    unsigned copies = 0;
    bool once = false;
    std::string idle_exit;
    bool no_host_lock = false;
    bool syslog = false;
    bool jobs = false;
    bool retry_failed = false;
};

int exit_code_for(const Error& e) {
    return e.scope == Scope::config ? kExitUsage : e.temporary() ? kExitTempFail : kExitSoftware;
}

nlohmann::json job_json(const Job& j) {
    return {{"id", j.id},
            {"account", j.account},
            {"provider", j.provider},
            {"kind", to_string(j.kind)},
            {"state", to_string(j.state)},
            {"priority", j.priority},
            {"run_at_ms", j.run_at},
            {"attempts", j.attempts},
            {"runs", j.runs},
            {"claimed_by", j.claimed_by},
            {"last_error", j.last_error},
            {"last_result", j.last_result}};
}

int list_jobs(const Context& ctx, Store& store) {
    auto jobs = store.list_jobs(false);
    if (!jobs) {
        return report_error(ctx, jobs.error(), exit_code_for(jobs.error()));
    }
    if (ctx.json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& j : *jobs) {
            arr.push_back(job_json(j));
        }
        print_json({{"ok", true}, {"jobs", arr}});
        return kExitOk;
    }
    for (const auto& j : *jobs) {
        std::cout << j.id << "  " << j.account << "  " << to_string(j.kind) << "  "
                  << to_string(j.state) << "  runs " << j.runs << "  failures " << j.attempts;
        if (!j.claimed_by.empty()) {
            std::cout << "  by " << j.claimed_by;
        }
        std::cout << "\n";
        if (!j.last_result.empty()) {
            std::cout << "    last result: " << j.last_result << "\n";
        }
        if (!j.last_error.empty()) {
            std::cout << "    last error: " << j.last_error << "\n";
        }
    }
    if (jobs->empty()) {
        std::cout << "no copy jobs\n";
    }
    return kExitOk;
}

int run_worker(const Context& ctx, const WorkerArgs& a) {
    auto cfg = load_config(ctx.config_path);
    if (!cfg) {
        return report_error(ctx, cfg.error(), kExitUsage);
    }
    log::set_program("mailferry-worker");
    log::set_level(cfg->log.level);
    if (a.syslog) {
        log::use_syslog("mailferry-worker");
    }
    for (const auto& w : cfg->warnings) {
        log::warning("config: " + w);
    }
    if (a.jobs || a.retry_failed) {
        auto store = open_sqlite_store(cfg->store.path, cfg->store.busy_timeout);
        if (!store) {
            return report_error(ctx, store.error(), exit_code_for(store.error()));
        }
        if (a.jobs) {
            return list_jobs(ctx, **store);
        }
        auto n = (*store)->retry_failed_jobs(now_unix_ms());
        if (!n) {
            return report_error(ctx, n.error(), exit_code_for(n.error()));
        }
        if (ctx.json) {
            print_json({{"ok", true}, {"requeued", *n}});
        } else {
            std::cout << *n << " given-up job(s) queued again\n";
        }
        return kExitOk;
    }
    worker::Options opts;
    opts.copies = a.copies;
    opts.once = a.once;
    opts.host_lock = !a.no_host_lock;
    if (!a.idle_exit.empty()) {
        auto d = parse_duration(a.idle_exit);
        if (!d) {
            return report_error(
                ctx, make_error("--idle-exit " + a.idle_exit, d.error().message(), Scope::config),
                kExitUsage);
        }
        opts.idle_exit = *d;
    }
    const auto& stop = worker::install_stop_signals();
    auto w = worker::Worker::create(*cfg, opts);
    if (!w) {
        log::error("worker: cannot start: " + w.error().message());
        return exit_code_for(w.error());
    }
    auto r = (*w)->run(stop);
    if (!r) {
        log::error("worker: " + r.error().message());
        return exit_code_for(r.error());
    }
    return kExitOk;
}

} // namespace

const Command worker_command = {
    "worker",
    "run the background copies (until SIGTERM)",
    "  mailferry worker                      (as the mailferry user; see examples/systemd)\n"
    "  mailferry worker --copies 4 --once    run what is due now, then exit\n"
    "  mailferry worker --jobs               list the copy jobs\n"
    "  mailferry worker --retry-failed       queue given-up jobs again\n"
    "Exit status: 0 stopped or done, 2 config error, 75 try again later.",
    [](CLI::App& app) -> Handler {
        auto a = std::make_shared<WorkerArgs>();
        app.add_option("--copies", a->copies, "copies at once (default: worker.copies)")
            ->check(CLI::Range(1, 256));
        app.add_flag("--once", a->once, "exit when nothing is due and nothing runs");
        app.add_option("--idle-exit", a->idle_exit, "exit after this long without work")
            ->option_text("DURATION");
        app.add_flag("--no-host-lock", a->no_host_lock,
                     "allow several workers on this host (tests, benchmarks)");
        app.add_flag("--syslog", a->syslog, "log to syslog instead of stderr");
        app.add_flag("--jobs", a->jobs, "list the copy jobs and exit");
        app.add_flag("--retry-failed", a->retry_failed,
                     "put given-up jobs back in the queue and exit");
        return [a](const Context& ctx) { return run_worker(ctx, *a); };
    },
};

} // namespace mf::cli
