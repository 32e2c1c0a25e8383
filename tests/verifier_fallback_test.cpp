// verifier_fallback_test.cpp — servers that offer no SASL at all: IMAP must fall back to
// the LOGIN command and POP3 to USER/PASS, with hard passwords quoted right.
//
// Dovecot always advertises its SASL mechanisms, so a small relay in front of a real
// Dovecot removes them from what the client sees (AUTH= from IMAP CAPABILITY, the SASL
// line from POP3 CAPA). The relay changes only those lines; every verdict still comes
// from Dovecot. Clear text only, so the relay can read the lines.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "verifier_util.hpp"

#include <arpa/inet.h>
#include <atomic>
#include <functional>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace std::chrono_literals;
using mf::Protocol;
using mf::SaslMech;
using mf::TlsMode;
using mf::VerifyStatus;
using vt::verify;

namespace {

using LineFilter = std::function<std::string(const std::string&)>; // "" drops the line
using FilterFactory = std::function<LineFilter()>;                 // one per connection

// Relays 127.0.0.1:port() to 127.0.0.1:upstream, rewriting server lines with a filter made
// for each connection (so it may keep state).
class FilterRelay {
  public:
    FilterRelay(std::uint16_t upstream, FilterFactory make_filter)
        : upstream_(upstream), make_filter_(std::move(make_filter)) {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a = addr(0);
        REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0); // NOLINT
        REQUIRE(::listen(listen_fd_, 64) == 0);
        socklen_t len = sizeof a;
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len); // NOLINT
        port_ = ntohs(a.sin_port);
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    ~FilterRelay() {
        stop_ = true;
        acceptor_.join();
        for (auto& t : relays_) {
            t.join();
        }
        ::close(listen_fd_);
    }
    FilterRelay(const FilterRelay&) = delete;
    FilterRelay& operator=(const FilterRelay&) = delete;

    [[nodiscard]] std::uint16_t port() const { return port_; }

  private:
    static sockaddr_in addr(std::uint16_t port) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return a;
    }

    void accept_loop() {
        while (!stop_) {
            pollfd p{listen_fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) {
                continue;
            }
            int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (client >= 0) {
                relays_.emplace_back([this, client] { relay(client); });
            }
        }
    }

    void relay(int client) {
        int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a = addr(upstream_);
        if (::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) { // NOLINT
            ::close(server);
            ::close(client);
            return;
        }
        // Small request/response lines: without TCP_NODELAY, Nagle and delayed ACKs add
        // ~40 ms per exchange.
        int one = 1;
        ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        LineFilter filter = make_filter_();
        std::string from_server;
        char buf[16384];
        bool open = true;
        while (open && !stop_) {
            pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
            if (::poll(p, 2, 50) <= 0) {
                continue;
            }
            if (p[0].revents != 0) {
                ssize_t n = ::recv(client, buf, sizeof buf, 0);
                open = n > 0 && ::send(server, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) == n;
            }
            if (open && p[1].revents != 0) {
                ssize_t n = ::recv(server, buf, sizeof buf, 0);
                open = n > 0;
                if (open) {
                    from_server.append(buf, static_cast<std::size_t>(n));
                }
                std::string out;
                for (auto eol = from_server.find("\r\n"); eol != std::string::npos;
                     eol = from_server.find("\r\n")) {
                    std::string line = filter(from_server.substr(0, eol));
                    from_server.erase(0, eol + 2);
                    if (!line.empty()) {
                        out += line + "\r\n";
                    }
                }
                if (!out.empty()) {
                    ::send(client, out.data(), out.size(), MSG_NOSIGNAL);
                }
            }
        }
        ::close(server);
        ::close(client);
    }

    std::uint16_t upstream_;
    FilterFactory make_filter_;
    int listen_fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread acceptor_;
    std::vector<std::thread> relays_; // touched by the acceptor thread only until join
};

// IMAP: drop every AUTH=… capability (greeting and CAPABILITY replies).
std::string no_imap_sasl(const std::string& line) {
    if (line.find("CAPABILITY") == std::string::npos) {
        return line;
    }
    std::string out;
    std::size_t pos = 0;
    while (pos <= line.size()) {
        auto sp = line.find(' ', pos);
        std::string word = line.substr(pos, sp == std::string::npos ? sp : sp - pos);
        if (word.rfind("AUTH=", 0) != 0) {
            out += (out.empty() ? "" : " ") + word;
        } else if (!word.empty() && word.back() == ']') {
            out += "]";
        }
        if (sp == std::string::npos) {
            break;
        }
        pos = sp + 1;
    }
    return out;
}

// POP3: drop the CAPA "SASL …" line.
std::string no_pop3_sasl(const std::string& line) {
    return line.rfind("SASL", 0) == 0 ? std::string() : line;
}

// POP3 as an RFC 1939-only server: the reply to CAPA (the first after the greeting)
// becomes "-ERR", and its capability lines disappear.
LineFilter no_pop3_capa() {
    return [n = 0, dropping = false](const std::string& line) mutable -> std::string {
        if (++n == 2 && line.rfind("+OK", 0) == 0) {
            dropping = true;
            return "-ERR Unknown command: CAPA";
        }
        if (dropping) {
            dropping = line != ".";
            return {};
        }
        return line;
    };
}

