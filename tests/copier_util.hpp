// copier_util.hpp — helpers for the copier's tests against real Dovecots: writing
// Maildir messages straight to disk (fast, exact bytes, flags, keywords, dates), reading a
// whole account back over IMAP (every folder, every message's bytes, flags and date,
// subscriptions), and comparing two accounts the way a user would.
//
// Header-only so each copier_*_test.cpp stays one program. Must never: compare anything
// less than the exact bytes; hide a difference (compare() lists every one).
#pragma once

#include "copy_internal.hpp"
#include "imap_client.hpp"
#include "mailferry/copier.hpp"
#include "support/dovecot_server.hpp"
#include "support/test_env.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <netinet/in.h>
#include <pwd.h>
#include <set>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace cu {

inline void chown_vmail(const std::string& path) {
    struct passwd* pw = ::getpwnam("mfvmail");
    if (pw == nullptr || ::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        throw std::runtime_error("chown mfvmail " + path);
    }
}

inline void mkdirs_vmail(const std::string& path) {
    std::filesystem::path p(path);
    std::vector<std::filesystem::path> todo;
    for (auto q = p; !q.empty() && !std::filesystem::exists(q); q = q.parent_path()) {
        todo.push_back(q);
    }
    for (auto it = todo.rbegin(); it != todo.rend(); ++it) {
        std::filesystem::create_directory(*it);
        ::chmod(it->c_str(), 0700);
        chown_vmail(it->string());
    }
}

// Writes one message into a Maildir++ folder ("" = INBOX, "Work.Projects" with the
// default '.' separator). `flags` are maildir info letters (S seen, F flagged, R answered,
// D draft, T deleted) plus a..e for keywords kw[0..4] (see write_keywords). `mtime` is
// the INTERNALDATE Dovecot reports.
inline void put(const mft::DovecotServer& srv, const std::string& user, const std::string& folder,
                const std::string& bytes, const std::string& flags = "", time_t mtime = 0) {
    static std::atomic<unsigned> seq{0};
    std::string dir = srv.mail_dir(user) + (folder.empty() ? "" : "/." + folder);
    for (const char* sub : {"/cur", "/new", "/tmp"}) {
        mkdirs_vmail(dir + sub);
    }
    if (mtime == 0) {
        mtime = 1600000000 + static_cast<time_t>(seq.load()) * 3607;
    }
    std::string name = dir + "/cur/" + std::to_string(mtime) + ".M" + std::to_string(seq++) + "P" +
                       std::to_string(::getpid()) + ".test:2," + flags;
    mft::write_file(name, bytes, 0600);
    chown_vmail(name);
    struct timeval tv[2] = {{mtime, 0}, {mtime, 0}};
    ::utimes(name.c_str(), tv);
}

inline void write_keywords(const mft::DovecotServer& srv, const std::string& user,
                           const std::string& folder, const std::vector<std::string>& kws) {
    std::string dir = srv.mail_dir(user) + (folder.empty() ? "" : "/." + folder);
    mkdirs_vmail(dir);
    std::string text;
    for (std::size_t i = 0; i < kws.size(); ++i) {
        text += std::to_string(i) + " " + kws[i] + "\n";
    }
    mft::write_file(dir + "/dovecot-keywords", text, 0600);
    chown_vmail(dir + "/dovecot-keywords");
}

struct Msg {
    std::uint32_t uid = 0;
    std::string body;
    std::string flags;
    std::string date;
    std::optional<std::int64_t> when;
    bool operator<(const Msg& o) const {
        return std::tie(body, flags, when) < std::tie(o.body, o.flags, o.when);
    }
};

struct Account {
    std::map<std::string, std::vector<Msg>> folders; // '/'-separated UTF-8 name
    std::set<std::string> noselect;
    std::set<std::string> subscribed;
};

inline std::unique_ptr<mf::imap::Client> login(std::uint16_t port, const std::string& user,
                                               const std::string& pw) {
    mf::imap::ConnectOptions co;
    co.host = "127.0.0.1";
    co.port = port;
    co.tls = mf::TlsMode::none;
    co.limits.max_literal = 256u << 20;
    co.limits.max_response = 300u << 20;
    auto c = mf::imap::Client::connect(co);
    if (!c) {
        throw std::runtime_error(c.error().message());
    }
    if (auto r = (*c)->login(user, mf::Secret(pw)); !r) {
        throw std::runtime_error(r.error().message());
    }
    return std::move(*c);
}

// Everything a user could see, read over IMAP.
inline Account snapshot(std::uint16_t port, const std::string& user, const std::string& pw) {
    auto c = login(port, user, pw);
    auto list = mf::copy::detail::list_mailboxes(*c);
    if (!list) {
        throw std::runtime_error(list.error().message());
    }
    Account a;
    for (const auto& m : list->boxes) {
        std::string name;
        for (std::size_t i = 0; i < m.parts.size(); ++i) {
            name += (i ? "/" : "") + m.parts[i];
        }
        if (m.subscribed) {
            a.subscribed.insert(name);
        }
        if (m.noselect) {
            if (m.listed) {
                a.noselect.insert(name);
            }
            continue;
        }
        auto st = mf::copy::detail::select_box(*c, m.wire, true, false);
        if (!st) {
            throw std::runtime_error(st.error().message());
        }
        auto& msgs = a.folders[name];
        if (st->messages == 0) {
            continue;
        }
        auto r = c->run("UID FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[])",
                        [&](mf::imap::Response& u) -> mf::Result<void> {
                            if (u.keyword != "FETCH") {
                                return {};
                            }
                            auto meta = mf::copy::detail::parse_fetch_items(u.data[0].list);
                            Msg msg;
                            msg.uid = meta.uid;
                            msg.flags = meta.flags;
                            msg.date = meta.date;
                            msg.when = meta.when;
                            const auto& items = u.data[0].list;
                            for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
                                if (items[i].is_atom("BODY[]")) {
                                    msg.body = items[i + 1].str;
                                }
                            }
                            msgs.push_back(std::move(msg));
                            return {};
                        });
        if (!r || r->keyword != "OK") {
            throw std::runtime_error("snapshot fetch failed in " + name);
        }
    }
    (void)c->logout();
    return a;
}

