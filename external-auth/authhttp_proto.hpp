// authhttp_proto.hpp — nginx's mail auth_http protocol, without the network or the engine:
// the request headers into a Request, a login's outcome into the answer's headers.
//
// nginx (ngx_mail_auth_http_module) sends one GET per login attempt with Auth-Method,
// Auth-User, Auth-Pass (both %-escaped: space, '%' and control bytes become %XX),
// Auth-Protocol, Auth-Login-Attempt and Client-IP, and reads only the answer's headers:
// Auth-Status "OK" with Auth-Server (an IP address) and Auth-Port, or an error text that
// it shows the client, with Auth-Wait (seconds to wait before the client may try again;
// without it nginx hangs up) and, for SMTP, Auth-Error-Code. nginx reads the answer into
// 1 KiB, so answers stay short.
//
// Never: put the password anywhere but the Request's Secret, or let a byte that is no
// header-value byte into an answer. Errors: parse_request() says what was wrong with the
// request (for the log) and carries the answer to send; it never throws.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/engine.hpp"
#include "mailferry/secret.hpp"
#include "mailferry/store.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mf::authhttp {

// The request's header block: up to 16 KiB (a 4 KiB password escaped to 12 KiB fits).
inline constexpr std::size_t kMaxHeaderBytes = 16 * 1024;

struct Request {
    std::string user; // Auth-User, unescaped
    Secret password;  // Auth-Pass, unescaped
    Protocol protocol = Protocol::imap;
    unsigned attempt = 1;  // Auth-Login-Attempt
    std::string client_ip; // Client-IP; empty when nginx sent none
};

// What goes back: the HTTP status (200, or 400 for a request that is not nginx's) and the
// Auth-* headers in order.
struct Answer {
    unsigned status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
};

// A header's value, or nullopt when the request has no such header.
using FieldLookup = std::function<std::optional<std::string_view>(std::string_view name)>;

struct Parsed {
    std::optional<Request> request; // set when the request can go to the engine
    Answer refusal;                 // otherwise: the answer to send
    std::string reason;             // otherwise: what was wrong, for the log
};

// Reads nginx's headers. Missing Auth-User, Auth-Pass or Auth-Protocol, an unknown
// protocol, a bad %-escape, a bad attempt number or Client-IP → HTTP 400. Auth-Method
// other than "plain" (apop, cram-md5, external, none: nothing mailferry can verify) → an
// error answer without Auth-Wait.
Parsed parse_request(const FieldLookup& field);

// %XX → byte; any other '%' is an error (nullopt). `out` is reserved up front, so the
// bytes are never copied by a regrowth.
bool unescape(std::string_view in, std::string& out);

// Where a login goes once the password is right.
enum class Side { old_server, new_server };

// By the account's state: synced, resyncing, held, cutover → the new server; verified,
// provisioned, copying → the old one; failed → the new one if the account was ever
// synced (a failed resync round), else the old one. nullopt for unknown and disabled.
std::optional<Side> route(AccountState state, bool ever_synced);

// What the engine and the store said about one login.
struct Outcome {
    AuthStatus status = AuthStatus::tempfail;
    AccountState state = AccountState::unknown; // on ok
    bool ever_synced = false;                   // on ok, for state failed
    std::string new_login;                      // on ok: the canonical name
    std::string old_login;                      // on ok: what the old server wants
    std::string old_ip;                         // on ok: the provider's host, resolved
    std::string why;                            // for the log when the answer is no
};

// The decision: the answer for `req` given `out` (no I/O). An ok whose route cannot be
// served (no new server for the protocol, the old host unresolved) is a temporary error.
// *log gets one line's worth of what was decided.
Answer decide(const AuthHttpConfig& cfg, const Request& req, const Outcome& out, std::string* log);

// The fixed answers.
Answer answer_invalid(const AuthHttpConfig& cfg, Protocol p, unsigned attempt);
Answer answer_temporary(const AuthHttpConfig& cfg, Protocol p, unsigned attempt);
Answer answer_bad_request();
// HTTP 403: the shared key ([auth_http] key_file) is missing or wrong.
Answer answer_forbidden();
// The protocol has no new server in [auth_http]: it is not proxied at all.
Answer answer_not_served(Protocol p);

// The new server for `p` ("" when not configured) and the old server's port for it.
const std::string& new_server(const AuthHttpConfig& cfg, Protocol p);
std::uint16_t old_port(const AuthHttpConfig& cfg, Protocol p);

// True when every header name and value of `a` may stand in an HTTP header (no CR, LF,
// NUL; names are tokens) and the whole answer fits nginx's 1 KiB buffer.
bool well_formed(const Answer& a);

} // namespace mf::authhttp
