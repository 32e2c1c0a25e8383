// cli_import.cpp — `mailferry import`: accounts with their old hashes from an export.
//
// SYNOPSIS
//   mailferry import FILE --format dovecot-passwd-file|communigate|modoboa
//                    [--domain DOMAIN] [--dry-run]
// DESCRIPTION
//   Reads FILE strictly, maps every name through the identity map, and stores each account
//   in state `verified` with the hash it had at the old server, in ONE transaction: a file
//   with any bad line imports nothing (each bad line is reported with its number). Lines
//   that are not accounts by design (Modoboa domains, aliases, disabled accounts) are
//   skipped with the reason. Importing the same file again changes nothing. An account
//   that has logged in since keeps its newer hash ("kept"). The first login of an imported
//   account is checked against its hash and then provisioned like any first login.
// EXIT STATUS
//   0 imported (or, with --dry-run, importable); 1 the file has bad lines, nothing
//   imported; 2 usage, config or unreadable file; 75 the store was busy.
// SECURITY
//   Never prints a password or a hash; warns when FILE is readable by others.
#include "admin_import.hpp"
#include "cli_command.hpp"

#include <cstdio>
#include <iostream>

namespace mf::cli {
namespace {

struct ImportArgs {
    std::string file;
    std::string format;
    std::string domain;
    bool dry_run = false;
};

nlohmann::json notes_json(const std::vector<LineNote>& notes, const char* key) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& n : notes) {
        arr.push_back({{"line", n.line}, {key, n.text}});
    }
    return arr;
}

// "users.txt:12: " — line 0 is the file as a whole.
std::string where(const std::string& file, std::size_t line) {
    return line == 0 ? file + ": " : file + ":" + std::to_string(line) + ": ";
}

std::string seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f s", s);
    return buf;
}

int run(const Context& ctx, const ImportArgs& a) {
    auto format = import_format_from(a.format);
    if (!format) {
        return report_error(ctx,
                            make_error("--format " + a.format,
                                       "expected dovecot-passwd-file, communigate or modoboa",
                                       Scope::config),
                            kExitUsage);
    }
    auto loaded = load_config_and_identity(ctx.config_path);
    if (!loaded) {
        return report_error(ctx, loaded.error(), kExitUsage);
    }
    std::vector<std::string> warnings;
    if (auto w = readable_by_others_warning(a.file); !w.empty()) {
        warnings.push_back(w);
    }
    ImportOptions opt;
    opt.format = *format;
    opt.domain = a.domain;
    auto rep = import_file(**loaded, a.file, opt, a.dry_run, stderr_is_tty() && !ctx.json);
    if (!rep) {
        const Error& e = rep.error();
        return report_error(ctx, e, e.temporary() ? kExitTempFail : kExitUsage);
    }
    const ImportPlan& plan = rep->plan;
    warnings.insert(warnings.end(), plan.warnings.begin(), plan.warnings.end());
    const bool refused = !plan.errors.empty();
    const int code = refused ? kExitNo : kExitOk;
    const ImportCounts& c = rep->counts;

    if (ctx.json) {
        print_json({{"ok", !refused},
                    {"file", a.file},
                    {"format", to_string(*format)},
                    {"dry_run", a.dry_run},
                    {"imported", rep->applied},
                    {"data_lines", plan.data_lines},
                    {"accounts", plan.accounts.size()},
                    {"created", c.created},
                    {"updated", c.updated},
                    {"unchanged", c.unchanged},
                    {"kept", c.kept},
                    {"errors", notes_json(plan.errors, "error")},
                    {"skipped", notes_json(plan.skipped, "reason")},
                    {"notes", notes_json(plan.notes, "note")},
                    {"warnings", warnings},
                    {"seconds", rep->seconds_plan + rep->seconds_store},
                    {"seconds_plan", rep->seconds_plan},
                    {"seconds_store", rep->seconds_store}});
        return code;
    }
    for (const auto& w : warnings) {
        warn(w);
    }
    for (const auto& e : plan.errors) {
        std::cerr << where(a.file, e.line) << "error: " << e.text << "\n";
    }
    for (const auto& s : plan.skipped) {
        std::cout << where(a.file, s.line) << "skipped: " << s.text << "\n";
    }
    for (const auto& n : plan.notes) {
        std::cout << where(a.file, n.line) << "note: " << n.text << "\n";
    }
    if (refused) {
        std::cerr << a.file << ": " << plan.errors.size() << " line"
                  << (plan.errors.size() == 1 ? "" : "s")
                  << " with errors: nothing was imported (fix them and run again)\n";
        return code;
    }
    std::cout << (a.dry_run ? "dry run: would import " : "imported ") << plan.accounts.size()
              << " account" << (plan.accounts.size() == 1 ? "" : "s") << " from " << a.file << " ("
              << to_string(*format) << ", " << plan.skipped.size() << " skipped; "
              << seconds(rep->seconds_plan + rep->seconds_store)
              << (a.dry_run ? ", nothing written" : ", one transaction") << ")\n";
    Table t({"outcome", "accounts", "meaning"});
    t.add({"created", std::to_string(c.created), "new, state verified with the old hash"});
    t.add({"updated", std::to_string(c.updated), "imported before, never logged in: new hash"});
    t.add({"unchanged", std::to_string(c.unchanged), "already imported with this hash"});
    t.add({"kept", std::to_string(c.kept), "logged in since: its newer hash is kept"});
    t.print(std::cout);
    return code;
}

} // namespace

const Command import_command = {
    "import",
    "import accounts with their old password hashes from an export (all or nothing)",
    "  mailferry import /root/users.passwd --format dovecot-passwd-file\n"
    "  mailferry import accounts.txt --format communigate --domain example.org --dry-run\n"
    "  mailferry import modoboa.csv --format modoboa\n"
    "  mailferry --json import users.passwd --format dovecot-passwd-file | jq .errors\n"
    "A file with any bad line imports nothing; every bad line is listed as FILE:LINE.\n"
    "Exit status: 0 imported, 1 bad lines (nothing imported), 2 usage or unreadable file,\n"
    "75 store busy.",
    [](CLI::App& app) -> Handler {
        auto a = std::make_shared<ImportArgs>();
        app.add_option("file", a->file, "the export file")->required();
        app.add_option("--format", a->format, "dovecot-passwd-file, communigate or modoboa")
            ->required();
        app.add_option("--domain", a->domain, "domain for names without one");
        app.add_flag("--dry-run", a->dry_run, "check the file and show what would change");
        return [a](const Context& ctx) { return run(ctx, *a); };
    },
};

} // namespace mf::cli
