// authhttp_util.hpp — what the auth-http tests share: `mailferry auth-http` as a child
// process, raw HTTP exchanges over TCP or a UNIX socket, line clients for IMAP and POP3.
//
// Header-only: each authhttp_*_test.cpp is its own program. Must never: kill a process it
// did not start (only the PID spawn_isolated gave it).
#pragma once

#include "support/server_process.hpp"
#include "support/test_env.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <chrono>
#include <cstdlib>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

namespace aht {

using namespace std::chrono_literals;

// `mailferry auth-http --config CONFIG`, stderr in LOG; stopped (SIGTERM) when it dies.
class AuthHttp {
  public:
    AuthHttp(const std::string& config, const std::string& log) : log_(log) {
        mft::SpawnSpec spec;
        spec.argv = {mft::program_path("external-auth", "mailferry"), "auth-http", "--config",
                     config};
        spec.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
        for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}) {
            if (const char* v = std::getenv(name); v != nullptr) { // NOLINT(concurrency-mt-unsafe)
                spec.env.push_back(std::string(name) + "=" + v);
            }
        }
        spec.log = log;
        pid_ = mft::spawn_isolated(spec);
    }
    ~AuthHttp() { stop(); }
    AuthHttp(const AuthHttp&) = delete;
    AuthHttp& operator=(const AuthHttp&) = delete;

    void stop() {
        mft::stop_group(pid_, 10s);
        pid_ = -1;
    }
    [[nodiscard]] std::string log() const { return mft::file_tail(log_, 60); }

  private:
    std::string log_;
    pid_t pid_ = -1;
};

inline int connect_tcp(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        throw std::runtime_error("connect 127.0.0.1:" + std::to_string(port) + " failed");
    }
    return fd;
}

inline int connect_unix(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    path.copy(a.sun_path, sizeof a.sun_path - 1);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        throw std::runtime_error("connect " + path + " failed");
    }
    return fd;
}

// Sends `request` on `fd` and reads until the server closes (or 30 s pass); closes fd.
inline std::string exchange(int fd, const std::string& request) {
    std::size_t sent = 0;
    while (sent < request.size()) {
        ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            break; // the server may hang up on an oversized request before reading it all
        }
        sent += static_cast<std::size_t>(n);
    }
    std::string out;
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 30000) <= 0) {
            break;
        }
        char buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            break;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

// A GET as nginx sends it, with `fields` ("Name: value" lines without CRLF).
inline std::string nginx_request(const std::vector<std::string>& fields) {
    std::string r = "GET /auth HTTP/1.0\r\nHost: localhost\r\n";
    for (const auto& f : fields) {
        r += f + "\r\n";
    }
    return r + "\r\n";
}

// A line client for IMAP or POP3 (the proxy's clients in the end-to-end test).
class LineClient {
  public:
    explicit LineClient(std::uint16_t port) : fd_(connect_tcp(port)) { greeting_ = line(); }
    ~LineClient() { ::close(fd_); }
    LineClient(const LineClient&) = delete;
    LineClient& operator=(const LineClient&) = delete;

    [[nodiscard]] const std::string& greeting() const { return greeting_; }

    void send_line(const std::string& text) {
        std::string data = text + "\r\n";
        REQUIRE(::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(data.size()));
    }

    // The next line without CRLF; "" on EOF or after 30 s.
    std::string line() {
        for (;;) {
            auto lf = buf_.find('\n');
            if (lf != std::string::npos) {
                std::string l = buf_.substr(0, lf);
                buf_.erase(0, lf + 1);
                if (!l.empty() && l.back() == '\r') {
                    l.pop_back();
                }
                return l;
            }
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 30000) <= 0) {
                return {};
            }
            char b[4096];
            ssize_t n = ::recv(fd_, b, sizeof b, 0);
            if (n <= 0) {
                return {};
            }
            buf_.append(b, static_cast<std::size_t>(n));
        }
    }

    // IMAP: `tag cmd`, the tagged reply line.
    std::string imap(const std::string& tag, const std::string& cmd) {
        send_line(tag + " " + cmd);
        for (;;) {
            std::string l = line();
            if (l.empty() || l.rfind(tag + " ", 0) == 0) {
                return l;
            }
        }
    }

    static std::string quote(const std::string& s) {
        std::string q = "\"";
        for (char c : s) {
            if (c == '"' || c == '\\') {
                q += '\\';
            }
            q += c;
        }
        return q + "\"";
    }

  private:
    int fd_ = -1;
    std::string buf_;
    std::string greeting_;
};

} // namespace aht
