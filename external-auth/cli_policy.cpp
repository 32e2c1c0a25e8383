// cli_policy.cpp — `mailferry policy`: a Postfix policy delegation service on stdin and
// stdout (SMTPD_POLICY_README's protocol).
//
// SYNOPSIS
//   mailferry policy [--config FILE]
// DESCRIPTION
//   Run by a master.cf `spawn` service (examples/postfix/master.cf.mailflow), one process
//   per smtpd connection, many requests until EOF. Called from smtpd_recipient_restrictions
//   (RCPT) and smtpd_end_of_data_restrictions (END-OF-MESSAGE, where the queue ID is
//   known). Answers DUNNO for migrated recipients, HOLD for accounts in their final copy
//   round (remembered in the store for `mailferry mailflow-release`), and for accounts not
//   yet migrated DUNNO ([mailflow] unmigrated = "relay") or the old server's own verdict
//   from an RCPT probe ("probe"; unreachable → DEFER_IF_PERMIT, never a reject).
//   A malformed request is logged and answered DEFER_IF_PERMIT, then the connection closes.
// EXIT STATUS
//   0 at EOF; 1 after a malformed request; 2 config error; 75 store or connection failed.
// SECURITY
//   Writes held-mail rows and known recipients to the store; never sends a message (the
//   probe stops at RCPT). Logs as `mailferry transport` does.
#include "cli_command.hpp"

#include "mailferry/config.hpp"
#include "mailferry/log.hpp"
#include "mailferry/mailflow.hpp"
#include "mailferry/store.hpp"

#include <csignal>
#include <unistd.h>

namespace mf::cli {
namespace {

int run(const Context& ctx) {
    auto cfg = load_config(ctx.config_path);
    if (!cfg) {
        log::use_syslog("mailferry-policy");
        log::error("policy: " + cfg.error().message());
        return kExitUsage;
    }
    mailflow::use_service_log(*cfg, "mailferry-policy");
    std::signal(SIGPIPE, SIG_IGN);
    auto store = open_sqlite_store(cfg->store.path, cfg->store.busy_timeout);
    if (!store) {
        // Postfix answers its smtpd_policy_service_default_action (451 4.3.5) meanwhile.
        log::error("policy: " + store.error().message());
        return kExitTempFail;
    }
    return mailflow::serve_policy(*cfg, **store, STDIN_FILENO, STDOUT_FILENO);
}

} // namespace

const Command policy_command = {
    "policy",
    "Postfix policy service (stdin/stdout): HOLD mail in the final round, probe the old server",
    "  master.cf:  mailferry-policy unix - n n - - spawn user=mailferry\n"
    "                argv=/usr/local/bin/mailferry policy\n"
    "  main.cf:    smtpd_recipient_restrictions = ..., check_policy_service "
    "unix:private/mailferry-policy\n"
    "              smtpd_end_of_data_restrictions = check_policy_service "
    "unix:private/mailferry-policy\n"
    "Exit status: 0 at EOF, 1 garbage, 2 config error, 75 store or connection failed.",
    [](CLI::App&) -> Handler { return [](const Context& ctx) { return run(ctx); }; },
};

} // namespace mf::cli
