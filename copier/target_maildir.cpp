// target_maildir.cpp — writes a Maildir++ tree the way Dovecot's own deliveries do, so a
// Dovecot serving it sees our messages with the UIDs we chose and never numbers them itself.
#include "target_maildir.hpp"

#include "file_util.hpp"
#include "mutf7.hpp"
#include "target_maildir_uidlist.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <random>
#include <sstream>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <utility>

namespace mf::copy::target {

Staged::Staged(std::string tmp_path, std::string base, std::string flags, std::uint32_t want_uid,
               std::uint64_t size)
    : tmp_path_(std::move(tmp_path)), base_(std::move(base)), flags_(std::move(flags)),
      want_uid_(want_uid), size_(size) {}

Staged::Staged(Staged&& o) noexcept
    : tmp_path_(std::exchange(o.tmp_path_, {})), base_(std::move(o.base_)),
      flags_(std::move(o.flags_)), want_uid_(o.want_uid_), size_(o.size_) {}

Staged& Staged::operator=(Staged&& o) noexcept {
    if (this != &o) {
        if (!tmp_path_.empty()) {
            ::unlink(tmp_path_.c_str());
        }
        tmp_path_ = std::exchange(o.tmp_path_, {});
        base_ = std::move(o.base_);
        flags_ = std::move(o.flags_);
        want_uid_ = o.want_uid_;
        size_ = o.size_;
    }
    return *this;
}

Staged::~Staged() {
    if (!tmp_path_.empty()) {
        ::unlink(tmp_path_.c_str());
    }
}

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using source::split;

// Dovecot breaks a uidlist dotlock whose mtime is this old; so do we, and no older one.
constexpr auto kStaleLock = std::chrono::seconds(120);
// Maildir info letters a–z: Dovecot's Maildir cannot hold more keywords per folder.
constexpr std::size_t kMaxKeywords = 26;
constexpr std::uint64_t kMaxUid = 0xffffffffULL - 1; // N must stay a 32-bit number

class Fd {
  public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    [[nodiscard]] int get() const { return fd_; }
    [[nodiscard]] bool ok() const { return fd_ >= 0; }
    // close() reports late write errors (NFS, quota): the caller must see them.
    int close() { return ::close(std::exchange(fd_, -1)); }

  private:
    void reset() {
        if (fd_ >= 0) {
            ::close(std::exchange(fd_, -1));
        }
    }
    int fd_;
};

Error sys_error(const std::string& what, Scope scope, int err = errno) {
    return make_error(what, errno_text(err), scope);
}

// Creates files and directories as their owner, so Dovecot never meets one of ours that is
// still root's: a Dovecot waiting for a lock watches the lock file with inotify, which needs
// read access from the first instant (else it logs "Permission denied"), and one listing
// folders may create cur/ in a new folder directory. The fs uid is a per-thread credential,
// so other threads keep theirs.
class AsOwner {
  public:
    AsOwner(bool change, uid_t uid, gid_t gid) : active_(change) {
        if (active_) {
            old_gid_ = static_cast<gid_t>(::setfsgid(gid));
            old_uid_ = static_cast<uid_t>(::setfsuid(uid));
        }
    }
    AsOwner(const AsOwner&) = delete;
    AsOwner& operator=(const AsOwner&) = delete;
    ~AsOwner() {
        if (active_) {
            ::setfsuid(old_uid_);
            ::setfsgid(old_gid_);
        }
    }

  private:
    bool active_;
    uid_t old_uid_ = 0;
    gid_t old_gid_ = 0;
};

// Who owns what we create: Dovecot runs as the mail user and must be able to rewrite every
// file, so a copier running as root hands them over.
struct Owner {
    mode_t dir_mode = 0700;
    mode_t file_mode = 0600;
    uid_t uid = 0;
    gid_t gid = 0;
    bool change = false;

    static Owner of(const struct stat& st) {
        Owner o;
        o.dir_mode = st.st_mode & 07777;
        o.file_mode = st.st_mode & 0666;
        o.uid = st.st_uid;
        o.gid = st.st_gid;
        o.change = ::geteuid() == 0;
        return o;
    }

    [[nodiscard]] Result<void> fd(int fd, const std::string& path, Scope scope) const {
        if (::fchmod(fd, file_mode) != 0) {
            return sys_error("chmod " + path, scope);
        }
        if (change && ::fchown(fd, uid, gid) != 0) {
            return sys_error("chown " + path, scope);
        }
        return {};
    }

    // mkdir unless it exists (as a directory); what it creates gets our mode and owner.
    [[nodiscard]] Result<void> mkdir(const std::string& path, Scope scope) const {
        int rc = 0;
        int err = 0;
        {
            AsOwner as(change, uid, gid);
            rc = ::mkdir(path.c_str(), dir_mode);
            err = errno;
        }
        if (rc != 0) {
            struct stat st {};
            if (err == EEXIST && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
                return {};
            }
            return sys_error("create directory " + path, scope, err);
        }
        // mkdir's mode went through the umask; Dovecot expects the root's exact mode.
        if (::chmod(path.c_str(), dir_mode) != 0) {
            return sys_error("chmod " + path, scope);
        }
        if (change && ::chown(path.c_str(), uid, gid) != 0) {
            return sys_error("chown " + path, scope);
        }
        return {};
    }
};

Result<void> write_all(int fd, std::string_view data, const std::string& path, Scope scope) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return sys_error("write " + path, scope);
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
}

