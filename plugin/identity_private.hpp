// identity_private.hpp — helpers shared by identity.cpp, identity_syntax.cpp and
// identity_idna.cpp.
//
// Never: return the raw bytes of a login that failed the syntax check.
#pragma once

#include "mailferry/error.hpp"

#include <string>
#include <string_view>

namespace mf {

// A login made safe to show in an error or log: control characters (and, if the login is
// not valid UTF-8, every byte >= 0x80) replaced by '?', capped at 64 bytes.
std::string identity_shown(std::string_view login);

// Error{"login \"<shown>\"", detail, Scope::account, Retry::never}.
Error login_error(std::string_view login, std::string detail);

// The domain as it is compared and stored: ASCII lower case; an internationalised name
// in its xn-- form (identity_idna.cpp). A name that is no valid IDNA domain is refused
// with login_error(domain, …).
Result<std::string> domain_to_ascii(std::string_view domain);

} // namespace mf
