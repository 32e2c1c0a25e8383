// cli_account.cpp — `mailferry account`: day-two commands for single accounts.
//
// SYNOPSIS
//   mailferry account list [--state S] [--server PROVIDER]
//   mailferry account disable USER [--reason TEXT]
//   mailferry account enable USER
//   mailferry account requeue USER
//   mailferry account reset USER [--yes]
//   mailferry account password USER [--password-file F]
//   mailferry account export [--output F]
// DESCRIPTION
//   list: name, old server, state, last login, last error. disable: logins FAIL (the
//   reason in the log), its copy jobs wait; enable: back to the state before the disable
//   (read from the disable's audit row). requeue: a copy or resync job due now at the
//   front of the queue. reset: forgets the migration of one user (account row, jobs,
//   spool entry, copier state file; audit rows stay), after a confirmation on a terminal
//   or with --yes. password: a new password from the terminal (no echo, twice) or a 0600
//   file of the caller's, hashed with the configured scheme. export: every usable hash as
//   a Dovecot passwd-file ("user:{SCHEME}hash::::::"), to stdout or --output F (0600,
//   written atomically), so a site can leave mailferry; the rest are listed as skipped.
// EXIT STATUS
//   0 done; 1 a definite no (unknown user, wrong state, no sealed password); 2 usage or
//   config error (no store, unknown state name, unsafe password file, reset without a
//   terminal and without --yes); 75 the store was busy or a copy of the account runs.
// SECURITY
//   Never prints a password or a hash, except export's lines, which are its output. Reads
//   a password only from the terminal or a private file, never argv or the environment.
#include "admin_account.hpp"
#include "cli_command.hpp"

#include <iostream>
#include <unistd.h>

