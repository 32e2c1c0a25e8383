// cli_mailflow_release.cpp — `mailferry mailflow-release`: deliver the mail Postfix held
// for accounts during their final copy round.
//
// SYNOPSIS
//   mailferry mailflow-release USER... | --all  [--json]
// DESCRIPTION
//   For each account no longer `held` (cut over, or back in another state), runs
//   `postsuper -c [mailflow] postfix_config_dir -H` on the messages held for it — those
//   the policy service recorded and those in the hold queue addressed to it — then
//   `postqueue -i` so they are delivered now, and forgets them. A message also addressed
//   to an account still held stays on hold. --all: every account with held mail recorded
//   in the store or a message in the hold queue. `mailferry cutover` may call the same function
//   (release_held_mail, include/mailferry/mailflow.hpp) after each cut-over.
// EXIT STATUS
//   0 done (accounts still held are reported, not errors); 1 some message could not be
//   released; 2 usage or config error; 75 store busy or postqueue failed.
// SECURITY
//   Must run as root: postsuper refuses anybody else. Changes no account state.
#include "cli_command.hpp"

#include "mailferry/config.hpp"
#include "mailferry/identity.hpp"
#include "mailferry/mailflow.hpp"
#include "mailferry/store.hpp"

#include <iostream>

namespace mf::cli {
namespace {

struct ReleaseArgs {
    std::vector<std::string> users;
    bool all = false;
};

// Account names: as a login names them, or with --all every account with held mail.
Result<std::vector<std::string>> accounts(const Config& cfg, Store& store, const ReleaseArgs& a) {
    if (a.all) {
        return mailflow::accounts_with_held_mail(cfg, store);
    }
    auto map = IdentityMap::create(cfg);
    if (!map) {
        return map.error();
    }
    std::vector<std::string> names;
    for (const auto& u : a.users) {
        auto id = map->resolve(u);
        if (!id) {
            return make_error(u, id.error().message(), Scope::config);
        }
        auto found =
            find_login_account(store, id->canonical, id->provider->case_insensitive, nullptr);
        if (!found) {
            return found.error();
        }
        names.push_back(found->has_value() ? (**found).name : id->canonical);
    }
    return names;
}

int run(const Context& ctx, const ReleaseArgs& a) {
    if (a.all == !a.users.empty()) {
        return report_error(
            ctx,
            make_error("mailflow-release", "name the accounts, or --all (not both)", Scope::config),
            kExitUsage);
    }
    auto cfg = load_config(ctx.config_path);
    if (!cfg) {
        return report_error(ctx, cfg.error(), kExitUsage);
    }
    auto store = open_sqlite_store(cfg->store.path, cfg->store.busy_timeout);
    if (!store) {
        return report_error(ctx, store.error(), temp_or_usage(store.error()));
    }
    auto names = accounts(*cfg, **store, a);
    if (!names) {
        return report_error(ctx, names.error(), temp_or_usage(names.error()));
    }
    std::vector<mailflow::ReleaseReport> reports;
    bool failed = false;
    for (const auto& n : *names) {
        auto rep = mailflow::release_held_mail(*cfg, **store, n);
        if (!rep) {
            return report_error(ctx, rep.error(), temp_or_usage(rep.error()));
        }
        for (const auto& m : rep->messages) {
            failed = failed || m.result == "failed";
        }
        reports.push_back(std::move(*rep));
    }
    const int code = failed ? kExitNo : kExitOk;
    if (ctx.json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& r : reports) {
            nlohmann::json msgs = nlohmann::json::array();
            for (const auto& m : r.messages) {
                msgs.push_back(
                    {{"queue_id", m.queue_id}, {"result", m.result}, {"detail", m.detail}});
            }
            arr.push_back(
                {{"account", r.account}, {"still_held", r.still_held}, {"messages", msgs}});
        }
        print_json({{"ok", code == kExitOk}, {"accounts", arr}});
        return code;
    }
    for (const auto& r : reports) {
        if (r.still_held) {
            std::cout << r.account << "  still held (final round running): nothing released\n";
            continue;
        }
        if (r.messages.empty()) {
            std::cout << r.account << "  no held mail\n";
        }
        for (const auto& m : r.messages) {
            std::cout << r.account << "  " << m.queue_id << "  " << m.result
                      << (m.detail.empty() ? "" : "  " + m.detail) << "\n";
        }
    }
    return code;
}

} // namespace

const Command mailflow_release_command = {
    "mailflow-release",
    "deliver the mail Postfix held for accounts during their final round (run as root)",
    "  mailferry mailflow-release anna@example.com\n"
    "  mailferry mailflow-release --all --json\n"
    "Exit status: 0 done, 1 some message not released, 2 usage, 75 busy or postqueue failed.",
    [](CLI::App& app) -> Handler {
        auto a = std::make_shared<ReleaseArgs>();
        app.add_option("users", a->users, "accounts (as users log in, or full addresses)");
        app.add_flag("--all", a->all, "every account with mail on hold (store or hold queue)");
        return [a](const Context& ctx) { return run(ctx, *a); };
    },
};

} // namespace mf::cli
