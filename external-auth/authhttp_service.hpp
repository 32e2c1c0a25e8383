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

#include <optional>

namespace mf::authhttp {

// The header nginx sends the shared secret in (auth_http_header X-Mailferry-Key "…").
inline constexpr const char* kKeyHeader = "X-Mailferry-Key";

// [auth_http] key_file's secret (trailing newlines dropped), or nullopt without one.
// Errors (Scope::config): unreadable, empty, or a byte that cannot stand in an nginx
// config string and an HTTP header (only printable ASCII without blanks or quotes).
Result<std::optional<Secret>> read_key(const AuthHttpConfig& cfg);

class Service {
  public:
    // `engine` must outlive the service; its config's [auth_http] is used. With a key,
    // only requests carrying it in X-Mailferry-Key reach the engine.
    Service(Engine& engine, std::optional<Secret> key);

    // Thread-safe: called from the server's worker threads. Writes one log line.
    Answer handle(const FieldLookup& field) noexcept;

  private:
    Outcome outcome(const Request& req, AuthResult& res);
    [[nodiscard]] bool key_matches(const FieldLookup& field) const;
    Engine& engine_;
    const AuthHttpConfig& cfg_;
    std::optional<Secret> key_;
};

// The host's first address as getaddrinfo orders it ("" and *why on failure). An IP
// literal comes back as it is.
std::string resolve_host(const std::string& host, std::string* why);

} // namespace mf::authhttp
