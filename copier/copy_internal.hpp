// copy_internal.hpp — pieces shared by the copier's files: folder listing and planning
// (names, filters, delimiters), sessions, message metadata, dates and flags.
//
// Private to copier/ and its tests. Nothing here talks to the state file except where
// stated. Must never: turn a name the target would store differently into the same name
// as another folder (plans are collision-free), or treat an unparsable date as a date.
#pragma once

#include "copy_state.hpp"
#include "imap_client.hpp"
#include "mailferry/copier.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mf::copy::detail {

struct Mailbox {
    std::string wire;               // as the server sent it (modified UTF-7)
    std::string utf8;               // decoded
    std::vector<std::string> parts; // utf8 split at the delimiter
    bool noselect = false;          // \Noselect or \NonExistent
    bool subscribed = false;
    bool listed = true;      // false: only known from the subscription list
    std::string special_use; // "\Sent", "\Trash" … or empty
};

struct Listing {
    char delim = '\0';
    std::vector<Mailbox> boxes; // sorted by wire name
    // A digest of everything that influences the plan (names, attributes, subscriptions).
    std::string digest;
};

// LIST "" "*" (with SPECIAL-USE when offered) and the subscription list, pipelined.
Result<Listing> list_mailboxes(imap::Client& c);

struct FolderPlan {
    Mailbox src;
    std::string name;        // UTF-8, '/' between levels: what filters and reports use
    std::string dst_utf8;    // UTF-8 with the target's delimiter
    std::string dst_wire;    // modified UTF-7 for the target
    bool copy = true;        // selectable and not filtered out
    std::string skip_reason; // why not copied, if !copy (filters are not errors)
    bool dst_exists = false;
    bool dst_known = false; // the target lists the name at all (\Noselect, or only subscribed)
    bool dst_subscribed = false;
};

// Decides, for every source mailbox, where it goes on the target. `dst` may be null when
// the target was not contacted (then only dst_delim is used and dst_exists stays false).
// Notes about renamed folders go to `notes`.
std::vector<FolderPlan> plan_folders(const Listing& src, const Listing* dst, char dst_delim,
                                     const Options& opts, std::vector<std::string>& notes);

// A logged-in session for an endpoint.
Result<std::unique_ptr<imap::Client>>
open_session(const Endpoint& ep, const Options& opts, const std::string& role,
             std::optional<std::chrono::milliseconds> slot_wait = std::nullopt);

// "dd-Mon-yyyy hh:mm:ss +zzzz" → seconds since the epoch; nullopt if malformed.
std::optional<std::int64_t> parse_internaldate(std::string_view s);

// FLAGS list → sorted, space-separated storable flags (no \Recent, no invalid atoms).
std::string normalize_flags(const imap::Value& list);
std::vector<std::string> split_flags(const std::string& flags);

// Metadata of one message from a FETCH response.
struct MsgMeta {
    std::uint32_t uid = 0;
    std::uint64_t size = 0;
    std::string flags;
    std::string date; // INTERNALDATE as sent
    std::optional<std::int64_t> when;
    bool have_size = false;
};

// Reads UID/FLAGS/INTERNALDATE/RFC822.SIZE out of a FETCH response's item list.
MsgMeta parse_fetch_items(const std::vector<imap::Value>& items);

// "1:5,7,9:12" from sorted UIDs.
std::string uid_set(const std::vector<std::uint32_t>& uids);
// The UIDs of a server's uid-set, in order ("3:5,9" → 3 4 5 9); empty if malformed or
// longer than `max`.
std::vector<std::uint32_t> parse_uid_set(std::string_view set, std::size_t max);

// The flags a state row holds for a message whose carried flags are unknown (appended by
// a run killed before it recorded them): the next run sets the source's whole set.
inline const std::string kFlagsUnknown = "\x01";

// A copied message whose flags differ from the ones last carried to the target.
struct FlagCarry {
    std::uint32_t src_uid = 0;
    std::uint32_t dst_uid = 0;
    std::string before; // last carried (the state row's), or kFlagsUnknown
    std::string now;    // the source's
};

// Carries `changes` to the selected target folder with pipelined UID STOREs, one per
// group of equal additions/removals (copy_flags.cpp), and records the applied ones in
// the state file in one transaction. A group the target refuses is a note, not an
// error. Returns the indexes of the applied changes, ascending.
Result<std::vector<std::size_t>> carry_flag_changes(imap::Client& dst, State& state,
                                                    std::int64_t folder,
                                                    const std::vector<FlagCarry>& changes,
                                                    const std::string& folder_name,
                                                    std::vector<std::string>& notes);

// Status of a mailbox from STATUS or SELECT/EXAMINE.
struct BoxStatus {
    std::uint32_t uidvalidity = 0;
    std::uint32_t uidnext = 0;
    std::uint32_t messages = 0;
    std::uint64_t modseq = 0; // 0: no CONDSTORE
};

// Selects (or examines) a mailbox and returns its status.
Result<BoxStatus> select_box(imap::Client& c, const std::string& wire, bool read_only,
                             bool condstore);

// Fetches bodies of `uids` and returns size + SHA-256 per UID (streamed, flat memory).
struct BodyDigest {
    std::uint64_t size = 0;
    Digest digest{};
};
Result<std::map<std::uint32_t, BodyDigest>>
fetch_digests(imap::Client& c, const std::vector<std::uint32_t>& uids, std::size_t chunk);

// True when an error that ended one folder's copy is that folder's alone: the folder
// cannot be copied for a reason retrying now would not mend, or the server answered
// something about it that the copier cannot use (a server that does not answer at all is
// Retry::later). Such a folder is skipped and reported; the account goes on.
inline bool folder_own_failure(const Error& e) {
    return e.scope == Scope::folder || (e.scope == Scope::server && !e.temporary());
}

} // namespace mf::copy::detail
