// cli_status.cpp — `mailferry status`: how far the migration is, overall or for one user.
//
// SYNOPSIS
//   mailferry status [USER]
// DESCRIPTION
//   Without USER: accounts per state and per old server, and the campaign line —
//   migrated (synced, resyncing, held, cutover), copying (provisioned, copying), failed,
//   not yet seen (imported, never logged in), disabled — plus the copy jobs. With USER
//   (as users log in, or a full address): state, created, first and last login, the copy
//   job (runs, last result), the copier's progress from its state file, the last error.
//   Reads the store read-only; a store that does not exist yet means no accounts yet.
// EXIT STATUS
//   0 shown; 1 USER is not in the store (or not a valid login); 2 usage or config error;
//   75 the store was busy.
// SECURITY
//   Never prints a hash or a password; opens nothing for writing.
#include "admin_status.hpp"
#include "cli_command.hpp"

#include <iostream>

namespace mf::cli {
namespace {

constexpr AccountState kStates[] = {
    AccountState::verified, AccountState::provisioned, AccountState::copying,
    AccountState::synced,   AccountState::resyncing,   AccountState::failed,
    AccountState::held,     AccountState::cutover,     AccountState::disabled,
};

const char* kBucketMeaning =
    "migrated = synced, resyncing, held, cutover; copying = provisioned, copying; "
    "not yet seen = imported but never logged in";

int store_exit(const Error& e) {
    return e.temporary() ? kExitTempFail : kExitUsage;
}

std::string when(UnixTime t, UnixTime now) {
    return t == 0 ? std::string("never") : local_time(t) + " (" + ago(t, now) + ")";
}

nlohmann::json states_json(const std::map<AccountState, std::int64_t>& m) {
    nlohmann::json j = nlohmann::json::object();
    for (AccountState s : kStates) {
        j[to_string(s)] = m.contains(s) ? m.at(s) : 0;
    }
    return j;
}

int campaign(const Context& ctx, const Config& cfg, Store* store) {
    CampaignStatus st;
    if (store != nullptr) {
        auto r = campaign_status(*store);
        if (!r) {
            return report_error(ctx, r.error(), store_exit(r.error()));
        }
        st = std::move(*r);
    } else {
        for (Bucket b : {Bucket::migrated, Bucket::copying, Bucket::failed, Bucket::not_seen,
                         Bucket::disabled}) {
            st.buckets[b] = 0;
        }
    }
    if (ctx.json) {
        nlohmann::json providers = nlohmann::json::array();
        for (const auto& p : st.providers) {
            providers.push_back({{"provider", p.provider},
                                 {"total", p.total},
                                 {"states", states_json(p.by_state)}});
        }
        nlohmann::json buckets = nlohmann::json::object();
        for (const auto& [b, n] : st.buckets) {
            buckets[to_string(b)] = n;
        }
        print_json({{"ok", true},
                    {"store", cfg.store.path},
                    {"store_exists", store != nullptr},
                    {"total", st.total},
                    {"campaign", buckets},
                    {"campaign_meaning", kBucketMeaning},
                    {"states", states_json(st.by_state)},
                    {"providers", providers},
                    {"jobs", {{"active", st.jobs_active}, {"given_up", st.jobs_failed}}}});
        return kExitOk;
    }
    if (store == nullptr) {
        std::cout << "no accounts yet: the store " << cfg.store.path
                  << " does not exist (it is created by the first login or import)\n";
        return kExitOk;
    }
    auto b = [&](Bucket k) { return std::to_string(st.buckets[k]); };
    std::cout << "accounts  " << st.total << " in " << cfg.store.path << "\n"
              << "campaign  migrated " << b(Bucket::migrated) << ", copying " << b(Bucket::copying)
              << ", failed " << b(Bucket::failed) << ", not yet seen " << b(Bucket::not_seen)
              << ", disabled " << b(Bucket::disabled) << "\n"
              << "          (" << kBucketMeaning << ")\n"
              << "jobs      " << st.jobs_active << " active, " << st.jobs_failed << " given up\n\n";
    // Only the states that occur, so the table fits a terminal.
    std::vector<AccountState> cols;
    for (AccountState s : kStates) {
        if (st.by_state.contains(s)) {
            cols.push_back(s);
        }
    }
    std::vector<std::string> head{"old server"};
    for (AccountState s : cols) {
        head.emplace_back(to_string(s));
    }
    head.emplace_back("total");
    Table t(head);
    auto row = [&](const std::string& name, const std::map<AccountState, std::int64_t>& m,
                   std::int64_t total) {
        std::vector<std::string> r{name};
        for (AccountState s : cols) {
            r.push_back(m.contains(s) ? std::to_string(m.at(s)) : "0");
        }
        r.push_back(std::to_string(total));
        t.add(r);
    };
    for (const auto& p : st.providers) {
        row(p.provider, p.by_state, p.total);
    }
    if (st.providers.size() != 1) {
        row("all", st.by_state, st.total);
    }
    t.print(std::cout);
    return kExitOk;
}

int one_user(const Context& ctx, const Loaded& loaded, Store* store, const std::string& user) {
    auto id = loaded.ids->resolve(user);
    if (!id) {
        return report_error(ctx, make_error("status " + printable(user, 80), id.error().message()),
                            kExitNo);
    }
    if (store == nullptr) {
        return report_error(ctx,
                            make_error("status " + id->canonical,
                                       "no such account: no accounts yet (the store " +
                                           loaded.cfg.store.path + " does not exist)",
                                       Scope::account),
                            kExitNo);
    }
    auto us = user_status(loaded.cfg, *store, id->canonical, id->provider->case_insensitive);
    if (!us) {
        return report_error(ctx, us.error(), store_exit(us.error()));
    }
    if (!us->has_value()) {
        return report_error(ctx,
                            make_error("status " + id->canonical,
                                       "no such account in the store: it never logged in and "
                                       "was not imported",
                                       Scope::account),
                            kExitNo);
    }
    const UserStatus& u = **us;
    const Account& a = u.account;
    const CopyProgress& c = u.copy;
    if (ctx.json) {
        nlohmann::json job = nullptr;
        if (u.job) {
            job = {{"id", u.job->id},
                   {"kind", to_string(u.job->kind)},
                   {"state", to_string(u.job->state)},
                   {"run_at", iso_utc(u.job->run_at / 1000)},
                   {"attempts", u.job->attempts},
                   {"last_result", u.job->last_result},
                   {"last_error", u.job->last_error}};
        }
        print_json({{"ok", true},
                    {"account", a.name},
                    {"provider", a.provider},
                    {"state", to_string(a.state)},
                    {"created", iso_utc(a.created)},
                    {"first_login", iso_utc(u.first_login)},
                    {"last_login", iso_utc(a.last_login)},
                    {"jobs", u.jobs},
                    {"runs", u.runs},
                    {"job", job},
                    {"copy",
                     {{"state_file", c.path},
                      {"exists", c.exists},
                      {"problem", c.problem},
                      {"folders", c.folders},
                      {"folders_complete", c.folders_complete},
                      {"messages_copied", c.messages},
                      {"bytes_copied", c.bytes},
                      {"appends_in_doubt", c.intents},
                      {"not_copied", c.not_copied},
                      {"total_at_old_server", nullptr}}},
                    {"last_error", u.last_error},
                    {"last_error_at", iso_utc(u.last_error_at)}});
        return kExitOk;
    }
    const UnixTime now = now_unix();
    Table t({"field", "value"});
    t.add({"account", a.name});
    t.add({"old server", a.provider});
    t.add({"state", to_string(a.state)});
    t.add({"created", when(a.created, now)});
    t.add({"first login", when(u.first_login, now)});
    t.add({"last login", when(a.last_login, now)});
    if (u.job) {
        const Job& j = *u.job;
        std::string text =
            "#" + std::to_string(j.id) + " " + to_string(j.kind) + ", " + to_string(j.state);
        if (j.state == JobState::queued || j.state == JobState::retry) {
            text += ", due " + local_time(j.run_at / 1000);
        }
        if (j.attempts > 0) {
            text += ", " + std::to_string(j.attempts) + " failure(s) in a row";
        }
        t.add({"copy job", text});
        t.add({"runs", std::to_string(u.runs) + " (times a worker took a copy job of this " +
                           "account; the first copy, then resync rounds and retries)"});
        t.add({"last result", j.last_result.empty() ? "none yet" : printable(j.last_result)});
    } else {
        t.add({"copy job", "none"});
    }
    std::string copy;
    if (!c.problem.empty()) {
        copy = "unreadable: " + c.problem;
    } else if (!c.exists) {
        copy = "no copier state yet (no copy has started)";
    } else {
        copy = std::to_string(c.folders_complete) + " of " + std::to_string(c.folders) +
               " folders complete, " + std::to_string(c.messages) + " messages (" +
               std::to_string(c.bytes) + " bytes) copied";
        if (c.intents > 0) {
            copy += ", " + std::to_string(c.intents) + " appends in doubt";
        }
        if (c.not_copied > 0) {
            copy += ", " + std::to_string(c.not_copied) +
                    " items not copied (the reasons: the job's last result, or "
                    "`mailferry-copy --verify`)";
        }
        copy += "; the old server's total is not recorded";
    }
    t.add({"copy state", copy});
    t.add({"last error", u.last_error.empty()
                             ? std::string("none")
                             : printable(u.last_error) +
                                   (u.last_error_at != 0 ? " (" + when(u.last_error_at, now) + ")"
                                                         : std::string())});
    t.print(std::cout);
    return kExitOk;
}

int run(const Context& ctx, const std::string& user) {
    auto loaded = load_config_and_identity(ctx.config_path);
    if (!loaded) {
        return report_error(ctx, loaded.error(), kExitUsage);
    }
    bool missing = false;
    auto store = open_store_readonly((*loaded)->cfg, &missing);
    if (!store) {
        return report_error(ctx, store.error(), store_exit(store.error()));
    }
    Store* s = missing ? nullptr : store->get();
    return user.empty() ? campaign(ctx, (*loaded)->cfg, s) : one_user(ctx, **loaded, s, user);
}

} // namespace

const Command status_command = {
    "status",
    "how far the migration is: accounts per state and old server, or one account",
    "  mailferry status\n"
    "  mailferry status anna                    one account: logins, copy progress, errors\n"
    "  mailferry --json status | jq .campaign\n"
    "Exit status: 0 shown, 1 no such account, 2 usage or config error, 75 store busy.",
    [](CLI::App& app) -> Handler {
        auto user = std::make_shared<std::string>();
        app.add_option("user", *user, "an account (as users log in, or a full address)");
        return [user](const Context& ctx) { return run(ctx, *user); };
    },
};

} // namespace mf::cli
