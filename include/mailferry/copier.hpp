// copier.hpp — copy one mail account from an IMAP server to another, exactly, and
// incrementally; verify a copy. The library behind `mailferry-copy`, linked by the worker.
//
// copy_account() copies every folder (creating it on the target, names translated between
// hierarchy delimiters and modified UTF-7), the subscriptions, and every message byte for
// byte with its flags, keywords and INTERNALDATE. What was copied is remembered in a
// SQLite file (tables copy_*, WAL): a re-run copies only new messages, carries flag changes
// made on the source since the last run, and with CONDSTORE checks an unchanged account in
// one pipelined round trip without touching the target. The intent to append a message is
// committed before its APPEND is sent, so a run killed at any moment is resolved on the
// next run by asking the target (APPENDUID, else size + SHA-256 of candidates): nothing is
// lost, nothing duplicated, and nothing is ever added to a message.
//
// Other sources (Endpoint::local = "maildir:/path" or "mbox:/path", Endpoint::pop3): read
// through one Source interface (copier/source.hpp) and appended in MULTIAPPEND groups with
// the same intents; open intents and a changed UIDVALIDITY are settled by SHA-256 of the
// target's messages. A local tree is never changed (a Maildir's flags, keywords, dates,
// UIDs and subscriptions from Dovecot's or Courier's files); POP3 copies INBOX by UIDL and
// deletes only with Options::pop3_delete; it has no flags or dates to carry.
// verify_account() compares every pair copy_account() supports.
//
// Target Endpoint::local = "maildir:/path": a Maildir++ tree a Dovecot of ours serves,
// written directly as Dovecot writes it (copier/target_maildir.hpp), from any source (an
// IMAP source is then read through the same Source interface). Messages keep the UIDs and
// UIDVALIDITY clients of the old server know (IMAP UIDs, a Maildir's dovecot-uidlist or
// courierimapuiddb) in every folder that held nothing before; the new server's own
// numbering starts above the old server's UIDNEXT. Intents carry each message's SHA-256, so
// a run killed between staging and listing a group is settled from the target's files.
//
// Threading: one call copies up to Options::connections folders at once, each on its own
// pair of connections (worker threads of the call); calls for different accounts may run
// in parallel threads, sharing one state file or not (SQLite serializes writers, each
// call waits out a busy database). Connections per server are counted process-wide and
// never exceed Options::max_connections_per_server.
// Blocking: every network operation has the endpoint's timeout as its deadline.
// Must never: write a password anywhere, add a header to a message, append a message
// whose earlier append may have succeeded without first asking the target.
// Errors: Result<Summary> fails only for what stops the whole account (cannot connect,
// login refused, state unusable) — Retry::later when trying again can help. Problems
// with single messages or folders that retrying now would not mend (a refused APPEND, a
// name the target cannot hold, an answer of the server the copier cannot use, a folder
// whose connection keeps breaking while the server itself answers) are listed in
// Summary::skipped, remembered in the state file with how many runs in a row hit them,
// and the copy goes on with everything else.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/error.hpp"
#include "mailferry/secret.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mf::copy {

struct Endpoint {
    std::string host;
    std::uint16_t port = 993;
    TlsMode tls = TlsMode::implicit;
    std::string ca_file;     // PEM bundle to trust; empty: the system store
    bool verify_cert = true; // chain + host name/IP; only an admin turns this off
    std::string user;        // whose mailbox
    std::string auth_user;   // non-empty: authenticate as this master user for `user`
    Secret password;         // of auth_user when set, else of user
    std::chrono::milliseconds timeout{60000};
    // Non-empty: a local tree instead of an IMAP server. As a source "maildir:/path"
    // (Maildir++ or subdirectory layout, Dovecot or Courier metadata), "mbox:/path",
    // "mboxrd:/path" or "mboxo:/path"; as a target "maildir:/path" (Maildir++, Dovecot's
    // files; `timeout` is then how long to wait for a folder's dovecot-uidlist.lock).
    // host, port, tls, user and password are then unused.
    std::string local;
    // Source only: the server speaks POP3 (host, port, tls, user, password as for IMAP);
    // its INBOX is copied, incrementally by UIDL.
    bool pop3 = false;

    // "user@host:port" (or `local`) for logs and state keys (never a secret).
    [[nodiscard]] std::string label() const;
};

struct Filters {
    // Folder names are UTF-8 with '/' between levels, whatever the server's delimiter.
    std::vector<std::string> skip;             // fnmatch patterns ("Trash", "Archive/*")
    std::map<std::string, std::string> rename; // source folder (and its subtree) → target
    bool subscribed_only = false;
    std::optional<std::int64_t> after;  // copy messages with INTERNALDATE >= after (unix s)
    std::optional<std::int64_t> before; // … and < before
};

