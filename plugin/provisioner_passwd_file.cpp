// provisioner_passwd_file.cpp — the "dovecot-passwd-file" provisioner: one line per account.
//
// Adds or replaces `user:{SCHEME}hash:uid:gid::home::extra` in a Dovecot
// passwd-file, which Dovecot rereads when its mtime or size changes. Every change runs
// under an exclusive flock on `<file>.lock` (a separate file, because the passwd-file
// itself is replaced by rename and a lock on it would be lost with the old inode); inside
// the lock the file is read, the user's line replaced or appended, and the result written
// to a temp file in the same directory, fsync'd and renamed over the original with the
// original's mode, owner and group. So readers see the old file or the new one, never a
// mix, and concurrent provisioners (threads or processes) never lose each other's lines.
//
// Dovecot (db-passwd-file.c) stats the file at most once per second of its clock and
// rereads it only when the whole-second mtime or the size differ from its copy. Hence:
// each new file gets an mtime at least one second past the file it replaces (two
// same-size versions in one second would otherwise leave Dovecot on the older; a burst of
// changes runs the mtime a few seconds ahead of the clock, which Dovecot only compares),
// and provision() returns only after the second of its rename is over, so the lookup that
// follows — the userdb lookup of this very login — cannot be answered from the old copy.
// That costs the first login half a second on average, outside the lock.
//
// Must never: drop, reorder or rewrite another line (comments and blank lines included);
// write a control character (a line break would start a new line) or a ':' that would
// shift Dovecot's columns; leave a half-written file or a stray temp file; write a plain
// password (it only ever sees the hash). The extra fields are the last column and Dovecot
// joins everything after the shell column back together with ':' (db-passwd-file.c), so
// ':' is allowed there ("userdb_quota_rule=*:storage=1G") — but not first, where an empty
// column would switch Dovecot to the old "mail" column format.
//
// Errors: Retry::later with the file and the failing call ("rename(a, b) failed: …");
// a user, home or extra field Dovecot cannot store is Scope::account and nothing is written.
#include "provisioner_impl.hpp"

#include "file_util.hpp"

#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <utility>

namespace mf::prov {
namespace {

constexpr std::size_t kMaxFileBytes = std::size_t{256} << 20;

class Fd {
  public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    [[nodiscard]] int get() const { return fd_; }
    void reset() {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }
    // close() with its error, for the file whose contents we are about to rename in place.
    int close_checked() {
        int rc = ::close(fd_);
        fd_ = -1;
        return rc;
    }

  private:
    int fd_;
};

// Removes the temp file unless the rename committed it.
class TempFile {
  public:
    explicit TempFile(std::string path) : path_(std::move(path)) {}
    ~TempFile() {
        if (!committed_) {
            ::unlink(path_.c_str());
        }
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    [[nodiscard]] const std::string& path() const { return path_; }
    void commit() { committed_ = true; }

  private:
    std::string path_;
    bool committed_ = false;
};

std::string sys_error(const std::string& call, int err) {
    return call + " failed: " + errno_text(err);
}

std::string base_of(const std::string& path) {
    auto pos = path.rfind('/');
    return pos == std::string::npos ? path : path.substr(pos + 1);
}

// A passwd-file field may hold anything but the column separator and line breaks; other
// control characters are refused too, because Dovecot would store them verbatim in a
// user's home or extra fields.
bool field_ok(std::string_view v, bool colon_ok = false) {
    for (char c : v) {
        auto u = static_cast<unsigned char>(c);
        if ((c == ':' && !colon_ok) || u < 0x20 || u == 0x7f) {
            return false;
        }
    }
    return true;
}

// The last column: ':' allowed inside, not at the start (see the header comment).
bool extra_ok(std::string_view v) {
    return field_ok(v, true) && (v.empty() || v.front() != ':');
}

bool digits_only(std::string_view v) {
    return v.find_first_not_of("0123456789") == std::string_view::npos;
}

// Where the line for `user` starts, or npos. A line belongs to the user when it begins
// with exactly "user:"; comment lines begin with '#', which no user name may.
std::size_t find_user_line(const std::string& text, const std::string& user) {
    std::string key = user + ":";
    std::size_t pos = 0;
    while (pos < text.size()) {
        if (text.compare(pos, key.size(), key) == 0) {
            return pos;
        }
        auto nl = text.find('\n', pos);
        if (nl == std::string::npos) {
            break;
        }
        pos = nl + 1;
    }
    return std::string::npos;
}

class PasswdFileProvisioner final : public Provisioner {
  public:
    explicit PasswdFileProvisioner(const ProvisionerConfig& cfg)
        : path_(cfg.passwd_file), lock_path_(cfg.passwd_file + ".lock"), uid_(cfg.uid),
          gid_(cfg.gid), home_(cfg.home), extra_(cfg.extra_fields), timeout_(cfg.timeout) {}

