// odd_mailbox.cpp — the odd mailbox's cases and a plain-socket IMAP filler for them.
//
// The filler speaks only what every IMAP4rev1 server understands (LOGIN, LIST, CREATE,
// SUBSCRIBE, APPEND with a synchronizing literal, DELETE), so the same cases fill Dovecot,
// Cyrus and Courier. Must never: send a case the caller filtered out, or swallow a NO.
#include "support/odd_mailbox.hpp"

#include <arpa/inet.h>
#include <cstring>
#include <ctime>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

namespace mft::odd {

namespace {

using Shape = FolderCase::Shape;

// A base date for the ordinary messages: 2023-11-14 22:13:20 UTC, one hour apart each.
constexpr std::int64_t kBase = 1700000000;

std::string mail(const std::string& subject, std::size_t size = 300) {
    std::string m =
        "From: Odd Tester <odd@example.org>\r\nTo: anna@example.org\r\nSubject: " + subject +
        "\r\nMessage-ID: <" + subject +
        "@odd.test>\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n\r\n";
    static const std::string line =
        "The quick brown fox jumps over the lazy dog, again and again and again.";
    while (m.size() < size) {
        m += line.substr(0, std::min(line.size(), size - m.size())) + "\r\n";
    }
    return m;
}

void add_folders(std::vector<FolderCase>& f) {
    auto plain = [&](std::vector<std::string> levels, std::string why, bool sub = true) {
        f.push_back({std::move(levels), Shape::plain, sub, std::move(why)});
    };
    plain({"INBOX"}, "the inbox");
    plain({" Leading space"}, "a leading space");
    plain({"Trailing space "}, "a trailing space");
    plain({"Doubled  space"}, "two spaces in a row");
    plain({"R&D"}, "'&', modified UTF-7's shift character");
    plain({"100%"}, "'%', a LIST wildcard");
    plain({"Star*"}, "'*', a LIST wildcard");
    plain({"Say \"hi\""}, "double quotes");
    plain({"Back\\slash"}, "a backslash");
    plain({"Curly{5}"}, "braces that look like a literal");
    plain({"-Leading dash"}, "a leading '-'");
    plain({"~Top tilde"}, "'~' starting a top-level name (Dovecot refuses it)");
    plain({"Parent"}, "a parent for '~'");
    plain({"Parent", "~tilde"}, "'~' starting a lower level");
    plain({"Caf\xc3\xa9"}, "UTF-8 in NFC");
    plain({"Cafe\xcc\x81"}, "UTF-8 in NFD, a different name from the NFC one");
    plain({"\xe2\x9c\x89 Post \xf0\x9f\x93\xae"}, "UTF-8 outside the BMP (surrogates in UTF-7)");
    std::string long_name = "Long-";
    while (long_name.size() < 200) {
        long_name += static_cast<char>('a' + long_name.size() % 26);
    }
    plain({long_name}, "a 200-character name");
    std::vector<std::string> deep;
    for (int i = 1; i <= 8; ++i) {
        deep.push_back("Level " + std::to_string(i));
        plain(deep, "nesting, level " + std::to_string(i));
    }
    plain({"INBOX", "Child"}, "a child of INBOX");
    plain({"INBOX", "Child", "Grandchild"}, "a grandchild of INBOX");
    f.push_back({{"Hollow"}, Shape::noselect, true, "a subscribed \\Noselect parent"});
    plain({"Hollow", "Inside"}, "the child that keeps the \\Noselect parent listed");
    f.push_back({{"Gone"}, Shape::vanished, true, "a subscription to a deleted folder"});
    f.push_back({{"Parent", "Gone too"}, Shape::vanished, true, "a deleted child, subscribed"});
    plain({"Unsubscribed"}, "a folder nobody subscribed to", false);
    plain({"Keywords"}, "more than 26 keywords");
    plain({"Odd bytes"}, "messages IMAP finds hard to carry");
    plain({"Future"}, "INTERNALDATEs in the future");
    plain({"Big"}, "20 MB and 45 MB messages");
}

void add_odd_bytes(std::vector<MessageCase>& m) {
    const std::vector<std::string> f = {"Odd bytes"};
    std::int64_t t = kBase + 100 * 3600;
    auto add = [&](std::string id, std::string bytes, bool raw, std::vector<std::string> fl = {}) {
        MessageCase c;
        c.id = std::move(id);
        c.folder = f;
        c.bytes = std::move(bytes);
        c.flags = std::move(fl);
        c.date = t;
        t += 3600;
        c.raw_bytes = raw;
        m.push_back(std::move(c));
    };
    add("nul", std::string("Subject: NUL bytes\r\n\r\nbefore\0after\0\r\n", 37), true);
    add("bare-lf", "Subject: bare LF\n\nline one\nline two\n", true, {"\\Seen"});
    add("lone-cr", "Subject: a lone CR\r\n\r\none\rtwo\r\n", true);
    add("trailing-cr", "Subject: the last byte is a CR\r\n\r\nbody\r", true);
    add("8bit-header",
        "Subject: Gr\xc3\xbc\xc3\x9f"
        "e aus K\xf6ln\r\nFrom: J\xc3\xb6rg <j@example.org>\r\n\r\nbody\r\n",
        false, {"\\Answered"});
    add("one-byte", "x", false);
    add("header-only", "Subject: a header and no body\r\n", false, {"\\Flagged"});
    add("no-newline", "Subject: not even a line end", false);
    add("no-body-blank", "Subject: blank line, no body\r\n\r\n", false);
    MessageCase same;
    same.id = "identical";
    same.folder = f;
    same.bytes = mail("identical three times");
    same.date = t;
    same.copies = 3;
    m.push_back(same);
}

void add_keywords(std::vector<MessageCase>& m) {
    const auto kws = keyword_cases();
    // Six keywords per message, so every keyword is used and the letters a Maildir can
    // give (26) run out part-way.
    std::size_t n = 0;
    for (std::size_t i = 0; i < kws.size(); i += 6, ++n) {
        MessageCase c;
        c.id = "keywords-" + std::to_string(n);
        c.folder = {"Keywords"};
        c.bytes = mail("keywords-" + std::to_string(n));
        c.date = kBase + 200 * 3600 + static_cast<std::int64_t>(n) * 60;
        c.flags = {"\\Seen"};
        for (std::size_t k = i; k < std::min(kws.size(), i + 6); ++k) {
            c.flags.push_back(kws[k]);
        }
        m.push_back(std::move(c));
    }
}

void add_dates(std::vector<MessageCase>& m) {
    auto add = [&](std::string id, std::int64_t when, bool future) {
        MessageCase c;
        c.id = id;
        c.folder = {"Future"};
        c.bytes = mail("date-" + id);
        c.date = when;
        c.future = future;
        m.push_back(std::move(c));
    };
    add("tomorrow", static_cast<std::int64_t>(std::time(nullptr)) / 60 * 60 + 86400, true);
    add("past-2038-01-19", 2147483648, true); // one second past 32-bit time_t
    add("2038-12-31", 2177452799, true);      // 2038-12-31 23:59:59 UTC
    add("1980", 315532800, false);            // 1980-01-01: old, for contrast
}

void add_big(std::vector<MessageCase>& m) {
    for (std::size_t mb : {20, 45}) {
        MessageCase c;
        c.id = "big-" + std::to_string(mb) + "m";
        c.folder = {"Big"};
        c.bytes = mail(c.id, mb << 20);
        c.flags = {"\\Seen"};
        c.date = kBase + static_cast<std::int64_t>(mb) * 60;
        m.push_back(std::move(c));
    }
}

// ---- a plain-socket IMAP session ----

struct Piece {
    std::string text;
    bool literal = false;
};

class Session {
  public:
    Session(const std::string& host, std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        if (fd_ < 0 || ::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1 ||
            ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            throw std::runtime_error("odd_mailbox: cannot connect to " + host);
        }
        (void)response(); // greeting
    }
    ~Session() { ::close(fd_); }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Runs one command; untagged responses land in `untagged`. Returns the tagged line.
    std::string run(const std::vector<Piece>& pieces,
                    std::vector<std::string>* untagged = nullptr) {
        const std::string tag = "o" + std::to_string(++tag_);
        std::string out = tag + " ";
        for (const auto& p : pieces) {
            if (!p.literal) {
                out += p.text;
                continue;
            }
            send(out + "{" + std::to_string(p.text.size()) + "}\r\n");
            out.clear();
            for (;;) { // a synchronizing literal: wait for "+", or the refusal
                std::string r = response();
                if (r.rfind("+", 0) == 0) {
                    break;
                }
                if (r.rfind(tag + " ", 0) == 0) {
                    return r;
                }
            }
            send(p.text);
        }
        send(out + "\r\n");
        for (;;) {
            std::string r = response();
            if (r.rfind(tag + " ", 0) == 0) {
                return r;
            }
            if (untagged != nullptr && r.rfind("* ", 0) == 0) {
                untagged->push_back(r);
            }
        }
    }

