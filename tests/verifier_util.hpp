// verifier_util.hpp — what the verifier tests share: the hard passwords, an old Dovecot
// holding users with them, provider settings for a port and TLS mode, and servers that
// misbehave for real (a broken password database, plaintext refused before TLS, only
// challenge-response mechanisms offered).
//
// Header-only on purpose: each verifier_*_test.cpp is its own program. No mocks: every
// server here is a real Dovecot on loopback.
#pragma once

#include "mailferry/verifier.hpp"
#include "support/dovecot_server.hpp"
#include "support/test_env.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace vt {

using namespace std::chrono_literals;

// Passwords that break naive quoting: IMAP quoted strings and literals, URL escapes,
// printf formats, UTF-8, 8-bit bytes, and the longest we promise (Dovecot drops an IMAP
// LOGIN line over 1 KiB, so these must travel in AUTHENTICATE).
inline std::vector<std::string> hard_passwords() {
    std::string long_mixed;
    while (long_mixed.size() < 1024) {
        long_mixed += "a \"b\\ %c\xC3\xA9{";
    }
    long_mixed.resize(1024);
    return {"pass word",
            "\"quoted\"",
            "back\\slash\\",
            "100%",
            "%s%n%%25",
            "\xC3\xBCn\xC3\xAF"
            "c\xC3\xB8"
            "de \xE2\x9C\x93",
            " lead and trail ",
            "{5}",
            "*)( NIL",
            "'single';:=",
            "\xFF\xFE raw 8-bit",
            std::string(1024, 'x'),
            long_mixed};
}

inline const char* kAnnaPw = "anna's pw";

// anna@old.example with kAnnaPw, and h<i>@old.example with hard_passwords()[i].
inline mft::DovecotOptions old_server(const std::string& label) {
    mft::DovecotOptions o;
    o.label = label;
    o.users = {{"anna@old.example", kAnnaPw}};
    auto hard = hard_passwords();
    for (std::size_t i = 0; i < hard.size(); ++i) {
        o.users.push_back({"h" + std::to_string(i) + "@old.example", hard[i]});
    }
    return o;
}

inline mf::ProviderConfig provider(mf::Protocol proto, std::uint16_t port, mf::TlsMode tls,
                                   const std::string& ca,
                                   mf::SaslMech mech = mf::SaslMech::automatic) {
    mf::ProviderConfig p;
    p.name = "old";
    p.domains = {"old.example"};
    p.protocol = proto;
    p.host = "127.0.0.1";
    p.port = port;
    p.tls = tls;
    p.ca_file = tls == mf::TlsMode::none ? "" : ca;
    p.timeout = 10s;
    p.mechanism = mech;
    return p;
}

inline mf::VerifyOutcome verify(const mf::ProviderConfig& p, const std::string& user,
                                const std::string& pw) {
    return mf::make_verifier(p)->verify(user, mf::Secret(pw));
}

// The password database fails on every lookup (checkpassword exiting 111): Dovecot
// answers IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP], SMTP 454. `dir` holds the script.
inline mft::DovecotOptions broken_passdb_server(const std::string& label, const mft::TempDir& dir) {
    mft::write_file(dir.file("fail.sh"), "#!/bin/sh\nexit 111\n", 0755);
    mft::DovecotOptions o;
    o.label = label;
    o.auth_config = "passdb {\n  driver = checkpassword\n  args = " + dir.file("fail.sh") +
                    "\n}\nuserdb {\n  driver = static\n  args = uid=mfvmail gid=mfvmail "
                    "home=/tmp\n}\n";
    return o;
}

// cara@old.example ("crypt pw") stored only as a SHA512-CRYPT hash, so no challenge-
// response mechanism can work for her; `mechanisms` is Dovecot's auth_mechanisms.
inline mft::DovecotOptions hashed_user_server(const std::string& label, const mft::TempDir& dir,
                                              const std::string& mechanisms) {
    auto hash = mft::run({"openssl", "passwd", "-6", "-stdin"}, "crypt pw\n", 30s);
    if (hash.exit_code != 0) {
        throw std::runtime_error("openssl passwd failed: " + hash.err);
    }
    hash.out.erase(hash.out.find_last_not_of('\n') + 1);
    mft::write_file(dir.file("users"), "cara@old.example:{SHA512-CRYPT}" + hash.out + "::::::\n",
                    0644);
    mft::DovecotOptions o;
    o.label = label;
    o.auth_config =
        "passdb {\n  driver = passwd-file\n  args = " + dir.file("users") +
        "\n}\nuserdb {\n  driver = static\n  args = uid=mfvmail gid=mfvmail home=" + dir.path() +
        "/home/%u\n}\n";
    o.extra_config = "auth_mechanisms = " + mechanisms + "\n";
    return o;
}

// Listening on 127.0.0.2 with plaintext logins refused before TLS: our 127.0.0.1 is a
// remote client there (on a shared address Dovecot would count it as secured).
inline mft::DovecotOptions strict_server(const std::string& label) {
    mft::DovecotOptions o = old_server(label);
    o.address = "127.0.0.2";
    o.extra_config = "disable_plaintext_auth = yes\n";
    return o;
}

} // namespace vt
