// cli_command.hpp — how a `mailferry` subcommand declares itself.
//
// Each command lives in its own file, external-auth/cli_<name>.cpp, and ends with one
// `const Command` naming it, its help (one line, then examples) and a declare() that adds
// its typed CLI11 options and returns the handler reading them. kCommands below is the
// one table of commands; cli_main.cpp builds the command line from it and owns the global
// options (--config, --json), the exit codes and the error output.
//
// Never: print a secret (a handler prints names of secret files, never their contents),
// or exit() from a handler — it returns an exit code.
// Errors: a handler reports an mf::Error with report_error() and returns its exit code.
#pragma once

#include "mailferry/error.hpp"

#include <CLI/CLI.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace mf::cli {

// Exit codes (sysexits where a caller acts on them).
inline constexpr int kExitOk = 0;
inline constexpr int kExitNo = 1;        // a definite no: mismatch, refused
inline constexpr int kExitUsage = 2;     // usage or config error
inline constexpr int kExitSoftware = 70; // EX_SOFTWARE: a bug of ours
inline constexpr int kExitTempFail = 75; // EX_TEMPFAIL: try again later

// What every handler gets from the global options.
struct Context {
    std::string config_path; // --config, else $MAILFERRY_CONFIG, else the default
    bool json = false;       // --json: one JSON document on stdout instead of text
};

using Handler = std::function<int(const Context&)>;

struct Command {
    const char* name;     // "check-config"
    const char* summary;  // one line, for `mailferry --help`
    const char* examples; // lines shown by `mailferry NAME --help`
    // Adds the command's typed options to `app`; the returned handler reads their values
    // after parsing. Called once, before parsing.
    Handler (*declare)(CLI::App& app);
};

// Prints `error` (text on stderr, or {"ok": false, "error": …} on stdout with --json) and
// returns `exit_code`.
int report_error(const Context& ctx, const Error& error, int exit_code);

// Prints a JSON document on stdout, indented, with a final newline.
void print_json(const nlohmann::json& doc);

// The exit code for an error that ends a command: a config problem (Scope::config) is
// kExitUsage, anything else (a busy store, a server down) kExitTempFail.
inline int temp_or_usage(const Error& e) {
    return e.scope == Scope::config ? kExitUsage : kExitTempFail;
}

// ---- the command table: one line per cli_<name>.cpp ----
extern const Command check_config_command;
extern const Command worker_command;           // cli_worker.cpp
extern const Command keys_command;             // cli_keys.cpp
extern const Command cutover_command;          // cli_cutover.cpp
extern const Command status_command;           // cli_status.cpp
extern const Command import_command;           // cli_import.cpp
extern const Command never_logged_in_command;  // cli_never_logged_in.cpp
extern const Command replay_command;           // cli_replay.cpp
extern const Command dry_run_command;          // cli_dry_run.cpp
extern const Command account_command;          // cli_account.cpp
extern const Command copy_all_command;         // cli_copy_all.cpp
extern const Command transport_command;        // cli_transport.cpp
extern const Command policy_command;           // cli_policy.cpp
extern const Command mailflow_release_command; // cli_mailflow_release.cpp
extern const Command auth_http_command;        // cli_auth_http.cpp

// One line per command in the table below.
inline constexpr const Command* kCommands[] = {
    &check_config_command, &dry_run_command,          &import_command,    &replay_command,
    &status_command,       &never_logged_in_command,  &cutover_command,   &account_command,
    &copy_all_command,     &worker_command,           &keys_command,      &transport_command,
    &policy_command,       &mailflow_release_command, &auth_http_command,
};

} // namespace mf::cli
