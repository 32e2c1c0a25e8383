// file_lock.hpp — flock(2)-based locks shared by threads and processes on one host.
//
// Login helpers are separate processes (checkpassword forks one per login), so the
// per-account lock that keeps two first logins from provisioning twice, and the
// per-provider slots that cap concurrent verifications, must be visible across
// processes. flock locks belong to the open file, so they also exclude threads that
// open the file separately, and the kernel drops them when a process dies: a crashed
// helper can never leave an account locked.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/error.hpp"

#include <optional>
#include <string>

namespace mf {

class FileLock {
  public:
    // Waits up to `timeout` for an exclusive lock on `path` (created 0660 if missing).
    static Result<FileLock> acquire(const std::string& path, Millis timeout);
    // One attempt; nullopt when somebody else holds it.
    static Result<std::optional<FileLock>> try_acquire(const std::string& path);

    FileLock(FileLock&& other) noexcept;
    FileLock& operator=(FileLock&& other) noexcept;
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;
    ~FileLock();

  private:
    explicit FileLock(int fd) : fd_(fd) {}
    int fd_ = -1;
};

// lock_dir/account-NN.lock, striped over 4096 files by a hash of the account name.
std::string account_lock_path(const std::string& lock_dir, const std::string& account);

// Takes one of `slots` lock files lock_dir/provider-NAME-I.lock; nullopt when all are held.
Result<std::optional<FileLock>> take_provider_slot(const std::string& lock_dir,
                                                   const std::string& provider, unsigned slots);

} // namespace mf