mft::DovecotOptions plain_server(const std::string& label) {
    auto o = vt::old_server(label);
    o.tls = false;
    o.submission = false;
    return o;
}

} // namespace

TEST_CASE("imap without SASL: the LOGIN command, quoted right; over 1 KiB undecided") {
    mft::DovecotServer old(plain_server("vfallback-imap"));
    FilterRelay relay(old.imap_port(), [] { return LineFilter(no_imap_sasl); });
    auto p = vt::provider(Protocol::imap, relay.port(), TlsMode::none, "");
    auto r = verify(p, "anna@old.example", vt::kAnnaPw);
    CHECK_MESSAGE(r.status == VerifyStatus::ok, r.detail);
    CHECK(verify(p, "anna@old.example", "wrong").status == VerifyStatus::rejected);
    CHECK(verify(p, "nobody@old.example", "wrong").status == VerifyStatus::rejected);
    auto hard = vt::hard_passwords();
    for (std::size_t i = 0; i < hard.size(); ++i) {
        CAPTURE(i);
        const std::string user = "h" + std::to_string(i) + "@old.example";
        r = verify(p, user, hard[i]);
        // The last one must be quoted and escaped: the LOGIN line then exceeds 1 KiB.
        if (i + 1 < hard.size()) {
            CHECK_MESSAGE(r.status == VerifyStatus::ok, r.detail);
            std::string off = hard[i];
            off.back() = off.back() == 'x' ? 'y' : 'x';
            CHECK(verify(p, user, off).status == VerifyStatus::rejected);
        } else {
            // Dovecot drops a LOGIN line over 1 KiB: undecided, never "rejected".
            CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
        }
    }
    // A configured mechanism the server does not offer is not replaced by LOGIN.
    p.mechanism = SaslMech::plain;
    r = verify(p, "anna@old.example", vt::kAnnaPw);
    CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
}

TEST_CASE("pop3 without SASL: USER/PASS with hard passwords") {
    mft::DovecotServer old(plain_server("vfallback-pop3"));
    FilterRelay relay(old.pop3_port(), [] { return LineFilter(no_pop3_sasl); });
    auto p = vt::provider(Protocol::pop3, relay.port(), TlsMode::none, "");
    auto r = verify(p, "anna@old.example", vt::kAnnaPw);
    CHECK_MESSAGE(r.status == VerifyStatus::ok, r.detail);
    r = verify(p, "anna@old.example", "wrong");
    CHECK_MESSAGE(r.status == VerifyStatus::rejected, r.detail);
    CHECK(verify(p, "nobody@old.example", "wrong").status == VerifyStatus::rejected);
    auto hard = vt::hard_passwords();
    for (std::size_t i = 0; i < hard.size(); ++i) {
        CAPTURE(i);
        const std::string user = "h" + std::to_string(i) + "@old.example";
        r = verify(p, user, hard[i]);
        CHECK_MESSAGE(r.status == VerifyStatus::ok, r.detail);
    }
    p.mechanism = SaslMech::login;
    r = verify(p, "anna@old.example", vt::kAnnaPw);
    CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
}

TEST_CASE("pop3 without SASL but with an APOP greeting: undecided, APOP is never tried") {
    auto o = plain_server("vfallback-apop");
    o.extra_config = "auth_mechanisms = plain login apop\n";
    mft::DovecotServer old(o);
    FilterRelay relay(old.pop3_port(), [] { return LineFilter(no_pop3_sasl); });
    auto p = vt::provider(Protocol::pop3, relay.port(), TlsMode::none, "");
    for (const char* pw : {vt::kAnnaPw, "wrong"}) {
        auto r = verify(p, "anna@old.example", pw);
        CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
        CHECK(r.detail.find("APOP") != std::string::npos);
    }
}

TEST_CASE("pop3 without CAPA: the -ERR to CAPA is not a verdict; USER/PASS decides") {
    mft::DovecotServer old(plain_server("vfallback-nocapa"));
    FilterRelay relay(old.pop3_port(), no_pop3_capa);
    auto p = vt::provider(Protocol::pop3, relay.port(), TlsMode::none, "");
    auto r = verify(p, "anna@old.example", vt::kAnnaPw);
    CHECK_MESSAGE(r.status == VerifyStatus::ok, r.detail);
    r = verify(p, "anna@old.example", "wrong");
    CHECK_MESSAGE(r.status == VerifyStatus::rejected, r.detail);
    CHECK(r.detail.find("CAPA") == std::string::npos); // judged on the reply to PASS
    for (SaslMech mech : {SaslMech::plain, SaslMech::login}) {
        p.mechanism = mech; // configured SASL, but the server offers none: undecided
        r = verify(p, "anna@old.example", vt::kAnnaPw);
        CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
        r = verify(p, "anna@old.example", "wrong");
        CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
    }
}
