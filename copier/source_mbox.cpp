// source_mbox.cpp — reads mbox files (Dovecot's, UW-IMAP's, procmail's) read-only, split
// and filtered the way Dovecot 2.3 shows them over IMAP. Behaviour: source_mbox.hpp.
#include "source_mbox.hpp"

#include "copy_state.hpp"
#include "mutf7.hpp"
#include "source_links.hpp"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace mf::copy::source {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kPiece = std::size_t{64} * 1024; // longest piece of a line handled at once
constexpr std::uint64_t kNoLimit = std::numeric_limits<std::uint64_t>::max();

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::vector<std::string> words(std::string_view s) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) {
            ++i;
        }
        std::size_t start = i;
        while (i < s.size() && s[i] != ' ' && s[i] != '\t') {
            ++i;
        }
        if (i > start) {
            out.emplace_back(s.substr(start, i - start));
        }
    }
    return out;
}

std::string errno_what() {
    return std::strerror(errno);
}

// An fd closed when it goes out of scope.
class Fd {
  public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    [[nodiscard]] int get() const { return fd_; }

  private:
    int fd_;
};

// Read-only, without touching atime where the kernel lets us (owner or CAP_FOWNER): mail
// clients and biff tell "new mail" by atime < mtime.
int open_quietly(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOATIME);
    if (fd < 0 && errno == EPERM) {
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    }
    return fd;
}

// One piece of a line: the whole line (with its line break) or, for a line longer than
// kPiece, a part of it. `first`: the piece starts the line; `last`: it ends it.
struct Piece {
    std::uint64_t off = 0;
    std::string_view bytes;
    bool first = true;
    bool last = true;
};

// Lines of [begin, end) of a file through one bounded buffer.
class LineReader {
  public:
    LineReader(int fd, std::uint64_t begin, std::uint64_t end)
        : fd_(fd), off_(begin), next_read_(begin), end_(end) {}

    // False at the end.
    Result<bool> next(Piece& p) {
        for (;;) {
            std::size_t avail = buf_.size() - pos_;
            std::size_t window = std::min(avail, kPiece);
            const char* start = buf_.data() + pos_;
            const void* nl = std::memchr(start, '\n', window);
            std::size_t len = 0;
            bool last = true;
            if (nl != nullptr) {
                len = static_cast<std::size_t>(static_cast<const char*>(nl) - start) + 1;
            } else if (avail >= kPiece) {
                // Never split between CR and LF: a CRLF stays one line break.
                len = start[kPiece - 1] == '\r' ? kPiece - 1 : kPiece;
                last = false;
            } else if (next_read_ < end_) {
                if (auto r = fill(); !r) {
                    return r.error();
                }
                continue;
            } else if (avail > 0) {
                len = avail;
            } else {
                return false;
            }
            p.off = off_;
            p.bytes = std::string_view(start, len);
            p.first = at_line_start_;
            p.last = last;
            at_line_start_ = last;
            pos_ += len;
            off_ += len;
            return true;
        }
    }

  private:
    Result<void> fill() {
        buf_.erase(0, pos_);
        pos_ = 0;
        std::size_t want = static_cast<std::size_t>(
            std::min<std::uint64_t>(2 * kPiece - buf_.size(), end_ - next_read_));
        std::size_t old = buf_.size();
        buf_.resize(old + want);
        for (;;) {
            ssize_t n = ::pread(fd_, buf_.data() + old, want, static_cast<off_t>(next_read_));
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                buf_.resize(old);
                return make_error("read at byte " + std::to_string(next_read_), errno_what(),
                                  Scope::folder);
            }
            buf_.resize(old + static_cast<std::size_t>(n));
            if (n == 0) {
                end_ = next_read_; // the file shrank: what is there is all there is
            }
            next_read_ += static_cast<std::uint64_t>(n);
            return {};
        }
    }

    int fd_;
    std::uint64_t off_;       // file offset of buf_[pos_]
    std::uint64_t next_read_; // file offset of the byte after buf_
    std::uint64_t end_;
    std::string buf_;
    std::size_t pos_ = 0;
    bool at_line_start_ = true;
};

