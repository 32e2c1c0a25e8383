// scripted_imap.hpp — a small IMAP server with a script, for faults a real server will
// not produce on demand (absurd literal sizes, a line cut mid-literal, garbage, BYE
// mid-FETCH, a wrong tag, silence). It serves a fixed set of folders well enough to be the
// source (or target) of a copy, and asks a Fault function at every step — greeting, each
// command, each message body of a FETCH — whether to misbehave instead.
//
// Each connection gets its own thread (the copier opens several at once), on the loopback
// listener of cu::ScriptedServer. Must never: block the test's end — every read polls a
// stop flag, and a stalled session ends when the client hangs up or the server dies.
#pragma once

#include "copier_util.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <poll.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace si {

struct Message {
    std::uint32_t uid = 0;
    std::string body;
    std::string flags = "\\Seen";
    std::string date = "01-Feb-2021 10:00:00 +0000";
};

struct Folder {
    std::string name; // plain ASCII, '/' between levels
    std::uint32_t uidvalidity = 7;
    std::vector<Message> messages; // ascending UIDs
};

// Where the script stands when it asks the fault.
struct Point {
    enum class At { greeting, command, body };
    At at = At::greeting;
    int connection = 0;    // 1-based, in accept order
    std::string tag;       // command, body: the command's tag
    std::string command;   // command, body: the line after the tag
    std::string folder;    // command, body: the selected folder ("" before EXAMINE)
    std::uint32_t uid = 0; // body: the message whose body comes next
    std::size_t index = 0; // body: bodies this FETCH sent before it
};

// What the session does after the fault had its say.
enum class Then {
    normal,  // nothing happened: behave like a good server
    next,    // the fault answered in its own way; read the next command
    hang_up, // close the connection now
};

// The connection as the fault sees it.
class Session {
  public:
    Session(int fd, const std::atomic<bool>& stop) : fd_(fd), stop_(stop) {}
    bool send(const std::string& s) const { return cu::ScriptedServer::send_all(fd_, s); }
    // Says nothing until the client hangs up or the server stops (a server that hangs).
    void stall() const {
        char tmp[4096];
        while (!stop_.load()) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) > 0 && ::recv(fd_, tmp, sizeof tmp, 0) <= 0) {
                return;
            }
        }
    }
    // The next CRLF-terminated line, false once the client is gone or the server stops.
    bool read_line(std::string& line) {
        char tmp[4096];
        std::size_t nl;
        while ((nl = buf_.find("\r\n")) == std::string::npos) {
            if (stop_.load()) {
                return false;
            }
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) {
                continue;
            }
            ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
            if (n <= 0) {
                return false;
            }
            buf_.append(tmp, static_cast<std::size_t>(n));
        }
        line = buf_.substr(0, nl);
        buf_.erase(0, nl + 2);
        return true;
    }

  private:
    int fd_;
    const std::atomic<bool>& stop_;
    std::string buf_;
};

using Fault = std::function<Then(Session&, const Point&)>;

inline const char* const kCaps = "IMAP4rev1 LITERAL+ UIDPLUS AUTH=PLAIN SASL-IR";

// "INBOX" from "\"INBOX\"" or "INBOX" (the names used here need no escapes).
inline std::string unquote(const std::string& s) {
    return s.size() >= 2 && s.front() == '"' && s.back() == '"' ? s.substr(1, s.size() - 2) : s;
}

// The UIDs of `f` a UID set ("1:*", "3,5:7") names.
inline std::vector<const Message*> select_uids(const Folder& f, const std::string& set) {
    const std::uint32_t top = f.messages.empty() ? 0 : f.messages.back().uid;
    auto num = [top](const std::string& t) -> std::uint32_t {
        return t == "*" ? top : static_cast<std::uint32_t>(std::stoul(t));
    };
    std::vector<const Message*> out;
    std::size_t p = 0;
    while (p < set.size()) {
        std::size_t q = std::min(set.find(',', p), set.size());
        std::string part = set.substr(p, q - p);
        auto colon = part.find(':');
        std::uint32_t a = num(part.substr(0, colon));
        std::uint32_t b = colon == std::string::npos ? a : num(part.substr(colon + 1));
        for (const auto& m : f.messages) {
            if (m.uid >= std::min(a, b) && m.uid <= std::max(a, b)) {
                out.push_back(&m);
            }
        }
        p = q + 1;
    }
    return out;
}

class ScriptedImap {
  public:
    explicit ScriptedImap(std::vector<Folder> folders, Fault fault = {})
        : folders_(std::move(folders)), fault_(std::move(fault)),
          server_(std::make_unique<cu::ScriptedServer>([this](int c, int n) { start(c, n); })) {}
    ~ScriptedImap() {
        stop_ = true;
        server_.reset(); // no new sessions from here on
        for (auto& t : threads_) {
            t.join();
        }
    }
    ScriptedImap(const ScriptedImap&) = delete;
    ScriptedImap& operator=(const ScriptedImap&) = delete;

    [[nodiscard]] std::uint16_t port() const { return server_->port(); }
    [[nodiscard]] std::string where() const { return "127.0.0.1:" + std::to_string(port()); }
    [[nodiscard]] int connections() const { return connections_.load(); }
    // From now on a good server: the re-run after a fault.
    void heal() { healed_ = true; }
    [[nodiscard]] const std::vector<Folder>& folders() const { return folders_; }

