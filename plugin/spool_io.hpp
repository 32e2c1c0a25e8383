// spool_io.hpp — file helpers of the spool: entry names, private atomic writes, listing.
//
// Private to plugin/spool*.cpp. Never writes a file in place: temp file (O_EXCL, the final
// mode and owner set before any byte), fsync, rename, fsync of the directory.
// Errors: "op(PATH) failed: reason", Scope::server, Retry::later.
#pragma once

#include "mailferry/error.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace mf::spool::detail {

// Bytes outside [A-Za-z0-9._@+-] become %XX; a leading '.' too (no hidden files).
std::string encode_name(std::string_view account);
// The inverse; nullopt for a name encode_name() could not have made.
std::optional<std::string> decode_name(std::string_view name);

// mkdir -p; the last directory gets exactly `mode` (umask does not apply) if created here.
Result<void> ensure_dir(const std::string& dir, mode_t mode);

// Replaces `path` with `content`: mode and (when given) owner are set on the temp file.
Result<void> write_atomic(const std::string& path, std::string_view content, mode_t mode,
                          std::optional<uid_t> uid, std::optional<gid_t> gid);

// Accounts with an entry (NAME.sealed) in `dir`; a missing directory holds none.
Result<std::vector<std::string>> list_entries(const std::string& dir);

} // namespace mf::spool::detail