// A rename is only durable once its directory is on disk.
void fsync_dir(const std::string& dir) {
    Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.ok()) {
        ::fsync(fd.get());
    }
}

// nullopt when the file does not exist; an error for anything else that goes wrong.
Result<std::optional<std::string>> read_optional(const std::string& path, Scope scope) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) {
            return std::optional<std::string>();
        }
        return sys_error("read " + path, scope);
    }
    auto text = read_file(path, 512u << 20);
    if (!text) {
        if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) {
            return std::optional<std::string>(); // replaced between stat and open
        }
        Error e = text.error();
        e.scope = scope;
        return e;
    }
    return std::optional<std::string>(std::move(*text));
}

std::string base_of(std::string_view name) {
    return std::string(name.substr(0, name.find(':')));
}

std::string random_guid() {
    std::random_device rd;
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (int i = 0; i < 16; ++i) {
        auto b = static_cast<unsigned>(rd()) & 0xffU;
        out += kHex[b >> 4U];
        out += kHex[b & 0xfU];
    }
    return out;
}

// Our mark on a dovecot-uidlist.lock we hold: a hard link to the lock file (so the name
// keeps its inode in use; no later lock file can get that inode number) and an flock on it,
// which the kernel drops when we die. "held": the lock is ours and nothing moved yet;
// "full": the new uidlist is written in full, and message files may already be in cur/.
// Dovecot knows none of this and breaks a dead holder's lock only after two minutes; our
// next writer finishes or undoes the dead one's commit at once (DotLock::recover).
constexpr const char* kHeldLink = "mailferry-uidlist.held";
constexpr const char* kFullLink = "mailferry-uidlist.full";

// Dovecot's uidlist dotlock: whoever creates the lock file with O_EXCL owns the uidlist
// until the file is gone again, either unlinked or renamed over the uidlist as its new
// content. Removes the lock file when dropped unused.
class DotLock {
  public:
    DotLock() = default;
    DotLock(DotLock&& o) noexcept
        : fd_(std::move(o.fd_)), path_(std::exchange(o.path_, {})),
          mark_dir_(std::exchange(o.mark_dir_, {})) {}
    DotLock& operator=(DotLock&&) = delete;
    DotLock(const DotLock&) = delete;
    DotLock& operator=(const DotLock&) = delete;
    ~DotLock() {
        if (!path_.empty()) {
            ::unlink(path_.c_str());
            unmark();
        }
    }