struct Options {
    std::string state_path; // SQLite file, created 0600 if missing
    Filters filters;
    bool sanitize_names = true;  // make names the target refuses acceptable (see docs)
    bool map_special_use = true; // \Sent etc. go to the target's folder with that use
    std::size_t window = 64;     // APPENDs in flight on the target connection
    std::size_t batch = 100;     // messages per FETCH command
    std::uint64_t max_message_size = 1ull << 30;
    std::size_t chunk = std::size_t{64} * 1024; // bytes moved per read/write while streaming a body
    // Messages per APPEND when the target offers MULTIAPPEND (1: one per APPEND).
    std::size_t group = 32;
    // Folders copied in parallel, each on its own pair of connections.
    std::size_t connections = 4;
    // A further pair is opened only for at least this many messages left to copy per
    // pair (each pair costs a login at both servers); 0: always up to `connections`.
    std::size_t messages_per_connection = 250;
    // Connections to one server (host:port) this process keeps open at most, across all
    // accounts being copied at once; a worker waits for a free slot (up to the timeout).
    std::size_t max_connections_per_server = 8;
    // A POP3 source only (seed 003's MovePOPMail option): DELE each message once the target
    // holds it (its APPEND answered with the target UID and recorded in the state file);
    // the server removes them at QUIT, so a dropped session deletes nothing. Off by default.
    bool pop3_delete = false;
    // A local source (maildir:, mbox:): read through symbolic links inside the tree, each
    // directory once. Off: a linked folder or message is skipped and reported, since a
    // link in a copied tree may point at another user's mail or anywhere on this host.
    bool follow_symlinks = false;
};

struct Progress {
    std::size_t folders_total = 0;
    std::size_t folders_done = 0;
    std::uint64_t messages_total = 0; // to copy in this run (known folder by folder)
    std::uint64_t messages_done = 0;
    std::uint64_t bytes_total = 0;
    std::uint64_t bytes_done = 0;
    std::string folder; // current folder (UTF-8)
};
using ProgressFn = std::function<void(const Progress&)>;

// A message or folder a run could not copy for a reason that will not go away by itself
// (the target refused it, its name cannot exist there, the server's answer about it cannot
// be used). The copy goes on with everything else; the item is tried again next run.
struct Skipped {
    std::string folder;    // UTF-8 source name
    std::uint32_t uid = 0; // source UID; 0 for a whole folder
    std::uint64_t size = 0;
    std::string reason;
    // Runs in a row, this one included, that could not copy this item for this same reason
    // (kept in the state file): the worker stops retrying at worker.max_same_failure.
    unsigned streak = 1;
};

struct Summary {
    std::size_t folders = 0;           // source folders considered
    std::size_t folders_created = 0;   // on the target
    std::size_t folders_unchanged = 0; // skipped by the quick check
    std::size_t subscriptions_added = 0;
    std::uint64_t messages_copied = 0;
    std::uint64_t bytes_copied = 0;
    std::uint64_t messages_flag_updates = 0;
    std::uint64_t messages_filtered = 0;          // outside the date filters (not an error)
    std::uint64_t messages_recovered = 0;         // open intents resolved from the target's content
    std::uint64_t messages_deleted_at_source = 0; // Options::pop3_delete
    std::vector<Skipped> skipped;                 // messages or folders not copied, and why
    std::vector<std::string> notes;               // renamed folders, dropped keywords, lost dates

    [[nodiscard]] bool exact() const { return skipped.empty(); }
};

// Copies `from` into `to`. `cancel` (may be null) is polled between messages; a canceled
// copy ends cleanly with an Error (Retry::later) and is resumed by the next call.
Result<Summary> copy_account(const Endpoint& from, const Endpoint& to, const Options& opts,
                             const ProgressFn& progress = {},
                             const std::atomic<bool>* cancel = nullptr);

struct VerifyMismatch {
    std::string folder;
    std::uint32_t src_uid = 0; // 0: message only on the target
    std::uint32_t dst_uid = 0; // 0: message missing on the target
    // "missing", "size", "sha256", "flags", "date", "extra"; "unreadable": the source
    // message could not be read again (changed or gone since it was listed).
    std::string what;
};

struct VerifyReport {
    std::size_t folders = 0;
    std::uint64_t messages_compared = 0;
    std::uint64_t bytes_compared = 0;
    std::uint64_t extra_on_target = 0;      // not from the source (not a failure)
    std::vector<VerifyMismatch> mismatches; // "extra" entries are listed here too
    std::vector<Skipped> not_copied;        // what the last copy run skipped, and why
    [[nodiscard]] bool ok() const;          // no mismatch other than "extra"
    [[nodiscard]] std::string to_json() const;
};

// Compares every message of every copied folder by size, SHA-256 of its bytes, flags and
// INTERNALDATE, using the state file's UID map (same Options as the copy), for every source
// and target copy_account() takes: IMAP→IMAP pipelined over EXAMINE/BODY.PEEK; any other
// pair through the Source interface (a Maildir target read from its files, its
// dovecot-uidlist UIDs being the target UIDs). A POP3 source has no flags or dates, so
// only size and bytes count there; that path opens the state file read-only (it must
// exist), and messages of keyed sources (POP3, Maildir, mbox) it has never seen are
// "missing" without a key being written. Never changes either side. Blocking.
Result<VerifyReport> verify_account(const Endpoint& from, const Endpoint& to, const Options& opts,
                                    const ProgressFn& progress = {},
                                    const std::atomic<bool>* cancel = nullptr);

} // namespace mf::copy
