// cgpauth_proto.hpp — the CommuniGate Pro helper protocol: request lines in, reply lines out.
//
// CommuniGate Pro (Helpers.html) writes "<seq> <COMMAND> args" lines to the helper's stdin
// and reads "<seq> <RESULT> [text]" lines back, in any order; "* text" lines are log
// lines. Arguments are CGP strings (Data.html): an atom, or a quoted string with the
// escapes \" \\ \r \n \t \e and \nnn (three DECIMAL digits), UTF-8 inside. We split
// quote-aware, so a space inside quotes stays in the token (the known helpers split on
// spaces first and get that wrong).
//
// Requests understood here:
//   n INTF v                        → n INTF 3
//   n VRFY [(mode)] user@dom pass [ip]  → n OK | n ERROR text
//   n NEW [(mode)] user@dom         → n OK | n ERROR text
//   n QUIT                          → n OK, then the helper exits
//   n SASL(method) …, anything else → n ERROR text
//
// The client's address: CGP may add it after the password as "[address]" (an IPv4 or
// IPv6 literal in brackets; the vendor's documentation we could find does not say which
// interface version or setting makes it do so, so we take it when present and never ask
// for it). It feeds the guard's per-address limits; without it, logins count in one
// "no address" bucket per account. Anything else after the password is an error.
//
// Must never: put a request's arguments (they hold passwords) into a reply or log text,
// or produce a reply line longer than 4096 bytes or with a control byte inside.
// Errors: a malformed line yields a Parsed without request, with the seq to answer (or
// none, when the line has no usable sequence number) and a reason fit for the reply.
#pragma once

#include "mailferry/secret.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace mf::cgp {

// The longest request line we accept, and the longest reply line CGP accepts (without LF).
// A VRFY line carries the password among its arguments, so this face takes passwords up to
// a little under 4096 bytes (fewer when CGP escapes bytes as \nnn), not the engine's full
// kMaxPasswordBytes: the limit on what CommuniGate itself sends a helper is not documented,
// and one buffer for both directions keeps the reader bounded.
inline constexpr std::size_t kMaxLine = 4096;

// The interface version we answer to INTF: the basic VRFY / NEW / QUIT command set.
inline constexpr const char* kInterfaceVersion = "3";

enum class Command { intf, vrfy, new_account, quit, sasl, unsupported };

struct Request {
    std::string seq; // the sequence number, echoed back verbatim
    Command command = Command::unsupported;
    std::string word;      // the command word, upper-cased and sanitized (for logs/replies)
    std::string version;   // INTF: the server's interface version
    std::string mode;      // VRFY / NEW: the "(…)" token's content, if any
    std::string user;      // VRFY / NEW: the account name, decoded
    Secret password;       // VRFY: the password, decoded
    std::string client_ip; // VRFY: the client's address from "[address]", or empty
};

struct Parsed {
    std::optional<Request> request;
    std::string seq;   // without request: the seq to answer, "" when there is none
    std::string error; // without request: the reason, safe to send and log
};

// Parses one request line (without its LF; one trailing CR is ignored).
Parsed parse_request(std::string_view line);

// The sequence number a line starts with ("" if it does not start with 1–20 digits
// followed by a space or the end). Used to answer lines too broken to parse.
std::string_view leading_seq(std::string_view line);

// Reads the CGP string starting at `pos` (after skipping spaces) into `out`, advancing
// `pos` past it. Returns false with `error` set on a malformed string; `out` may then hold
// part of a secret and must be wiped by the caller either way.
bool next_string(std::string_view line, std::size_t& pos, std::string& out, std::string& error);

// "<seq> <word>[ <text>]\n" with control bytes in `text` turned into spaces, bytes that are
// not UTF-8 into '?', and the line (without LF) capped at kMaxLine bytes.
std::string reply_line(std::string_view seq, std::string_view word, std::string_view text = {});

// "* <text>\n", sanitized and capped the same way.
std::string info_line(std::string_view text);

} // namespace mf::cgp
