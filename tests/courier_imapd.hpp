// courier_imapd.hpp — Courier-IMAP's imapd, pre-authenticated on a pipe, for tests that need
// a Maildir tree Courier itself wrote (courierimapuiddb, courierimapkeywords/,
// courierimapsubscribed). Courier runs it this way after a login (AUTHENTICATED=user, from
// couriertcpd); here it runs in a scratch home, as root, speaking to one test.
#pragma once

#include "copier_util.hpp"
#include "source.hpp"

#include <cerrno>
#include <csignal>
#include <ctime>
#include <fcntl.h>
#include <map>
#include <poll.h>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace courier {

// setup.sh unpacks it here: the courier-imap package conflicts with dovecot-imapd.
inline constexpr const char* kImapd = "/opt/mailferry-test/courier-imap/usr/bin/imapd";

// One pre-authenticated Courier imapd on a pair of pipes, spoken to one command at a time.
class Imapd {
  public:
    explicit Imapd(const std::string& home) {
        int in[2];
        int out[2];
        REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
        REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::dup2(in[0], 0);
            ::dup2(out[1], 1);
            if (::chdir(home.c_str()) != 0) {
                ::_exit(127);
            }
            std::string h = "HOME=" + home;
            char* env[] = {const_cast<char*>("AUTHENTICATED=anna"), h.data(), // NOLINT: execve
                           const_cast<char*>("IMAP_KEYWORDS=1"),
                           const_cast<char*>("PATH=/usr/bin:/bin"), nullptr};
            char* argv[] = {const_cast<char*>(kImapd), const_cast<char*>("Maildir"), nullptr};
            ::execve(kImapd, argv, env);
            ::_exit(127);
        }
        ::close(in[0]);
        ::close(out[1]);
        to_ = in[1];
        from_ = out[0];
        REQUIRE(line().rfind("* PREAUTH", 0) == 0);
    }
    ~Imapd() {
        ::close(to_);
        ::close(from_);
        int st = 0;
        if (::waitpid(pid_, &st, WNOHANG) == 0) {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, &st, 0);
        }
    }
    Imapd(const Imapd&) = delete;
    Imapd& operator=(const Imapd&) = delete;

    // Sends one command (with an optional literal, sent after the server's "+") and returns
    // every line up to and including the tagged answer, which must be OK.
    std::vector<std::string> cmd(const std::string& text, const std::string& literal = {},
                                 bool has_literal = false) {
        std::string tag = "t" + std::to_string(++n_);
        if (has_literal) {
            send(tag + " " + text + " {" + std::to_string(literal.size()) + "}\r\n");
            std::string go = line();
            REQUIRE_MESSAGE(go.rfind("+", 0) == 0, go);
            send(literal + "\r\n");
        } else {
            send(tag + " " + text + "\r\n");
        }
        std::vector<std::string> out;
        while (true) {
            out.push_back(line());
            if (out.back().rfind(tag + " ", 0) == 0) {
                REQUIRE_MESSAGE(out.back().rfind(tag + " OK", 0) == 0, text << ": " << out.back());
                return out;
            }
        }
    }

  private:
    void send(const std::string& s) {
        REQUIRE(::write(to_, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
    }
    std::string line() {
        while (true) {
            if (auto nl = buf_.find("\r\n"); nl != std::string::npos) {
                std::string l = buf_.substr(0, nl);
                buf_.erase(0, nl + 2);
                return l;
            }
            pollfd p{from_, POLLIN, 0};
            REQUIRE_MESSAGE(::poll(&p, 1, 10000) == 1, "Courier imapd did not answer");
            char b[4096];
            ssize_t n = ::read(from_, b, sizeof b);
            REQUIRE_MESSAGE(n > 0, "Courier imapd closed the pipe");
            buf_.append(b, static_cast<std::size_t>(n));
        }
    }

    pid_t pid_ = -1;
    int to_ = -1;
    int from_ = -1;
    unsigned n_ = 0;
    std::string buf_;
};

struct Seen {
    std::string flags;
    std::int64_t when = 0;
    std::uint64_t size = 0;
};

inline std::string between(const std::string& s, const std::string& open, char close) {
    auto a = s.find(open);
    REQUIRE_MESSAGE(a != std::string::npos, s);
    a += open.size();
    return s.substr(a, s.find(close, a) - a);
}

// "01-Jan-2024 10:00:00 +0100" → seconds since the epoch.
inline std::int64_t imap_time(const std::string& d) {
    std::tm tm{};
    const char* rest = ::strptime(d.c_str(), "%d-%b-%Y %H:%M:%S", &tm);
    REQUIRE(rest != nullptr);
    int off = std::stoi(std::string(rest + 1));
    int secs = (off / 100) * 3600 + (off % 100) * 60;
    return static_cast<std::int64_t>(::timegm(&tm)) - secs;
}

// What Courier shows for `folder` (IMAP wire name): UID → flags, INTERNALDATE, size.
inline std::map<std::uint32_t, Seen> fetch_all(Imapd& c, std::uint32_t* uidvalidity,
                                               const std::string& folder = "INBOX") {
    for (const auto& l : c.cmd("EXAMINE " + folder)) {
        if (l.find("[UIDVALIDITY ") != std::string::npos) {
            *uidvalidity = static_cast<std::uint32_t>(std::stoul(between(l, "[UIDVALIDITY ", ']')));
        }
    }
    std::map<std::uint32_t, Seen> out;
    for (const auto& l : c.cmd("FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE)")) {
        if (l.rfind("* ", 0) != 0 || l.find(" FETCH ") == std::string::npos) {
            continue;
        }
        Seen s;
        std::vector<std::string> flags;
        std::istringstream fl(between(l, "FLAGS (", ')'));
        for (std::string f; fl >> f;) {
            if (f != "\\Recent") {
                flags.push_back(f);
            }
        }
        s.flags = mf::copy::source::join_flags(flags);
        s.when = imap_time(between(l, "INTERNALDATE \"", '"'));
        s.size = std::stoull(between(l, "RFC822.SIZE ", ')'));
        out[static_cast<std::uint32_t>(std::stoul(between(l, "UID ", ' ')))] = s;
    }
    return out;
}

} // namespace courier
