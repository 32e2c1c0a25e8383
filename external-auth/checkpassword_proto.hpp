// checkpassword_proto.hpp — the checkpassword interface's data, parsed and produced.
//
// In (https://cr.yp.to/checkpwd/interface.html, Dovecot 2.3 db-checkpassword.c): fd 3
// carries "login\0password\0timestamp\0" and possibly more, at most 512 bytes, then EOF.
// Dovecot leaves the timestamp empty; in a userdb lookup (AUTHORIZED=1) the password is
// empty too. Out: on success the face execs checkpassword-reply, which turns USER, HOME
// and the variables named in EXTRA into Dovecot's TAB-separated reply on fd 4.
//
// Must never: keep the password outside a Secret, or put a value into the environment
// that would corrupt the reply (TAB, CR, LF) or steer the exec'd program (PATH, LD_*, …).
// Errors: a malformed fd 3 payload is an Error whose detail says what was missing; it
// never contains the payload itself.
#pragma once

#include "mailferry/error.hpp"
#include "mailferry/secret.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mf::checkpassword {

// The interface's limit on fd 3 (Dovecot refuses to send more; longer = mismatch). It
// stays below the engine's kMaxPasswordBytes on purpose: Dovecot 2.3 never sends more, so
// a longer password cannot reach this face at all. Such users need the Lua passdb
// (examples/dovecot/mailferry.lua), which carries up to kMaxPasswordBytes.
inline constexpr std::size_t kMaxInput = 512;

// checkpassword's exit codes as Dovecot reads them.
inline constexpr int kExitOk = 0;          // reply program ran (its exit code, really)
inline constexpr int kExitMismatch = 1;    // wrong password / no such user
inline constexpr int kExitMisuse = 2;      // called wrongly (in a lookup: 2 means FOUND!)
inline constexpr int kExitUnknownUser = 3; // lookup mode only
inline constexpr int kExitTemporary = 111;

struct Credentials {
    std::string login;
    Secret password;
};

// Splits the fd 3 payload. Needs the login and the password, each NUL-terminated; the
// timestamp and anything after it are ignored (the interface allows "more data").
Result<Credentials> parse_input(std::string_view data);

// One environment change for checkpassword-reply: set name=value, or unset when
// `value` is empty and `unset` is true.
struct EnvChange {
    std::string name;
    std::string value;
    bool unset = false;
};

struct ReplyEnv {
    std::vector<EnvChange> changes;
    std::vector<std::string> skipped; // "field: reason" for extra fields we dropped
};

// The environment that makes checkpassword-reply answer with `user` and `extra` fields:
// USER=user, HOME from userdb_home or home (unset otherwise), each other field as an upper-cased
// variable listed in EXTRA (checkpassword-reply lower-cases the names again). Fields with
// names outside [a-z0-9_] or that would shadow the process environment, and values with
// TAB, CR, LF or NUL, are skipped and listed in `skipped`. A user name with such bytes is
// an Error (there is no safe answer then).
Result<ReplyEnv> reply_env(std::string_view user,
                           const std::vector<std::pair<std::string, std::string>>& extra);

// Applies the changes with setenv()/unsetenv(). Returns false (errno set) on failure.
bool apply_env(const ReplyEnv& env);

} // namespace mf::checkpassword