    Result<void> provision(const ProvisionRequest& req) override {
        auto line = make_line(req);
        if (!line) {
            return line.error();
        }
        auto lock = take_lock();
        if (!lock) {
            return lock.error();
        }
        auto changed = rewrite(req.identity.canonical, *line);
        lock->reset(); // release before waiting: others may write in the meantime
        if (!changed) {
            return changed.error();
        }
        if (*changed) {
            // Measured after the rename, so the rename's second is at most this one.
            auto now = std::chrono::system_clock::now();
            std::this_thread::sleep_until(std::chrono::floor<std::chrono::seconds>(now) +
                                          std::chrono::milliseconds(1020));
        }
        return {};
    }

    [[nodiscard]] const char* name() const override { return "dovecot-passwd-file"; }

  private:
    Result<std::string> make_line(const ProvisionRequest& req) const {
        const std::string& user = req.identity.canonical;
        auto refuse = [&](const std::string& field, const std::string& why) {
            return fail("passwd-file " + path_ + ": cannot store user " + sanitize_reply(user, 64),
                        field + " " + why, Scope::account);
        };
        if (user.empty() || user.front() == '#' || user.find(' ') != std::string::npos ||
            !field_ok(user)) {
            return refuse("user name",
                          "is empty, starts with '#', or contains ':', a space or a control "
                          "character");
        }
        if (req.hash.empty() || !field_ok(req.hash)) {
            return refuse("password hash", "is empty or contains ':' or a control character");
        }
        std::string home = expand_template(home_, req.identity.local, req.identity.domain);
        if (!field_ok(home)) {
            return refuse("home \"" + sanitize_reply(home, 100) + "\"",
                          "contains ':' or a control character");
        }
        std::string extra = expand_template(extra_, req.identity.local, req.identity.domain);
        if (!extra_ok(extra)) {
            return refuse("extra_fields \"" + sanitize_reply(extra, 100) + "\"",
                          "starts with ':' or contains a control character");
        }
        // user:password:uid:gid:gecos:home:shell:extra
        return user + ":" + req.hash + ":" + uid_ + ":" + gid_ + "::" + home + "::" + extra;
    }

    // Exclusive flock on the lock file, waiting at most timeout_. flock locks belong to the
    // open file description, so threads of one process exclude each other as processes do.
    Result<Fd> take_lock() const {
        int fd = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0660);
        if (fd < 0 && errno == EACCES) {
            // Someone else's lock file that we may read: flock needs no write access.
            fd = ::open(lock_path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        }
        if (fd < 0) {
            return fail("lock passwd-file " + path_, sys_error("open(" + lock_path_ + ")", errno));
        }
        Fd lock(fd);
        auto deadline = std::chrono::steady_clock::now() + timeout_;
        auto pause = std::chrono::milliseconds(1);
        for (;;) {
            if (::flock(lock.get(), LOCK_EX | LOCK_NB) == 0) {
                return Result<Fd>(std::move(lock));
            }
            if (errno != EWOULDBLOCK && errno != EINTR) {
                return fail("lock passwd-file " + path_,
                            sys_error("flock(" + lock_path_ + ")", errno));
            }
            if (std::chrono::steady_clock::now() >= deadline) {
                return fail("lock passwd-file " + path_,
                            lock_path_ + " still locked by another process after " +
                                std::to_string(timeout_.count()) + " ms");
            }
            std::this_thread::sleep_for(pause);
            pause = std::min(pause * 2, std::chrono::milliseconds(50));
        }
    }