namespace mf::cli {
namespace {

struct AccountArgs {
    std::string state;
    std::string server;
    std::string user;
    std::string reason;
    bool yes = false;
    std::string password_file;
    std::string output;
};

int exit_for(const Error& e) {
    if (e.temporary()) {
        return kExitTempFail;
    }
    return e.scope == Scope::account ? kExitNo : kExitUsage;
}

// The config, identity map and store every subcommand opens; on failure *code is set.
struct Opened {
    std::unique_ptr<Loaded> loaded;
    std::unique_ptr<Store> store;
};

std::optional<Opened> open_all(const Context& ctx, bool read_only, int* code) {
    auto loaded = load_config_and_identity(ctx.config_path);
    if (!loaded) {
        *code = report_error(ctx, loaded.error(), kExitUsage);
        return std::nullopt;
    }
    Result<std::unique_ptr<Store>> store = std::unique_ptr<Store>();
    if (read_only) {
        bool missing = false;
        store = open_store_readonly((*loaded)->cfg, &missing);
        if (store && missing) {
            store = open_store_for_change((*loaded)->cfg); // the error that says so
        }
    } else {
        store = open_store_for_change((*loaded)->cfg);
    }
    if (!store) {
        *code = report_error(ctx, store.error(), exit_for(store.error()));
        return std::nullopt;
    }
    return Opened{std::move(*loaded), std::move(*store)};
}

int list(const Context& ctx, const AccountArgs& a) {
    std::optional<AccountState> state;
    if (!a.state.empty()) {
        state = account_state_from(a.state);
        if (!state || *state == AccountState::unknown) {
            std::string valid;
            for (AccountState s : stored_states()) {
                valid += (valid.empty() ? "" : ", ") + std::string(to_string(s));
            }
            return report_error(
                ctx,
                make_error("--state " + printable(a.state, 40), "valid: " + valid, Scope::config),
                kExitUsage);
        }
    }
    int code = 0;
    auto o = open_all(ctx, true, &code);
    if (!o) {
        return code;
    }
    std::string valid;
    bool known = a.server.empty();
    for (const auto& p : o->loaded->cfg.providers) {
        valid += (valid.empty() ? "" : ", ") + p.name;
        known = known || p.name == a.server;
    }
    if (!known) {
        return report_error(ctx,
                            make_error("--server " + printable(a.server, 80),
                                       "no such [[provider]]; valid: " + valid, Scope::config),
                            kExitUsage);
    }
    auto rows = list_filtered(*o->store, state, a.server);
    if (!rows) {
        return report_error(ctx, rows.error(), exit_for(rows.error()));
    }
    if (ctx.json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& r : *rows) {
            arr.push_back({{"account", r.name},
                           {"provider", r.provider},
                           {"state", to_string(r.state)},
                           {"last_login", iso_utc(r.last_login)},
                           {"last_error", r.last_error}});
        }
        print_json({{"ok", true}, {"count", rows->size()}, {"accounts", arr}});
        return kExitOk;
    }
    Table t({"account", "old server", "state", "last login", "last error"});
    for (const auto& r : *rows) {
        t.add({r.name, r.provider, to_string(r.state), local_time(r.last_login),
               r.last_error.empty() ? "-" : printable(r.last_error, 80)});
    }
    t.print(std::cout);
    std::cout << rows->size() << " account(s)\n";
    return kExitOk;
}

// Prints one change's outcome (text or JSON).
int changed(const Context& ctx, const std::string& account, const std::string& action,
            nlohmann::json extra, const std::string& text) {
    if (ctx.json) {
        nlohmann::json doc = {{"ok", true}, {"account", account}, {"action", action}};
        doc.update(extra);
        print_json(doc);
    } else {
        std::cout << text << "\n";
    }
    return kExitOk;
}

// Opens everything and finds USER; on failure *code is set.
std::optional<std::pair<Opened, Account>> open_user(const Context& ctx, const AccountArgs& a,
                                                    int* code) {
    auto o = open_all(ctx, false, code);
    if (!o) {
        return std::nullopt;
    }
    auto acct = find_user(*o->loaded, *o->store, a.user);
    if (!acct) {
        *code = report_error(ctx, acct.error(), exit_for(acct.error()));
        return std::nullopt;
    }
    return std::make_pair(std::move(*o), std::move(*acct));
}

int disable(const Context& ctx, const AccountArgs& a) {
    int code = 0;
    auto u = open_user(ctx, a, &code);
    if (!u) {
        return code;
    }
    auto before = disable_account(*u->first.store, u->second, a.reason);
    if (!before) {
        return report_error(ctx, before.error(), exit_for(before.error()));
    }
    return changed(ctx, u->second.name, "disabled", {{"was", to_string(*before)}},
                   u->second.name + " disabled (was " + to_string(*before) +
                       "): logins fail, copy jobs wait; `mailferry account enable` undoes it");
}

int enable(const Context& ctx, const AccountArgs& a) {
    int code = 0;
    auto u = open_user(ctx, a, &code);
    if (!u) {
        return code;
    }
    auto back = enable_account(*u->first.store, u->second);
    if (!back) {
        return report_error(ctx, back.error(), exit_for(back.error()));
    }
    return changed(ctx, u->second.name, "enabled", {{"state", to_string(*back)}},
                   u->second.name + " enabled: back to " + to_string(*back));
}

int requeue(const Context& ctx, const AccountArgs& a) {
    int code = 0;
    auto u = open_user(ctx, a, &code);
    if (!u) {
        return code;
    }
    auto job = requeue_account(u->first.loaded->cfg, *u->first.store, u->second);
    if (!job) {
        return report_error(ctx, job.error(), exit_for(job.error()));
    }
    return changed(
        ctx, u->second.name, "queued",
        {{"job", job->id}, {"kind", to_string(job->kind)}, {"job_state", to_string(job->state)}},
        u->second.name + ": " + to_string(job->kind) + " job #" + std::to_string(job->id) + " " +
            to_string(job->state) + " at the front of the queue");
}

// Asks on the terminal; false unless the answer is "yes".
bool confirmed(const std::string& name) {
    std::cerr << "Forget the migration of " << name
              << " (account, copy jobs, sealed password, copy state)? Type yes: " << std::flush;
    std::string answer;
    std::getline(std::cin, answer);
    return answer == "yes";
}

int reset(const Context& ctx, const AccountArgs& a) {
    if (!a.yes && ::isatty(STDIN_FILENO) == 0) {
        return report_error(ctx,
                            make_error("account reset " + printable(a.user, 80),
                                       "no terminal to confirm on: add --yes", Scope::config),
                            kExitUsage);
    }
    int code = 0;
    auto u = open_user(ctx, a, &code);
    if (!u) {
        return code;
    }
    const std::string name = u->second.name;
    if (!a.yes && !confirmed(name)) {
        return report_error(
            ctx,
            make_error("account reset " + name, "not confirmed; nothing changed", Scope::account),
            kExitNo);
    }
    auto rep = reset_account(u->first.loaded->cfg, *u->first.store, name);
    if (!rep) {
        return report_error(ctx, rep.error(), exit_for(rep.error()));
    }
    for (const auto& w : rep->warnings) {
        warn(w);
    }
    return changed(ctx, name, "reset",
                   {{"was", to_string(rep->was.state)},
                    {"spool_entry_deleted", rep->spool_entry},
                    {"state_file_deleted", rep->state_file},
                    {"warnings", rep->warnings}},
                   name + " forgotten (was " + to_string(rep->was.state) +
                       "); its next login starts a new migration");
}

int password(const Context& ctx, const AccountArgs& a) {
    int code = 0;
    auto u = open_user(ctx, a, &code);
    if (!u) {
        return code;
    }
    std::optional<std::string> file;
    if (!a.password_file.empty()) {
        file = a.password_file;
    }
    auto pw = read_new_password(file);
    if (!pw) {
        return report_error(ctx, pw.error(), exit_for(pw.error()));
    }
    auto set = set_password(*u->first.loaded, *u->first.store, u->second, *pw);
    pw->clear();
    if (!set) {
        return report_error(ctx, set.error(), exit_for(set.error()));
    }
    return changed(ctx, u->second.name, "password set",
                   {{"scheme", to_string(u->first.loaded->cfg.hash.scheme)}},
                   u->second.name + ": new password stored (" +
                       to_string(u->first.loaded->cfg.hash.scheme) + ")");
}

int export_all(const Context& ctx, const AccountArgs& a) {
    if (ctx.json && a.output.empty()) {
        return report_error(
            ctx, make_error("account export", "--json needs --output FILE", Scope::config),
            kExitUsage);
    }
    int code = 0;
    auto o = open_all(ctx, true, &code);
    if (!o) {
        return code;
    }
    auto rows = o->store->list_accounts();
    if (!rows) {
        return report_error(ctx, rows.error(), exit_for(rows.error()));
    }
    std::string text;
    ExportReport rep = export_lines(*rows, text);
    if (!a.output.empty()) {
        if (auto w = write_export(a.output, text); !w) {
            wipe(text.data(), text.size());
            return report_error(ctx, w.error(), kExitUsage);
        }
    } else {
        std::cout << text << std::flush;
    }
    wipe(text.data(), text.size());
    if (ctx.json) {
        nlohmann::json skipped = nlohmann::json::array();
        for (const auto& [name, why] : rep.skipped) {
            skipped.push_back({{"account", name}, {"reason", why}});
        }
        print_json(
            {{"ok", true}, {"output", a.output}, {"written", rep.written}, {"skipped", skipped}});
        return kExitOk;
    }
    for (const auto& [name, why] : rep.skipped) {
        std::cerr << "skipped " << name << ": " << why << "\n";
    }
    std::cerr << rep.written << " account(s) exported"
              << (a.output.empty() ? std::string() : " to " + a.output) << ", "
              << rep.skipped.size() << " skipped\n";
    return kExitOk;
}

} // namespace

