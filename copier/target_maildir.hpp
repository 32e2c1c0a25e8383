// target_maildir.hpp — a Maildir tree that a Dovecot of ours serves, written directly as
// Dovecot's own deliveries are, so the copy keeps the old server's UIDVALIDITY and UIDs
// (clients need not download again) where the folder allows it.
//
// Layout: Maildir++ as Dovecot's default `maildir:~/Maildir` has it: the root is INBOX,
// folder "A/B" is the directory ".A.B" (levels in modified UTF-7, '.' between them, as
// Dovecot's default namespace separator for Maildir++), each with cur/ new/ tmp/ and a
// `maildirfolder` file. Names are "wire" names here: modified UTF-7 with '.' between levels,
// "INBOX" for the root.
//
// Messages: written to tmp/ (fsync, mtime = INTERNALDATE), then renamed into cur/ as
// "<time>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<vsize>:2,<flags>" — system flags as the
// letters DFRST, keywords as the letters a–z of the folder's `dovecot-keywords` (at most 26,
// Dovecot's limit). Bytes are stored exactly as given (the copier gives them as IMAP shows
// them, CRLF), so S= is the file size and W= the size with bare LFs counted as CRLF.
//
// UIDs: `dovecot-uidlist` ("3 V<uidvalidity> N<next> G<guid>", then "<uid> :<base>" lines)
// is changed only under `dovecot-uidlist.lock` (created with O_EXCL as Dovecot's dotlock;
// a lock older than Dovecot's stale timeout, 2 minutes, is broken), by writing the whole new
// file into the lock file and renaming it over `dovecot-uidlist` — the way Dovecot replaces
// it. Messages are renamed into cur/ while the lock is held, so a Dovecot scanning cur/
// waits for the lock and then finds them listed: it never numbers them itself.
// A folder that never held a message ("fresh": no uidlist, or one with next UID 1 and no
// entries, and no files in cur/ new/) takes the source's UIDVALIDITY; then every message
// whose wanted UID is at least the folder's next UID keeps it. Any other message gets the
// next UID, as a delivery would. The price: a Dovecot session that has the empty folder
// selected at that moment is disconnected ("view is now inconsistent", logged as an
// error) and its client reconnects; nothing is lost (the folder was empty), and every
// other device of the user then finds the UIDs it cached from the old server.
// A writer of ours killed inside commit() leaves the lock, marked as ours; the next of ours
// (status(), files(), commit()) finishes or undoes that commit at once. Until then Dovecot
// waits for the lock, up to two minutes.
//
// Files and directories created get the permissions of the root directory (files without
// x bits), and, when running as root, its owner — as Dovecot does for its own files.
//
// Must never: change an existing message's bytes, rewrite a uidlist line of a message it did
// not store, give two messages one UID, or leave a message visible in cur/ but not listed.
// Errors: scope folder for a folder that cannot be read or written (the copy goes on with
// the next), scope message for one message (its tmp/ file is removed); a lock not obtained
// within the timeout is Retry::later.
// Threading: one MaildirFolder per thread; different folders of a tree may be written from
// different threads (the lock is per folder).
#pragma once

#include "source.hpp"

#include "mailferry/error.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace mf::copy::target {

struct MaildirBox {
    std::uint32_t uidvalidity = 0; // 0 when fresh and no uidlist exists yet
    std::uint32_t next_uid = 1;
    std::uint32_t messages = 0; // files in cur/ and new/
    bool fresh = false;         // may take the source's UIDVALIDITY and UIDs (see above)
};

// A message written to tmp/ but not yet in the folder; commit() moves it in. Removes its tmp/
// file when destroyed uncommitted.
class Staged {
  public:
    Staged() = default;
    Staged(std::string tmp_path, std::string base, std::string flags, std::uint32_t want_uid,
           std::uint64_t size);
    Staged(Staged&& o) noexcept;
    Staged& operator=(Staged&& o) noexcept;
    Staged(const Staged&) = delete;
    Staged& operator=(const Staged&) = delete;
    ~Staged();

    [[nodiscard]] const std::string& tmp_path() const { return tmp_path_; }
    [[nodiscard]] const std::string& base() const { return base_; }   // name without ":2,…"
    [[nodiscard]] const std::string& flags() const { return flags_; } // IMAP flags, sorted
    [[nodiscard]] std::uint32_t want_uid() const { return want_uid_; }
    [[nodiscard]] std::uint64_t size() const { return size_; }
    void committed() { tmp_path_.clear(); } // renamed away: nothing to remove

  private:
    std::string tmp_path_;
    std::string base_;
    std::string flags_;
    std::uint32_t want_uid_ = 0;
    std::uint64_t size_ = 0;
};

// Writes the message's bytes by calling the sink (chunks of any size).
using Writer = std::function<Result<void>(const source::Sink& sink)>;

class MaildirFolder {
  public:
    virtual ~MaildirFolder() = default;
    [[nodiscard]] virtual const std::string& path() const = 0; // the folder's directory