    // `mark_dir` (the folder, for its uidlist lock): mark the lock as ours, and take over a
    // lock our own dead writer left there.
    static Result<DotLock> acquire(const std::string& path, std::chrono::milliseconds timeout,
                                   const Owner& owner, Scope scope,
                                   const std::string& mark_dir = {}) {
        const auto deadline = Clock::now() + timeout;
        auto pause = std::chrono::milliseconds(5);
        while (true) {
            int fd = -1;
            int err = 0;
            {
                AsOwner as(owner.change, owner.uid, owner.gid);
                fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                            owner.file_mode);
                err = errno;
            }
            if (fd >= 0) {
                DotLock lock;
                lock.fd_ = Fd(fd);
                lock.path_ = path;
                if (auto r = owner.fd(fd, path, scope); !r) {
                    return r.error();
                }
                if (!mark_dir.empty()) {
                    lock.mark(mark_dir, owner);
                }
                return lock;
            }
            if (err != EEXIST) {
                return sys_error("create lock " + path, scope, err);
            }
            if (!mark_dir.empty() && recover(mark_dir, path)) {
                continue;
            }
            struct stat st {};
            if (::stat(path.c_str(), &st) != 0) {
                continue; // released between our open and stat
            }
            if (std::time(nullptr) - st.st_mtime > kStaleLock.count()) {
                // Its holder died: Dovecot would break it now too.
                ::unlink(path.c_str());
                continue;
            }
            auto now = Clock::now();
            if (now >= deadline) {
                return make_error("lock " + path,
                                  "held by another process for over " +
                                      std::to_string(timeout.count()) + " ms",
                                  scope, Retry::later);
            }
            std::this_thread::sleep_for(
                std::min<Clock::duration>(pause, deadline - now + std::chrono::milliseconds(1)));
            pause = std::min(pause * 2, std::chrono::milliseconds(100));
        }
    }

    // Writes `content` into the lock file, durably; a marked lock is then "full".
    Result<void> write(std::string_view content, Scope scope) {
        if (auto r = write_all(fd_.get(), content, path_, scope); !r) {
            return r;
        }
        if (::fsync(fd_.get()) != 0) {
            return sys_error("fsync " + path_, scope);
        }
        if (!mark_dir_.empty()) {
            ::rename((mark_dir_ + "/" + kHeldLink).c_str(), (mark_dir_ + "/" + kFullLink).c_str());
        }
        return {};
    }

    // Renames the written lock file over `target`: readers see the old file or the whole
    // new one, and the lock is released in the same step. The fd (and its flock) is closed
    // only afterwards, so nobody takes us for dead in between.
    Result<void> install(const std::string& target, Scope scope) {
        if (::rename(path_.c_str(), target.c_str()) != 0) {
            return sys_error("rename " + path_ + " to " + target, scope);
        }
        path_.clear();
        fsync_dir(dir_of(target));
        unmark();
        if (fd_.close() != 0) {
            return sys_error("close " + target, scope);
        }
        return {};
    }

    Result<void> replace(const std::string& target, std::string_view content, Scope scope) {
        if (auto r = write(content, scope); !r) {
            return r;
        }
        return install(target, scope);
    }

  private:
    void mark(const std::string& dir, const Owner& owner) {
        ::flock(fd_.get(), LOCK_EX | LOCK_NB); // a fresh file: nobody else has it
        for (const char* name : {kHeldLink, kFullLink}) {
            ::unlink((dir + "/" + name).c_str()); // a dead writer's, for a lock long gone
        }
        AsOwner as(owner.change, owner.uid, owner.gid);
        if (::link(path_.c_str(), (dir + "/" + kHeldLink).c_str()) == 0) {
            mark_dir_ = dir;
        }
    }

    void unmark() {
        if (!mark_dir_.empty()) {
            ::unlink((mark_dir_ + "/" + kHeldLink).c_str());
            ::unlink((mark_dir_ + "/" + kFullLink).c_str());
            mark_dir_.clear();
        }
    }

    // The lock at `path` is ours (a mark names its inode) and its holder is dead (its flock
    // is free): a "full" commit is finished — its files still in tmp/ moved into cur/ with
    // no flags (the copier sets them again), the written uidlist installed —, anything
    // earlier undone by removing the lock (nothing was moved yet). True when the lock is
    // gone, so the caller can try again at once.
    static bool recover(const std::string& dir, const std::string& path) {
        struct stat lock {};
        if (::stat(path.c_str(), &lock) != 0) {
            return true;
        }
        const char* phase = nullptr;
        for (const char* name : {kFullLink, kHeldLink}) {
            struct stat link {};
            if (::stat((dir + "/" + name).c_str(), &link) == 0 && link.st_ino == lock.st_ino &&
                link.st_dev == lock.st_dev) {
                phase = name;
                break;
            }
        }
        if (phase == nullptr) {
            return false; // Dovecot's, or a live writer's not yet marked
        }
        Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
        if (!fd.ok() || ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
            return !fd.ok(); // gone meanwhile, or its holder is alive
        }
        if (std::string_view(phase) == kFullLink) {
            auto text = read_file(path, 512u << 20);
            if (!text) {
                return false;
            }
            for (const auto& line : split(*text, '\n')) {
                auto colon = line.find(" :");
                if (colon == std::string::npos) {
                    continue;
                }
                const std::string base = line.substr(colon + 2);
                std::string tmp = dir + "/tmp/";
                tmp.append(base, 0, base.find(','));
                std::string cur = dir + "/cur/";
                cur += base;
                cur += ":2,";
                ::rename(tmp.c_str(), cur.c_str());
            }
            fsync_dir(dir + "/cur");
            if (::rename(path.c_str(), (dir + "/dovecot-uidlist").c_str()) != 0) {
                return false;
            }
            fsync_dir(dir);
        } else {
            ::unlink(path.c_str());
        }
        ::unlink((dir + "/" + kHeldLink).c_str());
        ::unlink((dir + "/" + kFullLink).c_str());
        return true;
    }

    Fd fd_;
    std::string path_;
    std::string mark_dir_; // the folder whose mark links name this lock; empty: unmarked
};

Result<UidList> read_uidlist(const std::string& dir) {
    const std::string path = dir + "/dovecot-uidlist";
    auto text = read_optional(path, Scope::folder);
    if (!text) {
        return text.error();
    }
    if (!*text || (*text)->empty()) {
        return UidList{}; // Dovecot, too, writes an empty uidlist anew
    }
    return parse_uidlist(**text, path);
}

// Message files in cur/ and new/: name → sub-directory.
Result<std::map<std::string, std::string>> list_messages(const std::string& dir) {
    std::map<std::string, std::string> out;
    for (const char* sub : {"cur", "new"}) {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(dir + "/" + sub, ec)) {
            std::string n = e.path().filename().string();
            if (!n.empty() && n[0] != '.') {
                out.emplace(std::move(n), sub);
            }
        }
        if (ec) {
            return make_error("read " + dir + "/" + sub, ec.message(), Scope::folder);
        }
    }
    return out;
}

struct FlagSplit {
    std::string letters; // system flags as info letters
    std::vector<std::string> keywords;
    std::vector<std::string> unknown; // system flags Maildir cannot hold
};

FlagSplit split_flags(const std::string& flags) {
    FlagSplit out;
    std::istringstream in(flags);
    for (std::string f; in >> f;) {
        if (f[0] != '\\') {
            if (std::find(out.keywords.begin(), out.keywords.end(), f) == out.keywords.end()) {
                out.keywords.push_back(f);
            }
            continue;
        }
        std::string lower = f;
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (lower == "\\draft") {
            out.letters += 'D';
        } else if (lower == "\\flagged") {
            out.letters += 'F';
        } else if (lower == "\\answered") {
            out.letters += 'R';
        } else if (lower == "\\seen") {
            out.letters += 'S';
        } else if (lower == "\\deleted") {
            out.letters += 'T';
        } else if (lower != "\\recent") { // session state, never stored
            out.unknown.push_back(f);
        }
    }
    return out;
}

std::string sorted_letters(std::string s) {
    std::sort(s.begin(), s.end());
    s.erase(std::unique(s.begin(), s.end()), s.end());
    return s;
}

