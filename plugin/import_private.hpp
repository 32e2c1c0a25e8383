// import_private.hpp — what import.cpp asks import_plain.cpp about an imported value.
//
// Never: return or keep a password outside a Secret.
#pragma once

#include "mailferry/secret.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace mf::import_detail {

// What a {SCHEME}value from an export is, for the import's purposes.
enum class ValueKind {
    hash,           // a real hash (salted or a crypt(3) string): imported as it is
    plain,          // {PLAIN}, {CLEAR}, {CLEARTEXT} (any case, .B64/.BASE64/.HEX): readable
    plain_trunc,    // {PLAIN-TRUNC}: readable, but any longer password with it as prefix
                    // was accepted, so no hash can mean the same
    unsalted_digest // {PLAIN-MD5}, {LDAP-MD5}, {SHA}, {SHA256}, {NTLM}, …: not readable,
                    // but one table look-up away; kept until the first login rehashes it
};

ValueKind value_kind(std::string_view value);

// The password inside a ValueKind::plain value, decoded. nullopt with *why when its
// encoding is broken (never quoting the value).
std::optional<Secret> plain_password(std::string_view value, std::string* why);

// "{PLAIN-MD5}" for a value (the scheme label as written, at most 32 bytes), for notes.
std::string scheme_label(std::string_view value);

} // namespace mf::import_detail
