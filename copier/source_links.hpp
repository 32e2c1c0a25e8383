// source_links.hpp — symbolic links in a local source tree (Maildir, mbox): refused unless
// --follow-symlinks, and then followed at most once per directory.
//
// Without following, a link to a file or directory is left out with a clear reason (it is
// listed as skipped, never silently dropped): a tree rsynced from an old server should hold
// no links, and one that does may point anywhere (another user's mail, /etc). With
// following, every directory the walk enters is remembered by device and inode, so links
// that point at each other's parents cannot make the walk endless or exponential.
// Must never: open or follow anything itself; it only decides.
#pragma once

#include "source.hpp"

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace mf::copy::source {

class LinkPolicy {
  public:
    explicit LinkPolicy(bool follow) : follow_(follow) {}

    [[nodiscard]] bool follow() const { return follow_; }

    // True when `e` is a symbolic link the walk must not follow (it is then skipped with
    // refusal_text()). Without following, every link is refused.
    [[nodiscard]] bool refuses(const std::filesystem::directory_entry& e) const;
    [[nodiscard]] static std::string refusal_text(const std::filesystem::path& p);

    // Before the walk goes into directory `dir` (a link or not): false when it was there
    // already (a link loop, or two names for one directory); `why` then says so.
    bool enter(const std::filesystem::path& dir, std::string& why);

  private:
    bool follow_;
    std::set<std::pair<dev_t, ino_t>> seen_;
};

} // namespace mf::copy::source
