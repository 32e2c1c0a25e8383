// verifier_curl.hpp — the libcurl login session the protocol verifiers share.
//
// libcurl does the protocol (greeting, STARTTLS, CAPABILITY/CAPA/EHLO, SASL or the
// protocol's own login command) and stops right after authentication
// (CURLOPT_CONNECT_ONLY). We watch only what the server sends, through the debug callback;
// what we send is never looked at, since it holds the password. Mapping the server's lines
// to ok / rejected / unavailable is left to verifier_<protocol>.cpp.
//
// Must never: let the password reach a log, an Error, a detail string or argv; use a
// challenge-response mechanism (CRAM-MD5, DIGEST-MD5, NTLM, GSSAPI) — those fail for users
// whose password the old server keeps hashed, which would turn a right password into
// "rejected". Only PLAIN and LOGIN (SASL), IMAP LOGIN and POP3 USER/PASS check a password.
// Errors: none thrown; everything is in Attempt.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/secret.hpp"
#include "mailferry/verifier.hpp"

#include <chrono>
#include <curl/curl.h>
#include <optional>
#include <string>
#include <vector>

namespace mf::curl {

// What one connection to the old server saw.
struct Attempt {
    int code = 0;                   // CURLcode of the connect phase (0: logged in, or skipped)
    std::string error;              // libcurl's error text; holds no credentials
    std::vector<std::string> lines; // server lines, sanitized: the greeting, then the last ones
    bool truncated = false;         // lines were dropped between the greeting and the rest
};

// CURLOPT_LOGIN_OPTIONS that let curl use only SASL mechanisms that carry the password
// itself: "AUTH=PLAIN", "AUTH=LOGIN" or, for automatic, both (PLAIN first).
const char* sasl_options(SaslMech m);

// The same choice in words, for details: "PLAIN or LOGIN", "PLAIN", "LOGIN".
const char* wanted_mechanisms(SaslMech m);

// CURLOPT_LOGIN_OPTIONS that let curl fall back to the protocol's own command (IMAP LOGIN,
// POP3 USER/PASS, or APOP). Only safe once we know the server offers no SASL mechanism.
inline constexpr const char* kAnyMethod = "AUTH=*";

// Connects to the provider ("<scheme>://host:port/"), upgrades or starts TLS as configured,
// and authenticates with `options`. Blocks up to `budget` (connect and total); thread-safe.
Attempt login(const ProviderConfig& p, const char* plain_scheme, const char* tls_scheme,
              const std::string& user, const Secret& password, const char* options, Millis budget);

// The transport every connection to the provider uses: `url`, connect-only, no signals,
// `ms` for connecting and in all, TLS as configured (required unless tls = none) with the
// provider's certificate check and CA file. The login and the probe add what differs.
void set_transport(CURL* h, const ProviderConfig& p, const std::string& url, long ms);

// What is left of the provider's timeout since `start`, for a second attempt (0: none).
Millis remaining(const ProviderConfig& p, std::chrono::steady_clock::time_point start);

// A login or password that no protocol line can carry (CR, LF, NUL; an empty login) is
// refused before anything is sent: it cannot be anyone's right password.
std::optional<VerifyOutcome> refuse_unsendable(const std::string& login, const Secret& password);

// True if libcurl ended the login phase with "login denied": the server said no, or curl
// found no mechanism it was allowed to use (the protocol files tell the two apart).
bool denied(const Attempt& a);

// An unavailable outcome: `why`, curl's view of the failure (timeout, refused, TLS) and
// the server's last line.
VerifyOutcome undecided(const Attempt& a, const ProviderConfig& p, const std::string& why);

// The last line the server sent ("" if none).
std::string last_line(const Attempt& a);

// Words of `line` after `prefix` (case-insensitive), upper-cased: the mechanisms of
// "SASL PLAIN LOGIN" or "250-AUTH PLAIN LOGIN".
std::vector<std::string> words_after(const std::string& line, const std::string& prefix);

// "A B C" from a list, for details.
std::string join(const std::vector<std::string>& words);

} // namespace mf::curl
