// mailferry-checkpassword — Dovecot / qmail checkpassword program over the mailferry engine.
//
// SYNOPSIS
//   mailferry-checkpassword [--config PATH] [--timeout SECONDS] [--syslog] PROG [ARGS…]
//
// DESCRIPTION
//   Reads "login\0password\0timestamp\0" from fd 3 (at most 512 bytes, then EOF, within
//   --read-timeout), asks Engine::authenticate (face "checkpassword", service $SERVICE,
//   client $TCPREMOTEIP or $REMOTE_IP) and on OK sets USER to the canonical account, HOME
//   and EXTRA (+ one variable per extra field) and execs PROG ARGS… — Dovecot passes
//   /usr/lib/dovecot/checkpassword-reply, which writes the reply to fd 4.
//   With AUTHORIZED=1 (Dovecot's userdb/passdb lookup, no password) the account is looked
//   up in the store instead: migrated → AUTHORIZED=2 and exec PROG; otherwise exit 3.
//   A credentials lookup (CREDENTIALS_LOOKUP=1: CRAM-MD5 and friends) is refused with
//   exit 3 and a log line: mailferry only verifies plaintext passwords.
//
// EXIT STATUS (what Dovecot 2.3 makes of it)
//   0    --help, --version; on success the exec'd PROG's own status counts
//   1    wrong password, unknown or refused login, fd 3 input over 512 bytes
//   2    misuse: fd 3 not open, empty or truncated, no PROG, bad option (Dovecot: tempfail)
//   3    lookup mode: no such migrated account
//   111  temporary: old server unreachable, store busy, config unreadable, --timeout hit,
//        exec of PROG failed
//   In lookup mode exit 2 means FOUND to Dovecot, so misuse exits 111 there instead.
//
// SECURITY
//   Runs as Dovecot's auth user; needs read access to the config and read/write access to
//   the store (the `mailferry` group). The password lives only in a Secret and
//   the buffers it passed through are wiped; it never reaches argv, the environment or a
//   log line. Descriptor 4 is kept close-on-exec while the engine runs (a worker the
//   engine starts must not hold Dovecot's reply pipe open) and handed to PROG only.
//   Dovecot has no time limit of its own for this program: --timeout (default 60 s)
//   ends it with exit 111 from SIGALRM.
//
// SEE ALSO
//   examples/dovecot/, https://cr.yp.to/checkpwd/interface.html
#include "checkpassword_proto.hpp"
#include "face_io.hpp"
#include "face_skeleton.hpp"

#include "mailferry/engine.hpp"
#include "mailferry/log.hpp"
#include "mailferry/process_harden.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

namespace {

namespace cp = mf::checkpassword;

constexpr int kCredentialsFd = 3;
constexpr int kReplyFd = 4;

const char kTimeoutMessage[] =
    "mailferry-checkpassword: error: --timeout reached: giving up (exit 111)\n";

extern "C" void on_alarm(int /*sig*/) {
    // Async-signal-safe only: one write, then leave without running destructors.
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, kTimeoutMessage, sizeof kTimeoutMessage - 1);
    ::_exit(cp::kExitTemporary);
}

struct Options {
    mf::face::CommonOptions common;
    unsigned timeout_s = 60;
    unsigned read_timeout_s = 10;
};

mf::Result<unsigned> parse_seconds(std::string_view v, unsigned max) {
    if (v.empty() || v.size() > 6 || v.find_first_not_of("0123456789") != std::string_view::npos) {
        return mf::make_error("seconds",
                              "expected a whole number, got \"" + mf::sanitize_reply(v, 20) + "\"");
    }
    unsigned n = static_cast<unsigned>(std::stoul(std::string(v)));
    if (n == 0 || n > max) {
        return mf::make_error("seconds", "must be between 1 and " + std::to_string(max));
    }
    return n;
}

