// verifier_dovecot_fixture_test.cpp — the test Dovecot fixture itself works: it starts,
// accepts the users it was given (with hard passwords) on IMAP, POP3 and submission, serves
// TLS with a certificate our CA signed, stores messages, stops and starts again.
// Speaks the protocols over a raw socket on purpose: this checks the fixture, not our code.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "support/dovecot_server.hpp"
#include "support/test_env.hpp"

#include <arpa/inet.h>
#include <chrono>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;

namespace {

// A line-oriented loopback client with a deadline per read.
class Raw {
  public:
    explicit Raw(std::uint16_t port, int timeout_ms = 5000) : timeout_ms_(timeout_ms) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0; // NOLINT
    }
    ~Raw() { ::close(fd_); }
    Raw(const Raw&) = delete;
    Raw& operator=(const Raw&) = delete;

    [[nodiscard]] bool connected() const { return connected_; }

    void send(const std::string& s) {
        std::size_t done = 0;
        while (done < s.size()) {
            ssize_t w = ::send(fd_, s.data() + done, s.size() - done, MSG_NOSIGNAL);
            REQUIRE(w > 0);
            done += static_cast<std::size_t>(w);
        }
    }

    // Next CRLF-terminated line, without the CRLF; "" on EOF or after timeout_ms.
    std::string line() {
        for (;;) {
            auto eol = buf_.find("\r\n");
            if (eol != std::string::npos) {
                std::string l = buf_.substr(0, eol);
                buf_.erase(0, eol + 2);
                return l;
            }
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, timeout_ms_) <= 0) {
                return {};
            }
            char tmp[4096];
            ssize_t r = ::recv(fd_, tmp, sizeof tmp, 0);
            if (r <= 0) {
                return {};
            }
            buf_.append(tmp, static_cast<std::size_t>(r));
        }
    }

    // Reads lines until one starts with `prefix`; returns it ("" if none came).
    std::string until(const std::string& prefix) {
        for (std::string l = line(); !l.empty(); l = line()) {
            if (l.rfind(prefix, 0) == 0) {
                return l;
            }
        }
        return {};
    }

  private:
    int fd_ = -1;
    int timeout_ms_;
    bool connected_ = false;
    std::string buf_;
};

std::string b64(const std::string& in) {
    static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                     (static_cast<unsigned char>(in[i + 1]) << 8) |
                     static_cast<unsigned char>(in[i + 2]);
        out += {tbl[(v >> 18) & 63], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63], tbl[v & 63]};
    }
    if (i + 1 == in.size()) {
        unsigned v = static_cast<unsigned char>(in[i]) << 16;
        out += {tbl[(v >> 18) & 63], tbl[(v >> 12) & 63], '=', '='};
    } else if (i + 2 == in.size()) {
        unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                     (static_cast<unsigned char>(in[i + 1]) << 8);
        out += {tbl[(v >> 18) & 63], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63], '='};
    }
    return out;
}

std::string imap_login(std::uint16_t port, const std::string& user, const std::string& pass) {
    Raw c(port);
    REQUIRE(c.connected());
    REQUIRE(c.line().rfind("* OK", 0) == 0);
    // The response goes on its own line: Dovecot drops a command line over ~1 KiB.
    c.send("a AUTHENTICATE PLAIN\r\n");
    REQUIRE(c.line().rfind("+", 0) == 0);
    c.send(b64(std::string("\0", 1) + user + std::string("\0", 1) + pass) + "\r\n");
    return c.until("a ");
}

mft::DovecotOptions options(const std::string& label, std::vector<mft::TestUser> users,
                            bool tls = true) {
    mft::DovecotOptions o;
    o.label = label;
    o.users = std::move(users);
    o.tls = tls;
    return o;
}

// Space, quotes, backslash, %, UTF-8, ':' (the passwd-file separator), braces.
const std::string kHard = "p \"w\\d%\xC3\xA9:{}*";

} // namespace

