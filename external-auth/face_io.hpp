// face_io.hpp — bounded, deadline-limited reads and whole-line writes for the login faces.
//
// Every byte a face reads from its caller crosses a trust boundary, so every read here has
// a byte limit and a deadline: a caller that sends too much or stalls
// gets a definite outcome instead of a face that grows or hangs. Bytes that may hold a
// password are collected in a Secret and the scratch buffers they passed through are
// wiped. Nothing here logs: callers know what the bytes were and say so.
// Errors: syscall failures come back as errno values; nothing throws.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/secret.hpp"

#include <chrono>
#include <string_view>

namespace mf::face {

enum class ReadEnd {
    eof,        // the writer closed its end; data is complete
    over_limit, // more than `limit` bytes arrived; data holds the first `limit`
    timeout,    // the deadline passed before EOF
    error,      // read() or poll() failed; errno_value says why
};

struct SecretRead {
    ReadEnd end = ReadEnd::error;
    Secret data;
    int errno_value = 0;
};

// Reads `fd` to end of file, keeping at most `limit` bytes, for at most `timeout`.
// Stops reading as soon as the limit is exceeded (the rest is left unread).
SecretRead read_all_bounded(int fd, std::size_t limit, Millis timeout);

// True when `fd` is an open descriptor.
bool fd_is_open(int fd);

// Sets or clears FD_CLOEXEC; returns false (errno set) on failure.
bool set_cloexec(int fd, bool on);

// Writes all of `data` (retrying short writes and EINTR). Returns 0 or an errno value.
int write_all(int fd, std::string_view data);

// Milliseconds left until `deadline`, never negative (for poll()).
int millis_until(std::chrono::steady_clock::time_point deadline);

} // namespace mf::face
