// source_maildir.cpp — reads a Maildir tree and its Dovecot/Courier metadata, read-only.
#include "source_maildir.hpp"

#include "mutf7.hpp"
#include "source_links.hpp"
#include "source_maildir_parse.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace mf::copy::source {
namespace {

namespace fs = std::filesystem;

bool is_maildir(const fs::path& p) {
    std::error_code ec;
    return fs::is_directory(p / "cur", ec);
}

std::optional<std::string> read_small(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    return std::string(std::istreambuf_iterator<char>(in), {});
}

using maildir::base_of;
using maildir::flags_of;
using maildir::name_time;
using maildir::UidList;

// dovecot-uidlist or courierimapuiddb, when the file is there and its header makes sense.
std::optional<UidList> read_uidlist(const fs::path& p) {
    auto text = read_small(p);
    if (!text) {
        return std::nullopt;
    }
    return maildir::parse_uidlist(*text);
}

// "0 $Label1" lines: the keyword a maildir info letter 'a'+N stands for.
std::map<char, std::string> read_dovecot_keywords(const fs::path& dir) {
    auto text = read_small(dir / "dovecot-keywords");
    if (!text) {
        return {};
    }
    return maildir::parse_dovecot_keywords(*text);
}

// Courier's keywords per message base name. courierimapkeywords/:list names the
// keywords, then after a blank line maps "base:0 3" to their indexes; later changes are
// whole keyword lists (one per line) in files named after the message: "base" itself,
// else the ".N.base" with the highest N, replaces what :list says. Courier folds them
// into :list only now and then, so both must be read.
std::map<std::string, std::vector<std::string>> read_courier_keywords(const fs::path& dir) {
    std::map<std::string, std::vector<std::string>> out;
    fs::path kwdir = dir / "courierimapkeywords";
    if (auto text = read_small(kwdir / ":list")) {
        std::vector<std::string> names;
        bool mapping = false;
        for (const auto& l : split(*text, '\n')) {
            if (!mapping) {
                if (l.empty()) {
                    mapping = true;
                } else {
                    names.push_back(l);
                }
                continue;
            }
            auto colon = l.rfind(':');
            if (colon == std::string::npos || colon == 0) {
                continue;
            }
            auto& kws = out[l.substr(0, colon)];
            for (const auto& idx : split(std::string_view(l).substr(colon + 1), ' ')) {
                if (auto i = to_u64(idx); i && *i < names.size()) {
                    kws.push_back(names[*i]);
                }
            }
        }
    }
    std::map<std::string, std::pair<std::uint64_t, std::string>> updates; // base → (rank, file)
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(kwdir, ec)) {
        std::string n = e.path().filename().string();
        if (n == ":list" || n.empty()) {
            continue;
        }
        std::uint64_t rank = UINT64_MAX; // a plain "base" beats every ".N.base"
        std::string base = n;
        if (n[0] == '.') {
            auto dot = n.find('.', 1);
            auto num = dot == std::string::npos ? std::nullopt
                                                : to_u64(std::string_view(n).substr(1, dot - 1));
            if (!num) {
                continue;
            }
            rank = *num;
            base = n.substr(dot + 1);
        }
        auto [it, fresh] = updates.try_emplace(base, rank, n);
        if (!fresh && rank > it->second.first) {
            it->second = {rank, n};
        }
    }
    for (const auto& [base, update] : updates) {
        if (auto text = read_small(kwdir / update.second)) {
            auto& kws = out[base];
            kws.clear();
            for (const auto& l : split(*text, '\n')) {
                if (!l.empty()) {
                    kws.push_back(l);
                }
            }
        }
    }
    return out;
}

class MaildirSource final : public Source {
  public:
    MaildirSource(std::string root, bool follow_symlinks)
        : root_(std::move(root)), links_(follow_symlinks) {}

    [[nodiscard]] std::vector<TreeProblem> tree_problems() const override { return problems_; }

    [[nodiscard]] std::string label() const override { return "maildir:" + root_; }

