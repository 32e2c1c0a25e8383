// cli_never_logged_in.cpp — `mailferry never-logged-in`: who still uses the old server.
//
// SYNOPSIS
//   mailferry never-logged-in --log FILE... [--since 6m] [--format auto|dovecot|courier|syslog]
// DESCRIPTION
//   Reads the OLD server's login lines (Dovecot or Courier; plain or gzip'd rotations;
//   syslog, ISO 8601 or Dovecot log_path timestamps), maps each login name through the
//   identity map as a login at the new server would be, and lists the accounts that
//   logged in there within the period but have no migrated account in mailferry yet:
//   their last login at the old server and how many logins in the period. Lines that
//   cannot be read are counted as garbage (a few shown), never fatal. Names outside the
//   migrated domains are counted as not mapped.
//   The period: 12h, 30d, 2w, 6m (MONTHS here, not minutes), 1y.
// EXIT STATUS
//   0 listed (the list may be empty); 2 usage or config error, or a log file that cannot
//   be read (named); 75 the store was busy.
// SECURITY
//   Reads logs and the store only; keeps nothing of a line but the name and the time.
#include "admin_logins.hpp"
#include "admin_output.hpp"
#include "cli_command.hpp"

#include <algorithm>
#include <iostream>
#include <sys/stat.h>

