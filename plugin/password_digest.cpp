// password_digest.cpp — digest-based schemes through OpenSSL: {SHA*}, {SSHA*}, {SMD5},
// {PLAIN-MD5}, {LDAP-MD5}, {PLAIN-MD4}, {NTLM}, {NS-MTA-MD5}, {SCRAM-SHA-*}, {PBKDF2},
// {PLAIN}, {PLAIN-TRUNC}.
//
// MD4 is gone from OpenSSL 3's default provider. We load the legacy provider into a
// library context of our own (OSSL_LIB_CTX), so the process-wide default — which other
// parts of a host program (Dovecot, PAM) rely on — is left exactly as it was.
// Must never: load providers into the default library context; compare with memcmp;
// leave a password-derived digest in memory unwiped.
// Errors: value of the wrong length or encoding → unsupported with the reason; MD4 not
// loadable → unsupported ("legacy provider"), never mismatch.
#include "password_impl.hpp"

#include <climits>
#include <memory>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/provider.h>

namespace mf::pw {
namespace {

// The legacy provider in a private library context, loaded once on first use.
class LegacyMd4 {
  public:
    LegacyMd4() {
        ctx_ = OSSL_LIB_CTX_new();
        if (ctx_ == nullptr) {
            error_ = "OSSL_LIB_CTX_new failed";
            return;
        }
        legacy_ = OSSL_PROVIDER_load(ctx_, "legacy");
        if (legacy_ == nullptr) {
            error_ = "OpenSSL legacy provider could not be loaded (needed for MD4)";
            return;
        }
        md4_ = EVP_MD_fetch(ctx_, "MD4", nullptr);
        if (md4_ == nullptr) {
            error_ = "MD4 not available from the OpenSSL legacy provider";
        }
    }
    ~LegacyMd4() {
        EVP_MD_free(md4_);
        if (legacy_ != nullptr) {
            OSSL_PROVIDER_unload(legacy_);
        }
        OSSL_LIB_CTX_free(ctx_);
    }
    LegacyMd4(const LegacyMd4&) = delete;
    LegacyMd4& operator=(const LegacyMd4&) = delete;

    [[nodiscard]] const EVP_MD* md4() const { return md4_; }
    [[nodiscard]] const std::string& error() const { return error_; }

