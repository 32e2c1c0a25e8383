// file_util.hpp — small, careful file operations shared by the engine's modules.
//
// Errors read like "open(/etc/x) failed: Permission denied". Writes that replace a file go
// through a temp file in the same directory, fsync, rename, so a reader never sees half.
#pragma once

#include "mailferry/error.hpp"

#include <string>
#include <sys/types.h>

namespace mf {

// Reads a whole file of at most max_bytes.
Result<std::string> read_file(const std::string& path, std::size_t max_bytes = 16u << 20);

// Replaces `path` atomically with `content`, created with `mode` (temp, fsync, rename,
// fsync of the directory).
Result<void> write_file_atomic(const std::string& path, std::string_view content, mode_t mode);

// "" when the file is private (no group/other read), else a warning text naming the file.
std::string secret_file_warning(const std::string& path);

// mkdir -p with mode for directories it creates.
Result<void> make_dirs(const std::string& path, mode_t mode);

std::string errno_text(int err);

// The directory part of `path`: "." for a bare name, "/" for a file in the root.
std::string dir_of(const std::string& path);

} // namespace mf
