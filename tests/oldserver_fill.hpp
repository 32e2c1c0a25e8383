// oldserver_fill.hpp — puts the odd mailbox's cases (support/odd_mailbox.hpp) into an old
// IMAP server (Cyrus, Courier) the way its users would, over a plain socket, and reads a
// server's folder tree back without the copier's code.
//
// Unlike odd::fill() it keeps going when the server refuses a command and records the
// refusal, so a test can state exactly what each server refuses and notice when that
// changes; and it puts a prefix before every folder (Courier keeps all folders under
// "INBOX."). Must never: hide a refusal, or send a case the plan leaves out.
#pragma once

#include "mutf7.hpp"
#include "support/odd_mailbox.hpp"

#include <arpa/inet.h>
#include <functional>
#include <map>
#include <netinet/in.h>
#include <set>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace oldsrv {

using mft::odd::FolderCase;
using mft::odd::MessageCase;
using mft::odd::Way;

// One plain-socket IMAP session; literals in answers are folded into their line.
class Raw {
  public:
    struct Reply {
        std::string tagged;
        std::vector<std::string> untagged;
        [[nodiscard]] bool ok() const {
            return !tagged.empty() && tagged.find(" OK") == tagged.find(' ');
        }
    };

    Raw(std::uint16_t port, const std::string& user, const std::string& pw) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            throw std::runtime_error("cannot connect to port " + std::to_string(port));
        }
        caps_ = line();
        Reply r = run("LOGIN " + quoted(user) + " " + quoted(pw));
        if (!r.ok()) {
            throw std::runtime_error("LOGIN " + user + ": " + r.tagged);
        }
        caps_ += " " + r.tagged + " " + run("CAPABILITY").untagged.at(0);
    }
    ~Raw() { ::close(fd_); }
    Raw(const Raw&) = delete;
    Raw& operator=(const Raw&) = delete;

    [[nodiscard]] bool has(const std::string& cap) const {
        const std::string all = caps_ + " ";
        return all.find(" " + cap + " ") != std::string::npos ||
               all.find(" " + cap + "]") != std::string::npos;
    }

    // One command; with `literal`, "{n}" is appended and the bytes follow the "+".
    Reply run(const std::string& cmd, const std::string* literal = nullptr) {
        const std::string tag = "r" + std::to_string(++tag_);
        Reply r;
        if (literal == nullptr) {
            send(tag + " " + cmd + "\r\n");
        } else {
            send(tag + " " + cmd + " {" + std::to_string(literal->size()) + "}\r\n");
            std::string go = line();
            if (go.rfind('+', 0) != 0) {
                r.tagged = go; // refused before the literal
                return r;
            }
            send(*literal + "\r\n");
        }
        for (;;) {
            std::string l = line();
            if (l.rfind(tag + " ", 0) == 0) {
                r.tagged = l;
                return r;
            }
            r.untagged.push_back(l);
        }
    }

    static std::string quoted(const std::string& s) {
        std::string q = "\"";
        for (char c : s) {
            q += c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
        }
        return q + "\"";
    }

  private:
    void send(const std::string& s) const {
        for (std::size_t done = 0; done < s.size();) {
            ssize_t n = ::send(fd_, s.data() + done, s.size() - done, MSG_NOSIGNAL);
            if (n <= 0) {
                throw std::runtime_error("IMAP connection lost while sending");
            }
            done += static_cast<std::size_t>(n);
        }
    }
    void more() {
        char tmp[65536];
        ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
        if (n <= 0) {
            throw std::runtime_error("IMAP connection closed by the server");
        }
        buf_.append(tmp, static_cast<std::size_t>(n));
    }
    std::string line() {
        std::string out;
        for (;;) {
            std::size_t nl;
            while ((nl = buf_.find("\r\n")) == std::string::npos) {
                more();
            }
            std::string l = buf_.substr(0, nl);
            buf_.erase(0, nl + 2);
            out += l;
            auto open = l.rfind('{');
            if (l.empty() || l.back() != '}' || open == std::string::npos) {
                return out;
            }
            std::size_t len = std::stoul(l.substr(open + 1));
            while (buf_.size() < len) {
                more();
            }
            out += "\r\n" + buf_.substr(0, len);
            buf_.erase(0, len);
        }
    }

    int fd_ = -1;
    std::string buf_;
    std::string caps_;
    unsigned tag_ = 0;
};

// A folder tree as LIST shows it: UTF-8 names, levels joined with '/'.
struct Tree {
    std::set<std::string> selectable;
    std::set<std::string> noselect; // \Noselect or \NonExistent, listed
    std::set<std::string> subscribed;
};

// The name in a LIST line ("* LIST (flags) "/" name"), UTF-8 with '/' between levels.
inline std::string list_name(const std::string& l, char* delim) {
    std::size_t p = l.find(") ") + 2;
    if (l.compare(p, 3, "NIL") == 0) {
        p += 4;
    } else {
        *delim = l[p + 1] == '\\' ? l[p + 2] : l[p + 1];
        p = l.find("\" ", p + 1) + 2;
    }
    std::string wire;
    if (l[p] == '"') {
        for (++p; l[p] != '"'; ++p) {
            wire += l[p] == '\\' ? l[++p] : l[p];
        }
    } else if (l[p] == '{') {
        wire = l.substr(l.find("\r\n", p) + 2);
    } else {
        wire = l.substr(p);
    }
    auto utf8 = mf::imap::mutf7_decode(wire);
    std::string out = utf8 ? *utf8 : wire;
    for (char& c : out) {
        c = c == *delim ? '/' : c;
    }
    return out;
}