    Result<std::vector<Folder>> folders() override {
        if (!is_maildir(root_)) {
            return make_error("open Maildir " + root_, "no cur/ directory: not a Maildir",
                              Scope::account);
        }
        std::map<std::vector<std::string>, Folder> found;
        Folder inbox;
        inbox.parts = {"INBOX"};
        inbox.locator = root_;
        found[inbox.parts] = inbox;
        links_ = LinkPolicy(links_.follow());
        problems_.clear();
        std::string why;
        (void)links_.enter(root_, why);
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(root_, ec)) {
            std::string n = e.path().filename().string();
            if (n.size() > 1 && n[0] == '.' && n != ".." && is_maildir(e.path())) {
                if (!walk_into(e, split(n.substr(1), '.'))) {
                    continue;
                }
                if (auto r = add(found, split(n.substr(1), '.'), e.path()); !r) {
                    return r.error();
                }
            }
        }
        if (ec) {
            return make_error("read Maildir " + root_, ec.message(), Scope::account);
        }
        if (auto r = add_fs_layout(found, fs::path(root_), {}); !r) {
            return r.error();
        }
        // Parents only implied by a child's name are listed as \Noselect.
        std::vector<std::vector<std::string>> parents;
        for (const auto& [parts, f] : found) {
            for (std::size_t n = 1; n < parts.size(); ++n) {
                std::vector<std::string> p(parts.begin(), parts.begin() + static_cast<long>(n));
                if (found.count(p) == 0) {
                    parents.push_back(p);
                }
            }
        }
        for (auto& p : parents) {
            Folder f;
            f.parts = p;
            f.noselect = true;
            found.emplace(p, f);
        }
        // A subscription to a folder that is gone (or never was) stays the user's: it is
        // listed as a subscribed \Noselect name, as an IMAP server's LSUB shows it.
        auto subs = subscriptions();
        for (const auto& name : subs) {
            Folder f;
            f.parts = split(name, '/');
            f.noselect = true;
            found.emplace(f.parts, f);
        }
        std::vector<Folder> out;
        for (auto& [parts, f] : found) {
            f.subscribed = subs.count(f.name()) != 0;
            out.push_back(f);
        }
        return out;
    }

    Result<FolderContents> messages(const Folder& f) override {
        FolderContents out;
        if (f.noselect) {
            return out;
        }
        fs::path dir(f.locator);
        auto kw = read_dovecot_keywords(dir);
        auto courier_kw = read_courier_keywords(dir);
        std::optional<UidList> uids = read_uidlist(dir / "dovecot-uidlist");
        if (!uids) {
            uids = read_uidlist(dir / "courierimapuiddb");
        }
        struct File {
            std::string sub; // "cur" or "new"
            std::string name;
        };
        std::vector<File> files;
        for (const char* sub : {"cur", "new"}) {
            std::error_code ec;
            for (const auto& e : fs::directory_iterator(dir / sub, ec)) {
                std::string n = e.path().filename().string();
                if (n.empty() || n[0] == '.') {
                    continue;
                }
                if (links_.refuses(e)) {
                    out.problems.push_back(LinkPolicy::refusal_text(dir / sub / n));
                    continue;
                }
                if (!e.is_regular_file(ec)) {
                    out.problems.push_back((dir / sub / n).string() + ": not a regular file");
                    continue;
                }
                if (base_of(n).empty()) {
                    out.problems.push_back((dir / sub / n).string() +
                                           ": not a Maildir file name (nothing before ':')");
                    continue;
                }
                files.push_back({sub, n});
            }
            if (ec) {
                return make_error("read Maildir folder " + (dir / sub).string(), ec.message(),
                                  Scope::folder);
            }
        }
        std::sort(files.begin(), files.end(),
                  [](const File& a, const File& b) { return a.name < b.name; });
        out.uidvalidity = uids ? uids->uidvalidity : synthetic_validity(dir);
        std::uint32_t next = uids ? uids->next : 1;
        out.uidnext = uids ? uids->next : 0;
        std::set<std::uint32_t> used;
        std::vector<Message> unlisted;
        for (const auto& file : files) {
            Message m;
            m.locator = file.sub + "/" + file.name;
            struct stat st {};
            if (::stat((dir / m.locator).c_str(), &st) != 0) {
                out.problems.push_back((dir / m.locator).string() + ": " + std::strerror(errno));
                continue;
            }
            m.when =
                st.st_mtime > 0 ? std::optional<std::int64_t>(st.st_mtime) : name_time(file.name);
            m.flags = flags_of(file.name, kw, courier_kw);
            auto size = wire_size(dir / m.locator, file.name);
            if (!size) {
                out.problems.push_back(size.error().message());
                continue;
            }
            m.size = *size;
            std::string base = base_of(file.name);
            m.key = base;
            if (uids) {
                if (auto it = uids->by_base.find(base);
                    it != uids->by_base.end() && used.insert(it->second).second) {
                    m.uid = it->second;
                    m.keep_uid = it->second;
                    out.messages.push_back(std::move(m));
                    continue;
                }
            }
            unlisted.push_back(std::move(m));
        }
        for (auto& m : unlisted) {
            while (used.count(next) != 0) {
                ++next;
            }
            m.uid = next;
            used.insert(next++);
            out.messages.push_back(std::move(m));
        }
        std::sort(out.messages.begin(), out.messages.end(),
                  [](const Message& a, const Message& b) { return a.uid < b.uid; });
        return out;
    }

    Result<void> read(const Folder& f, const Message& m, const Sink& sink) override {
        fs::path p = fs::path(f.locator) / m.locator;
        std::string what = "read " + p.string();
        int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | (links_.follow() ? 0 : O_NOFOLLOW));
        if (fd < 0) {
            return make_error(what, std::strerror(errno), Scope::message);
        }
        struct Closer {
            int fd;
            ~Closer() { ::close(fd); }
        } closer{fd};
        std::array<char, 65536> buf{};
        std::string out;
        out.reserve(buf.size() * 2);
        std::uint64_t sent = 0;
        char prev = '\0';
        while (true) {
            ssize_t n = ::read(fd, buf.data(), buf.size());
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                return make_error(what, std::strerror(errno), Scope::message);
            }
            if (n == 0) {
                break;
            }
            out.clear();
            for (ssize_t i = 0; i < n; ++i) {
                char c = buf[static_cast<std::size_t>(i)];
                if (c == '\n' && prev != '\r') {
                    out += '\r';
                }
                out += c;
                prev = c;
            }
            sent += out.size();
            if (sent > m.size) {
                return make_error(what, "the file grew while it was copied", Scope::message);
            }
            if (auto r = sink(out); !r) {
                return r;
            }
        }
        if (sent != m.size) {
            return make_error(what,
                              "the file changed while it was copied (" + std::to_string(sent) +
                                  " bytes, expected " + std::to_string(m.size) + ")",
                              Scope::message);
        }
        return {};
    }

  private:
    // Whether the walk may go into folder directory `e` (named `wire`): a link only when
    // following, and no directory twice; what is left out is reported.
    bool walk_into(const fs::directory_entry& e, const std::vector<std::string>& wire) {
        std::string why;
        if (links_.refuses(e)) {
            why = LinkPolicy::refusal_text(e.path());
        } else if (links_.enter(e.path(), why)) {
            return true;
        }
        std::string name;
        for (const auto& w : wire) {
            auto d = imap::mutf7_decode(w);
            name += (name.empty() ? "" : "/") + (d ? *d : w);
        }
        problems_.push_back({name, why});
        return false;
    }

    Result<void> add(std::map<std::vector<std::string>, Folder>& found,
                     const std::vector<std::string>& wire, const fs::path& dir) {
        Folder f;
        for (const auto& w : wire) {
            auto d = imap::mutf7_decode(w);
            if (!d || w.empty()) {
                // A name Dovecot or Courier could not have written; keep it visible by
                // its raw bytes rather than lose the folder.
                f.parts.push_back(w);
            } else {
                f.parts.push_back(*d);
            }
        }
        if (f.parts.size() == 1 && f.parts[0] == "INBOX") {
            return {}; // ".INBOX" would shadow the root
        }
        f.locator = dir.string();
        found.emplace(f.parts, f);
        return {};
    }

    // The subdirectory layout: Sub/Folder/{cur,new,tmp} below the root.
    Result<void> add_fs_layout(std::map<std::vector<std::string>, Folder>& found,
                               const fs::path& dir, std::vector<std::string> prefix) {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(dir, ec)) {
            std::string n = e.path().filename().string();
            if (n.empty() || n[0] == '.' || n == "cur" || n == "new" || n == "tmp" ||
                n == "courierimapkeywords" || !e.is_directory(ec)) {
                continue;
            }
            auto parts = prefix;
            parts.push_back(n);
            if (!walk_into(e, parts)) {
                continue;
            }
            if (is_maildir(e.path())) {
                if (auto r = add(found, parts, e.path()); !r) {
                    return r;
                }
            }
            if (prefix.size() < 64) {
                if (auto r = add_fs_layout(found, e.path(), parts); !r) {
                    return r;
                }
            }
        }
        return {};
    }

    // Dovecot's `subscriptions` (version 2: "V\t2" then names with TAB between levels;
    // version 1: one name a line with the separator) and Courier's courierimapsubscribed
    // ("INBOX.Sub.Folder").
    std::set<std::string> subscriptions() const {
        std::set<std::string> out;
        auto decode = [](const std::vector<std::string>& parts) {
            std::string name;
            for (std::size_t i = 0; i < parts.size(); ++i) {
                auto d = imap::mutf7_decode(parts[i]);
                name += (i != 0 ? "/" : "") + (d ? *d : parts[i]);
            }
            return name;
        };
        if (auto text = read_small(fs::path(root_) / "subscriptions")) {
            auto lines = split(*text, '\n');
            bool v2 = !lines.empty() && lines[0].rfind("V\t", 0) == 0;
            for (std::size_t i = v2 ? 1 : 0; i < lines.size(); ++i) {
                if (!lines[i].empty()) {
                    out.insert(decode(split(lines[i], v2 ? '\t' : '.')));
                }
            }
        }
        if (auto text = read_small(fs::path(root_) / "courierimapsubscribed")) {
            for (const auto& l : split(*text, '\n')) {
                auto parts = split(l, '.');
                if (parts.size() > 1 && parts[0] == "INBOX") {
                    parts.erase(parts.begin());
                }
                if (!l.empty()) {
                    out.insert(decode(parts));
                }
            }
        }
        return out;
    }

    static std::uint32_t synthetic_validity(const fs::path& dir) {
        struct stat st {};
        if (::stat(dir.c_str(), &st) == 0 && st.st_ctime > 0) {
            return static_cast<std::uint32_t>(st.st_ctime);
        }
        return 1;
    }

    // Size with bare LF counted as CRLF: Dovecot's ",W=" in the name when present, else
    // counted from the bytes.
    static Result<std::uint64_t> wire_size(const fs::path& p, const std::string& name) {
        if (auto w = maildir::name_wire_size(name)) {
            return *w;
        }
        std::ifstream in(p, std::ios::binary);
        if (!in) {
            return make_error("read " + p.string(), std::strerror(errno), Scope::message);
        }
        // memchr jumps from line end to line end: a large tree is listed at memory speed
        // on every run, so a byte-by-byte loop here was most of a no-op run's time.
        std::uint64_t size = 0;
        char prev = '\0';
        std::array<char, 65536> buf{};
        while (in) {
            in.read(buf.data(), buf.size());
            auto n = static_cast<std::size_t>(in.gcount());
            size += n;
            const char* p0 = buf.data();
            for (const char* nl = p0;
                 (nl = static_cast<const char*>(std::memchr(nl, '\n', n - (nl - p0)))) != nullptr;
                 ++nl) {
                char before = nl == p0 ? prev : nl[-1];
                size += before != '\r' ? 1 : 0;
            }
            if (n > 0) {
                prev = buf[n - 1];
            }
        }
        return size;
    }

    std::string root_;
    LinkPolicy links_;
    std::vector<TreeProblem> problems_; // of the last folders()
};

} // namespace

