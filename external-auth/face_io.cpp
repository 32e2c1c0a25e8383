// face_io.cpp — bounded reads with a deadline, and whole writes, for the login faces.
//
// Must never keep more than the caller's limit in memory, never wait past the deadline,
// and never leave password bytes in a scratch buffer.
#include "face_io.hpp"

#include <array>
#include <cerrno>
#include <fcntl.h>
#include <poll.h>
#include <string>
#include <unistd.h>

namespace mf::face {

int millis_until(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
        return 0;
    }
    return left.count() > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(left.count());
}

SecretRead read_all_bounded(int fd, std::size_t limit, Millis timeout) {
    SecretRead out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string buf; // may hold a password: wiped below on every path
    buf.reserve(limit + 1);
    std::array<char, 512> chunk{};
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        int left = millis_until(deadline);
        int n = ::poll(&p, 1, left);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            out.end = ReadEnd::error;
            out.errno_value = errno;
            break;
        }
        if (n == 0) {
            out.end = ReadEnd::timeout;
            break;
        }
        // Read no more than one byte past the limit: that byte proves "too long".
        std::size_t want = std::min(chunk.size(), limit + 1 - buf.size());
        ssize_t got = ::read(fd, chunk.data(), want);
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            out.end = ReadEnd::error;
            out.errno_value = errno;
            break;
        }
        if (got == 0) {
            out.end = ReadEnd::eof;
            break;
        }
        buf.append(chunk.data(), static_cast<std::size_t>(got));
        if (buf.size() > limit) {
            out.end = ReadEnd::over_limit;
            buf.resize(limit);
            break;
        }
    }
    out.data = Secret(buf);
    wipe(buf.data(), buf.size());
    wipe(chunk.data(), chunk.size());
    return out;
}

bool fd_is_open(int fd) {
    return ::fcntl(fd, F_GETFD) != -1;
}

bool set_cloexec(int fd, bool on) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags == -1) {
        return false;
    }
    flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
    return ::fcntl(fd, F_SETFD, flags) != -1;
}

int write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return 0;
}

} // namespace mf::face