// Headers Dovecot's mbox code keeps to itself and never shows over IMAP.
bool hidden_header(std::string_view line) {
    auto colon = line.find(':');
    if (colon == std::string_view::npos) {
        return false;
    }
    auto name = line.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) {
        name.remove_suffix(1);
    }
    for (const char* h :
         {"Content-Length", "Status", "X-IMAP", "X-IMAPbase", "X-Keywords", "X-Status", "X-UID"}) {
        if (iequal(name, h)) {
            return true;
        }
    }
    return false;
}

// Turns the raw lines of one message into the bytes Dovecot sends: hidden headers out,
// bare LF to CRLF, optional From_ unquoting. The line break of the last line is held
// back until the next line shows it is not the separator before a From_ line.
class Writer {
  public:
    Writer(MboxQuoting q, const Sink* sink) : q_(q), sink_(sink) {}

    Result<void> feed(const Piece& p) {
        std::string_view b = p.bytes;
        std::size_t term = 0;
        if (p.last && !b.empty() && b.back() == '\n') {
            term = b.size() >= 2 && b[b.size() - 2] == '\r' ? 2 : 1;
        }
        std::string_view content = b.substr(0, b.size() - term);
        if (pending_) {
            pending_ = false;
            if (auto r = emit("\r\n"); !r) {
                return r;
            }
        }
        std::size_t skip = 0;
        if (p.first) {
            if (in_headers_) {
                if (content.empty() && term != 0) {
                    in_headers_ = false;
                    hidden_ = false;
                } else if (!content.empty() && (content[0] == ' ' || content[0] == '\t')) {
                    // a continuation line belongs to the header above it
                } else {
                    hidden_ = hidden_header(content);
                }
            }
            skip = unquote(content);
        }
        if (hidden_) {
            open_ = false;
            return {};
        }
        if (auto r = emit(content.substr(skip)); !r) {
            return r;
        }
        if (term != 0) {
            pending_ = true;
            pending_end_ = p.off + b.size();
            open_ = false;
        } else {
            open_ = p.last || open_;
        }
        return {};
    }

    // `limit`: where the message's bytes end in the file; a held-back line break past it
    // was the separator. A header block cut without a line break gets one (Dovecot's
    // header filter ends every header line).
    Result<void> finish(std::uint64_t limit) {
        bool end_line = (pending_ && (pending_end_ <= limit || in_headers_)) ||
                        (!pending_ && open_ && in_headers_);
        pending_ = false;
        open_ = false;
        if (end_line) {
            if (auto r = emit("\r\n"); !r) {
                return r;
            }
        }
        return flush();
    }

    [[nodiscard]] std::uint64_t size() const { return size_; }
    [[nodiscard]] bool in_headers() const { return in_headers_; }

  private:
    [[nodiscard]] std::size_t unquote(std::string_view line) const {
        switch (q_) {
        case MboxQuoting::none:
            return 0;
        case MboxQuoting::mboxrd: {
            std::size_t n = line.find_first_not_of('>');
            return n != 0 && n != std::string_view::npos && line.substr(n).rfind("From ", 0) == 0
                       ? 1
                       : 0;
        }
        case MboxQuoting::mboxo:
            return line.rfind(">From ", 0) == 0 ? 1 : 0;
        }
        return 0;
    }

    Result<void> emit(std::string_view s) {
        size_ += s.size();
        if (sink_ == nullptr) {
            return {};
        }
        out_.append(s);
        return out_.size() >= kPiece ? flush() : Result<void>{};
    }

    Result<void> flush() {
        if (sink_ == nullptr || out_.empty()) {
            return {};
        }
        auto r = (*sink_)(out_);
        out_.clear();
        return r;
    }

    MboxQuoting q_;
    const Sink* sink_;
    std::string out_;
    std::uint64_t size_ = 0;
    bool in_headers_ = true;
    bool hidden_ = false;
    bool pending_ = false;
    std::uint64_t pending_end_ = 0;
    bool open_ = false; // the last line shown has no line break yet
};

// X-IMAPbase / X-IMAP: "<uidvalidity> <next uid> [keyword…]".
struct Base {
    std::uint32_t uidvalidity = 0;
    std::set<std::string> keywords;
};