    // Called with the lock held. True when the file was replaced, false when the line was
    // already there as it should be.
    Result<bool> rewrite(const std::string& user, const std::string& line) const {
        const std::string what = "update passwd-file " + path_ + " for " + sanitize_reply(user, 64);
        // Follow a symlink to the real file: renaming over the link would replace the link.
        std::string target = path_;
        char real[PATH_MAX];
        if (::realpath(path_.c_str(), real) != nullptr) {
            target = real;
        } else if (errno != ENOENT) {
            return fail(what, sys_error("realpath(" + path_ + ")", errno));
        }

        std::string text;
        struct stat st {};
        bool exists = false;
        {
            Fd in(::open(target.c_str(), O_RDONLY | O_CLOEXEC));
            if (in.get() >= 0) {
                exists = true;
                if (::fstat(in.get(), &st) != 0) {
                    return fail(what, sys_error("fstat(" + target + ")", errno));
                }
                if (!S_ISREG(st.st_mode)) {
                    return fail(what, target + " is not a regular file");
                }
                auto r = read_all(in.get(), target);
                if (!r) {
                    return fail(what, r.error().message());
                }
                text = std::move(*r);
            } else if (errno != ENOENT) {
                return fail(what, sys_error("open(" + target + ")", errno));
            }
        }

        std::size_t at = find_user_line(text, user);
        if (at == std::string::npos) {
            if (!text.empty() && text.back() != '\n') {
                text += '\n';
            }
            text += line;
            text += '\n';
        } else {
            auto end = text.find('\n', at);
            std::size_t len = (end == std::string::npos ? text.size() : end) - at;
            if (text.compare(at, len, line) == 0) {
                return false; // already exactly this: leave the file (and its mtime) alone
            }
            text.replace(at, len, line);
        }
        auto r = replace_file(target, text, exists ? &st : nullptr, what);
        if (!r) {
            return r.error();
        }
        return true;
    }

    static Result<std::string> read_all(int fd, const std::string& path) {
        std::string out;
        char buf[65536];
        for (;;) {
            ssize_t n = ::read(fd, buf, sizeof buf);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return make_error(sys_error("read(" + path + ")", errno));
            }
            if (n == 0) {
                return out;
            }
            if (out.size() + static_cast<std::size_t>(n) > kMaxFileBytes) {
                return make_error(path + " is larger than " + std::to_string(kMaxFileBytes) +
                                  " bytes");
            }
            out.append(buf, static_cast<std::size_t>(n));
        }
    }

