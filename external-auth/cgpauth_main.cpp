// mailferry-cgpauth — CommuniGate Pro External Authentication helper over the engine.
//
// SYNOPSIS
//   mailferry-cgpauth [--config PATH] [--workers N] [--probe SMTP-TARGET]
//                     [--probe-helo NAME] [--probe-timeout SECONDS] [--service NAME] [--syslog]
//
// DESCRIPTION
//   CommuniGate Pro starts this program once (Settings → General → Helpers → External
//   Authentication) and talks to it over stdin/stdout (cgpauth_proto.hpp has the syntax):
//     n INTF v                       → n INTF 3
//     n VRFY [(mode)] user@dom pass [ip]
//                                    → Engine::authenticate (face "cgpauth"; the client
//                                      address from "[ip]" when CGP sends one):
//                                        OK       → n OK
//                                        FAIL     → n ERROR incorrect user name or password
//                                        TEMPFAIL → n ERROR temporary failure, try again later
//     n NEW user@dom                 → OK when the account is migrated already, or when the
//                                      old server accepts RCPT TO for it (--probe); ERROR
//                                      otherwise (nothing is created: without a password
//                                      there is nothing to provision)
//     n QUIT                         → answers what is in flight, then n OK, exit 0
//   TEMPFAIL has no reply of its own in this protocol (none found), so
//   it is an ERROR whose text says "temporary": the login fails now and nothing was
//   created, so the user's next attempt starts afresh. It is never OK.
//   Log lines — ours and the engine's — go to CGP's log as "* " lines (or to syslog with
//   --syslog). stderr is used only for a start-up failure: CGP reads it after we exit.
//
// EXIT STATUS
//   0 after QUIT or end of input; 1 when stdout broke; 2 bad option or config.
//
// SECURITY
//   Runs as CGP's helper user with read access to the config and read/write access to the
//   store. Passwords live in Secrets while a request runs; request lines are wiped after
//   parsing and never echoed. Many requests run at once (--workers); the engine's per-
//   account lock keeps a re-sent first login from provisioning twice.
//
// SEE ALSO
//   examples/communigate/, docs/ARCHITECTURE.md, cgpauth_server.hpp,
//   include/mailferry/probe_rcpt.hpp
#include "cgpauth_proto.hpp"
#include "cgpauth_server.hpp"
#include "face_io.hpp"
#include "face_skeleton.hpp"
#include "mailferry/probe_rcpt.hpp"

#include "mailferry/engine.hpp"
#include "mailferry/log.hpp"
#include "mailferry/process_harden.hpp"
#include "mailferry/store.hpp"

#include <array>
#include <functional>
#include <optional>
#include <unistd.h>

namespace {

struct Options {
    mf::face::CommonOptions common;
    unsigned workers = 8;
    std::optional<mf::rcpt::ProbeTarget> probe;
    std::string probe_spec;
    std::string probe_helo;
    unsigned probe_timeout_s = 10;
    std::string service = "cgp";
};

mf::Result<unsigned> parse_number(std::string_view v, unsigned lo, unsigned hi) {
    if (v.empty() || v.size() > 6 || v.find_first_not_of("0123456789") != std::string_view::npos) {
        return mf::make_error("value", "expected a whole number");
    }
    unsigned n = static_cast<unsigned>(std::stoul(std::string(v)));
    if (n < lo || n > hi) {
        return mf::make_error("value", "must be between " + std::to_string(lo) + " and " +
                                           std::to_string(hi));
    }
    return n;
}

const char* const kWrong = "incorrect user name or password";
const char* const kTemporary = "temporary failure, try again later";

class Handlers {
  public:
    Handlers(mf::Engine& engine, const Options& opts) : engine_(engine), opts_(opts) {}

    mf::cgp::Answer operator()(const mf::cgp::Request& r) {
        if (r.command == mf::cgp::Command::vrfy) {
            return vrfy(r);
        }
        return new_account(r);
    }