// The host part of a Maildir name; '/' and ':' would break the name, so they are written
// as octal escapes, as Dovecot does; ',' would be read as a field separator.
std::string maildir_host() {
    std::array<char, 256> buf{};
    if (::gethostname(buf.data(), buf.size() - 1) != 0 || buf[0] == '\0') {
        return "localhost";
    }
    std::string out;
    for (const char* p = buf.data(); *p != '\0'; ++p) {
        switch (*p) {
        case '/':
            out += "\\057";
            break;
        case ':':
            out += "\\072";
            break;
        case ',':
            out += "\\054";
            break;
        default:
            out += *p;
        }
    }
    return out;
}

// Unique across processes (pid), threads and calls (Q counter) of this host.
std::string unique_name() {
    static std::atomic<std::uint64_t> seq{0};
    static const std::string host = maildir_host();
    struct timespec ts {};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return std::to_string(ts.tv_sec) + ".M" + std::to_string(ts.tv_nsec / 1000) + "P" +
           std::to_string(::getpid()) + "Q" + std::to_string(seq++) + "." + host;
}

class Folder final : public MaildirFolder {
  public:
    Folder(std::string dir, Owner owner, std::chrono::milliseconds lock_timeout)
        : dir_(std::move(dir)), owner_(owner), lock_timeout_(lock_timeout) {}

    [[nodiscard]] const std::string& path() const override { return dir_; }

    Result<MaildirBox> status() override {
        auto now = settled_view();
        if (!now) {
            return now.error();
        }
        const auto& [u, files] = *now;
        MaildirBox box;
        box.uidvalidity = u.uidvalidity;
        box.next_uid = static_cast<std::uint32_t>(std::min<std::uint64_t>(u.next, kMaxUid + 1));
        box.messages = static_cast<std::uint32_t>(files.size());
        box.fresh = fresh(u, files);
        return box;
    }

