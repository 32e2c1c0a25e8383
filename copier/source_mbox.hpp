// source_mbox.hpp — a local mbox file or tree of mbox files as a copier Source, read as
// Dovecot 2.3 shows the same files over IMAP.
//
// Spec: "mbox:PATH[:INBOX=FILE]" (Dovecot's mail_location syntax). PATH a regular file: that
// file is INBOX, the only folder. PATH a directory (Dovecot's `mail/`): every regular file
// below it is a folder named by its relative path (levels in modified UTF-7, decoded), every
// directory a \Noselect parent; names starting with '.' (.imap/, .subscriptions) and
// dotlock files (*.lock) are skipped. INBOX is FILE when given, else PATH/inbox, else
// PATH/INBOX (that file is then not listed again). Subscriptions from PATH/.subscriptions
// (Dovecot) and UW-IMAP's .mailboxlist in PATH or in its parent (the home directory; there
// only names below PATH's directory name count: "mail/Sent" for PATH ~/mail).
//
// Splitting, as Dovecot's raw mbox stream does: the file starts with a From_ line; a message
// ends before the line break that precedes the next line "From <sender> <asctime date>"
// whose date parses (a "From " line in a body whose date does not parse is body text; no
// blank line is needed before it). Content-Length is used only when it is right: the body of
// that length is followed by EOF or by a line break and a valid From_ line; otherwise it is
// ignored (Dovecot writes Content-Length and does not escape "From " in bodies, so such a
// body can only be split correctly this way). At EOF one trailing line break is dropped (the
// separator) unless a valid Content-Length counts it.
//
// Bytes: what Dovecot sends for BODY[]: the headers Status, X-Status, X-Keywords, X-UID,
// X-IMAPbase, X-IMAP and Content-Length are left out (with their continuation lines), a
// header block cut without a final line break gets one, bare LF becomes CRLF. A first
// message carrying X-IMAP is Dovecot's folder-data pseudo message and is not listed.
// "From " quoting: "mbox:" leaves ">From " lines as they are, exactly as Dovecot shows them
// (Dovecot neither escapes nor unescapes). "mboxrd:PATH…" strips one '>' from lines matching
// ^>+From  (mboxrd); "mboxo:PATH…" strips one '>' from ^>From  (mboxo/formail; lossy:
// a body line that really began with ">From " loses its '>').
//
// Flags: Status R → \Seen (O is "old", no flag); X-Status A → \Answered, F → \Flagged,
// T → \Draft, D → \Deleted. X-Keywords (space separated, as Dovecot reads it) count only
// when every keyword in it is declared in the folder's X-IMAPbase list; otherwise Dovecot
// takes the header for one that came with the mail and ignores it, and so do we.
// INTERNALDATE: the From_ line's date; with a numeric zone it is honoured, without one the
// date is local time (TZ), as Dovecot reads it.
//
// UIDs: when the first message has X-IMAPbase and every message an X-UID, strictly
// increasing, those are the folder's UIDVALIDITY and UIDs (what Dovecot shows); otherwise
// UIDVALIDITY 1 and UIDs by position. Either way each message also gets Message::key =
// SHA-256 of its From_ line, its visible header lines (not the status headers Dovecot
// rewrites when flags change; not the offset, which moves when an earlier message is
// removed) and its size (so a message cut short and the same message complete differ), with
// "#n" added to the n-th identical one. The copier keys its state by it,
// so a message that arrives without X-UID (an MTA appended it) and gets one later when
// Dovecot syncs the file keeps its copy and is neither skipped nor copied twice.
//
// Memory: the file is indexed once, line by line through a 64 KiB buffer (a line longer
// than that is handled in pieces); read() streams the message's byte range again. Sizes are
// exact wire sizes.
//
// Must never: write to, lock or dotlock the files; read() opens with O_NOATIME where the
// kernel allows it, so mail clients' "new mail" test (atime < mtime) is not disturbed.
// Errors: an unreadable PATH fails folders(); a file that does not start with a From_ line
// fails messages() of its folder (file, offset, why), and so does a file whose size or
// mtime changed while it was indexed (Retry::later: a delivery may be half written); a message
// whose bytes changed between messages() and read() fails read() (scope message); the rest
// continues.
#pragma once

#include "source.hpp"

#include <memory>
#include <string>

namespace mf::copy::source {

enum class MboxQuoting {
    none,   // as Dovecot: ">From " stays
    mboxrd, // strip one '>' from ^>+From
    mboxo,  // strip one '>' from ^>From
};

// `spec` is what follows "mbox:" / "mboxrd:" / "mboxo:": PATH[:INBOX=FILE].
// follow_symlinks: as for open_maildir (source_links.hpp); PATH and INBOX= themselves are
// the caller's choice and always opened.
std::unique_ptr<Source> open_mbox(const std::string& spec, MboxQuoting quoting,
                                  bool follow_symlinks = false);

// The date of a From_ line ("From sender Wed Jan  3 10:00:00 2024 [+0200]", without the
// line break), or nothing when Dovecot would not take the line for a From_ line.
std::optional<std::int64_t> mbox_from_date(std::string_view line);

} // namespace mf::copy::source
