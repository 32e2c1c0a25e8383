// cli_auth_http.cpp — `mailferry auth-http`: nginx's mail auth_http service for the
// transition proxy (docs/ARCHITECTURE.md, "The transition proxy").
//
// SYNOPSIS
//   mailferry auth-http [--syslog]
// DESCRIPTION
//   Listens where [auth_http] listen says (loopback TCP or a UNIX socket) and answers each
//   login nginx's mail proxy asks about: the password is verified as any login is (a
//   first login at the old server, then provisioned and queued for its copy), and the
//   client is sent to the new server once its account is synced, to the old server before.
//   Runs until SIGTERM or SIGINT. Logs to stderr, or to syslog with --syslog.
// EXIT STATUS
//   0 stopped; 2 config error (no [auth_http], an address that cannot be bound); 75 the
//   store could not be opened.
// SECURITY
//   The service tells right from wrong passwords: keep it on loopback or a 0660 socket.
//   Passwords live in wiped buffers only and are never logged.
#include "authhttp_server.hpp"
#include "authhttp_service.hpp"
#include "cli_command.hpp"

#include "mailferry/engine.hpp"
#include "mailferry/log.hpp"

#include <csignal>

namespace mf::cli {
namespace {

int run_auth_http(const Context& ctx, bool syslog) {
    auto cfg = load_config(ctx.config_path);
    if (!cfg) {
        return report_error(ctx, cfg.error(), kExitUsage);
    }
    if (!cfg->auth_http.configured) {
        return report_error(ctx,
                            make_error(cfg->source_path + ": auth_http",
                                       "missing: `mailferry auth-http` needs an [auth_http] "
                                       "section (see examples/mailferry.toml)",
                                       Scope::config),
                            kExitUsage);
    }
    log::set_program("mailferry-auth-http");
    log::set_level(cfg->log.level);
    if (syslog) {
        log::use_syslog("mailferry-auth-http");
    }
    // A vanished nginx is an error from write(), not a silent death.
    std::signal(SIGPIPE, SIG_IGN);
    auto engine = Engine::from_config(std::move(*cfg));
    if (!engine) {
        return report_error(ctx, engine.error(),
                            engine.error().scope == Scope::config ? kExitUsage : kExitTempFail);
    }
    auto key = authhttp::read_key((*engine)->config().auth_http);
    if (!key) {
        return report_error(ctx, key.error(), kExitUsage);
    }
    authhttp::Service service(**engine, std::move(*key));
    auto server = authhttp::Server::open(
        (*engine)->config().auth_http,
        [&service](const authhttp::FieldLookup& field) { return service.handle(field); });
    if (!server) {
        return report_error(ctx, server.error(), kExitUsage);
    }
    (*server)->run();
    return kExitOk;
}

} // namespace

const Command auth_http_command = {
    "auth-http",
    "answer nginx's mail proxy: which server each login goes to (until SIGTERM)",
    "  mailferry auth-http                   (see examples/nginx/mailferry-mail-proxy.conf)\n"
    "  mailferry auth-http --syslog\n"
    "Exit status: 0 stopped, 2 config error, 75 try again later.",
    [](CLI::App& app) -> Handler {
        auto syslog = std::make_shared<bool>(false);
        app.add_flag("--syslog", *syslog, "log to syslog (mail facility) instead of stderr");
        return [syslog](const Context& ctx) { return run_auth_http(ctx, *syslog); };
    },
};

} // namespace mf::cli
