// password_codec.cpp — base64 / hex for stored hash values, constant-time compare.
//
// Stored values come from files and LDAP exports, so decoding is strict: a value that is
// cut short or has a stray byte must read as malformed, not as a different digest.
// Must never: accept unpadded or whitespace-laden base64 (a truncated value would then
// decode to something); compare with memcmp.
// Errors: nullopt for anything not canonical.
#include "password_impl.hpp"

#include <sodium.h>

namespace mf::pw {
namespace {

bool is_base64_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

bool is_hex_char(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

} // namespace

std::optional<std::string> base64_decode(std::string_view in) {
    // Padded only: every stored form we read (Dovecot, LDAP, slapd) pads, and a length
    // that is not a multiple of 4 is the cheapest sign of a truncated value.
    if (in.size() % 4 != 0) {
        return std::nullopt;
    }
    // libsodium 1.0.18 reads a byte with the high bit set as if it were '/' or '+' (its
    // constant-time compare looks at the low 8 bits of a sign-extended char), so the
    // alphabet is checked here first.
    for (char c : in) {
        if (!is_base64_char(c) && c != '=') {
            return std::nullopt;
        }
    }
    std::string out(in.size() / 4 * 3 + 1, '\0');
    std::size_t len = 0;
    const char* end = nullptr;
    if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), in.data(),
                          in.size(), nullptr, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != in.data() + in.size()) {
        return std::nullopt;
    }
    out.resize(len);
    return out;
}

std::string base64_encode(std::string_view in) {
    const std::size_t n = sodium_base64_ENCODED_LEN(in.size(), sodium_base64_VARIANT_ORIGINAL);
    std::string out(n, '\0');
    sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(in.data()),
                      in.size(), sodium_base64_VARIANT_ORIGINAL);
    out.resize(n - 1); // the terminating NUL
    return out;
}

std::optional<std::string> hex_decode(std::string_view in) {
    if (in.size() % 2 != 0) {
        return std::nullopt;
    }
    for (char c : in) { // same caution as for base64
        if (!is_hex_char(c)) {
            return std::nullopt;
        }
    }
    std::string out(in.size() / 2, '\0');
    std::size_t len = 0;
    const char* end = nullptr;
    if (sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), in.data(),
                       in.size(), nullptr, &len, &end) != 0 ||
        end != in.data() + in.size() || len != out.size()) {
        return std::nullopt;
    }
    return out;
}

std::string hex_encode(std::string_view in) {
    std::string out(in.size() * 2 + 1, '\0');
    sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(in.data()),
                   in.size());
    out.pop_back();
    return out;
}

bool equal_ct(const unsigned char* a, const unsigned char* b, std::size_t n) {
    return n == 0 || sodium_memcmp(a, b, n) == 0;
}

bool equal_ct(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           equal_ct(reinterpret_cast<const unsigned char*>(a.data()),
                    reinterpret_cast<const unsigned char*>(b.data()), a.size());
}

} // namespace mf::pw