Base parse_base(std::string_view value) {
    Base b;
    auto w = words(value);
    if (w.size() >= 2) {
        auto v = to_u64(w[0]);
        b.uidvalidity = v && *v <= 0xffffffffu ? static_cast<std::uint32_t>(*v) : 0;
        b.keywords.insert(w.begin() + 2, w.end());
    }
    return b;
}

// One message while the file is indexed.
struct Indexed {
    std::uint64_t from_off = 0;
    std::uint64_t content_start = 0;
    std::uint64_t content_end = 0;
    std::uint64_t guard = 0; // with a valid Content-Length: no From_ line before this
    std::optional<std::uint64_t> content_length;
    std::optional<std::int64_t> when;
    std::vector<std::string> flags;
    std::vector<std::string> keywords;
    std::optional<std::uint32_t> uid;
    bool pseudo = false;
    std::uint64_t size = 0;
    std::string digest;
};

class Indexer {
  public:
    Indexer(const std::string& path, int fd, std::uint64_t file_size, MboxQuoting q)
        : path_(path), fd_(fd), file_size_(file_size), q_(q) {}

    Result<FolderContents> run() {
        FolderContents out;
        LineReader lr(fd_, 0, file_size_);
        Piece p;
        std::size_t prev_term = 0;
        for (;;) {
            auto more = lr.next(p);
            if (!more) {
                return context(more.error());
            }
            if (!*more) {
                break;
            }
            std::optional<std::int64_t> date;
            if (p.first && p.last && p.bytes.rfind("From ", 0) == 0 &&
                (!cur_ || p.off >= cur_->guard)) {
                date = mbox_from_date(strip_break(p.bytes));
            }
            if (date) {
                if (cur_) {
                    if (auto r = close(p.off - prev_term); !r) {
                        return r.error();
                    }
                }
                start(p, *date);
            } else if (!cur_) {
                return make_error(
                    "read mbox " + path_,
                    "byte " + std::to_string(p.off) +
                        ": not an mbox file (it does not start with a From_ line: \"" +
                        sanitize_reply(strip_break(p.bytes.substr(0, 60))) + "\")",
                    Scope::folder);
            } else if (auto r = line(p); !r) {
                return r.error();
            }
            std::string_view b = p.bytes;
            prev_term = !p.last || b.back() != '\n'                  ? 0
                        : (b.size() >= 2 && b[b.size() - 2] == '\r') ? 2
                                                                     : 1;
        }
        if (cur_) {
            std::uint64_t end = file_size_ - prev_term;
            if (cur_->content_length && cur_->guard != 0) {
                end = cur_->guard;
            }
            if (auto r = close(end); !r) {
                return r.error();
            }
        }
        return finish(std::move(out));
    }