    Result<Staged> stage(std::uint32_t want_uid, const std::string& flags,
                         std::optional<std::int64_t> when, std::uint64_t size,
                         const Writer& write) override {
        const std::string name = unique_name();
        const std::string tmp = dir_ + "/tmp/" + name;
        Fd fd;
        int err = 0;
        {
            AsOwner as(owner_.change, owner_.uid, owner_.gid);
            fd = Fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                           owner_.file_mode));
            err = errno;
        }
        if (!fd.ok()) {
            return sys_error("create " + tmp, Scope::folder, err);
        }
        // Until Staged takes the file over, every way out removes it.
        Staged guard(tmp, {}, {}, 0, 0);
        std::uint64_t written = 0;
        std::uint64_t vsize = 0;
        char prev = '\0';
        auto sink = [&](std::string_view chunk) -> Result<void> {
            if (chunk.size() > size - written) {
                return make_error("store message in " + dir_,
                                  "more bytes than the " + std::to_string(size) + " announced",
                                  Scope::message);
            }
            for (char c : chunk) {
                vsize += (c == '\n' && prev != '\r') ? 2 : 1;
                prev = c;
            }
            written += chunk.size();
            return write_all(fd.get(), chunk, tmp, Scope::message);
        };
        if (auto r = write(sink); !r) {
            return r.error();
        }
        if (written != size) {
            return make_error("store message in " + dir_,
                              "got " + std::to_string(written) + " bytes, expected " +
                                  std::to_string(size),
                              Scope::message);
        }
        if (auto r = owner_.fd(fd.get(), tmp, Scope::message); !r) {
            return r.error();
        }
        if (when) {
            // Dovecot reports a Maildir file's mtime as its INTERNALDATE.
            std::array<struct timespec, 2> times{};
            times[0].tv_sec = static_cast<time_t>(*when);
            times[1].tv_sec = static_cast<time_t>(*when);
            if (::futimens(fd.get(), times.data()) != 0) {
                return sys_error("set the date of " + tmp, Scope::message);
            }
        }
        if (::fsync(fd.get()) != 0) {
            return sys_error("fsync " + tmp, Scope::message);
        }
        if (fd.close() != 0) {
            return sys_error("close " + tmp, Scope::message);
        }
        std::vector<std::string> list;
        std::istringstream in(flags);
        for (std::string f; in >> f;) {
            list.push_back(f);
        }
        guard.committed();
        return Staged(tmp, name + ",S=" + std::to_string(size) + ",W=" + std::to_string(vsize),
                      source::join_flags(std::move(list)), want_uid, size);
    }

    Result<std::vector<std::uint32_t>> commit(std::vector<Staged>& staged,
                                              std::uint32_t uidvalidity,
                                              std::uint32_t min_next) override {
        std::vector<std::uint32_t> uids;
        if (staged.empty()) {
            return uids;
        }
        auto lock = lock_uidlist();
        if (!lock) {
            return lock.error();
        }
        auto uidlist = read_uidlist(dir_);
        if (!uidlist) {
            return uidlist.error();
        }
        UidList* u = &*uidlist;
        // Listing cur/ and new/ costs a readdir of the whole folder on every group: only
        // when the uidlist says the folder may still be fresh.
        bool adopt = uidvalidity != 0 && never_numbered(*u);
        if (adopt) {
            auto files = list_messages(dir_);
            if (!files) {
                return files.error();
            }
            adopt = files->empty();
        }
        if (adopt) {
            u->uidvalidity = uidvalidity;
            u->next = 1;
        } else if (!u->exists) {
            // No source validity to take: a new one, as Dovecot would pick.
            u->uidvalidity = static_cast<std::uint32_t>(std::time(nullptr));
        }
        if (std::find_if(u->header_rest.begin(), u->header_rest.end(),
                         [](const auto& f) { return f[0] == 'G'; }) == u->header_rest.end()) {
            u->header_rest.insert(u->header_rest.begin(), "G" + random_guid());
        }

        // Wanted UIDs first, in order, each above the last; the rest after them, and, in a
        // folder with the source's validity, at or above `min_next` (the source's next UID,
        // so no UID a client once saw there is reused for another message).
        uids.assign(staged.size(), 0);
        std::uint64_t next = u->next;
        const bool same = u->uidvalidity == uidvalidity;
        for (std::size_t i = 0; i < staged.size(); ++i) {
            std::uint32_t want = staged[i].want_uid();
            if (same && want != 0 && want >= next && want <= kMaxUid) {
                uids[i] = want;
                next = std::uint64_t{want} + 1;
            }
        }
        if (same) {
            next = std::max<std::uint64_t>(next, min_next);
        }
        for (auto& uid : uids) {
            if (uid == 0) {
                if (next > kMaxUid) {
                    return make_error("store messages in " + dir_, "no UIDs left (2^32)",
                                      Scope::folder);
                }
                uid = static_cast<std::uint32_t>(next++);
            }
        }
        u->next = next;

        std::vector<std::string> keywords;
        for (const auto& s : staged) {
            for (auto& k : split_flags(s.flags()).keywords) {
                if (std::find(keywords.begin(), keywords.end(), k) == keywords.end()) {
                    keywords.push_back(std::move(k));
                }
            }
        }
        auto letters = keyword_letters(keywords);
        if (!letters) {
            return letters.error();
        }

        // The new uidlist is written (and the lock marked "full") before any file moves, so
        // a writer killed in the middle leaves what the next one needs to finish the commit.
        std::vector<std::pair<std::uint32_t, std::string>> added;
        for (std::size_t i = 0; i < staged.size(); ++i) {
            added.emplace_back(uids[i], std::to_string(uids[i]) + " :" + staged[i].base());
        }
        std::sort(added.begin(), added.end());
        for (auto& [uid, line] : added) {
            u->lines.push_back(std::move(line));
        }
        if (auto r = lock->write(u->text(), Scope::folder); !r) {
            return r.error();
        }
        std::vector<std::string> targets;
        for (std::size_t i = 0; i < staged.size(); ++i) {
            std::string target = dir_ + "/cur/" + staged[i].base() + ":2," +
                                 info(staged[i].flags(), *letters, staged[i].base());
            if (::rename(staged[i].tmp_path().c_str(), target.c_str()) != 0) {
                Error e =
                    sys_error("move " + staged[i].tmp_path() + " to " + target, Scope::folder);
                undo(staged, targets);
                return e;
            }
            targets.push_back(target);
        }
        fsync_dir(dir_ + "/cur");
        if (auto r = lock->install(dir_ + "/dovecot-uidlist", Scope::folder); !r) {
            undo(staged, targets);
            return r.error();
        }
        for (auto& s : staged) {
            s.committed();
        }
        return uids;
    }

    Result<std::vector<std::string>> set_flags(std::uint32_t uid,
                                               const std::string& flags) override {
        auto out = set_flags(std::vector<FlagChange>{{uid, flags}});
        if (!out) {
            return out.error();
        }
        if (out->front().error) {
            return *out->front().error;
        }
        return std::move(out->front().notes);
    }

    // One lock, one read of dovecot-uidlist and one listing for all the changes, one fsync
    // of cur/ at the end: a rename is atomic, and a crash before the fsync only leaves
    // flags that the next run finds different and sets again.
    Result<std::vector<FlagOutcome>> set_flags(const std::vector<FlagChange>& changes) override {
        std::vector<FlagOutcome> out(changes.size());
        if (changes.empty()) {
            return out;
        }
        auto lock = lock_uidlist();
        if (!lock) {
            return lock.error();
        }
        auto u = read_uidlist(dir_);
        if (!u) {
            return u.error();
        }
        auto files = list_messages(dir_);
        if (!files) {
            return files.error();
        }
        std::map<std::string, std::pair<std::string, std::string>> by_base; // base → name, sub
        for (const auto& [name, sub] : *files) {
            by_base[base_of(name)] = {name, sub};
        }
        bool renamed = false;
        for (std::size_t i = 0; i < changes.size(); ++i) {
            auto r = set_one(*u, by_base, changes[i], renamed);
            if (!r) {
                if (r.error().scope != Scope::message) {
                    return r.error();
                }
                out[i].error = r.error();
            } else {
                out[i].notes = std::move(*r);
            }
        }
        if (renamed) {
            fsync_dir(dir_ + "/cur");
        }
        return out;
    }

  private:
    Result<std::vector<std::string>>
    set_one(const UidList& u, std::map<std::string, std::pair<std::string, std::string>>& by_base,
            const FlagChange& c, bool& renamed) {
        const std::string what = "set flags of UID " + std::to_string(c.uid) + " in " + dir_;
        auto it = u.by_uid.find(c.uid);
        if (it == u.by_uid.end()) {
            return make_error(what, "no such message", Scope::message);
        }
        auto file = by_base.find(it->second);
        if (file == by_base.end()) {
            return make_error(what, "its file " + it->second + " is gone", Scope::message);
        }
        const std::string& name = file->second.first;
        const std::size_t notes_before = notes_.size();
        auto letters = keyword_letters(split_flags(c.flags).keywords);
        if (!letters) {
            return letters.error();
        }
        // Info letters that are no IMAP flag (Maildir's P, "passed") are the file's own.
        std::string keep;
        if (auto pos = name.find(":2,"); pos != std::string::npos) {
            for (char ch : name.substr(pos + 3)) {
                if (ch >= 'A' && ch <= 'Z' && std::string_view("DFRST").find(ch) == npos) {
                    keep += ch;
                }
            }
        }
        const std::string new_name =
            it->second + ":2," + sorted_letters(keep + info(c.flags, *letters, ""));
        const std::string from = dir_ + "/" + file->second.second + "/" + name;
        const std::string to = dir_ + "/cur/" + new_name;
        if (from != to) {
            if (::rename(from.c_str(), to.c_str()) != 0) {
                return sys_error("rename " + from + " to " + to, Scope::message);
            }
            renamed = true;
            file->second = {new_name, "cur"};
        }
        // This change's notes are its result; commit()'s stay for take_notes().
        std::vector<std::string> mine(notes_.begin() + static_cast<long>(notes_before),
                                      notes_.end());
        notes_.resize(notes_before);
        return mine;
    }

  public:
    Result<std::map<std::uint32_t, std::string>> files(std::uint32_t from_uid) override {
        auto now = settled_view();
        if (!now) {
            return now.error();
        }
        const auto& [u, files] = *now;
        std::map<std::string, std::string> by_base;
        for (const auto& [name, sub] : files) {
            std::string path = dir_ + "/";
            path += sub;
            path += '/';
            path += name;
            by_base.emplace(base_of(name), std::move(path));
        }
        std::map<std::uint32_t, std::string> out;
        for (auto it = u.by_uid.lower_bound(from_uid); it != u.by_uid.end(); ++it) {
            if (auto f = by_base.find(it->second); f != by_base.end()) {
                out.emplace(it->first, f->second);
            }
        }
        return out;
    }

    std::vector<std::string> take_notes() override { return std::exchange(notes_, {}); }

  private:
    static constexpr auto npos = std::string_view::npos;

    static bool never_numbered(const UidList& u) {
        return !u.exists || (u.next == 1 && u.by_uid.empty());
    }

    static bool fresh(const UidList& u, const std::map<std::string, std::string>& files) {
        return files.empty() && never_numbered(u);
    }

    // The uidlist and the message files (name → cur or new) once a dead writer's commit
    // is settled: what status() and files() report.
    Result<std::pair<UidList, std::map<std::string, std::string>>> settled_view() {
        if (auto r = settle_dead_writer(); !r) {
            return r.error();
        }
        return view();
    }

    Result<std::pair<UidList, std::map<std::string, std::string>>> view() {
        auto u = read_uidlist(dir_);
        if (!u) {
            return u.error();
        }
        auto files = list_messages(dir_);
        if (!files) {
            return files.error();
        }
        return std::pair(std::move(*u), std::move(*files));
    }

    // A writer of ours killed mid-commit leaves a marked lock; what the uidlist says is only
    // true once its commit is finished or undone, which taking the lock does (recover()).
    Result<void> settle_dead_writer() {
        struct stat st {};
        if (::stat((dir_ + "/" + kHeldLink).c_str(), &st) != 0 &&
            ::stat((dir_ + "/" + kFullLink).c_str(), &st) != 0) {
            return {};
        }
        auto lock = lock_uidlist();
        if (!lock) {
            return lock.error();
        }
        return {};
    }

    Result<DotLock> lock_uidlist() {
        return DotLock::acquire(dir_ + "/dovecot-uidlist.lock", lock_timeout_, owner_,
                                Scope::folder, dir_);
    }

    // The info letters of these flags; unknown system flags and keywords without a letter
    // are noted.
    std::string info(const std::string& flags, const std::map<std::string, char>& letters,
                     const std::string& base) {
        auto fl = split_flags(flags);
        std::string out = fl.letters;
        for (const auto& k : fl.keywords) {
            if (auto it = letters.find(k); it != letters.end()) {
                out += it->second;
            }
        }
        for (const auto& f : fl.unknown) {
            notes_.push_back(dir_ + ": flag " + f + " of " + (base.empty() ? "a message" : base) +
                             " not stored: Maildir has no letter for it");
        }
        return sorted_letters(out);
    }

    // The letter of each keyword, adding new ones to dovecot-keywords (we hold the uidlist
    // lock, which Dovecot also holds when it adds keywords; dovecot-keywords.lock as well,
    // so the file is replaced exactly as Dovecot replaces it).
    Result<std::map<std::string, char>> keyword_letters(const std::vector<std::string>& kws) {
        std::map<std::string, char> out;
        if (kws.empty()) {
            return out;
        }
        const std::string path = dir_ + "/dovecot-keywords";
        auto text = read_optional(path, Scope::folder);
        if (!text) {
            return text.error();
        }
        std::map<std::size_t, std::string> by_index;
        if (*text) {
            for (const auto& l : split(**text, '\n')) {
                auto sp = l.find(' ');
                auto idx = source::to_u64(std::string_view(l).substr(0, sp));
                if (sp != std::string::npos && idx && *idx < kMaxKeywords && sp + 1 < l.size()) {
                    by_index[*idx] = l.substr(sp + 1);
                }
            }
        }
        for (const auto& [i, name] : by_index) {
            out.emplace(name, static_cast<char>('a' + i));
        }
        bool changed = false;
        for (const auto& k : kws) {
            if (out.count(k) != 0) {
                continue;
            }
            std::size_t free = 0;
            while (free < kMaxKeywords && by_index.count(free) != 0) {
                ++free;
            }
            if (free == kMaxKeywords) {
                notes_.push_back(dir_ + ": keyword \"" + k +
                                 "\" not stored: Dovecot's Maildir keeps at most 26 keywords "
                                 "per folder");
                continue;
            }
            by_index[free] = k;
            out.emplace(k, static_cast<char>('a' + free));
            changed = true;
        }
        for (auto it = out.begin(); it != out.end();) {
            it = std::find(kws.begin(), kws.end(), it->first) == kws.end() ? out.erase(it)
                                                                           : std::next(it);
        }
        if (!changed) {
            return out;
        }
        std::string content;
        for (const auto& [i, name] : by_index) {
            content += std::to_string(i) + " " + name + "\n";
        }
        auto lock = DotLock::acquire(path + ".lock", lock_timeout_, owner_, Scope::folder);
        if (!lock) {
            return lock.error();
        }
        if (auto r = lock->replace(path, content, Scope::folder); !r) {
            return r.error();
        }
        return out;
    }

    // Puts what commit() moved into cur/ back into tmp/: a failed commit leaves no message
    // in cur/ that the uidlist does not list.
    void undo(std::vector<Staged>& staged, const std::vector<std::string>& targets) {
        for (std::size_t i = 0; i < targets.size(); ++i) {
            if (::rename(targets[i].c_str(), staged[i].tmp_path().c_str()) != 0) {
                notes_.push_back(targets[i] +
                                 ": could not be moved back to tmp/ after a failed "
                                 "commit: " +
                                 errno_text(errno));
            }
        }
        fsync_dir(dir_ + "/cur");
    }

    std::string dir_;
    Owner owner_;
    std::chrono::milliseconds lock_timeout_;
    std::vector<std::string> notes_;
};

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

