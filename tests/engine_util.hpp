// engine_util.hpp — what the engine tests share: a config with a real old server as its
// provider, opening an Engine from a config file (the test stops with the config error
// when it does not open) and one login through it.
// Must never: hide an Engine::open error or start a server.
#pragma once

#include <doctest/doctest.h>

#include "mailferry/engine.hpp"
#include "support/dovecot_server.hpp"
#include "support/test_env.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace mft {

inline std::unique_ptr<mf::Engine> open_engine(const std::string& config) {
    auto e = mf::Engine::open(config);
    REQUIRE_MESSAGE(e.ok(), (e.ok() ? "" : e.error().message()));
    return std::move(*e);
}

// A config whose one provider is `old` (implicit TLS, its CA), with a cheap argon2id and
// the builtin provisioner; `more` is appended (further sections).
inline std::string old_server_config(const mft::TempDir& dir, const mft::DovecotServer& old,
                                     const std::string& more) {
    std::string text =
        "[store]\npath = \"" + dir.file("mf.db") +
        "\"\nbusy_timeout = \"300ms\"\n\n"
        "[identity]\ndefault_domain = \"example.com\"\n\n"
        "[[provider]]\nname = \"old\"\ndomains = [\"example.com\"]\nprotocol = \"imap\"\n"
        "host = \"localhost\"\nport = " +
        std::to_string(old.imaps_port()) + "\ntls = \"implicit\"\nca_file = \"" + old.ca_file() +
        "\"\ntimeout = \"5s\"\nmax_concurrent = 32\n\n"
        "[hash]\nscheme = \"argon2id\"\nargon2_ops = 1\nargon2_memory_kib = 8192\n\n"
        "[provisioner]\ntype = \"builtin\"\n\n" +
        more;
    auto path = dir.file("mailferry.toml");
    mft::write_file(path, text, 0644);
    return path;
}

// An IMAP login from `ip` (a documentation address unless the test names one).
inline mf::AuthResult login(mf::Engine& e, std::string_view user, std::string_view pw,
                            std::string_view ip = "192.0.2.10") {
    return e.authenticate(mf::AuthRequest{user, pw, "imap", ip, "test"});
}

} // namespace mft
