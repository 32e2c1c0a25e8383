// authhttp_service.hpp — one nginx auth_http request through the engine: verify the
// password as any login is verified (Engine::authenticate, face "auth-http"), then read
// the account's state and, for the old server, resolve its provider's host.
//
// Never: log the password, or answer "wrong password" for anything but the engine's FAIL.
// Errors: everything that is not the engine's OK or FAIL (store unreadable, a host that
// does not resolve) becomes a temporary answer with the reason in the log line.
#pragma once

#include "authhttp_proto.hpp"

#include "mailferry/engine.hpp"

namespace mf::authhttp {

class Service {
  public:
    // `engine` must outlive the service; its config's [auth_http] is used.
    explicit Service(Engine& engine);

    // Thread-safe: called from the server's worker threads. Writes one log line.
    Answer handle(const FieldLookup& field) noexcept;

  private:
    Outcome outcome(const Request& req, AuthResult& res);
    Engine& engine_;
    const AuthHttpConfig& cfg_;
};

// The host's first address as getaddrinfo orders it ("" and *why on failure). An IP
// literal comes back as it is.
std::string resolve_host(const std::string& host, std::string* why);

} // namespace mf::authhttp
