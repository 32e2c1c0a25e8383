// copy_source.hpp — what the copies from a Source (copy_local.cpp to an IMAP target,
// copy_maildir.cpp to a Maildir of ours) share: opening the source an Endpoint names,
// its folders as a Listing for plan_folders(), stable UIDs for keyed messages, the date
// filters, and POP3's delete-after-copy.
//
// Private to copier/. Must never: give two messages of one folder the same state UID, or
// delete a source message the target has not acknowledged.
#pragma once

#include "copy_internal.hpp"
#include "source.hpp"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mf::copy::detail {

// The Source behind `from`: POP3, a local tree (maildir:, mbox:, mboxrd:, mboxo:), else
// IMAP (source_imap.hpp). POP3 UIDLs get stable UIDs from `state` (`read_only`: without
// writing new ones, State::peek_uid_for_key).
Result<std::unique_ptr<source::Source>> open_source(const Endpoint& from, const Options& opts,
                                                    State& state, std::int64_t account,
                                                    bool read_only = false);

// A folder's wire name: its levels in modified UTF-7 with `delim` between them.
std::string wire_name(const std::vector<std::string>& parts, char delim);

// Size and SHA-256 of a message's bytes as the source delivers them, streamed;
// `nul_as_0x80` hashes a NUL byte as 0x80 (Hasher), to compare with what Dovecot's BODY[]
// shows of it.
Result<BodyDigest> digest_message(source::Source& src, const source::Folder& f,
                                  const source::Message& m, bool nul_as_0x80 = false);

// The source's folders as plan_folders() wants them ('/' as delimiter, wire names in
// modified UTF-7, sorted); `by_wire` maps each wire name back to its Folder.
Listing source_listing(const std::vector<source::Folder>& folders,
                       std::map<std::string, const source::Folder*>& by_wire);

// Messages with a Message::key get the UID the state file gave that key (a new key: the
// next free one), in the source's order, so the first copy keeps the order the user saw
// and later runs find each message under the UID it was copied as. Those UIDs never change
// meaning, hence one constant UIDVALIDITY (1) for such a folder. Message::keep_uid stays.
// `read_only` (verify): a key never seen gets a UID no state row has, and nothing is written.
Result<void> assign_stable_uids(State& state, std::int64_t account, const FolderPlan& plan,
                                source::FolderContents& c, bool read_only = false);

// Outside Filters::after / before (a message without a date is never filtered).
bool outside_dates(const Filters& f, const source::Message& m);

// A folder copied to the end: marked complete in the state file, and with
// Options::pop3_delete the messages whose row is done with a target UID deleted from the
// source (never one whose store may or may not have happened; counted in the summary).
Result<void> finish_folder(State& state, FolderRow& row, const Options& opts, source::Source& src,
                           const source::Folder& f, const source::FolderContents& c,
                           const std::map<std::uint32_t, MessageRow>& rows, Summary& sum);

} // namespace mf::copy::detail