// Subscriptions through LIST (SUBSCRIBED) where offered (Cyrus' LSUB leaves out a deleted
// folder's subscription, its LIST-EXTENDED shows it \NonExistent), else LSUB.
inline Tree tree(std::uint16_t port, const std::string& user, const std::string& pw) {
    Raw s(port, user, pw);
    Tree t;
    char delim = '/';
    for (const auto& l : s.run("LIST \"\" \"*\"").untagged) {
        const bool hollow = l.find("\\Noselect") != std::string::npos ||
                            l.find("\\NonExistent") != std::string::npos;
        (hollow ? t.noselect : t.selectable).insert(list_name(l, &delim));
    }
    const bool ext = s.has("LIST-EXTENDED");
    for (const auto& l : s.run(ext ? "LIST (SUBSCRIBED) \"\" \"*\"" : "LSUB \"\" \"*\"").untagged) {
        t.subscribed.insert(list_name(l, &delim));
    }
    (void)s.run("LOGOUT");
    return t;
}

struct Plan {
    std::vector<std::string> prefix; // levels put before every case not under INBOX
    // DELETE a \Noselect parent once its children exist (else before they are created).
    bool noselect_by_delete = false;
    std::function<Way(const MessageCase&)> way; // imap unless it says otherwise
    // Writes one copy of a Way::raw message into the server's files; gets the case's
    // folder levels with the prefix.
    std::function<void(const MessageCase&, const std::vector<std::string>&)> write_raw;
};

struct Outcome {
    char delim = '\0';
    std::map<std::string, std::string> refused; // "CREATE name", "APPEND id" → tagged reply
    std::vector<FolderCase> folders;            // every case tried, levels with the prefix
    std::set<std::string> created;              // '/'-joined names of plain folders made
    std::vector<MessageCase> messages;          // cases stored (IMAP or raw), bytes kept
    std::set<std::string> skipped;              // message ids the plan left out
};

inline std::string joined(const std::vector<std::string>& levels) {
    std::string out;
    for (const auto& l : levels) {
        out += (out.empty() ? "" : "/") + l;
    }
    return out;
}

inline std::string wire(const std::vector<std::string>& levels, char delim) {
    std::string out;
    for (const auto& l : levels) {
        out += (out.empty() ? "" : std::string(1, delim)) + mft::odd::mutf7(l);
    }
    return out;
}

inline std::vector<std::string> with_prefix(const Plan& p, std::vector<std::string> levels) {
    if (levels.at(0) != "INBOX") {
        levels.insert(levels.begin(), p.prefix.begin(), p.prefix.end());
    }
    return levels;
}

inline void fill_folders(Raw& s, const Plan& p, Outcome& out) {
    std::vector<std::vector<std::string>> hollow;
    auto step = [&](const std::string& verb, const std::vector<std::string>& levels) {
        Raw::Reply r = s.run(verb + " " + Raw::quoted(wire(levels, out.delim)));
        if (!r.ok()) {
            out.refused[verb + " " + joined(levels)] = r.tagged.substr(r.tagged.find(' ') + 1);
        }
        return r.ok();
    };
    for (auto f : mft::odd::folder_cases()) {
        f.levels = with_prefix(p, f.levels);
        out.folders.push_back(f);
        if (f.name() != "INBOX" && !step("CREATE", f.levels)) {
            continue;
        }
        if (f.subscribe) {
            step("SUBSCRIBE", f.levels);
        }
        if (f.shape == FolderCase::Shape::plain) {
            out.created.insert(f.name());
        } else if (f.shape == FolderCase::Shape::noselect && p.noselect_by_delete) {
            hollow.push_back(f.levels);
        } else {
            step("DELETE", f.levels);
        }
    }
    for (const auto& h : hollow) {
        step("DELETE", h);
    }
}

inline void fill_messages(Raw& s, const Plan& p, Outcome& out) {
    for (auto& m : mft::odd::message_cases()) {
        const auto levels = with_prefix(p, m.folder);
        const Way way = p.way ? p.way(m) : Way::imap;
        if (way == Way::skip || out.created.count(joined(levels)) == 0) {
            out.skipped.insert(m.id);
            continue;
        }
        bool stored = true;
        for (int i = 0; i < m.copies && stored; ++i) {
            if (way == Way::raw) {
                p.write_raw(m, levels);
                continue;
            }
            std::string flags;
            for (const auto& f : m.flags) {
                flags += (flags.empty() ? "" : " ") + f;
            }
            Raw::Reply r = s.run("APPEND " + Raw::quoted(wire(levels, out.delim)) + " (" + flags +
                                     ") \"" + mft::odd::imap_date(m.date) + "\"",
                                 &m.bytes);
            if (!r.ok()) {
                out.refused["APPEND " + m.id] = r.tagged.substr(r.tagged.find(' ') + 1);
                stored = false;
            }
        }
        if (stored) {
            m.folder = levels;
            out.messages.push_back(std::move(m));
        }
    }
}

inline Outcome fill(std::uint16_t port, const std::string& user, const std::string& pw,
                    const Plan& p) {
    Raw s(port, user, pw);
    Outcome out;
    char delim = '\0';
    (void)list_name(s.run("LIST \"\" \"\"").untagged.at(0), &delim);
    out.delim = delim;
    fill_folders(s, p, out);
    fill_messages(s, p, out);
    (void)s.run("LOGOUT");
    return out;
}

} // namespace oldsrv
