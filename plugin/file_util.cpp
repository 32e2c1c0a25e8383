// file_util.cpp — see file_util.hpp.
#include "file_util.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace mf {
namespace {

struct Fd {
    int fd = -1;
    explicit Fd(int f) : fd(f) {}
    ~Fd() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
};

} // namespace

std::string dir_of(const std::string& path) {
    auto pos = path.rfind('/');
    if (pos == std::string::npos) {
        return ".";
    }
    return pos == 0 ? "/" : path.substr(0, pos);
}

std::string errno_text(int err) {
    return std::strerror(err);
} // NOLINT(concurrency-mt-unsafe)

Result<std::string> read_file(const std::string& path, std::size_t max_bytes) {
    Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (f.fd < 0) {
        return make_error("open(" + path + ") failed", errno_text(errno), Scope::config);
    }
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(f.fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return make_error("read(" + path + ") failed", errno_text(errno), Scope::config);
        }
        if (n == 0) {
            break;
        }
        if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
            return make_error("read(" + path + ") failed",
                              "file is larger than " + std::to_string(max_bytes) + " bytes",
                              Scope::config);
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

Result<void> write_file_atomic(const std::string& path, std::string_view content, mode_t mode) {
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    {
        Fd f(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode));
        if (f.fd < 0) {
            return make_error("open(" + tmp + ") failed", errno_text(errno), Scope::server,
                              Retry::later);
        }
        ::fchmod(f.fd, mode); // umask may have narrowed it
        std::size_t done = 0;
        while (done < content.size()) {
            ssize_t n = ::write(f.fd, content.data() + done, content.size() - done);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                int e = errno;
                ::unlink(tmp.c_str());
                return make_error("write(" + tmp + ") failed", errno_text(e), Scope::server,
                                  Retry::later);
            }
            done += static_cast<std::size_t>(n);
        }
        if (::fsync(f.fd) != 0) {
            int e = errno;
            ::unlink(tmp.c_str());
            return make_error("fsync(" + tmp + ") failed", errno_text(e), Scope::server,
                              Retry::later);
        }
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        return make_error("rename(" + tmp + ", " + path + ") failed", errno_text(e), Scope::server,
                          Retry::later);
    }
    Fd d(::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d.fd >= 0) {
        ::fsync(d.fd);
    }
    return {};
}

std::string secret_file_warning(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return {};
    }
    if ((st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return path + " holds a secret but has mode " + mode + ": make it 0600 (chmod 600 " + path +
               ")";
    }
    return {};
}

Result<void> make_dirs(const std::string& path, mode_t mode) {
    if (path.empty()) {
        return {};
    }
    std::string cur;
    std::size_t pos = 0;
    while (pos != std::string::npos) {
        pos = path.find('/', pos + 1);
        cur = path.substr(0, pos);
        if (cur.empty()) {
            continue;
        }
        if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) {
            return make_error("mkdir(" + cur + ") failed", errno_text(errno), Scope::server,
                              Retry::later);
        }
    }
    return {};
}

} // namespace mf