  private:
    void start(int c, int n) {
        if (stop_.load()) {
            return;
        }
        int fd = ::dup(c); // cu::ScriptedServer closes `c` when this returns
        ++connections_;
        std::lock_guard lock(mu_);
        threads_.emplace_back([this, fd, n] {
            Session s(fd, stop_);
            serve(s, n);
            ::close(fd);
        });
    }

    Then ask(Session& s, const Point& p) {
        return fault_ && !healed_.load() ? fault_(s, p) : Then::normal;
    }

    const Folder* find(const std::string& name) const {
        for (const auto& f : folders_) {
            if (f.name == name) {
                return &f;
            }
        }
        return nullptr;
    }

    void serve(Session& s, int n) {
        Point p;
        p.connection = n;
        if (Then t = ask(s, p); t == Then::hang_up) {
            return;
        } else if (t == Then::normal) {
            s.send(std::string("* OK [CAPABILITY ") + kCaps + "] scripted\r\n");
        }
        std::string line;
        while (s.read_line(line)) {
            p.at = Point::At::command;
            p.tag = line.substr(0, line.find(' '));
            p.command = line.size() > p.tag.size() ? line.substr(p.tag.size() + 1) : "";
            Then t = ask(s, p);
            if (t == Then::hang_up || (t == Then::normal && !answer(s, p))) {
                return;
            }
        }
    }

    // A good server's answer to p.command; false to end the session.
    bool answer(Session& s, Point& p) {
        const std::string& cmd = p.command;
        auto ok = [&](const std::string& text = "done") {
            return s.send(p.tag + " OK " + text + "\r\n");
        };
        auto verb = [&](const char* v) { return cmd.rfind(v, 0) == 0; };
        if (verb("CAPABILITY")) {
            return s.send(std::string("* CAPABILITY ") + kCaps + "\r\n") && ok();
        }
        if (verb("AUTHENTICATE") || verb("LOGIN")) {
            return ok(std::string("[CAPABILITY ") + kCaps + "] logged in");
        }
        if (verb("LIST \"\" \"\"")) {
            return s.send("* LIST (\\Noselect) \"/\" \"\"\r\n") && ok();
        }
        if (verb("LIST") || verb("LSUB")) {
            std::string out;
            for (const auto& f : folders_) {
                out += "* " + cmd.substr(0, 4) + " (\\HasNoChildren) \"/\" \"" + f.name + "\"\r\n";
            }
            return s.send(out) && ok();
        }
        if (verb("STATUS") || verb("EXAMINE") || verb("SELECT")) {
            std::size_t sp = cmd.find(' ');
            std::size_t end = cmd.find(' ', cmd.find('"', sp + 2) + 1);
            std::string name = unquote(cmd.substr(sp + 1, end - sp - 1));
            const Folder* f = find(name);
            if (f == nullptr) {
                return s.send(p.tag + " NO [NONEXISTENT] no such folder\r\n");
            }
            const std::uint32_t next = f->messages.empty() ? 1 : f->messages.back().uid + 1;
            const std::string n = std::to_string(f->messages.size());
            if (verb("STATUS")) {
                return s.send("* STATUS \"" + name + "\" (UIDVALIDITY " +
                              std::to_string(f->uidvalidity) + " UIDNEXT " + std::to_string(next) +
                              " MESSAGES " + n + ")\r\n") &&
                       ok();
            }
            p.folder = name;
            return s.send("* " + n + " EXISTS\r\n* OK [UIDVALIDITY " +
                          std::to_string(f->uidvalidity) + "] v\r\n* OK [UIDNEXT " +
                          std::to_string(next) + "] n\r\n") &&
                   ok("[READ-ONLY] examined");
        }
        if (verb("UID FETCH")) {
            return fetch(s, p);
        }
        if (verb("LOGOUT")) {
            s.send("* BYE bye\r\n");
            ok();
            return false;
        }
        if (verb("NOOP") || verb("ID") || verb("ENABLE")) {
            return ok();
        }
        return s.send(p.tag + " BAD unknown command\r\n");
    }

    bool fetch(Session& s, Point& p) {
        const Folder* f = find(p.folder);
        if (f == nullptr) {
            return s.send(p.tag + " BAD no folder selected\r\n");
        }
        const std::string set = p.command.substr(10, p.command.find(' ', 10) - 10);
        const bool bodies = p.command.find("BODY.PEEK[]") != std::string::npos;
        std::size_t sent = 0;
        for (const Message* m : select_uids(*f, set)) {
            std::size_t seq = static_cast<std::size_t>(m - f->messages.data()) + 1;
            std::string pre = "* " + std::to_string(seq) + " FETCH (UID " + std::to_string(m->uid);
            if (!bodies) {
                if (!s.send(pre + " FLAGS (" + m->flags + ") INTERNALDATE \"" + m->date +
                            "\" RFC822.SIZE " + std::to_string(m->body.size()) + ")\r\n")) {
                    return false;
                }
                continue;
            }
            p.at = Point::At::body;
            p.uid = m->uid;
            p.index = sent++;
            Then t = ask(s, p);
            if (t == Then::hang_up) {
                return false;
            }
            if (t == Then::next) {
                continue;
            }
            if (!s.send(pre + " BODY[] {" + std::to_string(m->body.size()) + "}\r\n" + m->body +
                        ")\r\n")) {
                return false;
            }
        }
        return s.send(p.tag + " OK fetched\r\n");
    }

    std::vector<Folder> folders_;
    Fault fault_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> healed_{false};
    std::atomic<int> connections_{0};
    std::mutex mu_;
    std::vector<std::thread> threads_;
    std::unique_ptr<cu::ScriptedServer> server_; // reset first by the destructor
};

} // namespace si
