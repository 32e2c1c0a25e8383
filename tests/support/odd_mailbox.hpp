// odd_mailbox.hpp — the odd mailbox: every shape of folder, subscription, keyword and
// message an old server of the Maildir++ kind can hold, as plain data, and a filler that
// puts it into any IMAP server (Dovecot, Cyrus, Courier) with CREATE, SUBSCRIBE, APPEND
// and DELETE over a plain socket.
//
// The case lists are what the copier's end-to-end tests promise survives a copy; a test
// compares its target against the source it filled, and against these lists, so a server
// that silently drops a case is noticed. A server refuses some cases (Dovecot: a
// top-level name starting with '~', NUL bytes in APPEND): the caller says which with a
// filter, and may write the bytes IMAP cannot carry straight into the server's files
// (FillOptions::write_raw). Must never: guess what a server refused (an unexpected NO is
// an exception naming the command), or leave a case out without the caller's filter.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace mft::odd {

struct FolderCase {
    enum class Shape : std::uint8_t {
        plain,    // CREATEd, selectable
        noselect, // a subscribed parent without a mailbox of its own: \Noselect, children below
        vanished, // subscribed, then deleted: a subscription to a folder that is gone
    };
    std::vector<std::string> levels; // UTF-8, one entry per hierarchy level
    Shape shape = Shape::plain;
    bool subscribe = true;
    std::string why; // what this case is about, for messages

    [[nodiscard]] std::string name() const; // levels joined with '/'
};

struct MessageCase {
    std::string id;                  // unique, short ("nul", "big-45m")
    std::vector<std::string> folder; // levels of a plain FolderCase ({"INBOX"} for the inbox)
    std::string bytes;
    std::vector<std::string> flags; // system flags and keywords, as IMAP shows them
    std::int64_t date = 0;          // INTERNALDATE, seconds since the epoch (UTC)
    int copies = 1;                 // identical messages appended this many times
    // IMAP cannot carry these bytes exactly (NUL, bare LF, a lone CR): a server that would
    // refuse or rewrite them needs FillOptions::write_raw.
    bool raw_bytes = false;
    // The date lies in the future: an IMAP server may store the time of the APPEND instead
    // (Dovecot does for more than about two hours ahead).
    bool future = false;
};

// The cases. Folders are listed parents first; every message's folder is a plain case.
std::vector<FolderCase> folder_cases();
std::vector<MessageCase> message_cases();
// Every keyword message_cases() uses in the folder "Keywords" (more than 26).
std::vector<std::string> keyword_cases();

// How one case gets into the server.
enum class Way : std::uint8_t { imap, raw, skip };

struct FillOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 143; // plain IMAP (no TLS: loopback test servers)
    std::string user;
    std::string password;
    // Default (empty): every folder case, every message over IMAP.
    std::function<bool(const FolderCase&)> folder_filter;
    std::function<Way(const MessageCase&)> message_way;
    // How a FolderCase::Shape::noselect parent is made. Always CREATE and SUBSCRIBE first
    // (servers refuse to subscribe to a name that does not exist). false: DELETE it before
    // its children are created, which leave it implied (Dovecot's Maildir++ then lists it
    // \Noselect; deleted after them, its LIST keeps showing it without \Noselect although
    // SELECT says it does not exist). true: DELETE once its children exist, which leaves a
    // \Noselect node on servers that follow RFC 3501 §6.3.4 there.
    bool noselect_by_delete = false;
    // Writes one copy of a Way::raw message into the server's files (the folder exists).
    std::function<void(const MessageCase&)> write_raw;
};

struct Filled {
    std::vector<FolderCase> folders;   // the cases that went in
    std::vector<MessageCase> messages; // the cases that went in, bytes cleared
    std::set<std::string> selectable;  // '/'-joined names the server should LIST selectable
    std::set<std::string> noselect;    // … LIST as \Noselect
    std::set<std::string> subscribed;  // … LSUB
    std::size_t message_count = 0;     // copies included
    char delimiter = '\0';             // the server's, from LIST "" ""
};

// Fills the user's mailbox. Throws std::runtime_error naming the command a server refused
// that the filters did not leave out.
Filled fill(const FillOptions& opts);

// UTF-8 → IMAP modified UTF-7 (RFC 3501 §5.1.3); how Maildir++ names a folder on disk.
std::string mutf7(std::string_view utf8);
// "dd-Mon-yyyy hh:mm:ss +0000".
std::string imap_date(std::int64_t when);

} // namespace mft::odd
