// spool_private_file.cpp — reading a secret an admin handed us in a file, only when nobody
// else could have read or written it (see read_private_secret_file in spool.hpp).
#include "file_util.hpp"
#include "mailferry/spool.hpp"

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace mf::spool {
namespace {

// Closes the descriptor on every path out.
struct Fd {
    int fd;
    explicit Fd(int f) : fd(f) {}
    ~Fd() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
};

Error refused(const std::string& path, const std::string& why) {
    return make_error("password file " + path, why, Scope::config);
}

} // namespace

Result<Secret> read_private_secret_file(const std::string& path, std::size_t max_bytes) {
    Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (f.fd < 0) {
        const int e = errno;
        return refused(path, e == ELOOP ? std::string("is a symbolic link; name the file itself")
                                        : "open failed: " + errno_text(e));
    }
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) {
        return refused(path, "fstat failed: " + errno_text(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return refused(path, "is not a regular file");
    }
    if (st.st_uid != ::geteuid()) {
        return refused(path, "is owned by uid " + std::to_string(st.st_uid) +
                                 ", not by the user running this command (uid " +
                                 std::to_string(::geteuid()) + ")");
    }
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return refused(path, std::string("has mode ") + mode +
                                 ": others could read or change it; chmod 600 " + path);
    }
    std::vector<char> buf(max_bytes + 1);
    std::size_t got = 0;
    Result<Secret> out = Secret();
    for (;;) {
        ssize_t n = ::read(f.fd, buf.data() + got, buf.size() - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            out = refused(path, "read failed: " + errno_text(errno));
            break;
        }
        if (n == 0) {
            out = Secret(buf.data(), got);
            break;
        }
        got += static_cast<std::size_t>(n);
        if (got > max_bytes) {
            out = refused(path, "is larger than " + std::to_string(max_bytes) + " bytes");
            break;
        }
    }
    wipe(buf.data(), buf.size());
    return out;
}

} // namespace mf::spool