  private:
    void send(const std::string& s) const {
        std::size_t done = 0;
        while (done < s.size()) {
            ssize_t n = ::send(fd_, s.data() + done, s.size() - done, MSG_NOSIGNAL);
            if (n <= 0) {
                throw std::runtime_error("odd_mailbox: connection lost while sending");
            }
            done += static_cast<std::size_t>(n);
        }
    }
    bool fill_buffer() {
        char tmp[65536];
        ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
        if (n <= 0) {
            return false;
        }
        buf_.append(tmp, static_cast<std::size_t>(n));
        return true;
    }
    // One response: a line, with any literals it announces folded in.
    std::string response() {
        std::string out;
        for (;;) {
            std::size_t nl;
            while ((nl = buf_.find("\r\n")) == std::string::npos) {
                if (!fill_buffer()) {
                    throw std::runtime_error("odd_mailbox: connection closed by the server");
                }
            }
            std::string line = buf_.substr(0, nl);
            buf_.erase(0, nl + 2);
            out += line;
            std::size_t open = line.rfind('{');
            if (line.empty() || line.back() != '}' || open == std::string::npos) {
                return out;
            }
            std::size_t len = std::stoul(line.substr(open + 1));
            while (buf_.size() < len) {
                if (!fill_buffer()) {
                    throw std::runtime_error("odd_mailbox: connection closed in a literal");
                }
            }
            out += "\r\n" + buf_.substr(0, len);
            buf_.erase(0, len);
        }
    }

