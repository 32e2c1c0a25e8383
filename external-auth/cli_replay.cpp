// cli_replay.cpp — `mailferry replay`: migrate users from a saved credentials file.
//
// SYNOPSIS
//   mailferry replay FILE [--format auto|moveaccounts|tab] [--dry-run] [--jobs N]
//                         [--busy-wait DURATION] [--syslog]
// DESCRIPTION
//   For users who will not log in soon. Each line's user and password go through the
//   engine exactly as a login at the new server does (face "replay"): identity map, store,
//   guard (failures per account and per address — the whole run counts as the one client
//   address "replay"), the old server's max_concurrent budget, the verifier, the
//   provisioner, and with a [target] the spool and the copy queue. One report line per
//   file line: ok, skipped (already migrated), wrong password, temporary (retry later),
//   malformed / duplicate / unsupported / refused with the reason — never the password.
//   Re-running the same file skips every account already migrated, so a run that ended
//   in temporary failures is simply run again. --jobs runs N authentications at once;
//   when the old server's budget is full the line waits for a free slot (up to
//   --busy-wait) instead of failing, so the configured per-server limit sets the pace.
//   --dry-run reads the file, maps every user and reports its old server and whether it
//   is already migrated, contacting nobody and changing nothing.
//   Formats: MoveAccounts (CommuniGate: a TAB-separated header naming Name and Password,
//   optionally NewName and NewPassword — see admin_replay.hpp for how NewName is
//   honoured) and user<TAB>password (blank lines and lines starting with '#' ignored).
// EXIT STATUS
//   75 some line is temporary (run again later); else 1 some line is a wrong password,
//   malformed, refused, a conflicting duplicate or unsupported; else 0 (all ok or
//   skipped). 2: usage, config or an unusable file (unreadable, empty, UTF-16, no
//   header). 75 wins over 1 because a re-run can still change it; a script loops on 75.
// SECURITY
//   Passwords live in the file's wiped buffer and in Secrets only; they are never printed,
//   logged or echoed (a bad line is reported by its number and reason). A file readable
//   by others is warned about. The engine's per-login log lines go to syslog with
//   --syslog, else only errors reach stderr.
#include "admin_output.hpp"
#include "admin_replay.hpp"
#include "cli_command.hpp"

#include "mailferry/engine.hpp"
#include "mailferry/import.hpp"
#include "mailferry/log.hpp"

#include <iostream>
#include <map>

