// password_argon2.cpp — Argon2i / Argon2id hashes through libsodium.
//
// Stored form is the PHC string "$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$salt$hash"
// (Dovecot's {ARGON2I}/{ARGON2ID}, and what crypto_pwhash_str writes). We read the
// parameters ourselves because crypto_pwhash_str_verify answers -1 for both "wrong
// password" and "unreadable value", and because needs_rehash wants m and t.
// Must never: accept $argon2d$ (libsodium cannot verify it; a guess would be wrong);
// call crypto_pwhash before sodium_init.
// Errors: malformed value → unsupported with the reason; allocation failure while
// verifying → unsupported (we could not tell), never mismatch.
#include "password_impl.hpp"

#include <cerrno>
#include <sodium.h>

namespace mf::pw {
namespace {

bool sodium_ready() {
    static const bool ok = sodium_init() >= 0; // thread-safe once; idempotent anyway
    return ok;
}

// Reads a decimal number of at most 10 digits from the front of `s`.
std::optional<unsigned long long> take_number(std::string_view& s) {
    unsigned long long v = 0;
    std::size_t i = 0;
    for (; i < s.size() && i < 11 && s[i] >= '0' && s[i] <= '9'; ++i) {
        v = v * 10 + static_cast<unsigned long long>(s[i] - '0');
    }
    if (i == 0 || i > 10) {
        return std::nullopt;
    }
    s.remove_prefix(i);
    return v;
}

bool take(std::string_view& s, std::string_view lit) {
    if (!s.starts_with(lit)) {
        return false;
    }
    s.remove_prefix(lit.size());
    return true;
}

// Unpadded standard base-64, as the PHC format writes salt and hash.
bool is_b64_field(std::string_view s, std::size_t min_bytes) {
    if (s.size() % 4 == 1 || s.size() * 3 / 4 < min_bytes) {
        return false;
    }
    for (char c : s) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '+' || c == '/';
        if (!ok) {
            return false;
        }
    }
    return true;
}

} // namespace

std::optional<Argon2Params> argon2_parse(std::string_view raw, std::string* reason) {
    auto fail = [reason](const char* why) -> std::optional<Argon2Params> {
        if (reason != nullptr) {
            *reason = why;
        }
        return std::nullopt;
    };
    Argon2Params p;
    std::string_view s = raw;
    if (take(s, "$argon2id$")) {
        p.id = true;
    } else if (take(s, "$argon2i$")) {
        p.id = false;
    } else if (s.starts_with("$argon2d$")) {
        return fail("argon2d is not supported (libsodium verifies argon2i and argon2id only)");
    } else {
        return fail("unknown argon2 variant");
    }
    if (!take(s, "v=")) {
        return fail("argon2 value has no version (v=19 expected)");
    }
    const auto version = take_number(s);
    if (!version || *version != 19 || !take(s, "$")) {
        return fail("argon2 version is not 19 (libsodium verifies version 1.3 only)");
    }
    std::optional<unsigned long long> m, t, lanes;
    if (!take(s, "m=") || !(m = take_number(s)) || !take(s, ",t=") || !(t = take_number(s)) ||
        !take(s, ",p=") || !(lanes = take_number(s)) || !take(s, "$")) {
        return fail("argon2 parameters are not \"m=<KiB>,t=<passes>,p=<lanes>\"");
    }
    p.m_kib = *m;
    p.t = *t;
    p.p = *lanes;
    // Argon2's own limits: at least one pass, 1..2^24-1 lanes, 8 KiB per lane.
    if (p.t < 1 || p.p < 1 || p.p > 0xFFFFFF || p.m_kib < 8 * p.p || p.m_kib > 0xFFFFFFFFULL) {
        return fail("argon2 parameters out of range");
    }
    const auto dollar = s.find('$');
    if (dollar == std::string_view::npos) {
        return fail("argon2 value has no hash after the salt");
    }
    // Argon2 wants a salt of at least 8 bytes and an output of at least 16.
    if (!is_b64_field(s.substr(0, dollar), 8) || !is_b64_field(s.substr(dollar + 1), 16)) {
        return fail("argon2 salt or hash is not base64 of a valid length");
    }
    // Second opinion from libsodium's own parser (it reads values under 128 bytes only).
    if (raw.size() < crypto_pwhash_STRBYTES && sodium_ready()) {
        const std::string str(raw);
        if (crypto_pwhash_str_needs_rehash(str.c_str(), crypto_pwhash_OPSLIMIT_MIN,
                                           crypto_pwhash_MEMLIMIT_MIN) < 0) {
            return fail("libsodium cannot read this argon2 value");
        }
    }
    return p;
}

HashCheck check_argon2(std::string_view raw, const Secret* password) {
    std::string reason;
    if (!argon2_parse(raw, &reason)) {
        return unsupported(std::move(reason));
    }
    if (password == nullptr) {
        return readable();
    }
    if (!sodium_ready()) {
        return unsupported("libsodium failed to initialise");
    }
    const std::string str(raw);
    errno = 0;
    const int rc = crypto_pwhash_str_verify(str.c_str(), password->empty() ? "" : password->data(),
                                            password->size());
    if (rc == 0) {
        return matched(true);
    }
    // The value parsed above, so EINVAL here is libsodium's "mismatch".
    if (errno == EINVAL) {
        return matched(false);
    }
    const int err = errno;
    return unsupported("argon2 verification failed: " +
                       (err != 0 ? errno_text(err) : std::string("libsodium error")));
}

Result<std::string> argon2id_make(const Secret& password, unsigned long long ops,
                                  unsigned long long mem_kib) {
    const std::string what = "hash password with argon2id";
    if (!sodium_ready()) {
        return make_error(what, "libsodium failed to initialise");
    }
    if (ops < crypto_pwhash_argon2id_OPSLIMIT_MIN || ops > crypto_pwhash_argon2id_OPSLIMIT_MAX) {
        return make_error(what,
                          "argon2_ops " + std::to_string(ops) + " out of range (at least " +
                              std::to_string(crypto_pwhash_argon2id_OPSLIMIT_MIN) + ")",
                          Scope::config);
    }
    const unsigned long long max_kib = crypto_pwhash_argon2id_MEMLIMIT_MAX / 1024;
    if (mem_kib > max_kib || mem_kib * 1024 < crypto_pwhash_argon2id_MEMLIMIT_MIN) {
        return make_error(what,
                          "argon2_memory_kib " + std::to_string(mem_kib) +
                              " out of range (at least " +
                              std::to_string(crypto_pwhash_argon2id_MEMLIMIT_MIN / 1024) + ")",
                          Scope::config);
    }
    char out[crypto_pwhash_argon2id_STRBYTES];
    errno = 0;
    if (crypto_pwhash_argon2id_str(out, password.empty() ? "" : password.data(), password.size(),
                                   ops, static_cast<std::size_t>(mem_kib * 1024)) != 0) {
        const int err = errno;
        return make_error(what, "crypto_pwhash_argon2id_str: " +
                                    (err != 0 ? errno_text(err) : std::string("failed")));
    }
    return std::string(out);
}

} // namespace mf::pw
