// password_crypt.cpp — crypt(3) hashes through libxcrypt: verify any method it knows,
// make $6$ and $y$ values.
//
// Every call gets its own struct crypt_data (crypt_rn), so verification runs on many
// threads at once. The stored value is its own setting: crypt_rn(password, stored) must
// give back exactly the stored string.
// Must never: call crypt() (one static buffer for the process); leave the crypt_data
// (it held the password) unwiped; compare the output with strcmp.
// Errors: a setting libxcrypt refuses or a value whose shape crypt_rn does not reproduce
// → unsupported with the reason; a password crypt(3) cannot take (NUL byte, more than
// 511 bytes) → mismatch when verifying, an Error when hashing.
#include "password_impl.hpp"

#include <cerrno>
#include <crypt.h>
#include <memory>

namespace mf::pw {
namespace {

// struct crypt_data is 32 KiB: on the heap, zeroed before use as crypt_rn wants, wiped
// after because it held the password.
class CryptScratch {
  public:
    CryptScratch() : data_(std::make_unique<crypt_data>()) {}
    ~CryptScratch() { wipe(data_.get(), sizeof(crypt_data)); }
    CryptScratch(const CryptScratch&) = delete;
    CryptScratch& operator=(const CryptScratch&) = delete;

    // nullptr with errno set on failure (crypt_rn never returns a "*0" token).
    const char* run(const char* phrase, const char* setting) {
        errno = 0;
        return crypt_rn(phrase, setting, data_.get(), static_cast<int>(sizeof(crypt_data)));
    }