class Tree final : public MaildirTree {
  public:
    Tree(std::string root, Owner owner, std::chrono::milliseconds lock_timeout)
        : root_(std::move(root)), owner_(owner), lock_timeout_(lock_timeout) {}

    [[nodiscard]] const std::string& root() const override { return root_; }

    Result<std::vector<std::string>> folders() override {
        std::vector<std::string> out;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(root_, ec)) {
            std::string n = e.path().filename().string();
            std::error_code ec2;
            if (n.size() > 1 && n[0] == '.' && n != ".." &&
                fs::is_directory(e.path() / "cur", ec2)) {
                out.push_back(n.substr(1));
            }
        }
        if (ec) {
            return make_error("read " + root_, ec.message(), Scope::account);
        }
        std::sort(out.begin(), out.end());
        out.insert(out.begin(), "INBOX");
        return out;
    }

    Result<std::set<std::string>> subscriptions() override {
        auto subs = read_subscriptions();
        if (!subs) {
            return subs.error();
        }
        return std::set<std::string>(subs->names.begin(), subs->names.end());
    }

    Result<std::size_t> subscribe(const std::vector<std::string>& wire_names) override {
        const std::string path = root_ + "/subscriptions";
        // Dovecot takes subscriptions.lock the same way before it rewrites the file.
        auto lock = DotLock::acquire(path + ".lock", lock_timeout_, owner_, Scope::account);
        if (!lock) {
            return lock.error();
        }
        auto subs = read_subscriptions();
        if (!subs) {
            return subs.error();
        }
        std::set<std::string> have(subs->names.begin(), subs->names.end());
        std::size_t added = 0;
        for (const auto& w : wire_names) {
            if (!w.empty() && have.insert(w).second) {
                subs->names.push_back(w);
                ++added;
            }
        }
        if (added == 0) {
            return added;
        }
        std::string content = subs->v2 ? "V\t2\n\n" : "";
        for (const auto& n : subs->names) {
            std::string line = n;
            if (subs->v2) {
                std::replace(line.begin(), line.end(), '.', '\t');
            }
            content += line + "\n";
        }
        if (auto r = lock->replace(path, content, Scope::account); !r) {
            return r.error();
        }
        return added;
    }

    Result<std::unique_ptr<MaildirFolder>> folder(const std::string& wire, bool create) override {
        const bool inbox = iequals(wire, "INBOX");
        if (!inbox) {
            if (auto r = check_name(wire); !r) {
                return r.error();
            }
        }
        const std::string dir = inbox ? root_ : root_ + "/." + wire;
        if (create) {
            for (const std::string& d : {dir, dir + "/cur", dir + "/new", dir + "/tmp"}) {
                if (auto r = owner_.mkdir(d, Scope::folder); !r) {
                    return r.error();
                }
            }
            if (!inbox) {
                // Marks a Maildir++ sub-folder, so deliveries into it do not treat it as a
                // user's root (Dovecot's and Courier's convention).
                const std::string marker = dir + "/maildirfolder";
                Fd fd;
                int err = 0;
                {
                    AsOwner as(owner_.change, owner_.uid, owner_.gid);
                    fd = Fd(::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                                   owner_.file_mode));
                    err = errno;
                }
                if (!fd.ok()) {
                    return sys_error("create " + marker, Scope::folder, err);
                }
                if (auto r = owner_.fd(fd.get(), marker, Scope::folder); !r) {
                    return r.error();
                }
            }
            fsync_dir(root_);
        } else {
            std::error_code ec;
            if (!fs::is_directory(dir + "/cur", ec)) {
                return make_error("open folder " + wire + " in " + root_, "no such folder",
                                  Scope::folder);
            }
        }
        return std::unique_ptr<MaildirFolder>(std::make_unique<Folder>(dir, owner_, lock_timeout_));
    }

  private:
    struct Subs {
        bool v2 = true; // a new file gets the format Dovecot 2.3 writes
        std::vector<std::string> names;
    };

    Result<Subs> read_subscriptions() {
        auto text = read_optional(root_ + "/subscriptions", Scope::account);
        if (!text) {
            return text.error();
        }
        Subs s;
        if (!*text) {
            return s;
        }
        auto lines = split(**text, '\n');
        s.v2 = lines[0].rfind("V\t", 0) == 0;
        std::set<std::string> seen;
        for (std::size_t i = s.v2 ? 1 : 0; i < lines.size(); ++i) {
            std::string n = lines[i];
            if (s.v2) {
                std::replace(n.begin(), n.end(), '\t', '.');
            }
            if (!n.empty() && seen.insert(n).second) {
                s.names.push_back(n);
            }
        }
        return s;
    }

    Result<void> check_name(const std::string& wire) const {
        auto bad = [&](const std::string& why) {
            return make_error("folder \"" + wire + "\" in " + root_, why, Scope::folder);
        };
        // Dovecot refuses a name that starts with '~' (its home-directory shorthand), not a
        // lower level that does: "Parent.~tilde" is a folder it creates itself.
        if (!wire.empty() && wire[0] == '~') {
            return bad("a name starting with '~': Dovecot refuses it");
        }
        for (const auto& level : split(wire, '.')) {
            if (level.empty()) {
                return bad("an empty level (\"..\" or a '.' at an end): Maildir++ cannot name it");
            }
            if (level.find('/') != std::string::npos) {
                return bad("'/' in a level: Maildir++ cannot name it");
            }
            if (auto d = imap::mutf7_decode(level); !d) {
                return bad("not modified UTF-7: " + d.error().message());
            }
        }
        return {};
    }

    std::string root_;
    Owner owner_;
    std::chrono::milliseconds lock_timeout_;
};

} // namespace

