// copier_courier_source_test.cpp — the Maildir Source against a tree real Courier-IMAP wrote.
//
// Debian's courier-imap `imapd` (unpacked by setup.sh) runs pre-authenticated on a pipe
// (AUTHENTICATED=user, as couriertcpd starts it after login) in a scratch home: it creates and
// subscribes folders, appends messages with flags, keywords and dates, and changes keywords, so the
// tree has Courier's own courierimapuiddb, courierimapsubscribed and courierimapkeywords/ (:list
// plus the per-message update files Courier writes between compactions). The Source must
// then show what the same Courier shows over IMAP: UIDVALIDITY, UIDs, flags, keywords,
// INTERNALDATE, sizes and bytes, folders and subscriptions.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_util.hpp"
#include "source_maildir.hpp"

#include <cerrno>
#include <csignal>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <poll.h>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

namespace {

// setup.sh unpacks it here: the courier-imap package conflicts with dovecot-imapd.
constexpr const char* kImapd = "/opt/mailferry-test/courier-imap/usr/bin/imapd";

// One pre-authenticated Courier imapd on a pair of pipes, spoken to one command at a time.
class Courier {
  public:
    explicit Courier(const std::string& home) {
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
    ~Courier() {
        ::close(to_);
        ::close(from_);
        int st = 0;
        if (::waitpid(pid_, &st, WNOHANG) == 0) {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, &st, 0);
        }
    }
    Courier(const Courier&) = delete;
    Courier& operator=(const Courier&) = delete;

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

std::string between(const std::string& s, const std::string& open, char close) {
    auto a = s.find(open);
    REQUIRE_MESSAGE(a != std::string::npos, s);
    a += open.size();
    return s.substr(a, s.find(close, a) - a);
}

// "01-Jan-2024 10:00:00 +0100" → seconds since the epoch.
std::int64_t imap_time(const std::string& d) {
    std::tm tm{};
    const char* rest = ::strptime(d.c_str(), "%d-%b-%Y %H:%M:%S", &tm);
    REQUIRE(rest != nullptr);
    int off = std::stoi(std::string(rest + 1));
    int secs = (off / 100) * 3600 + (off % 100) * 60;
    return static_cast<std::int64_t>(::timegm(&tm)) - secs;
}

// What Courier shows for the selected folder: UID → flags, INTERNALDATE, size.
std::map<std::uint32_t, Seen> fetch_all(Courier& c, std::uint32_t* uidvalidity) {
    for (const auto& l : c.cmd("EXAMINE INBOX")) {
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

std::string read_all(mf::copy::source::Source& s, const mf::copy::source::Folder& f,
                     const mf::copy::source::Message& m) {
    std::string out;
    auto r = s.read(f, m, [&](std::string_view c) -> mf::Result<void> {
        out.append(c);
        return {};
    });
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message()));
    return out;
}

} // namespace

TEST_CASE("a Maildir Courier-IMAP wrote reads exactly as Courier shows it over IMAP") {
    REQUIRE_MESSAGE(::access(kImapd, X_OK) == 0, "Courier imapd missing: run ./setup.sh deps");
    mft::TempDir tmp("courier-src");
    std::string root = tmp.path() + "/Maildir";
    for (const char* d : {"/cur", "/new", "/tmp"}) {
        std::filesystem::create_directories(root + d);
    }
    const std::vector<std::string> bodies = {
        "Subject: one\r\n\r\nfirst\r\n",
        "Subject: two\r\n\r\nsecond, a little longer\r\n",
        "Subject: three\r\n\r\nthird\r\n",
    };
    std::map<std::uint32_t, Seen> want;
    std::uint32_t validity = 0;
    {
        Courier c(tmp.path());
        c.cmd("CREATE INBOX.Work");
        c.cmd("CREATE \"INBOX.Entw&APw-rfe\"");
        c.cmd("SUBSCRIBE INBOX.Work");
        c.cmd("APPEND INBOX (\\Seen $Label1 project-x) \"01-Jan-2024 10:00:00 +0000\"", bodies[0],
              true);
        c.cmd("APPEND INBOX (\\Flagged) \"02-Feb-2024 11:30:00 +0100\"", bodies[1], true);
        c.cmd("APPEND INBOX () \"03-Mar-2024 12:00:00 +0000\"", bodies[2], true);
        c.cmd("APPEND \"INBOX.Entw&APw-rfe\" (\\Draft) \"04-Apr-2024 08:00:00 +0000\"",
              "Subject: draft\r\n\r\nd\r\n", true);
        c.cmd("SELECT INBOX");
        c.cmd("UID STORE 1 +FLAGS (\\Answered otherkw)"); // update files beside :list
        c.cmd("UID STORE 2 +FLAGS (zzz)");
        c.cmd("UID STORE 1 -FLAGS (project-x)");
        want = fetch_all(c, &validity);
        c.cmd("LOGOUT");
    }
    REQUIRE(want.size() == 3);
    CHECK(want[1].flags == "$Label1 \\Answered \\Seen otherkw");
    REQUIRE(std::filesystem::exists(root + "/courierimapkeywords/:list"));
    REQUIRE(std::filesystem::exists(root + "/courierimapuiddb"));

    auto src = mf::copy::source::open_maildir(root);
    auto folders = src->folders();
    REQUIRE_MESSAGE(folders, (folders ? "" : folders.error().message()));
    std::map<std::string, mf::copy::source::Folder> by;
    for (const auto& f : *folders) {
        by[f.name()] = f;
    }
    REQUIRE(by.size() == 3);
    CHECK(by["Work"].subscribed);
    CHECK_FALSE(by["Entwürfe"].subscribed);
    auto inbox = src->messages(by["INBOX"]);
    REQUIRE(inbox);
    CHECK(inbox->problems.empty());
    CHECK(inbox->uidvalidity == validity);
    REQUIRE(inbox->messages.size() == want.size());
    for (std::size_t i = 0; i < inbox->messages.size(); ++i) {
        const auto& m = inbox->messages[i];
        INFO("UID " << m.uid);
        REQUIRE(want.count(m.uid) == 1);
        CHECK(m.flags == want[m.uid].flags);
        CHECK(m.when == want[m.uid].when);
        CHECK(m.size == want[m.uid].size);
        CHECK(read_all(*src, by["INBOX"], m) == bodies[i]);
    }
    auto drafts = src->messages(by["Entwürfe"]);
    REQUIRE(drafts);
    REQUIRE(drafts->messages.size() == 1);
    CHECK(drafts->messages[0].flags == "\\Draft");

    // Courier compacts the update files into :list on a later session: same answer.
    {
        Courier c(tmp.path());
        c.cmd("SELECT INBOX");
        c.cmd("UID STORE 3 +FLAGS (later)");
        want = fetch_all(c, &validity);
        c.cmd("LOGOUT");
    }
    auto again = src->messages(by["INBOX"]);
    REQUIRE(again);
    REQUIRE(again->messages.size() == want.size());
    for (const auto& m : again->messages) {
        INFO("UID " << m.uid);
        CHECK(m.flags == want[m.uid].flags);
    }
}