  private:
    static std::string_view strip_break(std::string_view s) {
        while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) {
            s.remove_suffix(1);
        }
        return s;
    }

    Error context(Error e) const {
        e.what = "read mbox " + path_ + ": " + e.what;
        e.scope = Scope::folder;
        return e;
    }

    void start(const Piece& p, std::int64_t when) {
        cur_.emplace();
        cur_->from_off = p.off;
        cur_->content_start = p.off + p.bytes.size();
        cur_->when = when;
        writer_.emplace(q_, nullptr);
        hasher_.update(strip_break(p.bytes));
        hasher_.update("\n");
    }

    Result<void> line(const Piece& p) {
        const bool was_header = writer_->in_headers();
        if (auto r = writer_->feed(p); !r) {
            return r;
        }
        if (!was_header || !p.first) {
            return {};
        }
        std::string_view l = strip_break(p.bytes);
        if (!writer_->in_headers()) {
            body_starts(p.off + p.bytes.size());
            return {};
        }
        if (!l.empty() && l[0] != ' ' && l[0] != '\t' && !hidden_header(l)) {
            hasher_.update(l);
            hasher_.update("\n");
        }
        header(l);
        return {};
    }

    void header(std::string_view l) {
        auto colon = l.find(':');
        if (colon == std::string_view::npos) {
            return;
        }
        auto name = l.substr(0, colon);
        while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) {
            name.remove_suffix(1);
        }
        auto value = l.substr(colon + 1);
        auto trimmed = words(value);
        if (iequal(name, "Status")) {
            if (value.find('R') != std::string_view::npos) {
                cur_->flags.emplace_back("\\Seen");
            }
        } else if (iequal(name, "X-Status")) {
            for (char c : value) {
                switch (c) {
                case 'A':
                    cur_->flags.emplace_back("\\Answered");
                    break;
                case 'F':
                    cur_->flags.emplace_back("\\Flagged");
                    break;
                case 'T':
                    cur_->flags.emplace_back("\\Draft");
                    break;
                case 'D':
                    cur_->flags.emplace_back("\\Deleted");
                    break;
                default:
                    break;
                }
            }
        } else if (iequal(name, "X-Keywords")) {
            cur_->keywords.insert(cur_->keywords.end(), trimmed.begin(), trimmed.end());
        } else if (iequal(name, "X-UID")) {
            auto v = trimmed.empty() ? std::nullopt : to_u64(trimmed[0]);
            if (v && *v > 0 && *v <= 0xffffffffu) {
                cur_->uid = static_cast<std::uint32_t>(*v);
            }
        } else if (iequal(name, "Content-Length")) {
            cur_->content_length = trimmed.size() == 1 ? to_u64(trimmed[0]) : std::nullopt;
        } else if (first_ && (iequal(name, "X-IMAPbase") || iequal(name, "X-IMAP"))) {
            base_ = parse_base(value);
            cur_->pseudo = cur_->pseudo || iequal(name, "X-IMAP");
        }
    }

    // Content-Length counts only when the body of that length is followed by EOF (with or
    // without one line break) or by a line break and a valid From_ line.
    void body_starts(std::uint64_t body) {
        if (!cur_->content_length || *cur_->content_length > file_size_ - body) {
            cur_->content_length.reset();
            return;
        }
        std::uint64_t at = body + *cur_->content_length;
        std::string tail(std::min<std::uint64_t>(1024, file_size_ - at), '\0');
        ssize_t n =
            tail.empty() ? 0 : ::pread(fd_, tail.data(), tail.size(), static_cast<off_t>(at));
        if (n < 0) {
            cur_->content_length.reset();
            return;
        }
        tail.resize(static_cast<std::size_t>(n));
        bool ok = tail.empty() || tail == "\n" || tail == "\r\n";
        for (std::string_view sep : {"\nFrom ", "\r\nFrom "}) {
            if (!ok && tail.rfind(sep, 0) == 0) {
                auto from = std::string_view(tail).substr(sep.size() - 5);
                auto eol = from.find('\n');
                ok = eol != std::string_view::npos &&
                     mbox_from_date(strip_break(from.substr(0, eol))).has_value();
            }
        }
        if (ok) {
            cur_->guard = at;
        } else {
            cur_->content_length.reset();
        }
    }

    Result<void> close(std::uint64_t end) {
        if (auto r = writer_->finish(end); !r) {
            return r;
        }
        cur_->content_end = std::max(end, cur_->content_start);
        cur_->size = writer_->size();
        // The size is part of the name: a message cut short (a delivery still being written,
        // a truncated file) and the same message complete must not pass for one another.
        hasher_.update("size " + std::to_string(cur_->size));
        cur_->digest = hex(hasher_.finish());
        bool pseudo = first_ && cur_->pseudo;
        first_ = false;
        if (!pseudo) {
            done_.push_back(std::move(*cur_));
        }
        cur_.reset();
        return {};
    }

    Result<FolderContents> finish(FolderContents out) {
        bool clean = base_.uidvalidity != 0;
        std::uint32_t last = 0;
        for (const auto& m : done_) {
            clean = clean && m.uid && *m.uid > last;
            last = m.uid.value_or(last);
        }
        out.uidvalidity = clean ? base_.uidvalidity : 1;
        std::map<std::string, int> seen;
        for (auto& i : done_) {
            Message m;
            m.size = i.size;
            m.when = i.when;
            m.locator = std::to_string(i.from_off) + " " + std::to_string(i.content_start) + " " +
                        std::to_string(i.content_end);
            bool known = std::all_of(i.keywords.begin(), i.keywords.end(),
                                     [&](const auto& k) { return base_.keywords.count(k) != 0; });
            if (known) {
                i.flags.insert(i.flags.end(), i.keywords.begin(), i.keywords.end());
            }
            m.flags = join_flags(std::move(i.flags));
            m.uid = clean ? *i.uid : static_cast<std::uint32_t>(out.messages.size() + 1);
            int n = ++seen[i.digest];
            m.key = "mbox:" + i.digest;
            // Appended: GCC 12's -Wrestrict misfires on `"#" + to_string(n)` (bug 105651).
            if (n > 1) {
                m.key += '#';
                m.key += std::to_string(n);
            }
            out.messages.push_back(std::move(m));
        }
        return out;
    }

    std::string path_;
    int fd_;
    std::uint64_t file_size_;
    MboxQuoting q_;
    std::optional<Indexed> cur_;
    std::optional<Writer> writer_;
    Hasher hasher_;
    std::vector<Indexed> done_;
    Base base_;
    bool first_ = true;
};