TEST_CASE("dovecot fixture: logins on imap, pop3, submission; stop; start") {
    mft::DovecotServer dc(
        options("fixture", {{"anna@old.example", "anna pw"}, {"hard@old.example", kHard}}));
    REQUIRE(dc.running());

    CHECK(imap_login(dc.imap_port(), "anna@old.example", "anna pw").rfind("a OK", 0) == 0);
    CHECK(imap_login(dc.imap_port(), "anna@old.example", "wrong").rfind("a NO", 0) == 0);
    CHECK(imap_login(dc.imap_port(), "nobody@old.example", "anna pw").rfind("a NO", 0) == 0);
    CHECK_MESSAGE(imap_login(dc.imap_port(), "hard@old.example", kHard).rfind("a OK", 0) == 0,
                  dc.log_tail(3));
    // Dovecot refuses TAB, CR, LF and \001 in any password at login (its internal protocol
    // separators), even when the passwd-file stores them fine.
    dc.add_user({"tab@old.example", "a\tb"});
    CHECK(imap_login(dc.imap_port(), "tab@old.example", "a\tb").rfind("a NO", 0) == 0);
    std::string long_pw(1024, 'x');
    dc.add_user({"long@old.example", long_pw});
    CHECK_MESSAGE(imap_login(dc.imap_port(), "long@old.example", long_pw).rfind("a OK", 0) == 0,
                  dc.log_tail(4));

    {
        Raw p(dc.pop3_port());
        REQUIRE(p.connected());
        CHECK(p.line().rfind("+OK", 0) == 0);
        p.send("USER anna@old.example\r\n");
        CHECK(p.line().rfind("+OK", 0) == 0);
        p.send("PASS anna pw\r\n");
        CHECK(p.line().rfind("+OK", 0) == 0);
    }
    {
        Raw s(dc.submission_port());
        REQUIRE(s.connected());
        CHECK(s.line().rfind("220", 0) == 0);
        s.send("EHLO client.example\r\n");
        CHECK(s.until("250 ").size() > 0);
        s.send("AUTH PLAIN " + b64(std::string("\0anna@old.example\0anna pw", 25)) + "\r\n");
        CHECK(s.line().rfind("235", 0) == 0);
    }

    const std::uint16_t port = dc.imap_port();
    Raw idle(dc.pop3_port()); // a client still connected must not hold up the stop
    REQUIRE(idle.connected());
    REQUIRE(idle.line().rfind("+OK", 0) == 0);
    auto t0 = std::chrono::steady_clock::now();
    dc.stop();
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);
    CHECK_FALSE(dc.running());
    CHECK_FALSE(Raw(port).connected());
    CHECK(idle.line().empty()); // its connection is gone too
    dc.stop();                  // twice is harmless

    dc.start();
    CHECK(dc.running());
    CHECK(dc.imap_port() == port);
    CHECK(imap_login(port, "anna@old.example", "anna pw").rfind("a OK", 0) == 0);
}

TEST_CASE("dovecot fixture: TLS certificate verifies with ca_file, not with other_ca_file") {
    mft::DovecotServer dc(options("fixture-tls", {{"anna@old.example", "anna pw"}}));
    auto s_client = [&](const std::string& ca) {
        return mft::run({"openssl", "s_client", "-connect",
                         "127.0.0.1:" + std::to_string(dc.imaps_port()), "-CAfile", ca,
                         "-verify_hostname", "localhost", "-verify_return_error", "-ign_eof"},
                        "a LOGOUT\r\n", 30s);
    };
    auto good = s_client(dc.ca_file());
    CHECK_MESSAGE(good.exit_code == 0, good.err);
    CHECK(good.out.find("* OK") != std::string::npos);
    auto bad = s_client(mft::other_ca_file());
    CHECK(bad.exit_code != 0);
    CHECK(mft::other_ca_file() != dc.ca_file());
}

TEST_CASE("dovecot fixture: save_message stores into new and existing folders") {
    mft::DovecotServer dc(options("fixture-save", {{"anna@old.example", "anna pw"}}, false));
    const std::string msg = "From: a@example\r\nSubject: hi\r\n\r\nbody\r\n";
    dc.save_message("anna@old.example", "INBOX", msg);
    dc.save_message("anna@old.example", "Archive.2020", msg);
    dc.save_message("anna@old.example", "Archive.2020", msg);
    std::string out;
    REQUIRE(dc.doveadm({"-f", "flow", "mailbox", "status", "-u", "anna@old.example", "messages",
                        "Archive.2020"},
                       &out) == 0);
    CHECK(out.find("messages=2") != std::string::npos);
    CHECK_THROWS(dc.save_message("nobody@old.example", "INBOX", msg));
}

TEST_CASE("test_env: run handles large output, stdin, exit codes and timeouts") {
    std::string big(3 * 1024 * 1024, 'z');
    auto r = mft::run({"cat"}, big, 30s);
    CHECK(r.exit_code == 0);
    CHECK(r.out == big);
    r = mft::run({"sh", "-c", "echo out; echo err >&2; exit 3"});
    CHECK(r.exit_code == 3);
    CHECK(r.out == "out\n");
    CHECK(r.err == "err\n");
    auto t0 = std::chrono::steady_clock::now();
    r = mft::run({"sleep", "30"}, {}, 300ms);
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
    CHECK(r.exit_code == 128 + 9);
    r = mft::run({"/nonexistent/program"});
    CHECK(r.exit_code == 127);
    r = mft::run({"sh", "-c", "printf %s \"$MFT_X\""}, {}, 10s, {{"MFT_X", "y z"}});
    CHECK(r.out == "y z");
    r = mft::run({"true"}, big, 10s); // does not read stdin: no SIGPIPE, no hang
    CHECK(r.exit_code == 0);
}

TEST_CASE("test_env: SilentServer accepts and never speaks; free_port is closed") {
    mft::SilentServer silent;
    Raw c(silent.port(), 1500);
    REQUIRE(c.connected());
    auto t0 = std::chrono::steady_clock::now();
    CHECK(c.line().empty()); // the read deadline passes without a byte
    CHECK(std::chrono::steady_clock::now() - t0 >= 1400ms);
    std::uint16_t p = mft::free_port();
    CHECK(p != 0);
    CHECK_FALSE(mft::wait_for_port(p, 50ms));
}