Result<UidList> parse_uidlist(std::string_view text, const std::string& path) {
    UidList u;
    u.exists = true;
    auto lines = split(text, '\n');
    auto head = split(lines[0], ' ');
    if (head[0] != "3") {
        return make_error("read " + path,
                          "version \"" + head[0] + "\" (only version 3, Dovecot 2's, is written)",
                          Scope::folder);
    }
    for (std::size_t i = 1; i < head.size(); ++i) {
        const auto& t = head[i];
        if (t.size() > 1 && t[0] == 'V') {
            u.uidvalidity = static_cast<std::uint32_t>(
                std::min<std::uint64_t>(source::to_u64(t.substr(1)).value_or(0), 0xffffffffU));
        } else if (t.size() > 1 && t[0] == 'N') {
            u.next = std::max<std::uint64_t>(source::to_u64(t.substr(1)).value_or(1), 1);
        } else if (!t.empty()) {
            u.header_rest.push_back(t);
        }
    }
    if (u.uidvalidity == 0) {
        return make_error("read " + path, "no UIDVALIDITY in the header", Scope::folder);
    }
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const auto& l = lines[i];
        if (l.empty()) {
            continue;
        }
        u.lines.push_back(l);
        auto sp = l.find(' ');
        auto uid = source::to_u64(std::string_view(l).substr(0, sp));
        auto colon = l.find(" :");
        if (sp == std::string::npos || !uid || *uid == 0 || *uid > kMaxUid ||
            colon == std::string::npos) {
            continue;
        }
        u.by_uid[static_cast<std::uint32_t>(*uid)] = base_of(l.substr(colon + 2));
        u.next = std::max<std::uint64_t>(u.next, *uid + 1);
    }
    return u;
}