std::optional<std::string> read_small(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string decode_name(const std::string& raw) {
    auto d = imap::mutf7_decode(raw);
    return d && !raw.empty() ? *d : raw;
}

class MboxSource final : public Source {
  public:
    MboxSource(std::string spec, MboxQuoting q, bool follow)
        : spec_(std::move(spec)), q_(q), links_(follow) {
        root_ = spec_;
        if (auto at = spec_.rfind(":INBOX="); at != std::string::npos) {
            root_ = spec_.substr(0, at);
            inbox_ = spec_.substr(at + 7);
        }
    }

    [[nodiscard]] std::vector<TreeProblem> tree_problems() const override { return problems_; }

    [[nodiscard]] std::string label() const override {
        switch (q_) {
        case MboxQuoting::none:
            return "mbox:" + spec_;
        case MboxQuoting::mboxrd:
            return "mboxrd:" + spec_;
        case MboxQuoting::mboxo:
            return "mboxo:" + spec_;
        }
        return "mbox:" + spec_;
    }

    Result<std::vector<Folder>> folders() override {
        struct stat st {};
        if (::stat(root_.c_str(), &st) != 0) {
            return make_error("open mbox " + root_, errno_what(), Scope::account);
        }
        std::vector<Folder> out;
        if (S_ISREG(st.st_mode)) {
            Folder inbox;
            inbox.parts = {"INBOX"};
            inbox.locator = root_;
            out.push_back(std::move(inbox));
            return out;
        }
        if (!S_ISDIR(st.st_mode)) {
            return make_error("open mbox " + root_, "neither a file nor a directory",
                              Scope::account);
        }
        std::string inbox = inbox_;
        links_ = LinkPolicy(links_.follow());
        problems_.clear();
        std::string why;
        (void)links_.enter(root_, why);
        for (const char* n : {"inbox", "INBOX"}) {
            std::error_code ec;
            if (inbox.empty() && !links_.follow() && fs::is_symlink(fs::path(root_) / n, ec)) {
                problems_.push_back({"INBOX", LinkPolicy::refusal_text(fs::path(root_) / n)});
            } else if (inbox.empty() && fs::is_regular_file(fs::path(root_) / n, ec)) {
                inbox = (fs::path(root_) / n).string();
            }
        }
        std::map<std::vector<std::string>, Folder> found;
        if (!inbox.empty()) {
            Folder f;
            f.parts = {"INBOX"};
            f.locator = inbox;
            found[f.parts] = f;
        }
        if (auto r = walk(found, root_, {}, inbox); !r) {
            return r.error();
        }
        auto subs = subscriptions();
        for (auto& [parts, f] : found) {
            f.subscribed = subs.count(f.name()) != 0;
            out.push_back(f);
        }
        return out;
    }

    Result<FolderContents> messages(const Folder& f) override {
        if (f.noselect) {
            return FolderContents{};
        }
        Fd fd(open_quietly(f.locator));
        if (fd.get() < 0) {
            return make_error("open mbox " + f.locator, errno_what(), Scope::folder);
        }
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) {
            return make_error("stat mbox " + f.locator, errno_what(), Scope::folder);
        }
        (void)::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
        Indexer ix(f.locator, fd.get(), static_cast<std::uint64_t>(st.st_size), q_);
        auto out = ix.run();
        // A delivery (or Dovecot) wrote to the file meanwhile: its last message may be cut
        // short in this index. Read it again next run rather than copy half a message.
        struct stat after {};
        if (out && (::fstat(fd.get(), &after) != 0 || after.st_size != st.st_size ||
                    after.st_mtim.tv_sec != st.st_mtim.tv_sec ||
                    after.st_mtim.tv_nsec != st.st_mtim.tv_nsec)) {
            return make_error("read mbox " + f.locator,
                              "the file changed while it was indexed (a delivery?); it is read "
                              "again on the next run",
                              Scope::folder, Retry::later);
        }
        return out;
    }

    Result<void> read(const Folder& f, const Message& m, const Sink& sink) override {
        std::string what = "read mbox " + f.locator + " message at byte " +
                           m.locator.substr(0, m.locator.find(' '));
        std::uint64_t from = 0;
        std::uint64_t begin = 0;
        std::uint64_t end = 0;
        if (std::sscanf(m.locator.c_str(), "%" SCNu64 " %" SCNu64 " %" SCNu64, &from, &begin,
                        &end) != 3 ||
            begin < from || end < begin) {
            return make_error(what, "bad locator \"" + m.locator + "\"", Scope::internal);
        }
        Fd fd(open_quietly(f.locator));
        if (fd.get() < 0) {
            return make_error(what, errno_what(), Scope::message);
        }
        char head[5] = {};
        if (::pread(fd.get(), head, sizeof head, static_cast<off_t>(from)) != sizeof head ||
            std::string_view(head, sizeof head) != "From ") {
            return make_error(what, "the file changed since it was indexed (no From_ line there)",
                              Scope::message, Retry::later);
        }
        // The message must still end where it ended: at EOF or before a line break and
        // the next From_ line (a same-size rewrite of the range is caught here). An empty
        // message (its From_ line right before the next one) ends at that next From_ line:
        // the line break between them is its own From_ line's.
        char after[7] = {};
        ssize_t got = ::pread(fd.get(), after, sizeof after, static_cast<off_t>(end));
        std::string_view tail(after, got > 0 ? static_cast<std::size_t>(got) : 0);
        if (got < 0 ||
            !(tail.empty() || tail == "\n" || tail == "\r\n" || tail.rfind("\nFrom ", 0) == 0 ||
              tail.rfind("\r\nFrom ", 0) == 0 || (end == begin && tail.rfind("From ", 0) == 0))) {
            return make_error(what, "the file changed since it was indexed (the message end moved)",
                              Scope::message, Retry::later);
        }
        std::uint64_t sent = 0;
        Sink counted = [&](std::string_view chunk) -> Result<void> {
            sent += chunk.size();
            if (sent > m.size) {
                return make_error(what, "the file changed since it was indexed (message grew)",
                                  Scope::message, Retry::later);
            }
            return sink(chunk);
        };
        Writer w(q_, &counted);
        LineReader lr(fd.get(), begin, end);
        Piece p;
        for (;;) {
            auto more = lr.next(p);
            if (!more) {
                return make_error(what, more.error().message(), Scope::message);
            }
            if (!*more) {
                break;
            }
            if (auto r = w.feed(p); !r) {
                return r;
            }
        }
        if (auto r = w.finish(kNoLimit); !r) {
            return r;
        }
        if (sent != m.size) {
            return make_error(what,
                              "the file changed since it was indexed (" + std::to_string(sent) +
                                  " bytes, expected " + std::to_string(m.size) + ")",
                              Scope::message, Retry::later);
        }
        return {};
    }

  private:
    Result<void> walk(std::map<std::vector<std::string>, Folder>& found, const fs::path& dir,
                      const std::vector<std::string>& prefix, const std::string& inbox) {
        std::error_code ec;
        std::string why;
        std::vector<fs::directory_entry> entries;
        for (const auto& e : fs::directory_iterator(dir, ec)) {
            entries.push_back(e);
        }
        if (ec) {
            return make_error("read mbox directory " + dir.string(), ec.message(),
                              prefix.empty() ? Scope::account : Scope::folder);
        }
        for (const auto& e : entries) {
            std::string n = e.path().filename().string();
            if (n.empty() || n[0] == '.' ||
                (n.size() > 5 && n.compare(n.size() - 5, 5, ".lock") == 0) ||
                e.path().string() == inbox) {
                continue;
            }
            auto parts = prefix;
            parts.push_back(decode_name(n));
            if (parts.size() == 1 && iequal(parts[0], "INBOX")) {
                continue; // would shadow INBOX
            }
            Folder f;
            f.parts = parts;
            f.locator = e.path().string();
            if (links_.refuses(e) || (e.is_directory(ec) && !links_.enter(e.path(), why))) {
                problems_.push_back(
                    {f.name(), links_.refuses(e) ? LinkPolicy::refusal_text(e.path()) : why});
            } else if (e.is_directory(ec)) {
                f.noselect = true;
                found.emplace(parts, f);
                if (prefix.size() < 64) {
                    if (auto r = walk(found, e.path(), parts, inbox); !r) {
                        return r;
                    }
                }
            } else if (e.is_regular_file(ec)) {
                found[parts] = f;
            }
        }
        return {};
    }

    // Dovecot's `.subscriptions` (version 2: "V\t2", then names with TAB between levels;
    // version 1: one name a line, '/' between levels) and UW-IMAP's `.mailboxlist` (one
    // name a line, '/' between levels, relative to the home directory: in the tree's
    // parent, names of this tree start with its directory name, "mail/Sent").
    [[nodiscard]] std::set<std::string> subscriptions() const {
        std::set<std::string> out;
        const fs::path root(root_);
        add_subscriptions(read_small(root / ".subscriptions"), "", out);
        add_subscriptions(read_small(root / ".mailboxlist"), "", out);
        add_subscriptions(read_small(root.parent_path() / ".mailboxlist"),
                          root.filename().string() + "/", out);
        return out;
    }

    // Names under `prefix` (which is cut off); every name when it is empty.
    static void add_subscriptions(const std::optional<std::string>& text, const std::string& prefix,
                                  std::set<std::string>& out) {
        if (!text) {
            return;
        }
        auto lines = split(*text, '\n');
        const bool v2 = lines[0].rfind("V\t", 0) == 0;
        for (std::size_t i = v2 ? 1 : 0; i < lines.size(); ++i) {
            std::string_view line = lines[i];
            if (line.empty() || line.rfind(prefix, 0) != 0) {
                continue;
            }
            line.remove_prefix(prefix.size());
            std::string name;
            for (const auto& level : split(line, v2 ? '\t' : '/')) {
                // Appended piece by piece: GCC 12's -Wrestrict misfires on
                // `"literal" + std::string&&` at -O2 (GCC bug 105651).
                if (!name.empty()) {
                    name += '/';
                }
                name += decode_name(level);
            }
            out.insert(name);
        }
    }

    std::string spec_;
    std::string root_;
    std::string inbox_;
    MboxQuoting q_;
    LinkPolicy links_;
    std::vector<TreeProblem> problems_; // of the last folders()
};

