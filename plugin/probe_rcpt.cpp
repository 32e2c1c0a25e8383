// probe_rcpt.cpp — one bounded SMTP/LMTP RCPT TO conversation with a deadline.
//
// Must never send DATA, never wait past the target's timeout, never answer "unknown" for
// anything but a 5xx to RCPT.
#include "mailferry/probe_rcpt.hpp"

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace mf::rcpt {

namespace {

using Clock = std::chrono::steady_clock;

// Milliseconds left until `deadline`, never negative (for poll()).
int millis_until(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

constexpr std::size_t kMaxReplyLine = 1000;
constexpr int kMaxReplyLines = 100;

class Fd {
  public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
    Fd& operator=(Fd&& o) noexcept {
        std::swap(fd_, o.fd_);
        return *this;
    }
    [[nodiscard]] int get() const { return fd_; }

  private:
    int fd_;
};

struct Reply {
    int code = 0;
    std::string text;  // all lines, joined with " / ", sanitized
    std::string first; // the first line, sanitized
};

class Conversation {
  public:
    Conversation(const ProbeTarget& t, Clock::time_point deadline)
        : target_(t), deadline_(deadline), where_(t.host + ":" + std::to_string(t.port)) {}

    Result<void> connect() {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        std::string port = std::to_string(target_.port);
        int rc = ::getaddrinfo(target_.host.c_str(), port.c_str(), &hints, &res);
        if (rc != 0) {
            return fail("resolve " + target_.host, ::gai_strerror(rc));
        }
        std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, ::freeaddrinfo);
        std::string last = "no address";
        for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
            Fd s(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                          ai->ai_protocol));
            if (s.get() < 0) {
                last = std::strerror(errno);
                continue;
            }
            if (::connect(s.get(), ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
                last = std::strerror(errno);
                continue;
            }
            pollfd p{s.get(), POLLOUT, 0};
            int n = ::poll(&p, 1, millis_until(deadline_));
            if (n <= 0) {
                last = n == 0 ? "timed out" : std::strerror(errno);
                continue;
            }
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                last = std::strerror(err);
                continue;
            }
            fd_ = std::move(s);
            return {};
        }
        return fail("connect to " + where_, last);
    }

    Result<Reply> read_reply() {
        Reply r;
        for (int lines = 0; lines < kMaxReplyLines; ++lines) {
            auto line = read_line();
            if (!line) {
                return line.error();
            }
            const std::string& l = *line;
            if (l.size() < 3 || !std::isdigit(static_cast<unsigned char>(l[0])) ||
                !std::isdigit(static_cast<unsigned char>(l[1])) ||
                !std::isdigit(static_cast<unsigned char>(l[2])) ||
                (l.size() > 3 && l[3] != ' ' && l[3] != '-')) {
                return fail("read reply from " + where_,
                            "not an SMTP reply: \"" + sanitize_reply(l, 100) + "\"");
            }
            int code = std::stoi(l.substr(0, 3));
            if (lines > 0 && code != r.code) {
                return fail("read reply from " + where_, "reply code changed inside a reply");
            }
            r.code = code;
            if (lines == 0) {
                r.first = sanitize_reply(l, 200);
            }
            if (!r.text.empty()) {
                r.text += " / ";
            }
            r.text += sanitize_reply(l, 200);
            if (l.size() == 3 || l[3] == ' ') {
                return r;
            }
        }
        return fail("read reply from " + where_, "more than 100 reply lines");
    }

    Result<void> send(const std::string& command) {
        std::string data = command + "\r\n";
        std::string_view rest = data;
        while (!rest.empty()) {
            pollfd p{fd_.get(), POLLOUT, 0};
            int n = ::poll(&p, 1, millis_until(deadline_));
            if (n == 0) {
                return fail("send to " + where_, "timed out");
            }
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return fail("send to " + where_, std::strerror(errno));
            }
            ssize_t w = ::send(fd_.get(), rest.data(), rest.size(), MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EINTR || errno == EAGAIN) {
                    continue;
                }
                return fail("send to " + where_, std::strerror(errno));
            }
            rest.remove_prefix(static_cast<std::size_t>(w));
        }
        return {};
    }

    [[nodiscard]] const std::string& where() const { return where_; }

  private:
    Result<std::string> read_line() {
        for (;;) {
            auto lf = buf_.find('\n');
            if (lf != std::string::npos) {
                std::string line = buf_.substr(0, lf);
                buf_.erase(0, lf + 1);
                if (!line.empty() && line.back() == '\r') {
                    line.pop_back();
                }
                return line;
            }
            if (buf_.size() > kMaxReplyLine) {
                return fail("read reply from " + where_, "reply line longer than 1000 bytes");
            }
            pollfd p{fd_.get(), POLLIN, 0};
            int n = ::poll(&p, 1, millis_until(deadline_));
            if (n == 0) {
                return fail("read reply from " + where_, "timed out");
            }
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return fail("read reply from " + where_, std::strerror(errno));
            }
            char chunk[1024]; // NOLINT(modernize-avoid-c-arrays)
            ssize_t got = ::recv(fd_.get(), chunk, sizeof chunk, 0);
            if (got < 0) {
                if (errno == EINTR || errno == EAGAIN) {
                    continue;
                }
                return fail("read reply from " + where_, std::strerror(errno));
            }
            if (got == 0) {
                return fail("read reply from " + where_, "connection closed");
            }
            buf_.append(chunk, static_cast<std::size_t>(got));
        }
    }

    static Error fail(std::string what, std::string detail) {
        return make_error(std::move(what), std::move(detail), Scope::server, Retry::later);
    }

    const ProbeTarget& target_;
    Clock::time_point deadline_;
    std::string where_;
    Fd fd_;
    std::string buf_;
};