    // Reads dovecot-uidlist and counts cur/ and new/.
    virtual Result<MaildirBox> status() = 0;

    // Writes one message into tmp/ and fsyncs it. `flags` are IMAP flags (sorted, space
    // separated: "\Seen $Label1"); `when` becomes the file's mtime (now when empty);
    // `want_uid` is the UID to keep if commit() can (0: none). Fails (scope message) if
    // `write` delivers other than `size` bytes or the file cannot be written; an error
    // `write` itself returns is passed on as it is (a lost source connection keeps its scope).
    // Either way the tmp/ file is removed.
    virtual Result<Staged> stage(std::uint32_t want_uid, const std::string& flags,
                                 std::optional<std::int64_t> when, std::uint64_t size,
                                 const Writer& write) = 0;

    // Under the uidlist lock: re-reads dovecot-uidlist; when the folder is fresh and
    // `uidvalidity` is not 0, takes it; if the folder's UIDVALIDITY equals `uidvalidity`,
    // keeps, in order, each want_uid that is at least the next UID (the next UID then moves
    // past it), and raises the next UID to `min_next` after them; every other message gets a
    // UID after those, in order — so a message without a wanted UID never takes one a later
    // message of the batch wants. The caller passes `min_next` (the source's next UID) with
    // its last batch of a folder only: raised earlier, it would leave later wanted UIDs
    // below the next UID, where they cannot be kept;
    // adds new keywords to dovecot-keywords (beyond the 26th: dropped, see take_notes());
    // renames the files into cur/; writes the uidlist. Returns the UIDs, in the order of
    // `staged`. All or nothing: if it fails, no message is in cur/ (the staged
    // files stay in tmp/ for the caller's Staged objects to remove).
    virtual Result<std::vector<std::uint32_t>>
    commit(std::vector<Staged>& staged, std::uint32_t uidvalidity, std::uint32_t min_next) = 0;

    // Replaces the flags of the message with this UID (renames its file, adding keywords to
    // dovecot-keywords as needed), under the lock. A UID not in the folder fails (scope
    // message); keywords beyond the 26th are dropped and named in the returned notes.
    virtual Result<std::vector<std::string>> set_flags(std::uint32_t uid,
                                                       const std::string& flags) = 0;
    // The same for many messages under one lock, one read of the uidlist and one listing
    // of the folder. A change that fails with scope message has its error in its outcome;
    // any other failure fails the call (renames already made stay: each is a whole one).
    struct FlagChange {
        std::uint32_t uid = 0;
        std::string flags;
    };
    struct FlagOutcome {
        std::optional<Error> error;     // scope message: that message only
        std::vector<std::string> notes; // keywords dropped, as set_flags() returns them
    };
    virtual Result<std::vector<FlagOutcome>> set_flags(const std::vector<FlagChange>& changes) = 0;

    // The messages listed in dovecot-uidlist with a UID ≥ from_uid whose file exists:
    // UID → the file's current path. For settling a copy that was killed mid-way.
    virtual Result<std::map<std::uint32_t, std::string>> files(std::uint32_t from_uid) = 0;

    // What commit() left out without failing, since the last call: keywords beyond the
    // 26th, system flags Maildir has no letter for ("folder: keyword \"x\" not stored: …").
    virtual std::vector<std::string> take_notes() = 0;
};

class MaildirTree {
  public:
    virtual ~MaildirTree() = default;
    [[nodiscard]] virtual const std::string& root() const = 0;

    // Wire names of the folders that exist ("INBOX" first), for the copier's plan.
    virtual Result<std::vector<std::string>> folders() = 0;

    // Wire names in the tree's `subscriptions` file (in whichever of Dovecot's formats
    // it is: version 1, one name per line, or version 2).
    virtual Result<std::set<std::string>> subscriptions() = 0;

    // Adds the names not yet subscribed (keeping the file's format; a new file in the
    // format Dovecot 2.3 writes), atomically. Returns how many were added.
    virtual Result<std::size_t> subscribe(const std::vector<std::string>& wire_names) = 0;

    // The folder with this wire name; created (with cur/ new/ tmp/ and maildirfolder) when
    // `create`. A name Dovecot's Maildir++ cannot hold (a level that is empty, "." or "..",
    // or contains '/'; a name that starts with '~' — a lower level may) fails with scope
    // folder.
    virtual Result<std::unique_ptr<MaildirFolder>> folder(const std::string& wire, bool create) = 0;
};

// Opens the tree at `root`, creating the root (cur/ new/ tmp/, mode 0700, owned — when
// running as root — by the owner of its parent directory, the mail user) when missing.
// `lock_timeout`: how long commit() and set_flags() wait for dovecot-uidlist.lock.
Result<std::unique_ptr<MaildirTree>>
open_maildir_tree(const std::string& root,
                  std::chrono::milliseconds lock_timeout = std::chrono::seconds(30));

} // namespace mf::copy::target