int month_of(std::string_view s) {
    static const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; ++i) {
        if (iequal(s.substr(0, 3), months[i])) {
            return i;
        }
    }
    return -1;
}

} // namespace

// The forms Dovecot accepts: "From sender Thu Nov  9 22:33:52 2001", seconds optional, a
// zone name or a numeric zone before the year, a numeric zone after it, and the alternative
// "From sender Thu, 9 Nov 2002 22:33:52". No numeric zone: local time.
std::optional<std::int64_t> mbox_from_date(std::string_view line) {
    if (line.rfind("From ", 0) != 0) {
        return std::nullopt;
    }
    std::size_t p = 5;
    const std::size_t n = line.size();
    auto at = [&](std::size_t i) { return p + i < n ? line[p + i] : '\0'; };
    auto digit = [&](std::size_t i) { return at(i) >= '0' && at(i) <= '9'; };
    auto num2 = [&](std::size_t i) { return (at(i) - '0') * 10 + (at(i + 1) - '0'); };
    if (at(0) == '"') {
        ++p;
        bool esc = false;
        while (p < n && (line[p] != '"' || esc)) {
            esc = !esc && line[p] == '\\';
            ++p;
        }
        ++p;
    }
    while (p < n && line[p] != ' ') {
        ++p;
    }
    while (p < n && line[p] == ' ') {
        ++p;
    }
    if (p + 21 > n) {
        return std::nullopt;
    }
    std::tm tm{};
    p += 4; // weekday
    tm.tm_mon = month_of(line.substr(p));
    bool alt = tm.tm_mon < 0;
    if (alt) { // "Thu, 9 Nov 2002 22:33:52"
        ++p;
        if (!digit(0)) {
            return std::nullopt;
        }
        tm.tm_mday = at(0) - '0';
        ++p;
        if (digit(0)) {
            tm.tm_mday = tm.tm_mday * 10 + (at(0) - '0');
            ++p;
        }
        if (at(0) != ' ') {
            return std::nullopt;
        }
        ++p;
        tm.tm_mon = month_of(line.substr(std::min(p, n)));
        if (tm.tm_mon < 0) {
            return std::nullopt;
        }
        p += 4;
        if (!digit(0) || !digit(1) || !digit(2) || !digit(3)) {
            return std::nullopt;
        }
        tm.tm_year = num2(0) * 100 + num2(2) - 1900;
        p += 5;
    } else {
        p += 4;
        if (at(0) == ' ') {
            ++p;
        }
        if (at(1) == ' ') {
            if (!digit(0)) {
                return std::nullopt;
            }
            tm.tm_mday = at(0) - '0';
            p += 2;
        } else {
            if (!digit(0) || !digit(1) || at(2) != ' ') {
                return std::nullopt;
            }
            tm.tm_mday = num2(0);
            p += 3;
        }
    }
    tm.tm_mday = std::max(tm.tm_mday, 1);
    if (!digit(0) || !digit(1) || at(2) != ':' || !digit(3) || !digit(4)) {
        return std::nullopt;
    }
    tm.tm_hour = num2(0);
    tm.tm_min = num2(3);
    p += 5;
    if (at(0) == ':') {
        if (!digit(1) || !digit(2)) {
            return std::nullopt;
        }
        tm.tm_sec = num2(1);
        p += 3;
        if (!alt) {
            if (at(0) != ' ') {
                return std::nullopt;
            }
            ++p;
        }
    } else if (!alt) {
        if (at(0) != ' ') {
            return std::nullopt;
        }
        ++p;
    }
    if (!alt && !(digit(0) && digit(1) && digit(2) && digit(3)) && at(0) != '+' && at(0) != '-') {
        // a zone name ("MET DST" is not handled, as in Dovecot): skipped
        while (p < n && line[p] != ' ') {
            ++p;
        }
        if (p + 5 > n) {
            return std::nullopt;
        }
        ++p;
    }
    std::optional<int> zone;
    auto numeric_zone = [&](std::size_t i) -> std::optional<int> {
        if ((at(i) != '+' && at(i) != '-') || !digit(i + 1) || !digit(i + 2) || !digit(i + 3) ||
            !digit(i + 4)) {
            return std::nullopt;
        }
        int secs = num2(i + 1) * 3600 + num2(i + 3) * 60;
        return at(i) == '-' ? -secs : secs;
    };
    if (zone = numeric_zone(0); zone) {
        p += 5;
        if (at(0) == ' ') {
            ++p;
        }
    }
    if (!alt) {
        if (!digit(0) || !digit(1) || !digit(2) || !digit(3)) {
            return std::nullopt;
        }
        tm.tm_year = num2(0) * 100 + num2(2) - 1900;
        p += 4;
    }
    if (!zone && at(0) == ' ') {
        zone = numeric_zone(1);
    }
    if (zone) {
        std::time_t t = ::timegm(&tm);
        if (t == static_cast<std::time_t>(-1)) {
            return std::nullopt;
        }
        return static_cast<std::int64_t>(t) - *zone;
    }
    tm.tm_isdst = -1;
    std::time_t t = std::mktime(&tm);
    if (t == static_cast<std::time_t>(-1)) {
        return std::nullopt;
    }
    return static_cast<std::int64_t>(t);
}

std::unique_ptr<Source> open_mbox(const std::string& spec, MboxQuoting quoting,
                                  bool follow_symlinks) {
    return std::make_unique<MboxSource>(spec, quoting, follow_symlinks);
}

} // namespace mf::copy::source
