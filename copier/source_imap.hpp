// source_imap.hpp — an IMAP server as a copier Source, for targets that are not IMAP (a
// Maildir of ours, target_maildir.hpp). IMAP→IMAP keeps its own pipelined path
// (copy_folder.cpp); this one reads the same things the same way, read-only.
//
// folders(): LIST "" "*" and LSUB as list_mailboxes() does (UTF-8 levels split at the
// server's delimiter; \Noselect and \NonExistent parents as noselect; Folder::locator is
// the wire name). messages(): EXAMINE (never SELECT: \Recent and \Seen stay as they are),
// UIDVALIDITY and UIDNEXT, then UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE) —
// Message::keep_uid = uid, flags as normalize_flags() gives them, `when` from INTERNALDATE.
// read(): UID FETCH <uid> BODY.PEEK[] streamed to the sink in Options::chunk pieces; the
// literal must be exactly RFC822.SIZE bytes, else it fails (scope message).
//
// Must never: change the source (EXAMINE and BODY.PEEK only), hold a whole message in
// memory. Errors: login/connection failures stop the account (Retry::later for network
// trouble); a folder that cannot be examined is scope folder; a message that vanished
// (FETCH answers without it) or has another size is scope message. A dropped connection
// is reopened once for the next call.
#pragma once

#include "source.hpp"

#include "mailferry/copier.hpp"

#include <memory>

namespace mf::copy::source {

Result<std::unique_ptr<Source>> open_imap(const Endpoint& ep, const Options& opts);

} // namespace mf::copy::source
