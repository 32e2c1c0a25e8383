// copy_flags.cpp — flag changes of messages already copied, carried to an IMAP target.
//
// A resync where only flags changed must not cost a round trip per message: the changes
// are grouped by what they add and remove, each group is one UID STORE over a UID set,
// all STOREs are pipelined, and the state file records the applied ones in one
// transaction. Only the difference is stored (+FLAGS/-FLAGS), so a flag the user set on the
// new server meanwhile survives; a message whose last carried flags are unknown (a run
// killed between its APPEND and its state row) gets the source's whole set (FLAGS).
// Must never: record a change the target did not answer OK, or leave a transaction open.
#include "copy_internal.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

namespace mf::copy::detail {
namespace {

// (replace, add, remove): replace carries `add` as the whole set.
using GroupKey = std::tuple<bool, std::string, std::string>;

GroupKey key_of(const FlagCarry& c) {
    if (c.before == kFlagsUnknown) {
        return {true, c.now, ""};
    }
    auto now = split_flags(c.now);
    auto before = split_flags(c.before);
    std::string add;
    std::string rem;
    for (const auto& f : now) {
        if (std::find(before.begin(), before.end(), f) == before.end()) {
            add += (add.empty() ? "" : " ") + f;
        }
    }
    for (const auto& f : before) {
        if (std::find(now.begin(), now.end(), f) == now.end()) {
            rem += (rem.empty() ? "" : " ") + f;
        }
    }
    return {false, add, rem};
}

} // namespace

Result<std::vector<std::size_t>> carry_flag_changes(imap::Client& dst, State& state,
                                                    std::int64_t folder,
                                                    const std::vector<FlagCarry>& changes,
                                                    const std::string& folder_name,
                                                    std::vector<std::string>& notes) {
    std::map<GroupKey, std::vector<std::size_t>> groups;
    for (std::size_t i = 0; i < changes.size(); ++i) {
        groups[key_of(changes[i])].push_back(i);
    }
    std::map<std::string, const std::vector<std::size_t>*> tags;
    for (const auto& [key, members] : groups) {
        std::vector<std::uint32_t> uids;
        for (auto i : members) {
            uids.push_back(changes[i].dst_uid);
        }
        std::sort(uids.begin(), uids.end());
        const std::string set = uid_set(uids);
        const auto& [replace, add, rem] = key;
        if (replace) {
            tags[dst.command("UID STORE " + set + " FLAGS.SILENT (" + add + ")")] = &members;
            continue;
        }
        if (!add.empty()) {
            tags[dst.command("UID STORE " + set + " +FLAGS.SILENT (" + add + ")")] = &members;
        }
        if (!rem.empty()) {
            tags[dst.command("UID STORE " + set + " -FLAGS.SILENT (" + rem + ")")] = &members;
        }
    }
    std::set<const std::vector<std::size_t>*> failed;
    for (std::size_t open = tags.size(); open > 0;) {
        auto r = dst.read();
        if (!r) {
            return r.error();
        }
        if (r->type != imap::Response::Type::tagged) {
            continue;
        }
        auto it = tags.find(r->tag);
        if (it == tags.end()) {
            return make_error("update flags on the target", "unexpected tag " + r->tag,
                              Scope::server, Retry::later);
        }
        if (r->keyword != "OK" && failed.insert(it->second).second) {
            notes.push_back("folder \"" + sanitize_reply(folder_name) + "\": flags of " +
                            std::to_string(it->second->size()) +
                            " messages not updated: " + r->summary());
        }
        --open;
    }
    std::vector<std::size_t> applied;
    if (auto b = state.begin(); !b) {
        return b.error();
    }
    for (const auto& [key, members] : groups) {
        if (failed.count(&members) != 0) {
            continue;
        }
        for (auto i : members) {
            if (auto s = state.set_flags(folder, changes[i].src_uid, changes[i].now); !s) {
                state.rollback();
                return s.error();
            }
            applied.push_back(i);
        }
    }
    if (auto c = state.commit(); !c) {
        return c.error();
    }
    std::sort(applied.begin(), applied.end());
    return applied;
}

} // namespace mf::copy::detail
