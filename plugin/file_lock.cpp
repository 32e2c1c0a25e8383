// file_lock.cpp — see file_lock.hpp.
#include "file_lock.hpp"

#include "file_util.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <functional>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace mf {
namespace {

Result<int> open_lock_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0660);
    if (fd < 0) {
        return make_error("open(" + path + ") failed", errno_text(errno), Scope::server,
                          Retry::later);
    }
    return fd;
}

std::string safe_name(const std::string& s) {
    std::string out;
    for (char c : s) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        out += ok ? c : '_';
    }
    return out;
}

} // namespace

Result<FileLock> FileLock::acquire(const std::string& path, Millis timeout) {
    auto fd = open_lock_file(path);
    if (!fd) {
        return fd.error();
    }
    FileLock lock(*fd);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto pause = std::chrono::milliseconds(1);
    for (;;) {
        if (::flock(*fd, LOCK_EX | LOCK_NB) == 0) {
            return lock;
        }
        if (errno != EWOULDBLOCK && errno != EINTR) {
            return make_error("flock(" + path + ") failed", errno_text(errno), Scope::server,
                              Retry::later);
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            return make_error("lock " + path,
                              "still held by another login after " +
                                  std::to_string(timeout.count()) + " ms",
                              Scope::account, Retry::later);
        }
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::milliseconds(20));
    }
}

Result<std::optional<FileLock>> FileLock::try_acquire(const std::string& path) {
    auto fd = open_lock_file(path);
    if (!fd) {
        return fd.error();
    }
    FileLock lock(*fd);
    if (::flock(*fd, LOCK_EX | LOCK_NB) == 0) {
        return std::optional<FileLock>(std::move(lock));
    }
    if (errno == EWOULDBLOCK) {
        return std::optional<FileLock>();
    }
    return make_error("flock(" + path + ") failed", errno_text(errno), Scope::server, Retry::later);
}

FileLock::FileLock(FileLock&& other) noexcept : fd_(other.fd_) {
    other.fd_ = -1;
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = other.fd_;
        other.fd_ = -1;
    }
    return *this;
}

FileLock::~FileLock() {
    if (fd_ >= 0) {
        ::close(fd_); // releases the flock
    }
}

std::string account_lock_path(const std::string& lock_dir, const std::string& account) {
    // FNV-1a: stable across processes and builds (std::hash is not guaranteed to be).
    std::uint32_t h = 2166136261u;
    for (unsigned char c : account) {
        h = (h ^ c) * 16777619u;
    }
    char name[32];
    std::snprintf(name, sizeof name, "account-%03x.lock", static_cast<unsigned>(h & 0xfff));
    return lock_dir + "/" + name;
}

Result<std::optional<FileLock>> take_provider_slot(const std::string& lock_dir,
                                                   const std::string& provider, unsigned slots) {
    // Start at a different slot per process so they do not all contend for slot 0.
    unsigned start = static_cast<unsigned>(::getpid()) % (slots == 0 ? 1 : slots);
    for (unsigned i = 0; i < slots; ++i) {
        unsigned n = (start + i) % slots;
        auto r = FileLock::try_acquire(lock_dir + "/provider-" + safe_name(provider) + "-" +
                                       std::to_string(n) + ".lock");
        if (!r) {
            return r.error();
        }
        if (r->has_value()) {
            return std::move(*r);
        }
    }
    return std::optional<FileLock>();
}

} // namespace mf