// Lookup mode: Dovecot asks whether an account exists (userdb, or passdb lookups). The
// engine decides (Engine::lookup, the same answer mf_lookup_user gives the Lua userdb).
int lookup(mf::Engine& engine, const std::string& login, const std::string& who) {
    mf::AuthResult found = engine.lookup(login, "checkpassword");
    switch (found.status) {
    case mf::AuthStatus::ok:
        break;
    case mf::AuthStatus::fail:
        return cp::kExitUnknownUser;
    case mf::AuthStatus::tempfail:
        return cp::kExitTemporary;
    }
    auto env = cp::reply_env(found.user, found.extra);
    if (!env) {
        mf::log::error(who + ": lookup: " + env.error().message());
        return cp::kExitTemporary;
    }
    for (const auto& s : env->skipped) {
        mf::log::warning(who + ": extra field not passed to Dovecot: " + s);
    }
    if (!cp::apply_env(*env) || ::setenv("AUTHORIZED", "2", 1) != 0) {
        mf::log::error(who + ": setenv failed: " + std::strerror(errno));
        return cp::kExitTemporary;
    }
    return -1; // exec the reply program
}

int run(int argc, char** argv) {
    mf::face::start("mailferry-checkpassword");
    const bool lookup_mode = mf::face::env_or_empty("AUTHORIZED") == "1";
    // In a lookup Dovecot reads exit 2 as "found": misuse must not look like that.
    const int misuse = lookup_mode ? cp::kExitTemporary : cp::kExitMisuse;

    Options opts;
    std::vector<mf::face::OptionSpec> specs;
    mf::face::add_common_options(specs, opts.common);
    specs.push_back({"timeout", "SECONDS", "give up with exit 111 after this long (default 60)",
                     [&opts](std::string_view v) -> mf::Result<void> {
                         auto n = parse_seconds(v, 3600);
                         if (!n) {
                             return n.error();
                         }
                         opts.timeout_s = *n;
                         return {};
                     }});
    specs.push_back({"read-timeout", "SECONDS", "wait this long for fd 3 to reach EOF (default 10)",
                     [&opts](std::string_view v) -> mf::Result<void> {
                         auto n = parse_seconds(v, 3600);
                         if (!n) {
                             return n.error();
                         }
                         opts.read_timeout_s = *n;
                         return {};
                     }});
    auto args = mf::face::parse_args(argc, argv, specs);
    if (!args) {
        mf::log::error(args.error().message());
        return misuse;
    }
    if (args->help) {
        std::string text = mf::face::usage_text(
            "mailferry-checkpassword", "PROG [ARGS...]",
            "Checkpassword program: reads login\\0password\\0timestamp\\0 from fd 3, asks "
            "mailferry, execs PROG on success.",
            specs);
        (void)mf::face::write_all(STDOUT_FILENO, text);
        return 0; // Dovecot reads exit 0 without a reply as a failure: harmless if misused
    }
    if (args->version) {
        std::string text = std::string("mailferry-checkpassword ") + mf::face::version() + "\n";
        (void)mf::face::write_all(STDOUT_FILENO, text);
        return 0;
    }
    mf::face::apply_logging(opts.common, "mailferry-checkpassword");
    if (args->first_operand >= argc) {
        mf::log::error("usage: mailferry-checkpassword [options] PROG [ARGS...]: no program to "
                       "run on success (Dovecot appends checkpassword-reply)");
        return misuse;
    }
    char** reply_argv = argv + args->first_operand;

    std::signal(SIGALRM, on_alarm);
    ::alarm(opts.timeout_s);

    if (!mf::face::fd_is_open(kCredentialsFd)) {
        mf::log::error("fd 3 is not open: run me as a checkpassword program (Dovecot passdb "
                       "checkpassword, qmail-popup), which sends the credentials there");
        return misuse;
    }
    // Keep Dovecot's reply pipe away from anything the engine may start.
    const bool have_reply_fd = mf::face::fd_is_open(kReplyFd);
    if (have_reply_fd) {
        (void)mf::face::set_cloexec(kReplyFd, true);
    }

    auto input = mf::face::read_all_bounded(kCredentialsFd, cp::kMaxInput,
                                            mf::Millis(opts.read_timeout_s * 1000LL));
    ::close(kCredentialsFd);
    switch (input.end) {
    case mf::face::ReadEnd::eof:
        break;
    case mf::face::ReadEnd::over_limit:
        mf::log::info("fd 3 carried more than 512 bytes: answered as a wrong password "
                      "(checkpassword interface limit)");
        return lookup_mode ? cp::kExitTemporary : cp::kExitMismatch;
    case mf::face::ReadEnd::timeout:
        mf::log::warning("fd 3 did not reach end of file within " +
                         std::to_string(opts.read_timeout_s) + " s: temporary failure");
        return cp::kExitTemporary;
    case mf::face::ReadEnd::error:
        mf::log::error(std::string("read(fd 3) failed: ") + std::strerror(input.errno_value));
        return cp::kExitTemporary;
    }
    auto creds = cp::parse_input(input.data.view());
    input.data.clear();
    if (!creds) {
        mf::log::error(creds.error().message());
        return misuse;
    }

    const std::string service = mf::face::env_or_empty("SERVICE");
    std::string ip = mf::face::env_or_empty("TCPREMOTEIP");
    if (ip.empty()) {
        ip = mf::face::env_or_empty("REMOTE_IP");
    }
    const std::string who = mf::log::prefix("checkpassword", creds->login, ip);

    auto engine = mf::face::open_engine(opts.common);
    if (!engine) {
        mf::log::error(who + ": " + engine.error().message());
        return cp::kExitTemporary;
    }

    if (lookup_mode) {
        creds->password.clear();
        if (mf::face::env_or_empty("CREDENTIALS_LOOKUP") == "1") {
            // A challenge-response mechanism wants the password (or its equivalent) from
            // us; mailferry only verifies plaintext logins.
            mf::log::warning(who + ": credentials lookup for scheme " +
                             mf::sanitize_reply(mf::face::env_or_empty("SCHEME"), 40) +
                             " refused: only plaintext mechanisms (PLAIN, LOGIN) work through "
                             "mailferry; set auth_mechanisms = plain login");
            return cp::kExitUnknownUser;
        }
        int rc = lookup(**engine, creds->login, who);
        if (rc >= 0) {
            return rc;
        }
    } else {
        mf::AuthRequest req;
        req.login = creds->login;
        req.password = creds->password.view();
        req.service =
            service.empty() ? std::string_view("checkpassword") : std::string_view(service);
        req.client_ip = ip;
        req.face = "checkpassword";
        mf::AuthResult res = (*engine)->authenticate(req);
        creds->password.clear();
        switch (res.status) {
        case mf::AuthStatus::ok:
            break;
        case mf::AuthStatus::fail:
            return cp::kExitMismatch;
        case mf::AuthStatus::tempfail:
            return cp::kExitTemporary;
        }
        auto env = cp::reply_env(res.user, res.extra);
        if (!env) {
            mf::log::error(who + ": " + env.error().message());
            return cp::kExitTemporary;
        }
        for (const auto& s : env->skipped) {
            mf::log::warning(who + ": extra field not passed to Dovecot: " + s);
        }
        if (!cp::apply_env(*env)) {
            mf::log::error(who + ": setenv failed: " + std::strerror(errno));
            return cp::kExitTemporary;
        }
    }

    // Close the store and stop the clock before handing the process over (an alarm
    // survives execve).
    engine->reset();
    ::alarm(0);
    if (have_reply_fd) {
        (void)mf::face::set_cloexec(kReplyFd, false);
    }
    ::execvp(reply_argv[0], reply_argv);
    mf::log::error(who + ": exec " + mf::sanitize_reply(reply_argv[0], 200) +
                   " failed: " + std::strerror(errno));
    return cp::kExitTemporary;
}

} // namespace

int main(int argc, char** argv) {
    // Before anything reads fd 3: a core dump would hold the password.
    if (auto hardened = mf::harden_process(); !hardened) {
        mf::log::warning(hardened.error().message());
    }
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        mf::log::error(std::string("internal error: ") + e.what());
    } catch (...) {
        mf::log::error("internal error");
    }
    return cp::kExitTemporary;
}