const Command account_command = {
    "account",
    "day-two changes to single accounts: list, disable, enable, requeue, reset, password, export",
    "  mailferry account list --state failed --server old-imap\n"
    "  mailferry account disable anna --reason \"left the company\"\n"
    "  mailferry account enable anna           back to the state before the disable\n"
    "  mailferry account requeue anna          a copy round now, at the front of the queue\n"
    "  mailferry account reset anna --yes      forget her migration; her next login starts anew\n"
    "  mailferry account password anna         asks twice, no echo (or --password-file F, 0600)\n"
    "  mailferry account export --output /etc/dovecot/users   Dovecot passwd-file, 0600\n"
    "Exit status: 0 done, 1 no such account or refused, 2 usage or config error, 75 busy.",
    [](CLI::App& app) -> Handler {
        auto a = std::make_shared<AccountArgs>();
        app.require_subcommand(1);
        auto user = [&](CLI::App* s) {
            s->add_option("user", a->user, "the account (as users log in, or a full address)")
                ->required();
            return s;
        };
        CLI::App* l = app.add_subcommand("list", "accounts with state, last login, last error");
        l->add_option("--state", a->state, "only this state (verified, …, disabled)");
        l->add_option("--server", a->server,
                      "only accounts of this old server ([[provider]] name)");
        CLI::App* d = user(app.add_subcommand("disable", "logins fail, copies wait"));
        d->add_option("--reason", a->reason, "why (kept in the audit log, shown in login logs)");
        CLI::App* e = user(app.add_subcommand("enable", "undo a disable"));
        CLI::App* q = user(app.add_subcommand("requeue", "queue a copy round now"));
        CLI::App* r = user(app.add_subcommand("reset", "forget one user's migration"));
        r->add_flag("--yes", a->yes, "do not ask (needed without a terminal)");
        CLI::App* p = user(app.add_subcommand("password", "set a new password"));
        p->add_option("--password-file", a->password_file,
                      "read it from this file (0600 or stricter, owned by you)");
        CLI::App* x = app.add_subcommand("export", "every stored hash as a Dovecot passwd-file");
        x->add_option("--output", a->output, "write here (0600, atomically) instead of stdout");
        return [a, l, d, e, q, r, p, x](const Context& ctx) {
            const std::pair<CLI::App*, int (*)(const Context&, const AccountArgs&)> subs[] = {
                {l, list},  {d, disable},  {e, enable},    {q, requeue},
                {r, reset}, {p, password}, {x, export_all}};
            for (const auto& [sub, fn] : subs) {
                if (sub->parsed()) {
                    return fn(ctx, *a);
                }
            }
            return kExitUsage;
        };
    },
};

} // namespace mf::cli
