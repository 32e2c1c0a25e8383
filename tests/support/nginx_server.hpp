// nginx_server.hpp — a real, throw-away nginx (Debian's nginx-light with libnginx-mod-mail)
// for tests: its own prefix, config, pid file and error log in a temp dir, started in the
// foreground as our child and stopped by its PID. Never the system nginx, never port 80.
#pragma once

#include "support/test_env.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

namespace mft {

class NginxServer {
  public:
    // `config` is a whole nginx.conf; "daemon off;" is put before it. Starts
    // `nginx -p DIR -e DIR/error.log -c DIR/nginx.conf` and waits until every port of
    // `ports` accepts on 127.0.0.1. Throws std::runtime_error with the error log's tail
    // when it does not come up.
    NginxServer(const std::string& config, const std::vector<std::uint16_t>& ports);
    ~NginxServer();
    NginxServer(const NginxServer&) = delete;
    NginxServer& operator=(const NginxServer&) = delete;

    [[nodiscard]] const std::string& dir() const { return dir_->path(); }
    [[nodiscard]] std::string log_tail(std::size_t lines = 40) const;
    void stop();

  private:
    std::unique_ptr<TempDir> dir_;
    pid_t pid_ = -1;
};

} // namespace mft
