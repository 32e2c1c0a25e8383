// cli_main.cpp — `mailferry`, the admin CLI: global options and the command table.
//
// SYNOPSIS
//   mailferry [--config FILE] [--json] COMMAND [options]
// DESCRIPTION
//   Builds one CLI11 subcommand per entry of kCommands (cli_command.hpp), parses, and runs
//   the chosen handler with the config path resolved (--config, else $MAILFERRY_CONFIG,
//   else /etc/mailferry/mailferry.toml). Global options may also follow the command.
// EXIT STATUS
//   0 ok, 1 a definite no, 2 usage or config error, 75 temporary failure, 70 a bug.
// SECURITY
//   Takes no password on the command line; commands that need one read it from a file
//   or a terminal. Never prints a secret.
#include "cli_command.hpp"

#include "mailferry/config.hpp"
#include "mailferry/process_harden.hpp"

#include <exception>
#include <iostream>

#ifndef MAILFERRY_VERSION
#define MAILFERRY_VERSION "unknown"
#endif

namespace mf::cli {

int report_error(const Context& ctx, const Error& error, int exit_code) {
    if (ctx.json) {
        print_json({{"ok", false},
                    {"config", ctx.config_path},
                    {"error",
                     {{"what", error.what},
                      {"detail", error.detail},
                      {"message", error.message()},
                      {"temporary", error.temporary()}}}});
    } else {
        std::cerr << error.message() << "\n";
    }
    return exit_code;
}

void print_json(const nlohmann::json& doc) {
    // Replace, do not throw, on bytes that are not UTF-8 (a config path may hold them).
    std::cout << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

namespace {

int run(int argc, char** argv) {
    CLI::App app{"mailferry: move mail accounts to a new server at their first login", "mailferry"};
    app.require_subcommand(1);
    app.fallthrough(); // `mailferry check-config --config F` works like `--config F check-config`
    app.set_version_flag("--version", MAILFERRY_VERSION);
    app.footer(std::string("Config: --config FILE, else $") + kConfigEnv + ", else " +
               kDefaultConfigPath +
               ".\nExit status: 0 ok, 1 no, 2 usage or config error, 75 try again later.");

    std::string config_option;
    bool json = false;
    app.add_option("--config", config_option, "the config file")->option_text("FILE");
    app.add_flag("--json", json, "print one JSON document instead of text");

    struct Entry {
        CLI::App* sub;
        Handler handler;
    };
    std::vector<Entry> entries;
    for (const Command* cmd : kCommands) {
        CLI::App* sub = app.add_subcommand(cmd->name, cmd->summary);
        sub->footer(std::string("Examples:\n") + cmd->examples);
        entries.push_back({sub, cmd->declare(*sub)});
    }

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // Help and version print and succeed; anything else is a usage error.
        return app.exit(e) == 0 ? kExitOk : kExitUsage;
    }

    Context ctx{config_path_from(config_option), json};
    for (const auto& e : entries) {
        if (e.sub->parsed()) {
            return e.handler(ctx);
        }
    }
    return kExitUsage; // require_subcommand(1) makes this unreachable
}

} // namespace
} // namespace mf::cli

int main(int argc, char** argv) {
    // The worker opens sealed passwords, import reads hashes: no core dumps of either.
    if (auto hardened = mf::harden_process(); !hardened) {
        std::cerr << "mailferry: warning: " << hardened.error().message() << "\n";
    }
    try {
        return mf::cli::run(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "mailferry: internal error: " << e.what() << "\n";
        return mf::cli::kExitSoftware;
    }
}