Result<std::unique_ptr<MaildirTree>> open_maildir_tree(const std::string& root,
                                                       std::chrono::milliseconds lock_timeout) {
    const std::string what = "open Maildir " + root;
    if (root.empty() || root[0] != '/') {
        return make_error(what, "not an absolute path", Scope::account);
    }
    struct stat st {};
    if (::stat(root.c_str(), &st) != 0) {
        if (errno != ENOENT) {
            return sys_error(what, Scope::account);
        }
        // The nearest directory that exists decides who owns what we create below it.
        std::vector<std::string> missing;
        std::string p = root;
        while (::stat(p.c_str(), &st) != 0) {
            if (errno != ENOENT || p == "/") {
                const int err = errno;
                std::string at = what;
                at += ": stat ";
                at += p;
                return sys_error(at, Scope::account, err);
            }
            missing.push_back(p);
            p = dir_of(p);
        }
        if (!S_ISDIR(st.st_mode)) {
            return make_error(what, p + " is not a directory", Scope::account);
        }
        Owner parent = Owner::of(st);
        parent.dir_mode = 0700;
        for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
            if (auto r = parent.mkdir(*it, Scope::account); !r) {
                return r.error();
            }
        }
        if (::stat(root.c_str(), &st) != 0) {
            return sys_error(what, Scope::account);
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        return make_error(what, "not a directory", Scope::account);
    }
    Owner owner = Owner::of(st);
    for (const char* sub : {"/cur", "/new", "/tmp"}) {
        if (auto r = owner.mkdir(root + sub, Scope::account); !r) {
            return r.error();
        }
    }
    return std::unique_ptr<MaildirTree>(std::make_unique<Tree>(root, owner, lock_timeout));
}

} // namespace mf::copy::target