namespace mf::cli {
namespace {

struct ReplayArgs {
    std::string file;
    std::string format = "auto";
    bool dry_run = false;
    unsigned jobs = 1;
    std::string busy_wait = "5m";
    bool syslog = false;
};

nlohmann::json report_json(const LineReport& r) {
    return {{"line", r.line},
            {"user", r.user},
            {"account", r.account},
            {"server", r.server},
            {"result", to_string(r.result)},
            {"detail", r.detail}};
}

std::map<std::string, std::size_t> counts_of(const std::vector<LineReport>& reports) {
    std::map<std::string, std::size_t> c;
    for (const auto& r : reports) {
        ++c[to_string(r.result)];
    }
    return c;
}

void print_text(const std::vector<LineReport>& reports, const ReplayPlan& plan, bool dry_run,
                const std::string& file) {
    Table t({"LINE", "USER", "ACCOUNT", "SERVER", "RESULT", "DETAIL"});
    for (const auto& r : reports) {
        t.add({std::to_string(r.line), r.user, r.account, r.server, to_string(r.result),
               printable(r.detail, 300)});
    }
    if (!t.empty()) {
        t.print(std::cout);
        std::cout << "\n";
    }
    std::string summary;
    for (const auto& [what, n] : counts_of(reports)) {
        summary += (summary.empty() ? "" : ", ") + std::to_string(n) + " " + what;
    }
    std::cout << (dry_run ? "dry run of " : "replayed ") << file << " (" << to_string(plan.format)
              << ", " << plan.data_lines << " lines): " << (summary.empty() ? "nothing" : summary)
              << "\n";
}

int replay(const Context& ctx, const ReplayArgs& a) {
    auto format = replay_format_from(a.format);
    if (!format) {
        return report_error(
            ctx, make_error("--format " + a.format, "use auto, moveaccounts or tab"), kExitUsage);
    }
    auto busy_wait = parse_duration(a.busy_wait);
    if (!busy_wait) {
        return report_error(ctx, busy_wait.error(), kExitUsage);
    }
    if (a.jobs == 0 || a.jobs > 256) {
        return report_error(ctx, make_error("--jobs", "between 1 and 256"), kExitUsage);
    }
    std::vector<std::string> warnings;
    if (auto w = readable_by_others_warning(a.file); !w.empty()) {
        warnings.push_back(w);
    }
    auto loaded = load_config_and_identity(ctx.config_path);
    if (!loaded) {
        return report_error(ctx, loaded.error(), kExitUsage);
    }
    auto file = TextFile::read(a.file);
    if (!file) {
        return report_error(ctx, file.error(), kExitUsage);
    }
    auto plan = plan_replay(*file, *format, *(*loaded)->ids);
    if (!plan) {
        return report_error(ctx, plan.error(), kExitUsage);
    }
    warnings.insert(warnings.end(), plan->warnings.begin(), plan->warnings.end());
    if (!ctx.json) {
        for (const auto& w : warnings) {
            warn(w);
        }
    }

    std::vector<LineReport> done;
    if (a.dry_run) {
        bool missing = false;
        auto store = open_store_readonly((*loaded)->cfg, &missing);
        if (!store) {
            return report_error(ctx, store.error(), kExitTempFail);
        }
        done = dry_run_replay(*plan, store->get());
    } else {
        if (!a.syslog) {
            log::set_sink([](LogLevel level, std::string_view line) {
                if (level == LogLevel::error) {
                    std::cerr << line << "\n";
                }
            });
        } else {
            log::use_syslog("mailferry-replay");
        }
        // The engine loads its own copy of the config: the plan's identities point into ours.
        auto engine = Engine::open(ctx.config_path);
        if (!engine) {
            return report_error(ctx, engine.error(),
                                engine.error().temporary() ? kExitTempFail : kExitUsage);
        }
        Progress progress("replay", plan->lines.size(), !ctx.json && stderr_is_tty());
        ReplayOptions opt;
        opt.jobs = a.jobs;
        opt.busy_wait = *busy_wait;
        done = run_replay(**engine, *plan, opt, [&progress] { progress.tick(); });
        progress.finish();
    }
    std::vector<LineReport> reports = all_reports(*plan, std::move(done));
    const int code = replay_exit_code(reports);
    if (ctx.json) {
        nlohmann::json lines = nlohmann::json::array();
        for (const auto& r : reports) {
            lines.push_back(report_json(r));
        }
        print_json({{"ok", code == kExitOk},
                    {"file", a.file},
                    {"format", to_string(plan->format)},
                    {"dry_run", a.dry_run},
                    {"data_lines", plan->data_lines},
                    {"counts", counts_of(reports)},
                    {"lines", lines},
                    {"warnings", warnings},
                    {"exit", code}});
    } else {
        print_text(reports, *plan, a.dry_run, a.file);
    }
    return code;
}

} // namespace

const Command replay_command = {
    "replay",
    "verify and migrate users from a saved credentials file",
    "  mailferry replay --dry-run accounts.txt\n"
    "  mailferry replay --jobs 8 accounts.txt\n"
    "  mailferry replay --format moveaccounts MoveAccounts.txt\n"
    "  mailferry --json replay accounts.txt | jq '.lines[] | select(.result != \"ok\")'\n"
    "  until mailferry replay accounts.txt; [ $? -ne 75 ]; do sleep 600; done\n"
    "FILE: user<TAB>password per line, or CommuniGate's MoveAccounts file (header: Name,\n"
    "Password[, NewName, NewPassword]). Passwords are never printed; keep the file mode 600.\n"
    "Re-running skips accounts already migrated. Exit: 0 all ok or skipped, 1 wrong\n"
    "passwords or bad lines, 75 temporary failures (run again later; wins over 1), 2 usage.",
    [](CLI::App& app) -> Handler {
        auto a = std::make_shared<ReplayArgs>();
        app.add_option("FILE", a->file, "the credentials file")->required();
        app.add_option("--format", a->format, "auto (default), moveaccounts or tab")
            ->check(CLI::IsMember({"auto", "moveaccounts", "tab"}));
        app.add_flag("--dry-run", a->dry_run,
                     "check the file and show what would happen; contact nobody, change nothing");
        app.add_option("--jobs", a->jobs, "authentications at once (default 1)")
            ->check(CLI::Range(1, 256));
        app.add_option("--busy-wait", a->busy_wait,
                       "per line, how long to wait for a free old-server slot (default 5m)");
        app.add_flag("--syslog", a->syslog,
                     "log each login to syslog (facility mail) as the login helpers do");
        return [a](const Context& ctx) { return replay(ctx, *a); };
    },
};

} // namespace mf::cli