// "" when `dst` holds exactly what `src` holds (folder tree, subscriptions, and per folder
// the same multiset of (bytes, flags, date)); else a description of every difference.
inline std::string compare(const Account& src, const Account& dst,
                           const std::set<std::string>& ignore_folders = {}) {
    std::string diff;
    for (const auto& [name, msgs] : src.folders) {
        if (ignore_folders.count(name) != 0) {
            continue;
        }
        auto it = dst.folders.find(name);
        if (it == dst.folders.end()) {
            diff += "folder missing on target: " + name + "\n";
            continue;
        }
        auto a = msgs;
        auto b = it->second;
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        if (a.size() != b.size()) {
            diff += name + ": " + std::to_string(a.size()) + " messages on the source, " +
                    std::to_string(b.size()) + " on the target\n";
        }
        for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
            if (a[i].body != b[i].body) {
                diff += name + ": bytes differ (source UID " + std::to_string(a[i].uid) +
                        ", target UID " + std::to_string(b[i].uid) + ")\n";
            } else if (a[i].flags != b[i].flags) {
                diff += name + ": flags \"" + a[i].flags + "\" vs \"" + b[i].flags + "\"\n";
            } else if (a[i].when != b[i].when) {
                diff += name + ": date \"" + a[i].date + "\" vs \"" + b[i].date + "\"\n";
            }
        }
    }
    for (const auto& [name, msgs] : dst.folders) {
        if (src.folders.count(name) == 0 && name != "INBOX" && ignore_folders.count(name) == 0) {
            diff += "folder only on target: " + name + "\n";
        }
    }
    for (const auto& s : src.subscribed) {
        if (dst.subscribed.count(s) == 0 && src.folders.count(s) != 0) {
            diff += "subscription missing: " + s + "\n";
        }
    }
    return diff;
}

inline std::size_t total(const Account& a) {
    std::size_t n = 0;
    for (const auto& [k, v] : a.folders) {
        n += v.size();
    }
    return n;
}

inline mf::copy::Endpoint endpoint(std::uint16_t port, const std::string& user,
                                   const std::string& pw) {
    mf::copy::Endpoint ep;
    ep.host = "127.0.0.1";
    ep.port = port;
    ep.tls = mf::TlsMode::none;
    ep.user = user;
    ep.password = mf::Secret(pw);
    ep.timeout = std::chrono::seconds(30);
    return ep;
}

// Dovecot settings the copier's target uses in tests: '/' separator (so every copy also
// translates delimiters), special-use folders, no fsync (speed; durability is not what
// these tests measure).
inline std::string target_config() {
    return "mail_fsync = never\n"
           "namespace inbox {\n  inbox = yes\n  separator = /\n"
           "  mailbox Sent {\n    special_use = \\Sent\n  }\n"
           "  mailbox Trash {\n    special_use = \\Trash\n  }\n}\n";
}

inline std::string source_config() {
    return "mail_fsync = never\n"
           "namespace inbox {\n  inbox = yes\n  separator = .\n"
           "  mailbox Sent {\n    special_use = \\Sent\n  }\n}\n";
}

// A message with the given subject and a body of about `size` bytes (CRLF lines).
inline std::string mail(const std::string& subject, std::size_t size = 200, char fill = 'x') {
    std::string m = "From: Tester <t@example.org>\r\nTo: anna@example.org\r\nSubject: " + subject +
                    "\r\nMessage-ID: <" + subject +
                    "@test>\r\nDate: Mon, 1 Jan 2024 10:00:00 "
                    "+0000\r\n\r\n";
    while (m.size() < size) {
        m += std::string(std::min<std::size_t>(70, size - m.size() + 2), fill) + "\r\n";
    }
    return m;
}

// A loopback listener for scripted servers (the faults a real server will not produce on
// demand): `session(fd, n)` runs for the n-th connection (from 1), one after another on
// a thread, until the object dies; the connection is closed after it returns.
class ScriptedServer {
  public:
    explicit ScriptedServer(std::function<void(int, int)> session) : session_(std::move(session)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            throw std::runtime_error("bind a loopback port");
        }
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        ::listen(fd_, 8);
        thread_ = std::thread([this] {
            for (int n = 1;; ++n) {
                int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
                if (c < 0) {
                    return;
                }
                session_(c, n);
                ::close(c);
            }
        });
    }
    ~ScriptedServer() {
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    ScriptedServer(const ScriptedServer&) = delete;
    ScriptedServer& operator=(const ScriptedServer&) = delete;
    [[nodiscard]] std::uint16_t port() const { return port_; }

    static bool send_all(int c, const std::string& s) {
        return ::send(c, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
    }
    // The next CRLF-terminated line (without CRLF) into `line`; `buf` keeps what follows.
    // False when the client is gone.
    static bool read_line(int c, std::string& buf, std::string& line) {
        std::size_t nl;
        char tmp[4096];
        while ((nl = buf.find("\r\n")) == std::string::npos) {
            ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
            if (n <= 0) {
                return false;
            }
            buf.append(tmp, static_cast<std::size_t>(n));
        }
        line = buf.substr(0, nl);
        buf.erase(0, nl + 2);
        return true;
    }

  private:
    std::function<void(int, int)> session_;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::thread thread_;
};

} // namespace cu