namespace maildir {

std::string base_of(std::string_view name) {
    return std::string(name.substr(0, name.find(':')));
}

std::optional<UidList> parse_uidlist(std::string_view text) {
    auto lines = split(text, '\n');
    if (lines.empty()) {
        return std::nullopt;
    }
    UidList u;
    auto head = split(lines[0], ' ');
    if (head.size() >= 3 && head[0] == "1") {
        u.uidvalidity = static_cast<std::uint32_t>(to_u64(head[1]).value_or(0));
        u.next = static_cast<std::uint32_t>(to_u64(head[2]).value_or(1));
    } else if (!head.empty() && head[0] == "3") {
        for (const auto& t : head) {
            if (t.size() > 1 && t[0] == 'V') {
                u.uidvalidity = static_cast<std::uint32_t>(to_u64(t.substr(1)).value_or(0));
            } else if (t.size() > 1 && t[0] == 'N') {
                u.next = static_cast<std::uint32_t>(to_u64(t.substr(1)).value_or(1));
            }
        }
    } else {
        return std::nullopt;
    }
    if (u.uidvalidity == 0) {
        return std::nullopt;
    }
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const auto& l = lines[i];
        auto sp = l.find(' ');
        if (sp == std::string::npos) {
            continue;
        }
        auto uid = to_u64(std::string_view(l).substr(0, sp));
        if (!uid || *uid == 0 || *uid > 0xffffffffu) {
            continue;
        }
        std::string name;
        if (auto colon = l.find(" :"); colon != std::string::npos) {
            name = l.substr(colon + 2);
        } else {
            name = l.substr(l.rfind(' ') + 1);
        }
        if (!name.empty()) {
            u.by_base[base_of(name)] = static_cast<std::uint32_t>(*uid);
            u.next = std::max(u.next, static_cast<std::uint32_t>(*uid + 1));
        }
    }
    return u;
}