ProbeOutcome unavailable(std::string detail) {
    return ProbeOutcome{ProbeStatus::unavailable, std::move(detail), {}};
}

} // namespace

const char* to_string(ProbeStatus s) {
    switch (s) {
    case ProbeStatus::exists:
        return "exists";
    case ProbeStatus::unknown:
        return "unknown";
    case ProbeStatus::unavailable:
        return "unavailable";
    }
    return "?";
}

Result<ProbeTarget> parse_probe_target(std::string_view spec) {
    ProbeTarget t;
    std::string_view rest = spec;
    bool need_port = false;
    if (rest.rfind("smtp://", 0) == 0) {
        rest.remove_prefix(7);
    } else if (rest.rfind("lmtp://", 0) == 0) {
        rest.remove_prefix(7);
        t.lmtp = true;
        need_port = true; // LMTP has no well-known TCP port
    } else if (rest.find("://") != std::string_view::npos) {
        return make_error("probe target \"" + sanitize_reply(spec, 100) + "\"",
                          "scheme must be smtp:// or lmtp://", Scope::config);
    }
    std::string_view host = rest;
    std::string_view port;
    if (!rest.empty() && rest.front() == '[') {
        auto close = rest.find(']');
        if (close == std::string_view::npos) {
            return make_error("probe target \"" + sanitize_reply(spec, 100) + "\"",
                              "unterminated [IPv6 address]", Scope::config);
        }
        host = rest.substr(1, close - 1);
        std::string_view after = rest.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                return make_error("probe target \"" + sanitize_reply(spec, 100) + "\"",
                                  "expected :port after ]", Scope::config);
            }
            port = after.substr(1);
        }
    } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
    }
    if (host.empty() || host.find_first_of(" /\t\r\n") != std::string_view::npos) {
        return make_error("probe target \"" + sanitize_reply(spec, 100) + "\"",
                          "expected [smtp://|lmtp://]host[:port]", Scope::config);
    }
    t.host = std::string(host);
    if (!port.empty()) {
        if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos) {
            return make_error("probe target \"" + sanitize_reply(spec, 100) + "\"",
                              "port must be a number", Scope::config);
        }
        unsigned long p = std::stoul(std::string(port));
        if (p == 0 || p > 65535) {
            return make_error("probe target \"" + sanitize_reply(spec, 100) + "\"",
                              "port must be 1-65535", Scope::config);
        }
        t.port = static_cast<std::uint16_t>(p);
    } else if (need_port) {
        return make_error("probe target \"" + sanitize_reply(spec, 100) + "\"",
                          "lmtp:// needs a port", Scope::config);
    }
    return t;
}

ProbeOutcome probe_recipient(const ProbeTarget& target, const std::string& address) {
    if (address.empty() || address.find_first_of("<> \t\r\n") != std::string::npos) {
        return unavailable("address not fit for RCPT TO");
    }
    Conversation c(target, Clock::now() + target.timeout);
    if (auto r = c.connect(); !r) {
        return unavailable(r.error().message());
    }
    auto step = [&c](const std::string& cmd, int want_class, const char* what) -> Result<Reply> {
        if (!cmd.empty()) {
            if (auto s = c.send(cmd); !s) {
                return s.error();
            }
        }
        auto reply = c.read_reply();
        if (!reply) {
            return reply.error();
        }
        if (reply->code / 100 != want_class) {
            return make_error(std::string(what) + " at " + c.where(),
                              "server said \"" + reply->text + "\"", Scope::server, Retry::later);
        }
        return reply;
    };
    if (auto r = step("", 2, "greeting"); !r) {
        return unavailable(r.error().message());
    }
    std::string helo = target.helo.empty() ? std::string("localhost") : target.helo;
    if (auto r = step(std::string(target.lmtp ? "LHLO " : "EHLO ") + helo, 2, "EHLO"); !r) {
        return unavailable(r.error().message());
    }
    if (auto r = step("MAIL FROM:<>", 2, "MAIL FROM"); !r) {
        return unavailable(r.error().message());
    }
    if (auto s = c.send("RCPT TO:<" + address + ">"); !s) {
        return unavailable(s.error().message());
    }
    auto rcpt = c.read_reply();
    if (!rcpt) {
        return unavailable(rcpt.error().message());
    }
    (void)c.send("QUIT"); // courtesy; the answer does not matter
    std::string said = c.where() + " said \"" + rcpt->text + "\"";
    switch (rcpt->code / 100) {
    case 2:
        return ProbeOutcome{ProbeStatus::exists, said, rcpt->first};
    case 5:
        return ProbeOutcome{ProbeStatus::unknown, said, rcpt->first};
    default:
        return unavailable("RCPT TO at " + said);
    }
}

} // namespace mf::rcpt
