// mutf7.hpp — IMAP modified UTF-7 mailbox names (RFC 3501 §5.1.3) to and from UTF-8.
//
// Must never: accept a name that does not round-trip (bad base64, unpaired surrogates,
// non-minimal encodings of printable ASCII, invalid UTF-8). Errors: mf::Error, scope
// folder, naming the offending name.
#pragma once

#include "mailferry/error.hpp"

#include <string>
#include <string_view>

namespace mf::imap {

Result<std::string> mutf7_decode(std::string_view in); // wire → UTF-8
Result<std::string> mutf7_encode(std::string_view in); // UTF-8 → wire

} // namespace mf::imap
