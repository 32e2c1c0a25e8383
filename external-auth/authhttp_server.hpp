// authhttp_server.hpp — the HTTP side of `mailferry auth-http`: Boost.Beast over Asio on
// a loopback TCP address or a UNIX socket, one request per connection (nginx opens one
// per login attempt and speaks HTTP/1.0).
//
// One thread reads requests and writes answers; the engine's work (a password hash, a
// login at the old server) runs on a pool of [auth_http] threads, so a slow old server
// holds up only its own logins. A request must arrive whole within read_timeout, its
// header block within 16 KiB, and carry no body; otherwise it is answered 400 and logged.
//
// Never: keep request bytes in freed memory (buffers and header fields wipe themselves,
// mf::WipingAllocator), or log a header value but Auth-User and Client-IP.
// Errors: open() fails with Scope::config for an address that cannot be bound (in use,
// a path that is no socket) and says which.
#pragma once

#include "authhttp_proto.hpp"

#include "mailferry/error.hpp"

#include <functional>
#include <memory>

namespace mf::authhttp {

// Answers one request (runs on a pool thread).
using RequestHandler = std::function<Answer(const FieldLookup&)>;

class Server {
  public:
    // Binds cfg.listen. A UNIX socket path left by a dead server is replaced; one another
    // server still answers on is an error. The socket file is made 0660.
    static Result<std::unique_ptr<Server>> open(const AuthHttpConfig& cfg, RequestHandler handler);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Serves until SIGTERM or SIGINT (or stop()); then waits for answers in progress.
    void run();
    // Thread-safe.
    void stop();

    struct Impl;

  private:
    explicit Server(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace mf::authhttp
