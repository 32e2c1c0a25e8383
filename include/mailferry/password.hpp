// password.hpp — stored password hashes: verify any scheme we meet, create modern ones.
//
// Stored values are Dovecot-style "{SCHEME}value" (so they drop straight into a Dovecot
// passwd-file); a bare crypt(3) string ("$6$…", "$y$…", "$argon2id$…") is accepted too.
// Verification is constant-time in the digest comparison. Schemes we cannot verify
// give HashMatch::unsupported with a reason, never a guess.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/error.hpp"
#include "mailferry/secret.hpp"

#include <string>
#include <string_view>

namespace mf {

enum class HashMatch { match, mismatch, unsupported };

struct HashCheck {
    HashMatch result = HashMatch::unsupported;
    std::string reason; // for unsupported / malformed values; never contains the password
};

HashCheck verify_hash(std::string_view stored, const Secret& password);

// Hashes with the configured scheme; the result carries its {SCHEME} prefix.
Result<std::string> make_hash(const Secret& password, const HashConfig& cfg);

// True when `stored` is not in the configured scheme (or weaker cost): rehash on login.
bool needs_rehash(std::string_view stored, const HashConfig& cfg);

// True if verify_hash() can check this value (scheme known and well-formed).
bool hash_supported(std::string_view stored, std::string* reason = nullptr);

} // namespace mf