  private:
    std::unique_ptr<crypt_data> data_;
};

bool is_crypt64(char c) {
    return c == '.' || c == '/' || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
           (c >= 'a' && c <= 'z');
}

bool all_crypt64(std::string_view s) {
    for (char c : s) {
        if (!is_crypt64(c)) {
            return false;
        }
    }
    return true;
}

// The part of a hash that is its setting: everything up to the last '$' for the
// "$id$…" methods, the 9-byte "_CCCCSSSS" for BSDi, the 2-byte salt for DES.
std::string_view setting_part(std::string_view s) {
    if (!s.empty() && s.front() == '$') {
        return s.substr(0, s.rfind('$'));
    }
    if (!s.empty() && s.front() == '_') {
        return s.substr(0, 9);
    }
    return s.substr(0, 2);
}

// "$6$", "$2b$", "$sha1$": the method tag, for a reason string. Only the tag: the rest of
// a stored value is not ours to print.
std::string method_tag(std::string_view raw) {
    if (raw.empty() || raw.front() != '$') {
        return raw.size() == 13                       ? "DES"
               : (!raw.empty() && raw.front() == '_') ? "BSDi"
                                                      : "DES-like";
    }
    const auto end = raw.find('$', 1);
    if (end == std::string_view::npos || end > 8) {
        return "$...";
    }
    std::string tag(raw.substr(0, end + 1));
    for (char c : tag) {
        if (!(is_crypt64(c) || c == '$' || c == '-')) {
            return "$...";
        }
    }
    return tag;
}

// itoa64 index of a crypt base-64 character.
int crypt64_index(char c) {
    static constexpr std::string_view alphabet =
        "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const auto pos = alphabet.find(c);
    return pos == std::string_view::npos ? -1 : static_cast<int>(pos);
}

} // namespace

bool looks_like_crypt(std::string_view raw) {
    if (raw.empty()) {
        return false;
    }
    if (raw.front() == '$' || raw.front() == '_') {
        return true;
    }
    // Traditional DES (13) and bigcrypt (13 + 11·k): crypt base-64 only.
    return raw.size() >= 13 && (raw.size() - 13) % 11 == 0 && all_crypt64(raw);
}

HashCheck check_crypt(std::string_view raw, const Secret* password) {
    if (raw.empty()) {
        return unsupported("empty crypt(3) value");
    }
    if (raw.front() == '!' || raw.front() == '*') {
        return unsupported("locked or disabled entry (crypt value starts with '!' or '*')");
    }
    if (raw.starts_with("$argon2")) {
        return check_argon2(raw, password); // {CRYPT}$argon2id$… as libxcrypt lacks argon2
    }
    if (raw.find('\0') != std::string_view::npos) {
        return unsupported("crypt(3) value contains a NUL byte");
    }

    // Without a password the value's shape is checked by hashing a fixed phrase: only
    // crypt_rn itself knows every method's exact layout.
    const char* phrase = "mailferry shape check";
    if (password != nullptr) {
        if (password->view().find('\0') != std::string_view::npos) {
            return matched(false); // crypt(3) cannot take it, so no stored value can match
        }
        phrase = password->empty() ? "" : password->data();
    }

    const std::string setting(raw);
    CryptScratch scratch;
    const char* out = scratch.run(phrase, setting.c_str());
    if (out == nullptr) {
        const int err = errno;
        if (err == ERANGE && password != nullptr) {
            return matched(false); // > 511 bytes: libxcrypt hashes no such phrase
        }
        if (err == EINVAL) {
            return unsupported("crypt(3) method " + method_tag(raw) +
                               " unknown to libxcrypt, or its setting is malformed");
        }
        if (err == ENOSYS || err == EOPNOTSUPP) {
            return unsupported("crypt(3) method " + method_tag(raw) +
                               " is disabled in this libxcrypt");
        }
        return unsupported("crypt_rn failed: " + errno_text(err));
    }

    const std::string_view result(out);
    // bigcrypt output grows with the phrase, so only its setting can be compared.
    const bool bigcrypt = raw.front() != '$' && raw.front() != '_' && raw.size() > 13;
    if (setting_part(result) != setting_part(raw) || (!bigcrypt && result.size() != raw.size())) {
        return unsupported("malformed " + method_tag(raw) +
                           " value: crypt(3) does not give back its layout");
    }
    if (password == nullptr) {
        return readable();
    }
    return matched(equal_ct(result, raw));
}

Result<std::string> crypt_make(const Secret& password, const char* prefix, unsigned long count) {
    const std::string what = std::string("hash password with crypt(3) ") + prefix;
    if (password.view().find('\0') != std::string_view::npos) {
        return make_error(what, "password contains a NUL byte, which crypt(3) cannot hash");
    }
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    // rbytes = nullptr: libxcrypt draws the salt from the OS random source.
    errno = 0;
    if (crypt_gensalt_rn(prefix, count, nullptr, 0, setting, sizeof setting) == nullptr) {
        const int err = errno;
        // EINVAL: the cost is out of the method's range, a config matter; anything else
        // (no randomness, no memory) is ours.
        return make_error(
            what, "crypt_gensalt_rn(cost " + std::to_string(count) + "): " + errno_text(err),
            err == EINVAL ? Scope::config : Scope::internal);
    }
    CryptScratch scratch;
    const char* out = scratch.run(password.empty() ? "" : password.data(), setting);
    if (out == nullptr) {
        const int err = errno;
        return make_error(what, err == ERANGE ? "password longer than 511 bytes"
                                              : "crypt_rn: " + errno_text(err));
    }
    return std::string(out);
}

std::optional<unsigned long> sha_crypt_rounds(std::string_view raw) {
    if (!(raw.starts_with("$6$") || raw.starts_with("$5$"))) {
        return std::nullopt;
    }
    raw.remove_prefix(3);
    if (!raw.starts_with("rounds=")) {
        return 5000; // the default both SHA-crypt specs fix
    }
    raw.remove_prefix(7);
    unsigned long rounds = 0;
    std::size_t i = 0;
    for (; i < raw.size() && raw[i] >= '0' && raw[i] <= '9' && i < 10; ++i) {
        rounds = rounds * 10 + static_cast<unsigned long>(raw[i] - '0');
    }
    if (i == 0 || i >= raw.size() || raw[i] != '$') {
        return std::nullopt;
    }
    return rounds;
}

std::optional<bool> yescrypt_weaker(std::string_view raw, unsigned cost) {
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    errno = 0;
    if (!raw.starts_with("$y$") ||
        crypt_gensalt_rn("$y$", cost, nullptr, 0, setting, sizeof setting) == nullptr) {
        return std::nullopt;
    }
    auto params = [](std::string_view s) {
        s.remove_prefix(3);
        return s.substr(0, s.find('$'));
    };
    const std::string_view have = params(raw);
    const std::string_view want = params(setting);
    if (have == want) {
        return false;
    }
    // yescrypt packs flags, log2(N) - 1 and r - 1 as crypt base-64 numbers; values up to
    // 47 take one character, which covers every cost libxcrypt makes (1..11). Longer
    // encodings we do not decode: the caller rehashes.
    struct Cost {
        int flags, n_log2, r;
    };
    auto decode = [](std::string_view p) -> std::optional<Cost> {
        if (p.size() < 3) {
            return std::nullopt;
        }
        const int f = crypt64_index(p[0]), n = crypt64_index(p[1]), r = crypt64_index(p[2]);
        if (f < 0 || f > 47 || n < 0 || n > 47 || r < 0 || r > 47) {
            return std::nullopt;
        }
        return Cost{f, n + 1, r + 1};
    };
    const auto h = decode(have);
    const auto w = decode(want);
    if (!h || !w || h->flags != w->flags || h->n_log2 > 40 || w->n_log2 > 40) {
        return std::nullopt;
    }
    // Memory is 128·N·r bytes; time follows it.
    return (static_cast<unsigned long long>(h->r) << h->n_log2) <
           (static_cast<unsigned long long>(w->r) << w->n_log2);
}

} // namespace mf::pw
