// source_maildir.hpp — a local Maildir tree (rsynced or live) as a copier Source.
//
// Layouts: Maildir++ (".Sub.Folder" directories under the root, the root being INBOX)
// and the subdirectory layout (Sub/Folder/{cur,new,tmp}); names in modified UTF-7 as
// Dovecot and Courier write them. Flags from the info suffix ":2,DFRST" (P, "passed", has
// no IMAP flag in Dovecot or Courier and is not carried); keywords from the lowercase
// letters and dovecot-keywords, and from Courier's courierimapkeywords/ (:list and the
// per-message update files). Dates are
// the file's mtime (what Dovecot and Courier report as INTERNALDATE), or the delivery
// time at the start of the name when the mtime is missing. UIDVALIDITY and UIDs come
// from dovecot-uidlist or courierimapuiddb; messages those files do not list yet get UIDs
// above the file's next UID, in name order. Those UIDs order the messages as the user saw
// them; each message also carries its base name as Message::key, which the copier keys
// its state by, because a guessed UID can change when Dovecot lists the file. Subscriptions from
// Dovecot's `subscriptions` or Courier's `courierimapsubscribed`. Bytes are delivered with bare LF
// turned into CRLF, as both servers send them over IMAP.
//
// Must never: write to, rename in or lock the tree.
// Errors: an unreadable root fails folders(); a file that vanished or a name that is not
// a Maildir name is a problem of its folder, the rest continues.
#pragma once

#include "source.hpp"

#include <memory>
#include <string>

namespace mf::copy::source {

// follow_symlinks: read through symbolic links in the tree (each directory once); without
// it a linked folder or message file is left out and reported (source_links.hpp).
std::unique_ptr<Source> open_maildir(const std::string& root, bool follow_symlinks = false);

} // namespace mf::copy::source
