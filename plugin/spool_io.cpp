// spool_io.cpp — see spool_io.hpp.
#include "spool_io.hpp"

#include "file_util.hpp"

#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mf::spool::detail {
namespace {

bool plain_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '@' || c == '+' || c == '-';
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

Error io_error(const std::string& op, const std::string& path, int err) {
    return make_error(op + "(" + path + ") failed", errno_text(err), Scope::server, Retry::later);
}

} // namespace

std::string encode_name(std::string_view account) {
    static const char* digits = "0123456789ABCDEF";
    std::string out;
    for (std::size_t i = 0; i < account.size(); ++i) {
        char c = account[i];
        if (plain_char(c) && !(i == 0 && c == '.')) {
            out += c;
        } else {
            auto b = static_cast<unsigned char>(c);
            out += '%';
            out += digits[b >> 4];
            out += digits[b & 15];
        }
    }
    return out;
}

std::optional<std::string> decode_name(std::string_view name) {
    std::string out;
    for (std::size_t i = 0; i < name.size(); ++i) {
        if (name[i] != '%') {
            if (!plain_char(name[i])) {
                return std::nullopt;
            }
            out += name[i];
            continue;
        }
        if (i + 2 >= name.size()) {
            return std::nullopt;
        }
        int hi = hex_value(name[i + 1]);
        int lo = hex_value(name[i + 2]);
        if (hi < 0 || lo < 0) {
            return std::nullopt;
        }
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    if (out.empty() || encode_name(out) != name) {
        return std::nullopt;
    }
    return out;
}

Result<void> ensure_dir(const std::string& dir, mode_t mode) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            return make_error("use directory " + dir, "it exists but is not a directory",
                              Scope::config);
        }
        return {};
    }
    if (errno != ENOENT) {
        return io_error("stat", dir, errno);
    }
    std::string parent = dir_of(dir);
    if (parent != dir && parent != "/" && parent != ".") {
        if (auto r = ensure_dir(parent, 0755); !r) {
            return r;
        }
    }
    if (::mkdir(dir.c_str(), mode) != 0) {
        if (errno == EEXIST) {
            return {};
        }
        return io_error("mkdir", dir, errno);
    }
    ::chmod(dir.c_str(), mode); // umask narrowed it; the setgid bit needs chmod anyway
    return {};
}

Result<void> write_atomic(const std::string& path, std::string_view content, mode_t mode,
                          std::optional<uid_t> uid, std::optional<gid_t> gid) {
    const std::string dir = dir_of(path);
    std::string base = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
    unsigned char rnd[6];
    randombytes_buf(rnd, sizeof rnd);
    std::string tag;
    for (unsigned char b : rnd) {
        tag += "0123456789abcdef"[b >> 4];
        tag += "0123456789abcdef"[b & 15];
    }
    const std::string tmp = dir + "/." + base + ".tmp-" + std::to_string(::getpid()) + "-" + tag;
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode & 0777);
    if (fd < 0) {
        return io_error("open", tmp, errno);
    }
    auto fail = [&](const char* op) {
        int e = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        return io_error(op, tmp, e);
    };
    if ((uid || gid) && ::fchown(fd, uid ? *uid : static_cast<uid_t>(-1),
                                 gid ? *gid : static_cast<gid_t>(-1)) != 0) {
        return fail("fchown");
    }
    if (::fchmod(fd, mode) != 0) { // after fchown, which may clear set-id bits
        return fail("fchmod");
    }
    std::size_t done = 0;
    while (done < content.size()) {
        ssize_t n = ::write(fd, content.data() + done, content.size() - done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail("write");
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
        return fail("fsync");
    }
    if (::close(fd) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        return io_error("close", tmp, e);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        return make_error("rename(" + tmp + ", " + path + ") failed", errno_text(e), Scope::server,
                          Retry::later);
    }
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
    return {};
}

Result<std::vector<std::string>> list_entries(const std::string& dir) {
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
    std::vector<std::string> out;
    if (!d) {
        if (errno == ENOENT) {
            return out;
        }
        return io_error("opendir", dir, errno);
    }
    constexpr std::string_view kSuffix = ".sealed";
    errno = 0;
    while (dirent* e = ::readdir(d.get())) {
        std::string_view name(e->d_name);
        if (name.empty() || name.front() == '.' || name.size() <= kSuffix.size() ||
            name.substr(name.size() - kSuffix.size()) != kSuffix) {
            continue;
        }
        if (auto acct = decode_name(name.substr(0, name.size() - kSuffix.size()))) {
            out.push_back(std::move(*acct));
        }
    }
    if (errno != 0) {
        return io_error("readdir", dir, errno);
    }
    return out;
}

} // namespace mf::spool::detail