std::map<char, std::string> parse_dovecot_keywords(std::string_view text) {
    std::map<char, std::string> out;
    for (const auto& l : split(text, '\n')) {
        auto sp = l.find(' ');
        auto idx = to_u64(std::string_view(l).substr(0, sp));
        if (sp != std::string::npos && idx && *idx < 26 && sp + 1 < l.size()) {
            out[static_cast<char>('a' + *idx)] = l.substr(sp + 1);
        }
    }
    return out;
}

std::optional<std::int64_t> name_time(const std::string& name) {
    auto t = to_u64(std::string_view(name).substr(0, name.find('.')));
    if (!t || *t == 0) {
        return std::nullopt;
    }
    return static_cast<std::int64_t>(*t);
}

std::string flags_of(const std::string& name, const std::map<char, std::string>& kw,
                     const std::map<std::string, std::vector<std::string>>& courier) {
    std::vector<std::string> out;
    if (auto c = courier.find(base_of(name)); c != courier.end()) {
        out = c->second;
    }
    auto pos = name.find(":2,");
    if (pos == std::string::npos) {
        return join_flags(std::move(out));
    }
    for (char c : name.substr(pos + 3)) {
        switch (c) {
        case 'D':
            out.emplace_back("\\Draft");
            break;
        case 'F':
            out.emplace_back("\\Flagged");
            break;
        case 'R':
            out.emplace_back("\\Answered");
            break;
        case 'S':
            out.emplace_back("\\Seen");
            break;
        case 'T':
            out.emplace_back("\\Deleted");
            break;
        default:
            if (auto it = kw.find(c); it != kw.end()) {
                out.push_back(it->second);
            }
        }
    }
    return join_flags(std::move(out));
}

std::optional<std::uint64_t> name_wire_size(const std::string& name) {
    std::string base = base_of(name);
    if (auto w = base.find(",W="); w != std::string::npos) {
        auto end = base.find(',', w + 3);
        return to_u64(std::string_view(base).substr(
            w + 3, end == std::string::npos ? std::string::npos : end - w - 3));
    }
    return std::nullopt;
}

} // namespace maildir

std::unique_ptr<Source> open_maildir(const std::string& root, bool follow_symlinks) {
    return std::make_unique<MaildirSource>(root, follow_symlinks);
}

} // namespace mf::copy::source
