// password_legacy.hpp — checkers for legacy formats met in old servers' exports.
//
// {LANM} / {LANMAN}: the LAN Manager hash (DES of "KGS!@#$%" keyed by the upper-cased
// password), as CommuniGate Pro exports it; verified through OpenSSL's legacy provider.
// ({MSNT}, CommuniGate's name for the NT hash, reuses check_ntlm from password_digest.cpp.)
// password.cpp lists these in its scheme table; nothing else includes this header.
// Must never: load a provider into OpenSSL's default library context; accept a password
// that the format cannot represent faithfully (then: unsupported, and the engine asks the
// old server).
#pragma once

#include "password_impl.hpp"

namespace mf::pw {

// `raw` is the decoded 16-byte value.
HashCheck check_lanman(std::string_view raw, const Secret* password);

} // namespace mf::pw
