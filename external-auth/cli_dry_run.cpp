// cli_dry_run.cpp — `mailferry dry-run`: check a campaign's users, old servers and
// provisioner before anybody logs in.
//
// SYNOPSIS
//   mailferry dry-run USERS-FILE
// DESCRIPTION
//   USERS-FILE has one login per line (`user<TAB>anything` is fine: everything after the
//   first TAB is ignored, never read into the report — a replay file can be checked as
//   is). For each user: the account the identity map gives (short names, conflict map,
//   domain renames), its old server and the login that server wants, and its state in
//   the store if it has one. Once per old server named by the file: a connection as the
//   verifier would make it (protocol, TLS mode, CA, certificate check) up to the greeting
//   and STARTTLS, without logging in. The provisioner: what can be checked without
//   creating an account (see admin_dryrun.hpp). Then a summary of conflicts: names the
//   identity map refuses, a user twice, two logins mapping to one account.
//   Changes nothing: the store is opened read-only (and not created), no lock, no file.
// EXIT STATUS
//   0 every user maps cleanly, every old server answered with a valid certificate and the
//   provisioner looks usable; 1 any conflict, refusal, bad line, unreachable server,
//   certificate problem or provisioner problem; 2 usage, config or an unusable file;
//   75 the store was busy.
// SECURITY
//   Sends no credential anywhere; prints nothing after a TAB of the users file.
#include "admin_dryrun.hpp"
#include "admin_output.hpp"
#include "cli_command.hpp"

#include "mailferry/import.hpp"

#include <iostream>

namespace mf::cli {
namespace {

int dry_run(const Context& ctx, const std::string& path) {
    auto loaded = load_config_and_identity(ctx.config_path);
    if (!loaded) {
        return report_error(ctx, loaded.error(), kExitUsage);
    }
    const Config& cfg = (*loaded)->cfg;
    std::vector<std::string> warnings = cfg.warnings;
    if (auto w = readable_by_others_warning(path); !w.empty()) {
        warnings.push_back(w); // the file may well be a replay file with passwords
    }
    auto file = TextFile::read(path);
    if (!file) {
        return report_error(ctx, file.error(), kExitUsage);
    }
    bool missing = false;
    auto store = open_store_readonly(cfg, &missing);
    if (!store) {
        return report_error(ctx, store.error(), kExitTempFail);
    }
    if (missing) {
        warnings.push_back("no store yet at " + cfg.store.path + ": no account is migrated");
    }
    if (!ctx.json) {
        for (const auto& w : warnings) {
            warn(w);
        }
    }
    Result<UsersReport> users = make_error("check users");
    {
        Progress progress("users", file->lines().size(), !ctx.json && stderr_is_tty());
        users = check_users(*file, *(*loaded)->ids, store->get(), [&] { progress.tick(); });
    }
    if (!users) {
        return report_error(ctx, users.error(),
                            users.error().temporary() ? kExitTempFail : kExitUsage);
    }
    std::vector<ServerCheck> servers = check_servers(cfg, *users);
    ProvisionerCheck prov = check_provisioner(cfg);

    std::vector<std::string> problems;
    for (const auto& s : servers) {
        if (!s.reachable) {
            problems.push_back("old server " + s.name + ": " + s.detail);
        }
    }
    if (!prov.ok) {
        problems.push_back("provisioner " + prov.what + ": " + prov.detail);
    }
    const bool clean = users->conflicts.empty() && problems.empty();
    const int code = clean ? kExitOk : kExitNo;

    if (ctx.json) {
        nlohmann::json ulist = nlohmann::json::array();
        for (const auto& u : users->users) {
            ulist.push_back({{"line", u.line},
                             {"user", u.user},
                             {"account", u.account},
                             {"server", u.server},
                             {"old_login", u.old_login},
                             {"state", u.state},
                             {"status", to_string(u.status)},
                             {"detail", u.detail}});
        }
        nlohmann::json slist = nlohmann::json::array();
        for (const auto& s : servers) {
            slist.push_back({{"name", s.name},
                             {"where", s.where},
                             {"users", s.users},
                             {"reachable", s.reachable},
                             {"detail", s.detail}});
        }
        print_json(
            {{"ok", clean},
             {"file", path},
             {"data_lines", users->data_lines},
             {"users", ulist},
             {"servers", slist},
             {"provisioner", {{"ok", prov.ok}, {"what", prov.what}, {"detail", prov.detail}}},
             {"conflicts", users->conflicts},
             {"problems", problems},
             {"warnings", warnings},
             {"exit", code}});
        return code;
    }
    Table ut({"LINE", "USER", "ACCOUNT", "SERVER", "STATE", "STATUS", "DETAIL"});
    for (const auto& u : users->users) {
        ut.add({std::to_string(u.line), u.user, u.account, u.server,
                u.state.empty() ? "-" : u.state, to_string(u.status), printable(u.detail, 300)});
    }
    ut.print(std::cout);
    std::cout << "\n";
    Table st({"SERVER", "WHERE", "USERS", "RESULT", "DETAIL"});
    for (const auto& s : servers) {
        st.add({s.name, s.where, std::to_string(s.users), s.reachable ? "ok" : "FAILED",
                printable(s.detail, 300)});
    }
    if (!st.empty()) {
        st.print(std::cout);
        std::cout << "\n";
    }
    std::cout << "provisioner  " << prov.what << ": " << (prov.ok ? "ok" : "FAILED") << ": "
              << prov.detail << "\n\n";
    std::cout << users->data_lines << " users, " << servers.size() << " old server"
              << (servers.size() == 1 ? "" : "s") << "; " << users->conflicts.size() << " conflict"
              << (users->conflicts.size() == 1 ? "" : "s") << ", " << problems.size() << " problem"
              << (problems.size() == 1 ? "" : "s") << "\n";
    for (const auto& c : users->conflicts) {
        std::cout << "conflict: " << printable(c, 400) << "\n";
    }
    for (const auto& p : problems) {
        std::cout << "problem: " << printable(p, 400) << "\n";
    }
    return code;
}

} // namespace

const Command dry_run_command = {
    "dry-run",
    "check a campaign's users, old servers and provisioner; changes nothing",
    "  mailferry dry-run users.txt\n"
    "  mailferry dry-run accounts.txt            (a replay file: only the first column is read)\n"
    "  mailferry --json dry-run users.txt | jq '.users[] | select(.status != \"ok\")'\n"
    "USERS-FILE: one login per line; blank lines and lines starting with '#' are ignored.\n"
    "Exit: 0 ready, 1 conflicts or problems (listed at the end), 2 usage, 75 store busy.",
    [](CLI::App& app) -> Handler {
        auto path = std::make_shared<std::string>();
        app.add_option("USERS-FILE", *path, "one user per line")->required();
        return [path](const Context& ctx) { return dry_run(ctx, *path); };
    },
};

} // namespace mf::cli