namespace mf::cli {
namespace {

struct Args {
    std::vector<std::string> logs;
    std::string since = "6m";
    std::string format = "auto";
};

struct Pending {
    std::string account;
    UnixTime last = 0;
    std::int64_t logins = 0;
    std::string in_store;  // "no", or the state of a not-migrated account
    bool fold_case = true; // its old server ignores letter case (find_login_account)
};

int run(const Context& ctx, const Args& a) {
    auto format = log_format_from(a.format);
    if (!format) {
        return report_error(ctx,
                            make_error("--format " + a.format,
                                       "expected auto, dovecot, courier or syslog", Scope::config),
                            kExitUsage);
    }
    const UnixTime now = now_unix();
    auto since = since_from_period(a.since, now);
    if (!since) {
        return report_error(ctx, since.error(), kExitUsage);
    }
    auto loaded = load_config_and_identity(ctx.config_path);
    if (!loaded) {
        return report_error(ctx, loaded.error(), kExitUsage);
    }

    std::uint64_t total = 0;
    for (const auto& f : a.logs) {
        struct stat st {};
        total += ::stat(f.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    }
    LogScan scan;
    {
        Progress bar("reading logs", total, stderr_is_tty() && !ctx.json);
        for (const auto& f : a.logs) {
            std::uint64_t shown = 0;
            auto r = scan_log(f, *format, *since, scan, [&](std::uint64_t done) {
                bar.tick(done - shown);
                shown = done;
            });
            if (!r) {
                bar.finish();
                return report_error(ctx, r.error(), kExitUsage);
            }
        }
        bar.finish();
    }

    // Login names → accounts, as the new server's login would map them.
    std::map<std::string, Pending> accounts;
    std::int64_t unmapped = 0;
    std::vector<std::string> unmapped_examples;
    for (const auto& [user, l] : scan.users) {
        if (l.count == 0) {
            continue; // not within the period
        }
        auto id = (*loaded)->ids->resolve(user);
        if (!id) {
            ++unmapped;
            if (unmapped_examples.size() < 5) {
                unmapped_examples.push_back(printable(user, 80) + ": " + id.error().message());
            }
            continue;
        }
        Pending& p = accounts[id->canonical];
        p.account = id->canonical;
        p.fold_case = id->provider->case_insensitive;
        p.last = std::max(p.last, l.last);
        p.logins += l.count;
    }

    bool missing = false;
    auto store = open_store_readonly((*loaded)->cfg, &missing);
    if (!store) {
        return report_error(ctx, store.error(),
                            store.error().temporary() ? kExitTempFail : kExitUsage);
    }
    std::vector<Pending> out;
    std::int64_t migrated = 0;
    for (auto& [name, p] : accounts) {
        p.in_store = "no";
        if (!missing) {
            auto acct = find_login_account(**store, name, p.fold_case, nullptr);
            if (!acct) {
                return report_error(ctx, acct.error(),
                                    acct.error().temporary() ? kExitTempFail : kExitUsage);
            }
            if (acct->has_value()) {
                if (is_migrated((**acct).state)) {
                    ++migrated;
                    continue;
                }
                p.in_store = to_string((**acct).state);
            }
        }
        out.push_back(p);
    }

    const std::string since_text = local_time(*since);
    if (ctx.json) {
        nlohmann::json users = nlohmann::json::array();
        for (const auto& p : out) {
            users.push_back({{"account", p.account},
                             {"last_login", iso_utc(p.last)},
                             {"logins", p.logins},
                             {"in_store", p.in_store}});
        }
        print_json({{"ok", true},
                    {"since", iso_utc(*since)},
                    {"count", out.size()},
                    {"users", users},
                    {"already_migrated", migrated},
                    {"store_exists", !missing},
                    {"files", scan.files},
                    {"lines", scan.lines},
                    {"logins", scan.logins},
                    {"logins_in_period", scan.logins_recent},
                    {"garbage", scan.garbage},
                    {"garbage_examples", scan.garbage_examples},
                    {"not_mapped", unmapped},
                    {"not_mapped_examples", unmapped_examples}});
        return kExitOk;
    }
    if (!out.empty()) {
        Table t({"account", "last login at old server", "logins", "in mailferry"});
        for (const auto& p : out) {
            t.add({p.account, local_time(p.last), std::to_string(p.logins), p.in_store});
        }
        t.print(std::cout);
    }
    std::cout << out.size() << " account" << (out.size() == 1 ? "" : "s")
              << " logged in at the old server since " << since_text
              << " and are not migrated yet (" << migrated << " others are)\n";
    std::cout << "read " << scan.files << " file" << (scan.files == 1 ? "" : "s") << ", "
              << scan.lines << " lines: " << scan.logins << " logins, " << scan.logins_recent
              << " since " << since_text << "\n";
    if (scan.garbage > 0) {
        warn(std::to_string(scan.garbage) + " line" + (scan.garbage == 1 ? "" : "s") +
             " could not be read (ignored); first: " + scan.garbage_examples.front());
    }
    if (unmapped > 0) {
        warn(std::to_string(unmapped) + " login name" + (unmapped == 1 ? "" : "s") +
             " not in a migrated domain (ignored); first: " + unmapped_examples.front());
    }
    if (missing) {
        warn("no store yet (" + (*loaded)->cfg.store.path + "): nobody is migrated");
    }
    return kExitOk;
}

} // namespace

const Command never_logged_in_command = {
    "never-logged-in",
    "who logged in at the OLD server recently but has no migrated account yet",
    "  mailferry never-logged-in --log /var/log/mail.log /var/log/mail.log.1 --since 30d\n"
    "  mailferry never-logged-in --since 6m --log /var/log/mail.log*    (6m = six months)\n"
    "  mailferry never-logged-in --format courier --log /var/log/maillog.2.gz\n"
    "  mailferry --json never-logged-in --log old.log | jq -r '.users[].account'\n"
    "Periods: 12h, 30d, 2w, 6m (months), 1y. gzip'd rotations are read as they are.\n"
    "Exit status: 0 listed, 2 usage, config error or unreadable log, 75 store busy.",
    [](CLI::App& app) -> Handler {
        auto a = std::make_shared<Args>();
        app.add_option("--log", a->logs, "the old server's log files (plain or .gz)")
            ->required()
            ->expected(1, -1);
        app.add_option("--since", a->since, "the period: 12h, 30d, 2w, 6m (months), 1y")
            ->capture_default_str();
        app.add_option("--format", a->format, "auto, dovecot, courier or syslog")
            ->capture_default_str();
        return [a](const Context& ctx) { return run(ctx, *a); };
    },
};

} // namespace mf::cli