  private:
    mf::cgp::Answer vrfy(const mf::cgp::Request& r) {
        mf::AuthRequest req;
        req.login = r.user;
        req.password = r.password.view();
        req.service = opts_.service;
        req.client_ip = r.client_ip; // the guard's per-address limits; empty when CGP sent none
        req.face = "cgpauth";
        mf::AuthResult res = engine_.authenticate(req); // logs the decision itself
        switch (res.status) {
        case mf::AuthStatus::ok:
            return {"OK", ""};
        case mf::AuthStatus::fail:
            return {"ERROR", kWrong};
        case mf::AuthStatus::tempfail:
            return {"ERROR", kTemporary};
        }
        return {"ERROR", kTemporary};
    }

    mf::cgp::Answer new_account(const mf::cgp::Request& r) {
        const std::string who = mf::log::prefix("cgpauth", r.user, "") + "<" + r.seq + ">: NEW";
        auto id = engine_.identity().resolve(r.user);
        if (!id) {
            mf::log::info(who + ": account name refused: " + id.error().message());
            return {"ERROR", "invalid account name"};
        }
        // As a login finds it (any letter case for a case-insensitive old server).
        auto acct = mf::find_login_account(engine_.store(), id->canonical,
                                           id->provider->case_insensitive, nullptr);
        if (!acct) {
            mf::log::warning(who + ": " + acct.error().message());
            return {"ERROR", kTemporary};
        }
        if (acct->has_value()) {
            const mf::Account& a = **acct;
            if (a.state == mf::AccountState::disabled) {
                mf::log::info(who + ": " + a.name + " is disabled");
                return {"ERROR", "account disabled"};
            }
            if (mf::is_migrated(a.state)) {
                mf::log::info(who + ": " + a.name + " is migrated already (" +
                              mf::to_string(a.state) + ")");
                return {"OK", ""};
            }
        }
        if (!opts_.probe) {
            mf::log::info(who + ": " + id->canonical +
                          " is not migrated and no --probe is configured to ask the old server");
            return {"ERROR", "unknown account (no SMTP probe configured to ask the old server)"};
        }
        mf::rcpt::ProbeOutcome out = mf::rcpt::probe_recipient(*opts_.probe, id->old_address);
        switch (out.status) {
        case mf::rcpt::ProbeStatus::exists:
            mf::log::info(who + ": " + id->old_address +
                          " exists at the old server: " + out.detail);
            return {"OK", ""};
        case mf::rcpt::ProbeStatus::unknown:
            mf::log::info(who + ": " + id->old_address +
                          " unknown at the old server: " + out.detail);
            return {"ERROR", "unknown account"};
        case mf::rcpt::ProbeStatus::unavailable:
            mf::log::warning(who + ": probe for " + id->old_address + " failed: " + out.detail);
            return {"ERROR", kTemporary};
        }
        return {"ERROR", kTemporary};
    }

