// password_impl.hpp — private pieces shared by the password scheme files.
//
// password.cpp parses "{SCHEME.ENC}value", undoes the encoding and hands the raw value
// to one checker per family: password_crypt.cpp (libxcrypt), password_argon2.cpp
// (libsodium), password_digest.cpp (OpenSSL: plain digests, salted digests, MD4/NTLM,
// NS-MTA-MD5, SCRAM, PBKDF2, PLAIN), password_cram.cpp (CRAM-MD5 key state),
// password_codec.cpp (hex, base64, constant-time compare).
//
// Must never: put a password, or anything derived from one, into a reason string; compare
// digests with memcmp (CRYPTO_memcmp / sodium_memcmp only); touch process-wide crypto
// state (OpenSSL default library context, crypt() static buffer).
// Errors: a checker answers HashMatch::unsupported with a reason for a value it cannot
// read; it never throws.
#pragma once

#include "mailferry/password.hpp"
#include "mailferry/secret.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace mf::pw {

// A checker sees the decoded stored value `raw` and either a password (verify) or
// nullptr (only tell whether `raw` is well formed: HashMatch::match means "readable").
using Checker = HashCheck (*)(std::string_view raw, const Secret* password);

inline HashCheck unsupported(std::string reason) {
    return HashCheck{HashMatch::unsupported, std::move(reason)};
}
inline HashCheck matched(bool yes) {
    return HashCheck{yes ? HashMatch::match : HashMatch::mismatch, {}};
}
inline HashCheck readable() {
    return HashCheck{HashMatch::match, {}};
}

// strerror without its shared buffer: these run on many threads.
inline std::string errno_text(int err) {
    return std::generic_category().message(err);
}

// Bytes derived from a password (digests, keys): wiped when they die.
class WipedBytes {
  public:
    WipedBytes() = default;
    explicit WipedBytes(std::size_t n) : bytes_(n) {}
    ~WipedBytes() { wipe(bytes_.data(), bytes_.size()); }
    WipedBytes(const WipedBytes&) = delete;
    WipedBytes& operator=(const WipedBytes&) = delete;
    WipedBytes(WipedBytes&&) = default;
    WipedBytes& operator=(WipedBytes&&) = default;

    [[nodiscard]] unsigned char* data() { return bytes_.data(); }
    [[nodiscard]] const unsigned char* data() const { return bytes_.data(); }
    [[nodiscard]] std::size_t size() const { return bytes_.size(); }
    void resize(std::size_t n) {
        if (n < bytes_.size()) {
            wipe(bytes_.data() + n, bytes_.size() - n);
        }
        bytes_.resize(n);
    }
    void append(std::string_view s) { bytes_.insert(bytes_.end(), s.begin(), s.end()); }

  private:
    std::vector<unsigned char> bytes_;
};

// ---- codecs (password_codec.cpp) ----

// Strict RFC 4648 base64 with padding ("=" required up to a multiple of 4); nullopt on
// any stray byte, bad padding or non-zero trailing bits.
std::optional<std::string> base64_decode(std::string_view in);
std::string base64_encode(std::string_view in);
// Even-length hex, either case.
std::optional<std::string> hex_decode(std::string_view in);
std::string hex_encode(std::string_view in);

// Constant-time equality of two byte strings of the same length (false if lengths differ;
// a length is not a secret here).
bool equal_ct(std::string_view a, std::string_view b);
bool equal_ct(const unsigned char* a, const unsigned char* b, std::size_t n);

// ---- families ----

// crypt(3) through libxcrypt crypt_rn: DES, BSDi, bigcrypt, $1$ $5$ $6$ $2?$ $y$ $gy$
// $7$ $3$ $sha1$ $md5 …  (password_crypt.cpp)
HashCheck check_crypt(std::string_view raw, const Secret* password);
// True if `raw` looks like something crypt(3) or argon2 owns, for values without {…}.
bool looks_like_crypt(std::string_view raw);
// "$6$[rounds=N$]salt" from libxcrypt crypt_gensalt_rn, then crypt_rn.
Result<std::string> crypt_make(const Secret& password, const char* prefix, unsigned long count);
// Rounds of a "$6$…" / "$5$…" value (5000 when absent); nullopt if unreadable.
std::optional<unsigned long> sha_crypt_rounds(std::string_view raw);
// Does a stored "$y$…" value cost less than libxcrypt's setting for `cost`? nullopt if
// either cannot be read.
std::optional<bool> yescrypt_weaker(std::string_view raw, unsigned cost);

// Argon2i / Argon2id via libsodium (password_argon2.cpp).
struct Argon2Params {
    bool id = false; // argon2id (else argon2i)
    unsigned long long m_kib = 0;
    unsigned long long t = 0;
    unsigned long long p = 0;
};
std::optional<Argon2Params> argon2_parse(std::string_view raw, std::string* reason);
HashCheck check_argon2(std::string_view raw, const Secret* password);
Result<std::string> argon2id_make(const Secret& password, unsigned long long ops,
                                  unsigned long long mem_kib);

// Digest families (password_digest.cpp). `name` is the digest for OpenSSL ("SHA1"…).
HashCheck check_digest(std::string_view raw, const Secret* password, const char* name);
HashCheck check_salted(std::string_view raw, const Secret* password, const char* name);
HashCheck check_md4(std::string_view raw, const Secret* password);  // {PLAIN-MD4}
HashCheck check_ntlm(std::string_view raw, const Secret* password); // {NTLM}
HashCheck check_ns_mta_md5(std::string_view raw, const Secret* password);
HashCheck check_scram(std::string_view raw, const Secret* password, const char* name);
HashCheck check_pbkdf2(std::string_view raw, const Secret* password);
HashCheck check_cram_md5(std::string_view raw, const Secret* password); // 32 raw bytes
HashCheck check_plain(std::string_view raw, const Secret* password);
HashCheck check_plain_trunc(std::string_view raw, const Secret* password);

} // namespace mf::pw