    int fd_ = -1;
    std::string buf_;
    unsigned tag_ = 0;
};

std::string join(const std::vector<std::string>& levels) {
    std::string out;
    for (std::size_t i = 0; i < levels.size(); ++i) {
        out += (i > 0 ? "/" : "") + levels[i];
    }
    return out;
}

std::string quoted(std::string_view s) {
    std::string q = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            q.push_back('\\');
        }
        q.push_back(c);
    }
    return q + "\"";
}

bool ok(const std::string& tagged) {
    std::size_t sp = tagged.find(' ');
    return sp != std::string::npos && tagged.compare(sp + 1, 3, "OK ") == 0;
}

void must(Session& s, const std::vector<Piece>& cmd, const std::string& what) {
    std::string r = s.run(cmd);
    if (!ok(r)) {
        throw std::runtime_error("odd_mailbox: " + what + " refused: " + r);
    }
}

std::string wire(const std::vector<std::string>& levels, char delim) {
    std::string out;
    for (std::size_t i = 0; i < levels.size(); ++i) {
        out += (i > 0 ? std::string(1, delim) : "") + mutf7(levels[i]);
    }
    return out;
}

char learn_delimiter(Session& s) {
    std::vector<std::string> lines;
    if (!ok(s.run({{"LIST \"\" \"\""}}, &lines)) || lines.empty()) {
        throw std::runtime_error("odd_mailbox: LIST \"\" \"\" failed");
    }
    // * LIST (\Noselect) "." ""
    std::size_t q = lines[0].find(") \"");
    return q == std::string::npos    ? '\0'
           : lines[0][q + 3] == '\\' ? lines[0][q + 4]
                                     : lines[0][q + 3];
}

void fill_folders(Session& s, const FillOptions& o, Filled& out) {
    std::vector<FolderCase> hollow;
    for (const auto& f : folder_cases()) {
        if (o.folder_filter && !o.folder_filter(f)) {
            continue;
        }
        out.folders.push_back(f);
        const std::string w = wire(f.levels, out.delimiter);
        if (w != "INBOX") {
            must(s, {{"CREATE " + quoted(w)}}, "CREATE " + f.name());
        }
        // Subscribed before a DELETE: servers (Dovecot) refuse to subscribe to a name that
        // does not exist, and keep the subscription of a deleted one.
        if (f.subscribe) {
            must(s, {{"SUBSCRIBE " + quoted(w)}}, "SUBSCRIBE " + f.name());
            out.subscribed.insert(f.name());
        }
        if (f.shape == Shape::plain) {
            out.selectable.insert(f.name());
            continue;
        }
        if (f.shape == Shape::noselect) {
            out.noselect.insert(f.name());
            if (o.noselect_by_delete) {
                hollow.push_back(f); // deleted once its children exist
                continue;
            }
        }
        must(s, {{"DELETE " + quoted(w)}}, "DELETE " + f.name());
    }
    for (const auto& f : hollow) {
        must(s, {{"DELETE " + quoted(wire(f.levels, out.delimiter))}}, "DELETE " + f.name());
    }
}

void fill_messages(Session& s, const FillOptions& o, Filled& out) {
    for (auto& m : message_cases()) {
        const Way way = o.message_way ? o.message_way(m) : Way::imap;
        if (way == Way::skip || out.selectable.count(join(m.folder)) == 0) {
            continue;
        }
        for (int i = 0; i < m.copies; ++i) {
            if (way == Way::raw) {
                if (!o.write_raw) {
                    throw std::runtime_error("odd_mailbox: " + m.id + " needs write_raw");
                }
                o.write_raw(m);
                continue;
            }
            std::string flags;
            for (const auto& f : m.flags) {
                flags += (flags.empty() ? "" : " ") + f;
            }
            must(s,
                 {{"APPEND " + quoted(wire(m.folder, out.delimiter)) + " (" + flags + ") " +
                   quoted(imap_date(m.date)) + " "},
                  {m.bytes, true}},
                 "APPEND " + m.id);
        }
        out.message_count += static_cast<std::size_t>(m.copies);
        m.bytes.clear();
        out.messages.push_back(std::move(m));
    }
}

} // namespace

