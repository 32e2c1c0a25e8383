// store_lock.cpp — see store_lock.hpp.
#include "support/store_lock.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace mft {

StoreLockHolder::StoreLockHolder(const std::string& db) {
    int ready[2];
    int go[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe failed");
    }
    if (::pipe2(go, O_CLOEXEC) != 0) {
        ::close(ready[0]);
        ::close(ready[1]);
        throw std::runtime_error("pipe failed");
    }
    pid_ = ::fork();
    if (pid_ == 0) {
        ::close(ready[0]);
        ::close(go[1]);
        sqlite3* h = nullptr;
        int rc = sqlite3_open(db.c_str(), &h);
        rc = rc == SQLITE_OK ? sqlite3_exec(h, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) : rc;
        char c = rc == SQLITE_OK ? 'y' : 'n';
        [[maybe_unused]] auto n = ::write(ready[1], &c, 1);
        n = ::read(go[0], &c, 1); // EOF or a byte: let go
        sqlite3_exec(h, "COMMIT", nullptr, nullptr, nullptr);
        sqlite3_close(h);
        ::_exit(0);
    }
    ::close(ready[1]);
    ::close(go[0]);
    release_fd_ = go[1];
    char c = 0;
    bool held = pid_ > 0 && ::read(ready[0], &c, 1) == 1 && c == 'y';
    ::close(ready[0]);
    if (!held) {
        release();
        throw std::runtime_error("could not hold the write lock of " + db);
    }
}

void StoreLockHolder::release() {
    if (release_fd_ >= 0) {
        // A byte, not only EOF: a process started meanwhile may hold a copy of this end.
        [[maybe_unused]] auto n = ::write(release_fd_, "x", 1);
        ::close(release_fd_);
        release_fd_ = -1;
    }
    if (pid_ > 0) {
        int st = 0;
        ::waitpid(pid_, &st, 0);
        pid_ = -1;
    }
}

StoreLockHolder::~StoreLockHolder() {
    release();
}

} // namespace mft
