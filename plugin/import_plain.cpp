// import_plain.cpp — tells readable and weak values in an export apart, and reads the
// password out of a clear-text one so the import can hash it at once.
//
// Dovecot's clear-text schemes are PLAIN, CLEAR and CLEARTEXT (names in any case), the
// value raw or, with a ".B64"/".BASE64"/".HEX" suffix, encoded. An unsalted digest of the
// password (PLAIN-MD5, LDAP-MD5, SHA*, MD4/NTLM, LANMAN, a non-crypt {MD5}) cannot be
// turned into the configured scheme without the password; it stays as imported and the
// first login rehashes it (the engine's needs_rehash()).
// Never: copy a decoded password anywhere but into the returned Secret; put any byte of a
// value into a reason.
#include "import_private.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <sodium.h>
#include <vector>

namespace mf::import_detail {
namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::toupper(static_cast<unsigned char>(x)) ==
                      std::toupper(static_cast<unsigned char>(y));
           });
}

struct Label {
    std::string_view name;   // scheme name without the encoding suffix
    std::string_view suffix; // "" or what follows the first '.'
    std::string_view rest;   // the value after '}'
    bool ok = false;
};

Label label_of(std::string_view value) {
    Label l;
    auto close = value.find('}');
    if (value.empty() || value.front() != '{' || close == std::string_view::npos) {
        return l;
    }
    std::string_view label = value.substr(1, close - 1);
    auto dot = label.find('.');
    l.name = label.substr(0, dot);
    l.suffix = dot == std::string_view::npos ? std::string_view() : label.substr(dot + 1);
    l.rest = value.substr(close + 1);
    l.ok = true;
    return l;
}

bool any_of(std::string_view name, std::initializer_list<std::string_view> names) {
    return std::any_of(names.begin(), names.end(),
                       [&](std::string_view n) { return iequals(name, n); });
}

} // namespace

ValueKind value_kind(std::string_view value) {
    Label l = label_of(value);
    if (!l.ok) {
        return ValueKind::hash; // a bare crypt(3) string
    }
    if (any_of(l.name, {"PLAIN", "CLEAR", "CLEARTEXT"})) {
        return ValueKind::plain;
    }
    if (iequals(l.name, "PLAIN-TRUNC")) {
        return ValueKind::plain_trunc;
    }
    if (any_of(l.name, {"PLAIN-MD5", "LDAP-MD5", "SHA", "SHA1", "SHA256", "SHA512", "PLAIN-MD4",
                        "NTLM", "MSNT", "LANMAN", "LANM", "CRAM-MD5", "HMAC-MD5"})) {
        return ValueKind::unsalted_digest;
    }
    if (iequals(l.name, "MD5") && !l.rest.starts_with("$1$")) {
        return ValueKind::unsalted_digest; // an LDAP-style MD5 digest, not md5crypt
    }
    return ValueKind::hash;
}

std::optional<Secret> plain_password(std::string_view value, std::string* why) {
    Label l = label_of(value);
    std::string_view in = l.rest;
    if (l.suffix.empty()) {
        return Secret(in);
    }
    std::vector<unsigned char> out(in.size() + 1);
    std::size_t len = 0;
    int rc = -1;
    if (iequals(l.suffix, "HEX")) {
        rc = sodium_hex2bin(out.data(), out.size(), in.data(), in.size(), nullptr, &len, nullptr);
    } else if (iequals(l.suffix, "B64") || iequals(l.suffix, "BASE64")) {
        rc = sodium_base642bin(out.data(), out.size(), in.data(), in.size(), nullptr, &len, nullptr,
                               sodium_base64_VARIANT_ORIGINAL);
    } else {
        *why = "unknown encoding suffix on a clear-text scheme (only .HEX, .B64, .BASE64)";
        return std::nullopt;
    }
    if (rc != 0) {
        sodium_memzero(out.data(), out.size());
        *why = "the clear-text value is not valid " +
               std::string(iequals(l.suffix, "HEX") ? "hex" : "base64");
        return std::nullopt;
    }
    Secret s(reinterpret_cast<const char*>(out.data()), len);
    sodium_memzero(out.data(), out.size());
    return s;
}

std::string scheme_label(std::string_view value) {
    auto close = value.find('}');
    if (value.empty() || value.front() != '{' || close == std::string_view::npos || close > 32) {
        return "value";
    }
    std::string out(value.substr(0, close + 1));
    for (char& c : out) {
        c = (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    return out;
}

} // namespace mf::import_detail
