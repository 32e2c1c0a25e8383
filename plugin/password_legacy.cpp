// password_legacy.cpp — the LAN Manager hash ({LANM}, {LANMAN}).
//
// LM: the password, upper-cased, NUL-padded to 14 bytes, split into two 7-byte halves;
// each half spread over the 8 bytes of a DES key (7 bits per byte); the constant
// "KGS!@#$%" encrypted with each key (DES-ECB); the two 8-byte results concatenated.
// Single DES is only in OpenSSL 3's legacy provider, which we load into a library context
// of our own so the host process's default context stays as it was.
//
// What LM cannot say, we do not guess:
//   - a password longer than 14 bytes, or with a byte outside ASCII (LM upper-cases in
//     the client's OEM code page, unknown to us) → unsupported: the engine verifies at
//     the old server instead;
//   - the "empty" value AAD3B435B51404EE AAD3B435B51404EE is what Windows and others store
//     when they store no LM hash at all → unsupported, never a match for "".
// LM is case-insensitive: "Secret" and "SECRET" both match. The old server accepted both
// too; the engine rehashes with what the user typed on the first login.
// Must never: keep a DES key or the upper-cased password unwiped; use memcmp.
// Errors: unsupported with a reason (legacy provider missing, unrepresentable password).
#include "password_legacy.hpp"

#include <array>
#include <openssl/evp.h>
#include <openssl/provider.h>

namespace mf::pw {
namespace {

class LegacyDes {
  public:
    LegacyDes() {
        ctx_ = OSSL_LIB_CTX_new();
        if (ctx_ == nullptr) {
            error_ = "OSSL_LIB_CTX_new failed";
            return;
        }
        legacy_ = OSSL_PROVIDER_load(ctx_, "legacy");
        if (legacy_ == nullptr) {
            error_ = "OpenSSL legacy provider could not be loaded (needed for DES, LANMAN)";
            return;
        }
        des_ = EVP_CIPHER_fetch(ctx_, "DES-ECB", nullptr);
        if (des_ == nullptr) {
            error_ = "DES-ECB not available from the OpenSSL legacy provider";
        }
    }
    ~LegacyDes() {
        EVP_CIPHER_free(des_);
        if (legacy_ != nullptr) {
            OSSL_PROVIDER_unload(legacy_);
        }
        OSSL_LIB_CTX_free(ctx_);
    }
    LegacyDes(const LegacyDes&) = delete;
    LegacyDes& operator=(const LegacyDes&) = delete;

    [[nodiscard]] const EVP_CIPHER* des() const { return des_; }
    [[nodiscard]] const std::string& error() const { return error_; }

  private:
    OSSL_LIB_CTX* ctx_ = nullptr;
    OSSL_PROVIDER* legacy_ = nullptr;
    EVP_CIPHER* des_ = nullptr;
    std::string error_;
};

const LegacyDes& legacy_des() {
    static const LegacyDes instance;
    return instance;
}

constexpr std::array<unsigned char, 16> kEmptyLm{0xAA, 0xD3, 0xB4, 0x35, 0xB5, 0x14, 0x04, 0xEE,
                                                 0xAA, 0xD3, 0xB4, 0x35, 0xB5, 0x14, 0x04, 0xEE};
constexpr unsigned char kMagic[8] = {'K', 'G', 'S', '!', '@', '#', '$', '%'};

// 56 bits of `half` → 8 key bytes, 7 bits each in the high bits (parity bit left 0:
// OpenSSL's DES does not check parity).
void spread_key(const unsigned char* half, unsigned char* key) {
    key[0] = half[0] >> 1;
    key[1] = static_cast<unsigned char>(((half[0] & 0x01) << 6) | (half[1] >> 2));
    key[2] = static_cast<unsigned char>(((half[1] & 0x03) << 5) | (half[2] >> 3));
    key[3] = static_cast<unsigned char>(((half[2] & 0x07) << 4) | (half[3] >> 4));
    key[4] = static_cast<unsigned char>(((half[3] & 0x0F) << 3) | (half[4] >> 5));
    key[5] = static_cast<unsigned char>(((half[4] & 0x1F) << 2) | (half[5] >> 6));
    key[6] = static_cast<unsigned char>(((half[5] & 0x3F) << 1) | (half[6] >> 7));
    key[7] = half[6] & 0x7F;
    for (int i = 0; i < 8; ++i) {
        key[i] = static_cast<unsigned char>(key[i] << 1);
    }
}

// DES-ECB of the magic constant under the key made from `half`; false on an OpenSSL error.
bool des_half(const EVP_CIPHER* des, const unsigned char* half, unsigned char* out) {
    WipedBytes key(8);
    spread_key(half, key.data());
    EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
    if (c == nullptr) {
        return false;
    }
    int len = 0;
    int fin = 0;
    bool ok = EVP_EncryptInit_ex2(c, des, key.data(), nullptr, nullptr) == 1 &&
              EVP_CIPHER_CTX_set_padding(c, 0) == 1 &&
              EVP_EncryptUpdate(c, out, &len, kMagic, sizeof kMagic) == 1 &&
              EVP_EncryptFinal_ex(c, out + len, &fin) == 1 && len + fin == 8;
    EVP_CIPHER_CTX_free(c);
    return ok;
}

} // namespace

HashCheck check_lanman(std::string_view raw, const Secret* password) {
    if (raw.size() != 16) {
        return unsupported("LANMAN value has the wrong length");
    }
    if (equal_ct(reinterpret_cast<const unsigned char*>(raw.data()), kEmptyLm.data(), 16)) {
        return unsupported("LANMAN value is the empty-hash constant: no LM hash was stored "
                           "(password empty or longer than 14 characters)");
    }
    const EVP_CIPHER* des = legacy_des().des();
    if (des == nullptr) {
        return unsupported(legacy_des().error());
    }
    if (password == nullptr) {
        return readable();
    }
    if (password->size() > 14) {
        return unsupported("LANMAN holds at most 14 characters; this password is longer");
    }
    WipedBytes upper(14); // zero-filled: the NUL padding
    for (std::size_t i = 0; i < password->size(); ++i) {
        auto c = static_cast<unsigned char>(password->data()[i]);
        if (c >= 0x80) {
            return unsupported("LANMAN of a non-ASCII password depends on the old client's "
                               "code page");
        }
        upper.data()[i] = (c >= 'a' && c <= 'z') ? static_cast<unsigned char>(c - 'a' + 'A') : c;
    }
    WipedBytes lm(16);
    if (!des_half(des, upper.data(), lm.data()) ||
        !des_half(des, upper.data() + 7, lm.data() + 8)) {
        return unsupported("OpenSSL DES-ECB failed");
    }
    return matched(equal_ct(lm.data(), reinterpret_cast<const unsigned char*>(raw.data()), 16));
}

} // namespace mf::pw
