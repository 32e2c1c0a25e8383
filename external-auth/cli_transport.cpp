// cli_transport.cpp — `mailferry transport`: Postfix's transport_maps lookup table over
// the socketmap protocol, on stdin and stdout.
//
// SYNOPSIS
//   mailferry transport [--config FILE]
// DESCRIPTION
//   Run by a master.cf `spawn` service (examples/postfix/master.cf.mailflow), one process
//   per Postfix connection; answers netstring requests "transport ADDRESS" until EOF:
//   "OK [mailflow] local_transport" for a migrated account, "OK relay_transport" of the
//   address's provider for any other address of its domains, "NOTFOUND " for other
//   domains, "TEMP …" when the store is busy, "PERM …" for garbage (then closes).
// EXIT STATUS
//   0 at EOF; 1 after a malformed request; 2 config error; 75 the store or the
//   connection failed.
// SECURITY
//   Reads the store only. Logs to [mailflow] log_file, else syslog when stderr is
//   Postfix's socket, else stderr; never a byte of the request beyond 80 printable ones.
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
        log::use_syslog("mailferry-transport");
        log::error("transport: " + cfg.error().message());
        return kExitUsage;
    }
    mailflow::use_service_log(*cfg, "mailferry-transport");
    std::signal(SIGPIPE, SIG_IGN); // a client gone mid-reply is a write error, not a death
    auto store = open_sqlite_store_readonly(cfg->store.path, cfg->store.busy_timeout);
    if (!store) {
        // Postfix takes the closed connection as a temporary lookup failure: deferred.
        log::error("transport: " + store.error().message());
        return kExitTempFail;
    }
    return mailflow::serve_socketmap(*cfg, **store, STDIN_FILENO, STDOUT_FILENO);
}

} // namespace

const Command transport_command = {
    "transport",
    "Postfix transport_maps over socketmap (stdin/stdout): new server or old, per recipient",
    "  master.cf:  mailferry-transport unix - n n - - spawn user=mailferry\n"
    "                argv=/usr/local/bin/mailferry transport\n"
    "  main.cf:    transport_maps = socketmap:unix:private/mailferry-transport:transport\n"
    "Exit status: 0 at EOF, 1 garbage, 2 config error, 75 store or connection failed.",
    [](CLI::App&) -> Handler { return [](const Context& ctx) { return run(ctx); }; },
};

} // namespace mf::cli
