// admin_dryrun.hpp — `mailferry dry-run`: is everything ready before a campaign?
//
// check_users() reads a users file (one login per line; `user<TAB>anything` is allowed and
// everything after the first TAB is ignored unread — it may be a password) and maps each
// login through the identity map: canonical account, old server, the login that server
// wants, and the account's state in the store if it has one. Conflicts are collected: a
// name the identity map refuses, the same login twice, and two different logins that map
// to one account (a short name and a full address, a domain rename, the conflict map, two
// letter cases of one user of a case-insensitive old server), and an account the store
// holds under another letter case (made by an older version) or several times.
// check_servers() probes each old server named by the file once, as the verifier would
// reach it (probe_server(): protocol, TLS mode, CA, certificate check; no login).
// check_provisioner() says whether the provisioner looks usable without provisioning
// anything (there is no non-mutating call in provisioner.hpp): builtin — the store's
// directory is writable; dovecot-passwd-file — the file (or its directory) is writable by
// us; command — the program exists and is executable (not run); http — a TCP and TLS
// connection to the URL's host with the configured certificate check (no request sent)
// and the token file readable.
//
// Must never: write to the store or anywhere else, log in anywhere, or print anything after
// a TAB of the users file.
// Errors: unusable file → Error; every per-line and per-server problem is data.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/error.hpp"
#include "mailferry/identity.hpp"
#include "mailferry/import.hpp"
#include "mailferry/store.hpp"

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace mf::cli {

enum class UserStatus { ok, refused, duplicate, conflict, malformed };
const char* to_string(UserStatus s);

struct UserCheck {
    std::size_t line = 0;
    std::string user;    // as the file gives it, printable
    std::string account; // canonical, when known
    std::string server;  // provider name, when known
    std::string old_login;
    std::string state; // the account's state in the store, "" when it has none
    UserStatus status = UserStatus::ok;
    std::string detail;
};

struct ServerCheck {
    std::string name;
    std::string where; // "imap localhost:993 tls implicit"
    std::size_t users = 0;
    bool reachable = false;
    std::string detail;
};

struct ProvisionerCheck {
    bool ok = false;
    std::string what;   // "dovecot-passwd-file /etc/dovecot/users"
    std::string detail; // what was checked, and what is wrong
};

struct UsersReport {
    std::size_t data_lines = 0;
    std::vector<UserCheck> users;
    std::vector<std::string> conflicts; // one sentence per conflict or refusal
};

// `store` may be nullptr (no database yet). `tick` after each line.
Result<UsersReport> check_users(const TextFile& file, const IdentityMap& ids, Store* store,
                                const std::function<void()>& tick);

// Probes every provider that `users` names (in config order), once each.
std::vector<ServerCheck> check_servers(const Config& cfg, const UsersReport& users);

ProvisionerCheck check_provisioner(const Config& cfg);

} // namespace mf::cli
