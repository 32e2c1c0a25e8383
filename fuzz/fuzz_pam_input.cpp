// fuzz_pam_input.cpp — feeds bytes to pam_mailferry.so's handling of the PAM
// conversation's strings (plugin/pam_input.h): the user name and password checks and the
// user name shortened for syslog, as pam_sm_authenticate uses them.
//
// Input: byte 0 sets the output buffer's size for mf_pam_safe_name (1–128 bytes; the
// module passes 80); the rest is split at the first NUL into the user name and the
// password (each then a C string, as PAM hands them over), or is the user name alone with
// no password (NULL, a conversation that gave none).
// A bug: any sanitizer report or crash (a read past a NUL, a write past the buffer); a
// shortened name that is not NUL-terminated inside the buffer, holds a byte outside
// printable ASCII, or is longer than 64 + "..."; an empty or missing user name accepted,
// or a given password (even "") refused. Must never: load PAM or the engine.
#include "pam_input.h"

#include <security/pam_appl.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) {
        return 0;
    }
    const std::size_t outlen = 1 + (data[0] % 128);
    std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    auto nul = rest.find('\0');
    std::string user(rest.substr(0, nul));
    std::optional<std::string> password;
    if (nul != std::string_view::npos) {
        password = std::string(rest.substr(nul + 1)); // a C string: ends at its first NUL
    }

    const bool user_ok = mf_pam_check_user(user.c_str()) == PAM_SUCCESS;
    if (user_ok == user.empty() || mf_pam_check_user(nullptr) != PAM_AUTH_ERR) {
        std::abort();
    }
    const char* pw = password ? password->c_str() : nullptr;
    if ((mf_pam_check_password(pw) == PAM_SUCCESS) != (pw != nullptr)) {
        std::abort();
    }

    // Exactly outlen bytes on the heap, so ASan sees a write one past the end.
    auto out = std::make_unique<char[]>(outlen);
    mf_pam_safe_name(user.c_str(), out.get(), outlen);
    const void* end = std::memchr(out.get(), '\0', outlen);
    if (end == nullptr) {
        std::abort();
    }
    std::size_t len = static_cast<const char*>(end) - out.get();
    if (len > 64 + 3) {
        std::abort();
    }
    for (std::size_t i = 0; i < len; ++i) {
        auto c = static_cast<unsigned char>(out[i]);
        if (c < 0x20 || c >= 0x7f) {
            std::abort();
        }
    }
    return 0;
}
