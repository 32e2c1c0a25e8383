// verifier.hpp — asks the old server whether a password is right.
//
// One implementation per protocol (plugin/verifier_imap.cpp, verifier_pop3.cpp,
// verifier_smtp.cpp), chosen by the provider's `protocol`. A verifier maps the server's
// replies to three answers and nothing else:
//   accepted                                     → ok
//   explicit rejection of the credentials        → rejected
//     (IMAP NO [AUTHENTICATIONFAILED] / [AUTHORIZATIONFAILED] / [EXPIRED]; POP3 -ERR [AUTH];
//      SMTP 535; or an IMAP NO / POP3 -ERR without a code worded as a known server words
//      a wrong password — one table for all, plugin/verifier_refusal.cpp)
//   anything else — refused connection, timeout, TLS or certificate failure, BAD, busy,
//   any other code, a codeless refusal in other words ("-ERR maildrop locked"), an
//   unexpected reply                             → unavailable (TEMPFAIL, never FAIL)
// verify() blocks up to the provider's timeout, may be called from many threads at once,
// and never logs or stores the password.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/secret.hpp"

#include <memory>
#include <string>

namespace mf {

enum class VerifyStatus { ok, rejected, unavailable };

struct VerifyOutcome {
    VerifyStatus status = VerifyStatus::unavailable;
    std::string detail; // what happened, with the server's reply sanitized; no secrets
};

class Verifier {
  public:
    virtual ~Verifier() = default;
    virtual VerifyOutcome verify(const std::string& login, const Secret& password) = 0;
};

// Never fails: configuration was validated when it was loaded.
std::unique_ptr<Verifier> make_verifier(const ProviderConfig& provider);

const char* to_string(VerifyStatus s);

// Whether the old server answers as verify() would reach it — same host, port, protocol,
// TLS mode, CA file and certificate check — without logging in: connect, greeting,
// STARTTLS/STLS when configured, capabilities, then hang up. Sends no credentials, so it
// counts against no rate limit and changes nothing there (`mailferry dry-run`). Blocks up
// to the provider's timeout; thread-safe.
struct ServerProbe {
    bool reachable = false; // connected, greeted, TLS (if any) set up and verified
    std::string detail;     // "greeting …; TLS certificate verified, expires …" or why not
};
ServerProbe probe_server(const ProviderConfig& provider);

} // namespace mf
