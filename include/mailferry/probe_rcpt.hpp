// probe_rcpt.hpp — asks the old server whether an address exists: SMTP/LMTP RCPT TO.
//
// CommuniGate's NEW request (mailferry-cgpauth) and the Postfix policy service (`mailferry
// policy`, probe mode) ask about an address nobody has logged in as yet. Without a
// password the only thing we can learn is whether the old server would accept mail for
// the address: greeting, EHLO (LHLO for LMTP), MAIL FROM:<>, RCPT TO:<address>, QUIT.
//   2xx to RCPT        → exists
//   5xx to RCPT        → unknown
//   anything else — refused connection, timeout, 4xx, a 5xx before RCPT, a garbled or
//   over-long reply    → unavailable (never "unknown")
// No message is ever sent (no DATA). Plain TCP: the probe carries no secret.
//
// Must never: send anything but the commands above, wait past the timeout, or read an
// unbounded reply (lines ≤ 1000 bytes, ≤ 100 lines per reply).
// Errors: the outcome's detail names the server and quotes its reply, sanitized.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace mf::rcpt {

struct ProbeTarget {
    bool lmtp = false; // LHLO instead of EHLO
    std::string host;  // name or address (IPv6 without brackets)
    std::uint16_t port = 25;
    std::string helo;      // our name in EHLO/LHLO
    Millis timeout{10000}; // for the whole conversation
};

// "smtp://host[:port]", "lmtp://host:port" or "host[:port]" (SMTP). IPv6 in brackets.
Result<ProbeTarget> parse_probe_target(std::string_view spec);

enum class ProbeStatus { exists, unknown, unavailable };

struct ProbeOutcome {
    ProbeStatus status = ProbeStatus::unavailable;
    std::string detail;     // "host:port said 550 5.1.1 …" — sanitized
    std::string reply_line; // the RCPT reply's first line ("550 5.1.1 …"), sanitized
};

// Runs one probe conversation for `address` (already validated by the identity map).
ProbeOutcome probe_recipient(const ProbeTarget& target, const std::string& address);

const char* to_string(ProbeStatus s);

} // namespace mf::rcpt