    mf::Engine& engine_;
    const Options& opts_;
};

int run(int argc, char** argv) {
    mf::face::start("mailferry-cgpauth");
    Options opts;
    std::vector<mf::face::OptionSpec> specs;
    mf::face::add_common_options(specs, opts.common);
    specs.push_back({"workers", "N", "requests decided at once (default 8, 1-64)",
                     [&opts](std::string_view v) -> mf::Result<void> {
                         auto n = parse_number(v, 1, 64);
                         if (!n) {
                             return n.error();
                         }
                         opts.workers = *n;
                         return {};
                     }});
    specs.push_back({"probe", "TARGET",
                     "answer NEW by RCPT TO at smtp://host[:port] or lmtp://host:port",
                     [&opts](std::string_view v) -> mf::Result<void> {
                         opts.probe_spec = v;
                         return {};
                     }});
    specs.push_back({"probe-helo", "NAME", "our name in EHLO/LHLO (default: the host name)",
                     [&opts](std::string_view v) -> mf::Result<void> {
                         if (v.empty() || v.find_first_of(" \t\r\n") != std::string_view::npos) {
                             return mf::make_error("name", "must be one word");
                         }
                         opts.probe_helo = v;
                         return {};
                     }});
    specs.push_back({"probe-timeout", "SECONDS", "limit for one probe (default 10)",
                     [&opts](std::string_view v) -> mf::Result<void> {
                         auto n = parse_number(v, 1, 300);
                         if (!n) {
                             return n.error();
                         }
                         opts.probe_timeout_s = *n;
                         return {};
                     }});
    specs.push_back({"service", "NAME", "service name for the engine's log and audit (default cgp)",
                     [&opts](std::string_view v) -> mf::Result<void> {
                         if (v.empty() || v.size() > 32 ||
                             v.find_first_of(" \t\r\n") != std::string_view::npos) {
                             return mf::make_error("name", "must be one short word");
                         }
                         opts.service = v;
                         return {};
                     }});
    auto args = mf::face::parse_args(argc, argv, specs);
    auto fail_start = [](const std::string& msg) {
        // CGP shows stderr after we exit; the "* " line reaches its log at once.
        std::string out = mf::cgp::info_line("mailferry-cgpauth: cannot start: " + msg);
        (void)mf::face::write_all(STDOUT_FILENO, out);
        std::string err = "mailferry-cgpauth: " + msg + "\n";
        (void)mf::face::write_all(STDERR_FILENO, err);
        return 2;
    };
    if (!args) {
        return fail_start(args.error().message());
    }
    if (args->help) {
        (void)mf::face::write_all(
            STDOUT_FILENO,
            mf::face::usage_text("mailferry-cgpauth", "",
                                 "CommuniGate Pro External Authentication helper (stdin/stdout).",
                                 specs));
        return 0;
    }
    if (args->version) {
        (void)mf::face::write_all(STDOUT_FILENO,
                                  std::string("mailferry-cgpauth ") + mf::face::version() + "\n");
        return 0;
    }
    if (args->first_operand < argc) {
        return fail_start("unexpected argument \"" +
                          mf::sanitize_reply(argv[args->first_operand], 100) + "\" (see --help)");
    }
    if (!opts.probe_spec.empty()) {
        auto t = mf::rcpt::parse_probe_target(opts.probe_spec);
        if (!t) {
            return fail_start("--probe: " + t.error().message());
        }
        t->timeout = mf::Millis(opts.probe_timeout_s * 1000LL);
        if (opts.probe_helo.empty()) {
            std::array<char, 256> host{};
            if (::gethostname(host.data(), host.size() - 1) == 0 && host[0] != '\0') {
                t->helo = host.data();
            }
        } else {
            t->helo = opts.probe_helo;
        }
        opts.probe = std::move(*t);
    }

    mf::cgp::LineWriter out(STDOUT_FILENO);
    if (opts.common.syslog) {
        mf::face::apply_logging(opts.common, "mailferry-cgpauth");
    } else {
        mf::log::set_sink([&out](mf::LogLevel, std::string_view line) { out.info(line); });
    }
    auto engine = mf::face::open_engine(opts.common);
    if (!engine) {
        mf::log::set_sink(nullptr);
        return fail_start(engine.error().message());
    }
    mf::log::info("mailferry-cgpauth " + std::string(mf::face::version()) + " started (" +
                  std::to_string(opts.workers) + " workers" +
                  (opts.probe ? ", NEW probes " + opts.probe_spec : std::string()) + ")");
    Handlers handlers(**engine, opts);
    mf::cgp::ServerOptions sopts;
    sopts.workers = opts.workers;
    int rc = mf::cgp::serve(STDIN_FILENO, out, mf::cgp::Handler(std::ref(handlers)), sopts);
    if (rc == 0) {
        mf::log::info("mailferry-cgpauth stopped");
    }
    mf::log::set_sink(nullptr);
    return rc;
}

} // namespace

int main(int argc, char** argv) {
    // Before the first request is read: a core dump would hold passwords.
    if (auto hardened = mf::harden_process(); !hardened) {
        std::string msg = "mailferry-cgpauth: warning: " + hardened.error().message() + "\n";
        (void)mf::face::write_all(STDERR_FILENO, msg);
    }
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::string msg = std::string("mailferry-cgpauth: internal error: ") + e.what() + "\n";
        (void)mf::face::write_all(STDERR_FILENO, msg);
    } catch (...) {
        (void)mf::face::write_all(STDERR_FILENO, "mailferry-cgpauth: internal error\n");
    }
    return 2;
}
