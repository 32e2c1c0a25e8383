// password.cpp — stored password hashes: read "{SCHEME[.ENC]}value" or a bare crypt(3)
// string, verify a password against it, make new hashes, decide when to rehash.
//
// The scheme table follows Dovecot 2.3 (src/auth/password-scheme*.c): names are
// case-insensitive; a ".HEX", ".B64" or ".BASE64" suffix (any case) sets how the value is
// encoded and any other suffix makes the scheme invalid; for fixed-length digests
// without a suffix the encoding is told by length (hex if exactly twice the digest size,
// else base64). Each family's checker lives in its own file (see password_impl.hpp).
// Must never: put the password into a reason (verify_hash redacts one that would);
// print more of a stored value than a scheme name of ordinary shape; guess a scheme.
// Errors: every value we cannot read → HashMatch::unsupported with a reason; make_hash
// returns an Error (config scope for a bad cost, internal otherwise).
#include "mailferry/password.hpp"

#include "password_impl.hpp"
#include "password_legacy.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace mf {
namespace {

enum class Enc { none, hex, base64 };

struct SchemeDef {
    std::string_view name;
    Enc enc;             // default encoding of the value
    std::size_t raw_len; // decoded length for fixed-size digests, 0 = any
    bool crypt_like;     // the value is a crypt(3)/PHC string (for needs_rehash)
    pw::Checker check;   // nullptr: known, but we cannot verify it
    const char* why_not; // reason when check is nullptr
};

HashCheck check_md5(std::string_view raw, const Secret* password);

// Captureless lambdas so the table stays a flat list of function pointers.
constexpr std::array kSchemes{
    SchemeDef{"PLAIN", Enc::none, 0, false, pw::check_plain, nullptr},
    SchemeDef{"CLEAR", Enc::none, 0, false, pw::check_plain, nullptr},
    SchemeDef{"CLEARTEXT", Enc::none, 0, false, pw::check_plain, nullptr},
    SchemeDef{"PLAIN-TRUNC", Enc::none, 0, false, pw::check_plain_trunc, nullptr},
    SchemeDef{"CRYPT", Enc::none, 0, true, pw::check_crypt, nullptr},
    SchemeDef{"DES-CRYPT", Enc::none, 0, true, pw::check_crypt, nullptr},
    SchemeDef{"MD5-CRYPT", Enc::none, 0, true, pw::check_crypt, nullptr},
    SchemeDef{"SHA256-CRYPT", Enc::none, 0, true, pw::check_crypt, nullptr},
    SchemeDef{"SHA512-CRYPT", Enc::none, 0, true, pw::check_crypt, nullptr},
    SchemeDef{"BLF-CRYPT", Enc::none, 0, true, pw::check_crypt, nullptr},
    SchemeDef{"MD5", Enc::none, 0, true, check_md5, nullptr},
    SchemeDef{"ARGON2I", Enc::none, 0, true, pw::check_argon2, nullptr},
    SchemeDef{"ARGON2ID", Enc::none, 0, true, pw::check_argon2, nullptr},
    SchemeDef{"SHA", Enc::base64, 20, false,
              [](std::string_view r, const Secret* p) { return pw::check_digest(r, p, "SHA1"); },
              nullptr},
    SchemeDef{"SHA1", Enc::base64, 20, false,
              [](std::string_view r, const Secret* p) { return pw::check_digest(r, p, "SHA1"); },
              nullptr},
    SchemeDef{"SHA256", Enc::base64, 32, false,
              [](std::string_view r, const Secret* p) { return pw::check_digest(r, p, "SHA256"); },
              nullptr},
    SchemeDef{"SHA512", Enc::base64, 64, false,
              [](std::string_view r, const Secret* p) { return pw::check_digest(r, p, "SHA512"); },
              nullptr},
    SchemeDef{"SMD5", Enc::base64, 0, false,
              [](std::string_view r, const Secret* p) { return pw::check_salted(r, p, "MD5"); },
              nullptr},
    SchemeDef{"SSHA", Enc::base64, 0, false,
              [](std::string_view r, const Secret* p) { return pw::check_salted(r, p, "SHA1"); },
              nullptr},
    SchemeDef{"SSHA256", Enc::base64, 0, false,
              [](std::string_view r, const Secret* p) { return pw::check_salted(r, p, "SHA256"); },
              nullptr},
    SchemeDef{"SSHA512", Enc::base64, 0, false,
              [](std::string_view r, const Secret* p) { return pw::check_salted(r, p, "SHA512"); },
              nullptr},
    SchemeDef{"PLAIN-MD5", Enc::hex, 16, false,
              [](std::string_view r, const Secret* p) { return pw::check_digest(r, p, "MD5"); },
              nullptr},
    SchemeDef{"LDAP-MD5", Enc::base64, 16, false,
              [](std::string_view r, const Secret* p) { return pw::check_digest(r, p, "MD5"); },
              nullptr},
    SchemeDef{"PLAIN-MD4", Enc::hex, 16, false, pw::check_md4, nullptr},
    SchemeDef{"NTLM", Enc::hex, 16, false, pw::check_ntlm, nullptr},
    SchemeDef{"NS-MTA-MD5", Enc::none, 0, false, pw::check_ns_mta_md5, nullptr},
    SchemeDef{"SCRAM-SHA-1", Enc::none, 0, false,
              [](std::string_view r, const Secret* p) { return pw::check_scram(r, p, "SHA1"); },
              nullptr},
    SchemeDef{"SCRAM-SHA-256", Enc::none, 0, false,
              [](std::string_view r, const Secret* p) { return pw::check_scram(r, p, "SHA256"); },
              nullptr},
    SchemeDef{"PBKDF2", Enc::none, 0, false, pw::check_pbkdf2, nullptr},
    SchemeDef{"CRAM-MD5", Enc::hex, 32, false, pw::check_cram_md5, nullptr},
    SchemeDef{"HMAC-MD5", Enc::hex, 32, false, pw::check_cram_md5, nullptr},
    SchemeDef{"DIGEST-MD5", Enc::hex, 16, false, nullptr,
              "DIGEST-MD5 hashes the user name and realm with the password; "
              "verify at the old server instead"},
    SchemeDef{"OTP", Enc::none, 0, false, nullptr,
              "OTP holds one-time-password state, not a password hash"},
    SchemeDef{"SKEY", Enc::none, 0, false, nullptr,
              "SKEY holds one-time-password state, not a password hash"},
    SchemeDef{"RPA", Enc::hex, 16, false, nullptr, "RPA is not supported"},
    // Legacy formats from old servers' exports (password_legacy.cpp); {MSNT} is
    // CommuniGate's name for the NT hash.
    SchemeDef{"LANMAN", Enc::hex, 16, false, pw::check_lanman, nullptr},
    SchemeDef{"LANM", Enc::hex, 16, false, pw::check_lanman, nullptr},
    SchemeDef{"MSNT", Enc::hex, 16, false, pw::check_ntlm, nullptr},
};

const SchemeDef* find_scheme(std::string_view name) {
    for (const auto& s : kSchemes) {
        if (s.name.size() == name.size() &&
            std::equal(s.name.begin(), s.name.end(), name.begin(), [](char a, char b) {
                return a == std::toupper(static_cast<unsigned char>(b));
            })) {
            return &s;
        }
    }
    return nullptr;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// A name from a stored value goes into a reason only if it has the shape of a scheme
// name: short, upper-case letters, digits, '-', '.', '_'.
std::string shown(std::string_view name) {
    if (name.empty() || name.size() > 32) {
        return "(not shown)";
    }
    for (char c : name) {
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_')) {
            return "(not shown)";
        }
    }
    return std::string(name);
}

// Undoes the value's encoding. `explicit_enc`: a suffix was given, so no guessing.
std::optional<std::string> decode_value(std::string_view value, const SchemeDef& def, Enc enc,
                                        bool explicit_enc, std::string* reason) {
    std::optional<std::string> raw;
    if (enc != Enc::none && def.raw_len != 0 && !explicit_enc) {
        // Dovecot's guess: hex if exactly twice the digest size, else base64. Where hex
        // fails we still try base64, as Dovecot does.
        if (value.size() == def.raw_len * 2) {
            raw = pw::hex_decode(value);
        }
        if (!raw) {
            raw = pw::base64_decode(value);
        }
        if (!raw) {
            *reason = std::string(def.name) + " value is neither hex nor padded base64";
            return std::nullopt;
        }
    } else if (enc == Enc::hex) {
        raw = pw::hex_decode(value);
        if (!raw) {
            *reason = std::string(def.name) + " value is not valid hex";
            return std::nullopt;
        }
    } else if (enc == Enc::base64) {
        raw = pw::base64_decode(value);
        if (!raw) {
            *reason = std::string(def.name) +
                      " value is not valid padded base64 (truncated or stray characters)";
            return std::nullopt;
        }
    } else {
        raw = std::string(value);
    }
    if (def.raw_len != 0 && raw->size() != def.raw_len) {
        *reason = std::string(def.name) + " value decodes to " + std::to_string(raw->size()) +
                  " bytes, expected " + std::to_string(def.raw_len);
        return std::nullopt;
    }
    return raw;
}

HashCheck check_md5(std::string_view raw, const Secret* password) {
    // Dovecot's {MD5} is md5crypt; LDAP exports use {MD5} for base64 of the raw digest.
    if (raw.starts_with("$1$")) {
        return pw::check_crypt(raw, password);
    }
    std::string reason;
    const auto digest = decode_value(raw, *find_scheme("PLAIN-MD5"), Enc::hex, false, &reason);
    if (!digest) {
        return pw::unsupported("MD5 value is neither $1$ md5crypt nor an MD5 digest");
    }
    return pw::check_digest(*digest, password, "MD5");
}

struct Parsed {
    const SchemeDef* def = nullptr;
    std::string raw;
    std::string reason; // set when def is nullptr
};

Parsed parse(std::string_view stored) {
    Parsed p;
    if (stored.empty()) {
        p.reason = "empty stored hash";
        return p;
    }
    if (stored.front() != '{') {
        if (stored.front() == '!' || stored.front() == '*') {
            p.reason = "locked or disabled entry (starts with '!' or '*')";
        } else if (pw::looks_like_crypt(stored)) {
            p.def = find_scheme("CRYPT");
            p.raw = std::string(stored);
        } else {
            p.reason = "no {SCHEME} prefix and not a crypt(3) value";
        }
        return p;
    }
    const auto close = stored.find('}');
    if (close == std::string_view::npos) {
        p.reason = "no '}' after the scheme name";
        return p;
    }
    const std::string_view label = stored.substr(1, close - 1);
    const std::string_view value = stored.substr(close + 1);
    const auto dot = label.find('.');
    const std::string_view name = label.substr(0, dot);
    const SchemeDef* def = find_scheme(name);
    if (def == nullptr) {
        p.reason = "unknown password scheme " + shown(name);
        return p;
    }
    Enc enc = def->enc;
    const bool explicit_enc = dot != std::string_view::npos;
    if (explicit_enc) {
        const std::string_view suffix = label.substr(dot + 1);
        if (iequals(suffix, "B64") || iequals(suffix, "BASE64")) {
            enc = Enc::base64;
        } else if (iequals(suffix, "HEX")) {
            enc = Enc::hex;
        } else {
            p.reason = "unknown encoding suffix on scheme " + std::string(def->name) +
                       " (only .HEX, .B64, .BASE64)";
            return p;
        }
    }
    if (def->check == nullptr) {
        p.reason = def->why_not;
        return p;
    }
    auto raw = decode_value(value, *def, enc, explicit_enc, &p.reason);
    if (!raw) {
        return p;
    }
    p.def = def;
    p.raw = std::move(*raw);
    return p;
}

} // namespace

