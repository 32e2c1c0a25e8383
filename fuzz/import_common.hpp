// import_common.hpp — what the three import-format fuzzers share: a fixed identity map and
// a cheap hash for clear-text values, options chosen by the input's first byte, and the
// checks every ImportPlan must pass whatever the file held.
//
// Input: byte 0 picks the options — bit 0: a default domain for bare names; bits 1–2: the
// separator (the format's own, ',', ';' or TAB); bit 3: a stored_hash callback that says
// the store already has a hash for every account (so the keep-the-stored-hash path runs).
// The rest is the export file's text, read by TextFile::from_text as `mailferry import`
// reads a file.
// A bug: any sanitizer report or crash; a planned account without a canonical name, with
// a line number outside the file, or whose hash verify_hash() cannot check
// (hash_supported() false); an error or skip note with a line number outside the file.
// Refused lines are never a bug. Must never: open a store or write a file.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/identity.hpp"
#include "mailferry/import.hpp"
#include "mailferry/password.hpp"

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

namespace mf_fuzz {

// One provider for example.com; everything else the identity map refuses.
inline const mf::IdentityMap& identity_map() {
    static const mf::Config cfg = [] {
        auto c = mf::parse_config("[identity]\ndefault_domain = \"example.com\"\n"
                                  "[[provider]]\nname = \"old\"\ndomains = [\"example.com\"]\n"
                                  "host = \"imap.example.com\"\n",
                                  "fuzz.toml");
        if (!c) {
            std::abort();
        }
        return std::move(*c);
    }();
    static const mf::IdentityMap ids = [] {
        auto m = mf::IdentityMap::create(cfg);
        if (!m) {
            std::abort();
        }
        return std::move(*m);
    }();
    return ids;
}

// argon2id at its minimum cost: a clear-text value costs a hash each, and the fuzzer
// should spend its time in the parser.
inline mf::HashConfig cheap_hash() {
    mf::HashConfig h;
    h.scheme = mf::HashScheme::argon2id;
    h.argon2_ops = 1;
    h.argon2_memory_kib = 8;
    return h;
}

inline void check_plan(const mf::ImportPlan& plan, std::size_t lines) {
    for (const auto& a : plan.accounts) {
        if (a.canonical.empty() || a.line == 0 || a.line > lines || !mf::hash_supported(a.hash)) {
            std::abort();
        }
    }
    for (const auto* notes : {&plan.errors, &plan.skipped, &plan.notes}) {
        for (const auto& n : *notes) {
            if (n.line > lines) {
                std::abort();
            }
        }
    }
    (void)mf::import_entries(plan, mf::ImportFormat::dovecot_passwd_file);
}

inline int plan_one(mf::ImportFormat format, const std::uint8_t* data, std::size_t size) {
    if (size < 1) {
        return 0;
    }
    static const char kSeparators[] = {0, ',', ';', '\t'};
    mf::ImportOptions opt;
    opt.format = format;
    if ((data[0] & 1) != 0) {
        opt.domain = "example.com";
    }
    opt.separator = kSeparators[(data[0] >> 1) & 3];
    if ((data[0] & 8) != 0) {
        // A hash of "pw": a clear-text "pw" keeps it, anything else gets a new one.
        opt.stored_hash = [](const std::string&) -> std::optional<std::string> {
            return std::string("{PLAIN}pw");
        };
    }
    auto file = mf::TextFile::from_text(
        std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1), "fuzz-export");
    if (!file) {
        return 0;
    }
    auto plan = mf::plan_import(*file, opt, identity_map(), cheap_hash());
    check_plan(plan, file->lines().size());
    return 0;
}

} // namespace mf_fuzz
