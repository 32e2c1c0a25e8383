// source_links.cpp — the symbolic-link policy of local source trees (see source_links.hpp).
// Must never: follow a link when following is off (lstat() only, via symlink_status).
#include "source_links.hpp"

#include <cerrno>
#include <cstring>
#include <sys/stat.h>

namespace mf::copy::source {

bool LinkPolicy::refuses(const std::filesystem::directory_entry& e) const {
    std::error_code ec;
    return !follow_ && e.is_symlink(ec);
}

std::string LinkPolicy::refusal_text(const std::filesystem::path& p) {
    return p.string() + ": a symbolic link, not followed (mailferry-copy --follow-symlinks "
                        "follows links in a local source)";
}

bool LinkPolicy::enter(const std::filesystem::path& dir, std::string& why) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
        why = dir.string() + ": " + std::strerror(errno);
        return false;
    }
    if (!seen_.emplace(st.st_dev, st.st_ino).second) {
        why = dir.string() + ": a directory already read under another name (a loop of "
                             "symbolic links?); read once";
        return false;
    }
    return true;
}

} // namespace mf::copy::source
