// verifier_curl.hpp — the libcurl session the protocol verifiers share.
//
// libcurl does the protocol (greeting, STARTTLS, CAPABILITY/EHLO, SASL or LOGIN) and stops
// after authentication (CURLOPT_CONNECT_ONLY). We only watch the server's lines through
// the debug callback — incoming lines only, never what we send, since that holds the
// password — and leave the mapping of replies to the per-protocol verifier.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/secret.hpp"
#include "mailferry/verifier.hpp"

#include <string>
#include <vector>

namespace mf::curl {

struct Attempt {
    int code = 0;                          // CURLcode
    std::string error;                     // curl's error buffer
    std::vector<std::string> server_lines; // what the server said, in order (sanitized)
};

// Logs in at `url` ("imaps://host:port/") with the provider's TLS settings; returns
// what happened. `login_options` is CURLOPT_LOGIN_OPTIONS ("AUTH=PLAIN", "" for any).
Attempt login(const ProviderConfig& p, const std::string& url, const std::string& login,
              const Secret& password, const std::string& login_options);

// CURLOPT_LOGIN_OPTIONS for the configured SASL mechanism ("" lets curl choose).
const char* login_options(SaslMech m);

// "imap" / "imaps" etc. URL for the provider.
std::string url_for(const ProviderConfig& p, const char* plain_scheme, const char* tls_scheme);

// True for CURLcodes that mean the server refused the credentials.
bool is_login_denied(int code);

// A verdict for failures that never reach the authentication step (connect, TLS, timeout).
VerifyOutcome transport_failure(const Attempt& a, const ProviderConfig& p);

// The last line the server sent, for details ("" if none).
std::string last_line(const Attempt& a);

// True if the password cannot travel in these protocols (CR, LF, NUL).
bool unsendable(const Secret& password);

} // namespace mf::curl