std::string FolderCase::name() const {
    return join(levels);
}

std::vector<FolderCase> folder_cases() {
    std::vector<FolderCase> f;
    add_folders(f);
    return f;
}

std::vector<std::string> keyword_cases() {
    std::vector<std::string> k = {"$Forwarded", "$MDNSent", "$Junk", "$NotJunk", "$label1"};
    for (int i = 1; k.size() < 30; ++i) {
        k.push_back("kw" + std::string(i < 10 ? "0" : "") + std::to_string(i));
    }
    k.emplace_back("foo[bar"); // '[' is an ATOM-CHAR; parsers keyed on BODY[ trip on it
    return k;
}

std::vector<MessageCase> message_cases() {
    std::vector<MessageCase> m;
    const std::vector<std::vector<std::string>> inbox_flags = {
        {}, {"\\Seen"}, {"\\Answered", "\\Flagged"}, {"\\Draft"}, {"\\Deleted", "\\Seen"}};
    for (std::size_t i = 0; i < inbox_flags.size(); ++i) {
        m.push_back({"inbox-" + std::to_string(i),
                     {"INBOX"},
                     mail("inbox-" + std::to_string(i)),
                     inbox_flags[i],
                     kBase + static_cast<std::int64_t>(i) * 3600});
    }
    // One message in every other plain folder, so each one is a folder with mail to copy.
    std::int64_t t = kBase + 10 * 3600;
    for (const auto& f : folder_cases()) {
        if (f.shape != FolderCase::Shape::plain || f.levels == std::vector<std::string>{"INBOX"}) {
            continue;
        }
        m.push_back(
            {"in:" + f.name(), f.levels, mail("folder-" + std::to_string(t)), {"\\Seen"}, t});
        t += 3600;
    }
    add_odd_bytes(m);
    add_keywords(m);
    add_dates(m);
    add_big(m);
    return m;
}

Filled fill(const FillOptions& o) {
    Session s(o.host, o.port);
    must(s, {{"LOGIN " + quoted(o.user) + " " + quoted(o.password)}}, "LOGIN " + o.user);
    Filled out;
    out.delimiter = learn_delimiter(s);
    fill_folders(s, o, out);
    fill_messages(s, o, out);
    (void)s.run({{"LOGOUT"}});
    return out;
}

std::string mutf7(std::string_view in) {
    // UTF-8 → code points → UTF-16 runs in modified base64 ('&' … '-', ',' for '/').
    static const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
    std::string out;
    std::vector<std::uint16_t> run;
    auto flush = [&] {
        if (run.empty()) {
            return;
        }
        out += '&';
        std::uint32_t bits = 0;
        int nbits = 0;
        for (std::uint16_t u : run) {
            bits = (bits << 16) | u;
            nbits += 16;
            while (nbits >= 6) {
                nbits -= 6;
                out += b64[(bits >> nbits) & 0x3f];
            }
        }
        if (nbits > 0) {
            out += b64[(bits << (6 - nbits)) & 0x3f];
        }
        out += '-';
        run.clear();
    };
    for (std::size_t i = 0; i < in.size();) {
        auto c = static_cast<unsigned char>(in[i]);
        if (c >= 0x20 && c < 0x7f) {
            flush();
            out += c == '&' ? std::string("&-") : std::string(1, static_cast<char>(c));
            ++i;
            continue;
        }
        int len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        std::uint32_t cp = len == 1 ? c : c & (0xff >> (len + 1));
        for (int k = 1; k < len; ++k) {
            cp = (cp << 6) |
                 (static_cast<unsigned char>(in.at(i + static_cast<std::size_t>(k))) & 0x3f);
        }
        i += static_cast<std::size_t>(len);
        if (cp >= 0x10000) {
            cp -= 0x10000;
            run.push_back(static_cast<std::uint16_t>(0xd800 + (cp >> 10)));
            run.push_back(static_cast<std::uint16_t>(0xdc00 + (cp & 0x3ff)));
        } else {
            run.push_back(static_cast<std::uint16_t>(cp));
        }
    }
    flush();
    return out;
}

std::string imap_date(std::int64_t when) {
    static const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = static_cast<time_t>(when);
    struct tm tm {};
    ::gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%02d-%s-%04d %02d:%02d:%02d +0000", tm.tm_mday,
                  months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

} // namespace mft::odd
