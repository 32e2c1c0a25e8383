// convert_courier.hpp — a Courier-IMAP Maildir tree given Dovecot's metadata, in place, so a
// Dovecot serving the tree shows what Courier showed: the same UIDVALIDITY and UIDs (clients
// need not download again), flags, keywords and subscriptions. Meant for a copy of the
// tree (an rsync), the way courier-dovecot-migrate.pl was used, before Dovecot first opens it.
//
// Per folder (the root is INBOX; Maildir++ ".Sub" folders and the subdirectory layout):
//   dovecot-uidlist   "3 V<uidvalidity> N<next>" and "<uid> :<base name>" lines, from
//                     courierimapuiddb (files it does not list get the next UIDs, in name
//                     order, as Courier would give them)
//   dovecot-keywords  "<n> <keyword>" for the keywords found in courierimapkeywords/,
//                     at most 26 per folder (Dovecot's Maildir limit: letters a–z); more
//                     are reported and left out
//   file names        keyword letters added to the ":2," info (files in new/ that carry
//                     keywords move to cur/); the existing letters are kept
//   Dovecot's index files (dovecot.index*) are removed: they would describe the old UIDs
// At the root: `subscriptions` from courierimapsubscribed ("INBOX." prefix dropped).
//
// Without `write` nothing is changed: the report says what would be done.
// Must never: change a message's bytes, drop a message, or overwrite an existing
// dovecot-uidlist unless `overwrite` (a Dovecot may already have handed out UIDs).
// Errors: an unreadable root or folder fails the whole run before anything is written in
// that folder; a rename that fails is a problem in the report (the message keeps its
// old name and flags, its keywords are then missing on Dovecot).
#pragma once

#include "mailferry/error.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace mf::copy {

struct CourierConversion {
    std::size_t folders = 0;
    std::size_t messages = 0;
    std::size_t keywords = 0;          // distinct keywords written to dovecot-keywords files
    std::size_t renamed = 0;           // files whose name got keyword letters
    std::size_t subscriptions = 0;     // names written to `subscriptions`
    std::vector<std::string> skipped;  // folders left alone, with the reason
    std::vector<std::string> problems; // what could not be carried over
};

Result<CourierConversion> convert_courier_to_dovecot(const std::string& root, bool write,
                                                     bool overwrite);

} // namespace mf::copy
