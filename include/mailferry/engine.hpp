// engine.hpp — the login decision: authenticate(login, password, service, client_ip).
//
//   1. Identity: login → canonical account + old server (garbage → FAIL, nobody contacted)
//   2. Store: migrated → verify against the stored hash (rehash a legacy scheme);
//             held → TEMPFAIL "maintenance"; disabled → FAIL; unknown → 3
//   3. Guard: too many failures for the account or client IP, or this very password was
//             just rejected → FAIL locally; old server's concurrency budget full → TEMPFAIL
//   4. Verifier at the old server: accepted → 5; rejected → FAIL; unreachable → TEMPFAIL
//   5. Provisioner, then the account row (state provisioned) with an audit row
//   6. Hook for the copy (later: spool + job queue)
// Two first logins of one user at once, even in two processes, serialize on a per-account
// lock: one provisions, the other then finds the account and answers from the store.
//
// Three answers only: ok, fail (wrong password / no such account), tempfail (try again;
// nothing was created). A network problem is never fail. Engine is thread-safe and
// authenticate() never throws.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/error.hpp"
#include "mailferry/identity.hpp"
#include "mailferry/secret.hpp"
#include "mailferry/store.hpp"

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mf {

enum class AuthStatus { ok, fail, tempfail };

const char* to_string(AuthStatus s);

struct AuthRequest {
    std::string_view login;
    std::string_view password; // may hold any byte; CR, LF, NUL → fail
    std::string_view service;  // "imap", "pop3", "smtp", … (for logs and the audit)
    std::string_view client_ip;
    std::string_view face; // "checkpassword", "cgpauth", "pam", "capi", "replay"
};

struct AuthResult {
    AuthStatus status = AuthStatus::tempfail;
    std::string user; // canonical name (on ok, and on fail when known)
    std::vector<std::pair<std::string, std::string>> extra; // on ok: configured extra fields
    std::string message;      // for the log; safe to show an admin, never the password
    bool first_login = false; // ok by the old server just now (account provisioned)
    // tempfail only because the old server's max_concurrent budget was full: nothing was
    // asked; a batch caller (mailferry replay) waits and tries the same line again.
    bool server_busy = false;
};

// Called after a first login has been provisioned, with the password still in hand —
// the background-copy issue seals it into the spool here. Errors are logged, the login
// stays ok.
using ProvisionedHook = std::function<Result<void>(const Identity&, const Secret& password)>;

class Engine {
  public:
    static Result<std::unique_ptr<Engine>> open(const std::string& config_path);
    static Result<std::unique_ptr<Engine>> from_config(Config cfg);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    AuthResult authenticate(const AuthRequest& req) noexcept;

    // A lookup without a password (a userdb asking whether an account exists: Dovecot's
    // LMTP delivery, doveadm, a master-user login): ok with the canonical name and the
    // extra fields for an account mailferry has migrated; fail for any other name (not
    // yet migrated, disabled, refused by the identity map); tempfail when the store cannot
    // answer. The name is found as a login finds it (letter case, older spellings). Asks
    // no old server, writes nothing, never throws. `face` names the caller in the log.
    AuthResult lookup(std::string_view login, std::string_view face) noexcept;

    void set_provisioned_hook(ProvisionedHook hook);

    [[nodiscard]] const Config& config() const;
    Store& store();
    [[nodiscard]] const IdentityMap& identity() const;

    struct Impl;

  private:
    explicit Engine(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace mf
