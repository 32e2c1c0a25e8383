// store_lock.hpp — another process holding a SQLite database's write lock, as a busy admin
// tool or a stuck process would, for tests of "store locked" paths.
//
// Must never: leave the child behind (the destructor releases and reaps it).
// Errors: a child that cannot open the database or take the lock throws at construction.
#pragma once

#include <string>
#include <sys/types.h>

namespace mft {

class StoreLockHolder {
  public:
    // Forks a child that opens `db` and holds BEGIN EXCLUSIVE; returns once it holds it.
    explicit StoreLockHolder(const std::string& db);
    ~StoreLockHolder();
    StoreLockHolder(const StoreLockHolder&) = delete;
    StoreLockHolder& operator=(const StoreLockHolder&) = delete;

    // Ends the transaction and waits for the child; idempotent.
    void release();

  private:
    pid_t pid_ = -1;
    int release_fd_ = -1;
};

} // namespace mft