  private:
    OSSL_LIB_CTX* ctx_ = nullptr;
    OSSL_PROVIDER* legacy_ = nullptr;
    EVP_MD* md4_ = nullptr;
    std::string error_;
};

const LegacyMd4& legacy() {
    static const LegacyMd4 instance; // C++ static init is thread-safe
    return instance;
}

const EVP_MD* md_by_name(std::string_view name) {
    if (name == "MD5") {
        return EVP_md5();
    }
    if (name == "SHA1") {
        return EVP_sha1();
    }
    if (name == "SHA256") {
        return EVP_sha256();
    }
    if (name == "SHA512") {
        return EVP_sha512();
    }
    if (name == "MD4") {
        return legacy().md4();
    }
    return nullptr;
}

struct MdCtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// Digest of the concatenated parts; empty on an OpenSSL failure.
WipedBytes digest(const EVP_MD* md, std::initializer_list<std::string_view> parts) {
    WipedBytes out(static_cast<std::size_t>(EVP_MD_get_size(md)));
    std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
    unsigned int len = 0;
    bool ok = ctx && EVP_DigestInit_ex(ctx.get(), md, nullptr) == 1;
    for (auto p : parts) {
        ok = ok && EVP_DigestUpdate(ctx.get(), p.data(), p.size()) == 1;
    }
    ok = ok && EVP_DigestFinal_ex(ctx.get(), out.data(), &len) == 1 && len == out.size();
    if (!ok) {
        out.resize(0);
    }
    return out;
}

std::string_view as_view(const WipedBytes& b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

HashCheck compare_digest(const WipedBytes& computed, std::string_view stored) {
    if (computed.size() == 0) {
        return unsupported("OpenSSL digest failed");
    }
    return matched(stored.size() >= computed.size() &&
                   equal_ct(computed.data(), reinterpret_cast<const unsigned char*>(stored.data()),
                            computed.size()));
}

// UTF-8 → UTF-16LE for NTLM; nullopt if the bytes are not valid UTF-8.
std::optional<WipedBytes> utf16le(std::string_view s) {
    WipedBytes out;
    std::string units;
    auto put = [&units](unsigned u) {
        units.push_back(static_cast<char>(u & 0xFF));
        units.push_back(static_cast<char>(u >> 8));
    };
    for (std::size_t i = 0; i < s.size();) {
        const auto b0 = static_cast<unsigned char>(s[i]);
        unsigned cp = 0;
        std::size_t n = 0;
        if (b0 < 0x80) {
            cp = b0;
            n = 1;
        } else if ((b0 & 0xE0) == 0xC0) {
            cp = b0 & 0x1Fu;
            n = 2;
        } else if ((b0 & 0xF0) == 0xE0) {
            cp = b0 & 0x0Fu;
            n = 3;
        } else if ((b0 & 0xF8) == 0xF0) {
            cp = b0 & 0x07u;
            n = 4;
        } else {
            wipe(units.data(), units.size());
            return std::nullopt;
        }
        if (i + n > s.size()) {
            wipe(units.data(), units.size());
            return std::nullopt;
        }
        for (std::size_t k = 1; k < n; ++k) {
            const auto b = static_cast<unsigned char>(s[i + k]);
            if ((b & 0xC0) != 0x80) {
                wipe(units.data(), units.size());
                return std::nullopt;
            }
            cp = (cp << 6) | (b & 0x3Fu);
        }
        static constexpr unsigned min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_for_len[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            wipe(units.data(), units.size());
            return std::nullopt; // overlong, surrogate or out of range
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            put(0xD800 + (cp >> 10));
            put(0xDC00 + (cp & 0x3FF));
        } else {
            put(cp);
        }
        i += n;
    }
    out.append(units);
    wipe(units.data(), units.size());
    return out;
}

std::optional<unsigned long> parse_uint(std::string_view s, unsigned long max) {
    if (s.empty() || s.size() > 10) {
        return std::nullopt;
    }
    unsigned long v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        v = v * 10 + static_cast<unsigned long>(c - '0');
    }
    if (v > max) {
        return std::nullopt;
    }
    return v;
}

} // namespace

HashCheck check_digest(std::string_view raw, const Secret* password, const char* name) {
    const EVP_MD* md = md_by_name(name);
    if (md == nullptr) {
        return unsupported(std::string(name) + " digest not available from OpenSSL");
    }
    if (raw.size() != static_cast<std::size_t>(EVP_MD_get_size(md))) {
        return unsupported(std::string(name) + " value has the wrong length");
    }
    if (password == nullptr) {
        return readable();
    }
    return compare_digest(digest(md, {password->view()}), raw);
}

HashCheck check_salted(std::string_view raw, const Secret* password, const char* name) {
    const EVP_MD* md = md_by_name(name);
    if (md == nullptr) {
        return unsupported(std::string(name) + " digest not available from OpenSSL");
    }
    const auto size = static_cast<std::size_t>(EVP_MD_get_size(md));
    if (raw.size() <= size) {
        return unsupported(std::string("salted ") + name + " value too short (no salt)");
    }
    if (password == nullptr) {
        return readable();
    }
    return compare_digest(digest(md, {password->view(), raw.substr(size)}), raw);
}

HashCheck check_md4(std::string_view raw, const Secret* password) {
    if (legacy().md4() == nullptr) {
        return unsupported(legacy().error());
    }
    return check_digest(raw, password, "MD4");
}

HashCheck check_ntlm(std::string_view raw, const Secret* password) {
    const EVP_MD* md4 = legacy().md4();
    if (md4 == nullptr) {
        return unsupported(legacy().error());
    }
    if (raw.size() != 16) {
        return unsupported("NTLM value has the wrong length");
    }
    if (password == nullptr) {
        return readable();
    }
    // Real NT hashes (Windows, Samba, LDAP sambaNTPassword) are MD4 of UTF-16LE. Dovecot
    // before 2.3.13 and libxcrypt's $3$ widen each byte instead, which differs only for
    // non-ASCII passwords; both are one fixed function of the same password, so a value
    // written by either verifies.
    bool match = false;
    if (auto wide = utf16le(password->view())) {
        const auto h = digest(md4, {as_view(*wide)});
        if (h.size() == 0) {
            return unsupported("OpenSSL MD4 digest failed");
        }
        match = equal_ct(as_view(h), raw);
    }
    bool ascii = true;
    for (char c : password->view()) {
        ascii = ascii && static_cast<unsigned char>(c) < 0x80;
    }
    if (!match && !ascii) {
        WipedBytes widened;
        for (char c : password->view()) {
            widened.append(std::string_view(&c, 1));
            widened.append(std::string_view("\0", 1));
        }
        const auto h = digest(md4, {as_view(widened)});
        match = h.size() != 0 && equal_ct(as_view(h), raw);
    }
    return matched(match);
}

HashCheck check_ns_mta_md5(std::string_view raw, const Secret* password) {
    // 32 hex digits of MD5(salt ‖ 0x59 ‖ password ‖ 0xF7 ‖ salt), then the 32-byte salt.
    if (raw.size() != 64) {
        return unsupported("NS-MTA-MD5 value is not 64 characters");
    }
    const auto want = hex_decode(raw.substr(0, 32));
    if (!want) {
        return unsupported("NS-MTA-MD5 digest is not hex");
    }
    if (password == nullptr) {
        return readable();
    }
    const std::string_view salt = raw.substr(32);
    const auto h = digest(EVP_md5(), {salt, std::string_view("\x59", 1), password->view(),
                                      std::string_view("\xF7", 1), salt});
    return compare_digest(h, *want);
}

HashCheck check_scram(std::string_view raw, const Secret* password, const char* name) {
    // Dovecot: "<iterations>,<base64 salt>,<base64 StoredKey>,<base64 ServerKey>".
    const EVP_MD* md = md_by_name(name);
    if (md == nullptr) {
        return unsupported(std::string(name) + " digest not available from OpenSSL");
    }
    const auto size = static_cast<std::size_t>(EVP_MD_get_size(md));
    std::string_view fields[4];
    std::size_t n = 0;
    for (std::string_view rest = raw;; ++n) {
        const auto comma = rest.find(',');
        if (n == 4) {
            return unsupported("SCRAM value does not have 4 fields");
        }
        fields[n] = rest.substr(0, comma);
        if (comma == std::string_view::npos) {
            ++n;
            break;
        }
        rest.remove_prefix(comma + 1);
    }
    if (n != 4) {
        return unsupported("SCRAM value does not have 4 fields");
    }
    // RFC 5802 wants at least 4096; Dovecot refuses fewer too.
    const auto iter = parse_uint(fields[0], INT_MAX);
    if (!iter || *iter < 4096) {
        return unsupported("SCRAM iteration count is not a number in 4096..2^31-1");
    }
    const auto salt = base64_decode(fields[1]);
    const auto stored_key = base64_decode(fields[2]);
    const auto server_key = base64_decode(fields[3]);
    if (!salt || salt->empty() || !stored_key || stored_key->size() != size || !server_key ||
        server_key->size() != size) {
        return unsupported("SCRAM salt or keys are not base64 of the right length");
    }
    if (password == nullptr) {
        return readable();
    }
    // SaltedPassword = PBKDF2(password, salt, i); StoredKey = H(HMAC(SaltedPassword,
    // "Client Key")). Dovecot does not SASLprep the password, nor do we.
    WipedBytes salted(size);
    WipedBytes client_key(size);
    unsigned int len = 0;
    const char* pw = password->empty() ? "" : password->data();
    if (PKCS5_PBKDF2_HMAC(pw, static_cast<int>(password->size()),
                          reinterpret_cast<const unsigned char*>(salt->data()),
                          static_cast<int>(salt->size()), static_cast<int>(*iter), md,
                          static_cast<int>(size), salted.data()) != 1 ||
        HMAC(md, salted.data(), static_cast<int>(size),
             reinterpret_cast<const unsigned char*>("Client Key"), 10, client_key.data(),
             &len) == nullptr ||
        len != size) {
        return unsupported("OpenSSL PBKDF2/HMAC failed");
    }
    return compare_digest(digest(md, {as_view(client_key)}), *stored_key);
}

HashCheck check_pbkdf2(std::string_view raw, const Secret* password) {
    // Dovecot: "$1$<salt>$<rounds>$<40 hex digits of PBKDF2-HMAC-SHA1>"; the salt is used
    // as the ASCII text it is.
    if (!raw.starts_with("$1$")) {
        return unsupported("PBKDF2 value does not start with $1$");
    }
    std::string_view rest = raw.substr(3);
    const auto d1 = rest.find('$');
    const auto d2 = d1 == std::string_view::npos ? d1 : rest.find('$', d1 + 1);
    if (d2 == std::string_view::npos || rest.find('$', d2 + 1) != std::string_view::npos) {
        return unsupported("PBKDF2 value is not $1$salt$rounds$hash");
    }
    const std::string_view salt = rest.substr(0, d1);
    const auto rounds = parse_uint(rest.substr(d1 + 1, d2 - d1 - 1), INT_MAX);
    const auto want = hex_decode(rest.substr(d2 + 1));
    if (!rounds || *rounds == 0 || !want || want->size() != 20) {
        return unsupported("PBKDF2 rounds or hash malformed (hash must be 40 hex digits)");
    }
    if (password == nullptr) {
        return readable();
    }
    WipedBytes key(20);
    const char* pw = password->empty() ? "" : password->data();
    if (PKCS5_PBKDF2_HMAC(pw, static_cast<int>(password->size()),
                          reinterpret_cast<const unsigned char*>(salt.data()),
                          static_cast<int>(salt.size()), static_cast<int>(*rounds), EVP_sha1(), 20,
                          key.data()) != 1) {
        return unsupported("OpenSSL PBKDF2 failed");
    }
    return compare_digest(key, *want);
}

HashCheck check_plain(std::string_view raw, const Secret* password) {
    if (raw.empty()) {
        return unsupported("empty stored password");
    }
    if (password == nullptr) {
        return readable();
    }
    // Compare digests, so neither the length nor the first differing byte shows in time.
    const auto a = digest(EVP_sha256(), {raw});
    const auto b = digest(EVP_sha256(), {password->view()});
    if (a.size() == 0 || b.size() == 0) {
        return unsupported("OpenSSL digest failed");
    }
    return matched(equal_ct(as_view(a), as_view(b)));
}

HashCheck check_plain_trunc(std::string_view raw, const Secret* password) {
    // Dovecot: "<length>-<password>": a password cut to <length> bytes by some earlier
    // system; any password with that prefix was accepted there.
    std::size_t i = 0;
    while (i < raw.size() && raw[i] >= '0' && raw[i] <= '9') {
        ++i;
    }
    const auto trunc = parse_uint(raw.substr(0, i), UINT_MAX);
    if (!trunc || i >= raw.size() || raw[i] != '-') {
        return unsupported("PLAIN-TRUNC value has no \"<length>-\" prefix");
    }
    const std::string_view stored = raw.substr(i + 1);
    if (stored.empty()) {
        return unsupported("empty stored password");
    }
    if (password == nullptr) {
        return readable();
    }
    const std::string_view pw = password->view();
    if (stored.size() == *trunc && pw.size() >= *trunc) {
        return matched(equal_ct(stored, pw.substr(0, *trunc)));
    }
    return check_plain(stored, password);
}

} // namespace mf::pw
