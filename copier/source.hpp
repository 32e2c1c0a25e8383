// source.hpp — what the copier reads from: one interface for every kind of old mailbox
// (a local Maildir tree and a POP3 mailbox today; mbox is meant to sit behind it too;
// the IMAP source still has its own pipelined path, copy_folder.cpp).
//
// A Source lists folders (with subscriptions), and per folder a UIDVALIDITY and the
// messages with the UIDs, flags and dates a user of the old server saw; it streams each
// message's bytes in chunks so memory stays flat whatever the size.
// Must never: change the source (local trees are opened read-only; the one exception is
// remove(), POP3's delete-after-copy, on request), invent flags the old server did not
// show, or give two messages of one folder the same UID.
// Errors: folders()/messages() fail for what makes the folder unreadable (scope folder);
// one unreadable message is listed in FolderContents::problems and the rest continues.
#pragma once

#include "mailferry/error.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mf::copy::source {

struct Folder {
    std::vector<std::string> parts; // UTF-8 levels; {"INBOX"} for the inbox
    bool noselect = false;          // only a parent of other folders
    bool subscribed = false;
    std::string locator; // source-private (a directory, a file)

    [[nodiscard]] std::string name() const; // parts joined with '/'
};

struct Message {
    std::uint32_t uid = 0;
    std::uint64_t size = 0;           // bytes that read() delivers
    std::string flags;                // sorted, space-separated, as IMAP shows them
    std::optional<std::int64_t> when; // INTERNALDATE, seconds since the epoch
    std::string locator;              // source-private (a file name, a UIDL, an offset)
    // Set when `uid` is only the old server's current view and may change under a live
    // tree (a Maildir file not yet in dovecot-uidlist gets a guessed UID): a name that
    // stays with the message for its life in this folder. The copier then keys its state
    // by it instead (State::uid_for_key), so a guessed UID that later shifts can neither
    // skip a message nor copy one twice. Empty: `uid` is stable.
    std::string key;
    // The UID clients of the old server know this message by, when it has one that stays
    // (an IMAP UID, a Maildir file listed in dovecot-uidlist or courierimapuiddb); 0: none
    // (a guessed UID, POP3, mbox). A target that is ours keeps it (target_maildir.hpp).
    std::uint32_t keep_uid = 0;
};

// A folder of a local tree that folders() left out (a symbolic link not followed, a
// directory reached twice), and why; the copier lists it as skipped.
struct TreeProblem {
    std::string folder; // UTF-8 name as it would have been listed
    std::string reason; // "PATH: why"
};

struct FolderContents {
    std::uint32_t uidvalidity = 0;
    // The old server's next UID (IMAP UIDNEXT, the uidlist's next UID); 0: not known. A
    // target that keeps UIDs starts its own numbering there, so a UID a client saw on the
    // old server for a message since deleted is never given to another message.
    std::uint32_t uidnext = 0;
    std::vector<Message> messages;     // ascending UID
    std::vector<std::string> problems; // "file: why" for what was left out
};

using Sink = std::function<Result<void>(std::string_view chunk)>;

class Source {
  public:
    virtual ~Source() = default;
    [[nodiscard]] virtual std::string label() const = 0;
    virtual Result<std::vector<Folder>> folders() = 0;
    virtual Result<FolderContents> messages(const Folder& f) = 0;
    // Streams the message's bytes; fails (scope message) if they are not exactly m.size.
    virtual Result<void> read(const Folder& f, const Message& m, const Sink& sink) = 0;
    // A hint: read() comes next for these messages of `f`, in this order. A network source
    // asks for them all at once instead of one round trip each; any other call in between
    // only costs the hint.
    virtual void prefetch(const Folder& f, const std::vector<const Message*>& next) {
        (void)f;
        (void)next;
    }
    // What the last folders() left out of a local tree (empty for network sources).
    [[nodiscard]] virtual std::vector<TreeProblem> tree_problems() const { return {}; }
    // Deletes these messages from the source, all or none; returns how many. Only POP3
    // implements it (Options::pop3_delete); every other source refuses.
    virtual Result<std::size_t> remove(const Folder& f, const std::vector<Message>& ms) {
        (void)f;
        (void)ms;
        return make_error("delete from " + label(), "this source is never changed", Scope::config);
    }
};

// Sorted, space-separated, no duplicates.
std::string join_flags(std::vector<std::string> flags);

// The pieces between the separators (an empty string gives one empty piece); the lines
// and fields of local trees' metadata files.
std::vector<std::string> split(std::string_view s, char sep);

// A decimal number of at most 19 digits, nothing else (no sign, no spaces); the numbers in
// file names and metadata files of local trees.
std::optional<std::uint64_t> to_u64(std::string_view s);

} // namespace mf::copy::source
