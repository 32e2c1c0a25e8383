// source_maildir_parse.hpp — the Maildir source's readers of names and metadata text: a
// file name's base, delivery time, info flags and ",W=" size; dovecot-uidlist (also
// courierimapuiddb) and dovecot-keywords.
//
// Split out of source_maildir.cpp (its only other user) so that the fuzzers
// (fuzz/fuzz_maildir_name.cpp, fuzz/fuzz_dovecot_uidlist.cpp) reach them without a tree.
//
// Must never: fail on any bytes (whatever a file holds or a name is, the answer is a value
// or nothing), or read past the text it was given.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mf::copy::source::maildir {

// The part of a Maildir file name before the info (":2,…"); Dovecot and Courier key
// their UID lists by it.
std::string base_of(std::string_view name);

struct UidList {
    std::uint32_t uidvalidity = 0;
    std::uint32_t next = 1;
    std::map<std::string, std::uint32_t> by_base;
};

// dovecot-uidlist ("3 V<validity> N<next> …" then "<uid> [ext…] :<name>", or version 1
// "1 <validity> <next>" then "<uid> <name>") and courierimapuiddb (version 1 format).
// Nothing when the header is not one of those or has no UIDVALIDITY.
std::optional<UidList> parse_uidlist(std::string_view text);

// dovecot-keywords' "0 $Label1" lines: the keyword a maildir info letter 'a'+N stands for.
std::map<char, std::string> parse_dovecot_keywords(std::string_view text);

// The delivery time at the start of a name ("1700000000.M1P2.host"), if any.
std::optional<std::int64_t> name_time(const std::string& name);

// The IMAP flags of a file: Courier's keywords for its base, then the info letters after
// ":2," (DFRST, and a–z through `kw`); sorted, space-separated.
std::string flags_of(const std::string& name, const std::map<char, std::string>& kw,
                     const std::map<std::string, std::vector<std::string>>& courier);

// Dovecot's ",W=<size>" in the base of a name (the size with bare LFs counted as CRLF).
std::optional<std::uint64_t> name_wire_size(const std::string& name);

} // namespace mf::copy::source::maildir
