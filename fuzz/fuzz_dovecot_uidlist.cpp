// fuzz_dovecot_uidlist.cpp — feeds bytes to both readers of dovecot-uidlist: the Maildir
// source's (copier/source_maildir_parse.hpp parse_uidlist, which also reads Courier's
// courierimapuiddb) and the Maildir target's (copier/target_maildir_uidlist.hpp
// parse_uidlist, which rewrites the file it read under Dovecot's lock).
//
// A bug: any sanitizer report or crash; the source's list taken with UIDVALIDITY 0, or
// with a UID 0 or a base name holding ':'; the target's list taken with UIDVALIDITY 0, a
// UID above 2^32-2, or a text() that does not read back as the same list (UIDVALIDITY,
// next UID, header fields, every line verbatim) — the target must never rewrite a line it
// did not store. A refused file is never a bug. Must never: read or write a file.
#include "source_maildir_parse.hpp"
#include "target_maildir_uidlist.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>

namespace {

void check_source(std::string_view text) {
    auto u = mf::copy::source::maildir::parse_uidlist(text);
    if (!u) {
        return;
    }
    if (u->uidvalidity == 0) {
        std::abort();
    }
    for (const auto& [base, uid] : u->by_base) {
        if (uid == 0 || base.find(':') != std::string::npos) {
            std::abort();
        }
    }
}

void check_target(std::string_view text) {
    if (text.empty()) {
        return; // read_uidlist() never passes an empty file: it does not exist yet
    }
    auto u = mf::copy::target::parse_uidlist(text, "fuzz/dovecot-uidlist");
    if (!u) {
        return;
    }
    if (u->uidvalidity == 0 || (!u->by_uid.empty() && u->by_uid.rbegin()->first > 0xfffffffeU)) {
        std::abort();
    }
    auto again = mf::copy::target::parse_uidlist(u->text(), "fuzz/dovecot-uidlist");
    if (!again || again->uidvalidity != u->uidvalidity || again->next != u->next ||
        again->header_rest != u->header_rest || again->lines != u->lines ||
        again->by_uid != u->by_uid) {
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    check_source(text);
    check_target(text);
    return 0;
}
