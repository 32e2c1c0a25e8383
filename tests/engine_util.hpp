// engine_util.hpp — what the engine tests share: opening an Engine from a config file
// (the test stops with the config error when it does not open) and one login through it.
// Must never: hide an Engine::open error or start a server.
#pragma once

#include <doctest/doctest.h>

#include "mailferry/engine.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace mft {

inline std::unique_ptr<mf::Engine> open_engine(const std::string& config) {
    auto e = mf::Engine::open(config);
    REQUIRE_MESSAGE(e.ok(), (e.ok() ? "" : e.error().message()));
    return std::move(*e);
}

// An IMAP login from `ip` (a documentation address unless the test names one).
inline mf::AuthResult login(mf::Engine& e, std::string_view user, std::string_view pw,
                            std::string_view ip = "192.0.2.10") {
    return e.authenticate(mf::AuthRequest{user, pw, "imap", ip, "test"});
}

} // namespace mft
