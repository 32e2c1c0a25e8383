// identity_syntax.cpp — check_login_syntax(): refuse garbage before anybody is asked.
//
// A login must be 1–320 bytes of valid UTF-8 (no overlong forms, no surrogates), without
// control characters (C0, DEL, C1) or spaces (ASCII or Unicode), with at most one '@'
// and, when it has one, something on both sides of it.
// Never: echo the raw bytes of a refused login into an error (they may be a password
// typed in the wrong field, or terminal escapes); identity_shown() makes them printable.
// Errors: Scope::account, Retry::never — the caller answers FAIL without contacting anyone.
#include "identity_private.hpp"

namespace mf {
namespace {

constexpr std::size_t kMaxLogin = 320; // 64 local + '@' + 255 domain (RFC 5321 limits)

// Decodes one UTF-8 sequence at s[i]; returns its length, 0 if invalid.
std::size_t decode(std::string_view s, std::size_t i, char32_t* cp) {
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = byte(i);
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        *cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        *cp = c & 0x0F;
        lo = c == 0xE0 ? 0xA0 : 0x80; // overlong
        hi = c == 0xED ? 0x9F : 0xBF; // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        *cp = c & 0x07;
        lo = c == 0xF0 ? 0x90 : 0x80; // overlong
        hi = c == 0xF4 ? 0x8F : 0xBF; // above U+10FFFF
    } else {
        return 0;
    }
    if (i + len > s.size()) {
        return 0;
    }
    for (std::size_t k = 1; k < len; ++k) {
        unsigned char b = byte(i + k);
        if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) {
            return 0;
        }
        *cp = (*cp << 6) | (b & 0x3F);
    }
    return len;
}

bool is_control(char32_t cp) {
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

bool is_space(char32_t cp) {
    return cp == 0x20 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool valid_utf8(std::string_view s) {
    char32_t cp = 0;
    for (std::size_t i = 0; i < s.size();) {
        std::size_t n = decode(s, i, &cp);
        if (n == 0) {
            return false;
        }
        i += n;
    }
    return true;
}

} // namespace

std::string identity_shown(std::string_view login) {
    constexpr std::size_t kMaxShown = 64;
    std::string out;
    bool utf8 = valid_utf8(login);
    char32_t cp = 0;
    for (std::size_t i = 0; i < login.size();) {
        std::size_t n = utf8 ? decode(login, i, &cp) : 1;
        if (out.size() + n > kMaxShown) {
            out += "...";
            break;
        }
        if (!utf8 || n == 1) {
            auto c = static_cast<unsigned char>(login[i]);
            out += (c < 0x20 || c >= 0x7F) ? '?' : login[i];
        } else {
            out += is_control(cp) ? std::string("?") : std::string(login.substr(i, n));
        }
        i += n;
    }
    return out;
}

Error login_error(std::string_view login, std::string detail) {
    return make_error("login \"" + identity_shown(login) + "\"", std::move(detail), Scope::account,
                      Retry::never);
}

Result<void> check_login_syntax(std::string_view login) {
    if (login.empty()) {
        return login_error(login, "is empty");
    }
    if (login.size() > kMaxLogin) {
        return login_error(login, "is " + std::to_string(login.size()) + " bytes long; at most " +
                                      std::to_string(kMaxLogin) + " are allowed");
    }
    std::size_t ats = 0;
    char32_t cp = 0;
    for (std::size_t i = 0; i < login.size();) {
        std::size_t n = decode(login, i, &cp);
        if (n == 0) {
            return login_error(login, "is not valid UTF-8");
        }
        if (is_control(cp)) {
            return login_error(login, "contains a control character");
        }
        if (is_space(cp)) {
            return login_error(login, "contains a space");
        }
        ats += cp == '@' ? 1 : 0;
        i += n;
    }
    if (ats > 1) {
        return login_error(login, "contains more than one '@'");
    }
    if (ats == 1) {
        auto at = login.find('@');
        if (at == 0) {
            return login_error(login, "has an empty local part (nothing before '@')");
        }
        if (at + 1 == login.size()) {
            return login_error(login, "has an empty domain (nothing after '@')");
        }
    }
    return {};
}

} // namespace mf
