// password_cram.cpp — {CRAM-MD5} / {HMAC-MD5}: Dovecot's stored HMAC-MD5 key state.
//
// The value is the MD5 chaining state (A,B,C,D as little-endian 32-bit words) after one
// block of key⊕opad, then the same after key⊕ipad: 32 bytes, 64 hex digits. Only the
// low-level MD5 interface exposes that state, and OpenSSL 3 marks it deprecated; it is
// still shipped and exact, so this one file opts out of the deprecation warnings.
// Must never: leave the padded key or the state unwiped.
// Errors: a value of the wrong length → unsupported.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "password_impl.hpp"

#include <array>
#include <openssl/md5.h>

namespace mf::pw {
namespace {

// MD5 state after one 64-byte block of key ⊕ pad, as 16 little-endian bytes.
void pad_state(const unsigned char* key, std::size_t key_len, unsigned char pad,
               unsigned char* out) {
    std::array<unsigned char, 64> block{};
    for (std::size_t i = 0; i < block.size(); ++i) {
        block[i] = static_cast<unsigned char>((i < key_len ? key[i] : 0) ^ pad);
    }
    MD5_CTX ctx;
    MD5_Init(&ctx);
    MD5_Update(&ctx, block.data(), block.size()); // exactly one block: state is final
    const MD5_LONG words[4] = {ctx.A, ctx.B, ctx.C, ctx.D};
    for (int w = 0; w < 4; ++w) {
        for (int b = 0; b < 4; ++b) {
            out[w * 4 + b] = static_cast<unsigned char>((words[w] >> (8 * b)) & 0xFF);
        }
    }
    wipe(block.data(), block.size());
    wipe(&ctx, sizeof ctx);
}

} // namespace

HashCheck check_cram_md5(std::string_view raw, const Secret* password) {
    if (raw.size() != 32) {
        return unsupported("CRAM-MD5 value is not 32 bytes (64 hex digits)");
    }
    if (password == nullptr) {
        return readable();
    }
    // HMAC: a key longer than the block is replaced by its digest.
    WipedBytes key;
    if (password->size() > 64) {
        key = WipedBytes(MD5_DIGEST_LENGTH);
        MD5(reinterpret_cast<const unsigned char*>(password->data()), password->size(), key.data());
    } else {
        key.append(password->view());
    }
    WipedBytes state(32);
    pad_state(key.data(), key.size(), 0x5c, state.data());      // outer first,
    pad_state(key.data(), key.size(), 0x36, state.data() + 16); // then inner
    return matched(equal_ct(state.data(), reinterpret_cast<const unsigned char*>(raw.data()), 32));
}

} // namespace mf::pw
