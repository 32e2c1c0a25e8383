// verifier_refusal.hpp — is the old server's refusal a wrong password, or not a verdict?
//
// One pure function for the three protocols, so that IMAP, POP3 and SMTP judge a "no" by
// the same rule: a refusal is a wrong password (rejected) only when
//   - its response code says the credentials are bad (IMAP [AUTHENTICATIONFAILED],
//     [AUTHORIZATIONFAILED], [EXPIRED]; POP3 [AUTH]; SMTP 535 unless it says password
//     logins are disabled there), or
//   - it carries no code and its text is a known server's wrong-password wording (the
//     table in verifier_refusal.cpp: Courier, Cyrus, Exchange, Zimbra, UW, qpopper, old
//     Dovecot, CommuniGate) and no word in it says "busy", "locked", "try again" and the like.
// Everything else — another code ([UNAVAILABLE], [INUSE], [SYS/TEMP], [IN-USE], 454, 534,
// 538 …), or a codeless text we do not know — is unavailable: TEMPFAIL, no guard failure,
// no negative cache. Sending a right password to a busy server must never lock its owner
// out; an unknown server's wording costs a TEMPFAIL and an admin's look at the detail.
// Must never: judge a line that is not a refusal (OK, +OK, 2xx, BAD) as rejected.
// Errors: none; pure and thread-safe.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/verifier.hpp"

#include <string>
#include <string_view>

namespace mf::refusal {

struct Verdict {
    VerifyStatus status = VerifyStatus::unavailable; // rejected or unavailable, never ok
    std::string reason;                              // why, for the detail; no secrets
};

// `line`: the server's reply to our login, sanitized — IMAP the tagged line
// ("A002 NO [UNAVAILABLE] …"), POP3 the -ERR line, SMTP the last line of the reply.
Verdict judge(Protocol protocol, std::string_view line);

} // namespace mf::refusal