    // temp file beside the target, same mode/owner/group, fsync, rename, fsync the dir.
    static Result<void> replace_file(const std::string& target, const std::string& text,
                                     const struct stat* old, const std::string& what) {
        const std::string dir = dir_of(target);
        std::string tmpl = dir + "/." + base_of(target) + ".mf-XXXXXX";
        int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
        if (fd < 0) {
            return fail(what, sys_error("mkostemp(" + tmpl + ")", errno));
        }
        Fd out(fd);
        TempFile tmp(tmpl);

        mode_t mode = old != nullptr ? (old->st_mode & 07777) : 0640;
        if (old != nullptr) {
            struct stat now {};
            if (::fstat(out.get(), &now) != 0) {
                return fail(what, sys_error("fstat(" + tmp.path() + ")", errno));
            }
            // Owner first: chown may clear set-id bits that fchmod then restores.
            if ((now.st_uid != old->st_uid || now.st_gid != old->st_gid) &&
                ::fchown(out.get(), old->st_uid, old->st_gid) != 0) {
                return fail(what,
                            sys_error("fchown(" + tmp.path() + ", " + std::to_string(old->st_uid) +
                                          ":" + std::to_string(old->st_gid) + ")",
                                      errno) +
                                " (the replaced file would change owner; run as its "
                                "owner or root)");
            }
        }
        if (::fchmod(out.get(), mode) != 0) {
            return fail(what, sys_error("fchmod(" + tmp.path() + ")", errno));
        }
        std::size_t done = 0;
        while (done < text.size()) {
            ssize_t n = ::write(out.get(), text.data() + done, text.size() - done);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return fail(what, sys_error("write(" + tmp.path() + ")", errno));
            }
            done += static_cast<std::size_t>(n);
        }
        if (old != nullptr) {
            struct stat now {};
            if (::fstat(out.get(), &now) != 0) {
                return fail(what, sys_error("fstat(" + tmp.path() + ")", errno));
            }
            if (now.st_mtim.tv_sec <= old->st_mtim.tv_sec) {
                std::array<timespec, 2> times{};
                times[0].tv_nsec = UTIME_OMIT;
                times[1].tv_sec = old->st_mtim.tv_sec + 1;
                if (::futimens(out.get(), times.data()) != 0) {
                    return fail(what, sys_error("futimens(" + tmp.path() + ")", errno));
                }
            }
        }
        if (::fsync(out.get()) != 0) {
            return fail(what, sys_error("fsync(" + tmp.path() + ")", errno));
        }
        if (out.close_checked() != 0) {
            return fail(what, sys_error("close(" + tmp.path() + ")", errno));
        }
        if (::rename(tmp.path().c_str(), target.c_str()) != 0) {
            return fail(what, sys_error("rename(" + tmp.path() + ", " + target + ")", errno));
        }
        tmp.commit();
        Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (d.get() < 0 || ::fsync(d.get()) != 0) {
            // The new file is in place and complete; only its durability across a crash is
            // in doubt. Report it, because the engine would otherwise record success.
            return fail(what, sys_error("fsync(" + dir + ")", errno));
        }
        return {};
    }

    std::string path_;
    std::string lock_path_;
    std::string uid_;
    std::string gid_;
    std::string home_;
    std::string extra_;
    Millis timeout_;
};

} // namespace

Result<std::unique_ptr<Provisioner>> make_passwd_file(const ProvisionerConfig& cfg) {
    if (cfg.passwd_file.empty()) {
        return config_error("provisioner.passwd_file",
                            "required for the dovecot-passwd-file provisioner");
    }
    if (!digits_only(cfg.uid)) {
        return config_error("provisioner.uid", "must be a number or empty, not \"" +
                                                   sanitize_reply(cfg.uid, 40) + "\"");
    }
    if (!digits_only(cfg.gid)) {
        return config_error("provisioner.gid", "must be a number or empty, not \"" +
                                                   sanitize_reply(cfg.gid, 40) + "\"");
    }
    // Templates are checked again after expansion, but a ':' or a line break written in the
    // config itself is a config error, not a per-user one.
    if (!field_ok(cfg.home)) {
        return config_error("provisioner.home", "must not contain ':' or control characters");
    }
    if (!extra_ok(cfg.extra_fields)) {
        return config_error("provisioner.extra_fields",
                            "must not start with ':' or contain control characters");
    }
    if (cfg.timeout.count() <= 0) {
        return config_error("provisioner.timeout", "must be positive");
    }
    return std::unique_ptr<Provisioner>(std::make_unique<PasswdFileProvisioner>(cfg));
}

} // namespace mf::prov
