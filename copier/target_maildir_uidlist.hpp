// target_maildir_uidlist.hpp — dovecot-uidlist as the Maildir target reads it before it
// changes it: the header (version 3 only), and each "<uid> [ext…] :<base>" line kept verbatim.
//
// Split out of target_maildir.cpp (its only other user) so that the fuzzer
// (fuzz/fuzz_dovecot_uidlist.cpp) can feed the reader any bytes without a folder.
//
// Must never: drop or rewrite a line it does not understand (text() writes every line back
// as read), or take a UID above 2^32-2 (the next UID must stay a 32-bit number).
// Errors: an unknown version or a header without UIDVALIDITY (scope folder), naming `path`.
#pragma once

#include "mailferry/error.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace mf::copy::target {

struct UidList {
    bool exists = false;
    std::uint32_t uidvalidity = 0;
    std::uint64_t next = 1;
    std::vector<std::string> header_rest; // header fields we keep as they are (G…, others)
    std::vector<std::string> lines;       // verbatim: never rewrite another writer's line
    std::map<std::uint32_t, std::string> by_uid;

    [[nodiscard]] std::string text() const {
        std::string out = "3 V" + std::to_string(uidvalidity) + " N" + std::to_string(next);
        for (const auto& f : header_rest) {
            out += " " + f;
        }
        out += "\n";
        for (const auto& l : lines) {
            out += l + "\n";
        }
        return out;
    }
};

// The file's text (not empty: an empty file is a uidlist that does not exist yet); `path`
// names it in errors.
Result<UidList> parse_uidlist(std::string_view text, const std::string& path);

} // namespace mf::copy::target
