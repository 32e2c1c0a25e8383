// mailflow.hpp — mail that arrives while the campaign runs, through Postfix.
//
// The MX may point at the new server from day one. Three pieces decide per recipient,
// resolved through the identity map as a login would be (IdentityMap::resolve, then
// find_login_account, so an older spelling in the store counts):
//
//   socketmap  `mailferry transport`: Postfix's transport_maps lookup (socketmap_table(5),
//              netstrings "name key" → "OK transport" | "NOTFOUND " | "TEMP reason" |
//              "PERM reason"). Migrated account (is_migrated) → [mailflow]
//              local_transport (Dovecot LMTP); any other address of a provider's domain →
//              that provider's relay_transport (the old server); other domains → NOTFOUND.
//   policy     `mailferry policy`: Postfix's policy delegation (attributes "name=value",
//              an empty line ends a request; answer "action=…" and an empty line).
//              RCPT state: migrated → DUNNO; held (final copy round) → HOLD, remembered in
//              the store by (smtpd instance, account) and, from END-OF-MESSAGE on, by
//              (queue ID, account); not migrated → DUNNO ([mailflow] unmigrated = "relay")
//              or an RCPT probe at the old server ("probe"): exists → DUNNO, unknown →
//              the old server's own 5xx reply, unavailable → DEFER_IF_PERMIT.
//   release    release_held_mail(): once an account is no longer held, `postsuper -H` on
//              the messages held for it (known to the store, or found in the hold queue
//              by `postqueue -j` with a recipient that maps to the account), then
//              `postqueue -i` so they go out now. Needs root (postsuper).
//
// Never: answer REJECT when the old server could not be asked (that is DEFER_IF_PERMIT),
// release a message while another of its recipients is still held, or crash on input:
// every request has a byte and attribute limit and bad input gets a logged, safe answer.
// Errors: store busy → TEMP (socketmap) / DEFER_IF_PERMIT (policy) / Retry::later.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/error.hpp"
#include "mailferry/identity.hpp"
#include "mailferry/store.hpp"

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace mf::mailflow {

// ---- netstrings (socketmap) ----

inline constexpr std::size_t kMaxSocketmapRequest = 10000; // bytes of one request payload

enum class ParseStatus { complete, incomplete, bad };

struct Netstring {
    ParseStatus status = ParseStatus::incomplete;
    std::string payload;
    std::size_t consumed = 0; // bytes of the buffer the netstring took ("len:payload,")
    std::string error;        // for bad: what is wrong
};

// Parses one netstring from the start of `buf`; at most `max_payload` payload bytes.
Netstring parse_netstring(std::string_view buf, std::size_t max_payload = kMaxSocketmapRequest);
// "len:payload,"
std::string netstring(std::string_view payload);

// The socketmap reply payload for one request payload ("transport anna@example.com").
std::string transport_reply(const Config& cfg, Store& store, const IdentityMap& map,
                            std::string_view request);

// Serves socketmap requests read from in_fd, replies written to out_fd, until EOF or a
// request that breaks the framing (answered PERM, then the connection is closed).
// Returns 0 at EOF, 1 after garbage, 75 when reading or writing failed.
int serve_socketmap(const Config& cfg, Store& store, int in_fd, int out_fd);

// ---- policy delegation ----

inline constexpr std::size_t kMaxPolicyLine = 4096;      // bytes of one "name=value" line
inline constexpr std::size_t kMaxPolicyAttributes = 100; // lines of one request

struct PolicyRequest {
    ParseStatus status = ParseStatus::incomplete;
    std::map<std::string, std::string> attrs;
    std::size_t consumed = 0; // bytes up to and including the empty line
    std::string error;        // for bad: what is wrong (line too long, too many, no '=')
};

// Parses one request from the start of `buf` (lines end in LF; a CR before it is dropped).
PolicyRequest parse_policy_request(std::string_view buf);
// "action=ACTION\n\n", with CR, LF and NUL in ACTION replaced by blanks.
std::string policy_reply(std::string_view action);

// What the service answers one request (see the top of this file), and why (for the log).
struct PolicyAnswer {
    std::string action;
    std::string why;
};
PolicyAnswer policy_answer(const Config& cfg, Store& store, const IdentityMap& map,
                           const std::map<std::string, std::string>& attrs);

// Serves policy requests from in_fd until EOF or garbage (a bad request gets
// DEFER_IF_PERMIT and a log line; bytes that cannot be framed close the connection).
// Returns 0 at EOF, 1 after garbage, 75 when reading or writing failed.
int serve_policy(const Config& cfg, Store& store, int in_fd, int out_fd);

// Where the services log: [mailflow] log_file if set; else syslog (facility mail) when
// stderr is a socket (run by Postfix's spawn, whose client would read it); else stderr.
void use_service_log(const Config& cfg, const char* ident);

// ---- held mail ----

struct ReleasedMessage {
    std::string queue_id;
    std::string result; // "released", "gone" (no longer on hold), "kept", "failed"
    std::string detail;
};

struct ReleaseReport {
    std::string account;
    bool still_held = false; // the account is held: nothing was released
    std::vector<ReleasedMessage> messages;
};

// For an account no longer `held`: releases the mail held for it (postsuper -c
// [mailflow] postfix_config_dir -H ID, then postqueue -i ID) and forgets the IDs. A
// message also addressed to an account still held stays on hold. Run as root.
// Errors: the store (Retry::later when busy), postqueue failing (Scope::server).
Result<ReleaseReport> release_held_mail(const Config& cfg, Store& store,
                                        const std::string& account);

// Every account with mail on hold: named by the store's rows, or a recipient of a message
// in the hold queue that maps to an account (`mailflow-release --all`). Sorted, unique.
Result<std::vector<std::string>> accounts_with_held_mail(const Config& cfg, Store& store);

} // namespace mf::mailflow