HashCheck verify_hash(std::string_view stored, const Secret& password) {
    const Parsed p = parse(stored);
    HashCheck result =
        p.def == nullptr ? pw::unsupported(p.reason) : p.def->check(p.raw, &password);
    // Last line of defence: a reason never carries the password, even if a stored value
    // happened to contain it where a scheme name was expected.
    if (result.result == HashMatch::unsupported && !password.empty() &&
        result.reason.find(password.view()) != std::string::npos) {
        result.reason = "unreadable stored value (details withheld)";
    }
    if (result.result == HashMatch::unsupported && result.reason.empty()) {
        result.reason = "unreadable stored value";
    }
    return result;
}

// For crypt(3) values this runs one crypt with a fixed phrase (only libxcrypt knows
// every method's exact layout), so it costs what one verification costs.
bool hash_supported(std::string_view stored, std::string* reason) {
    const Parsed p = parse(stored);
    HashCheck result = p.def == nullptr ? pw::unsupported(p.reason) : p.def->check(p.raw, nullptr);
    if (result.result == HashMatch::match) {
        return true;
    }
    if (reason != nullptr) {
        *reason = result.reason.empty() ? "unreadable stored value" : result.reason;
    }
    return false;
}

Result<std::string> make_hash(const Secret& password, const HashConfig& cfg) {
    if (password.empty()) {
        // An account with an empty password is a hole, whatever the old server allowed.
        return make_error("hash password", "refusing to hash an empty password");
    }
    switch (cfg.scheme) {
    case HashScheme::argon2id: {
        auto h = pw::argon2id_make(password, cfg.argon2_ops, cfg.argon2_memory_kib);
        if (!h) {
            return h.error();
        }
        return "{ARGON2ID}" + *h;
    }
    case HashScheme::sha512_crypt: {
        auto h = pw::crypt_make(password, "$6$", cfg.sha512_rounds);
        if (!h) {
            return h.error();
        }
        return "{SHA512-CRYPT}" + *h;
    }
    case HashScheme::yescrypt: {
        if (cfg.yescrypt_cost < 1 || cfg.yescrypt_cost > 11) {
            return make_error("hash password with yescrypt",
                              "yescrypt_cost " + std::to_string(cfg.yescrypt_cost) +
                                  " out of range 1..11",
                              Scope::config);
        }
        auto h = pw::crypt_make(password, "$y$", cfg.yescrypt_cost);
        if (!h) {
            return h.error();
        }
        return "{CRYPT}" + *h;
    }
    }
    return make_error("hash password",
                      "unknown hash scheme " + std::to_string(static_cast<int>(cfg.scheme)),
                      Scope::config);
}

bool needs_rehash(std::string_view stored, const HashConfig& cfg) {
    const Parsed p = parse(stored);
    if (p.def == nullptr || !p.def->crypt_like) {
        return true;
    }
    const std::string_view raw = p.raw;
    switch (cfg.scheme) {
    case HashScheme::argon2id: {
        if (!raw.starts_with("$argon2id$")) {
            return true;
        }
        const auto params = pw::argon2_parse(raw, nullptr);
        return !params || params->m_kib < cfg.argon2_memory_kib || params->t < cfg.argon2_ops;
    }
    case HashScheme::sha512_crypt: {
        if (!raw.starts_with("$6$")) {
            return true;
        }
        // libxcrypt clamps rounds to 1000..999999999; so do we, or a config of 500 would
        // rehash the 1000-round value make_hash wrote, at every login.
        const unsigned long want =
            std::clamp<unsigned long>(cfg.sha512_rounds, 1000UL, 999999999UL);
        const auto rounds = pw::sha_crypt_rounds(raw);
        return !rounds || *rounds < want;
    }
    case HashScheme::yescrypt:
        return pw::yescrypt_weaker(raw, cfg.yescrypt_cost).value_or(true);
    }
    return true;
}

} // namespace mf
