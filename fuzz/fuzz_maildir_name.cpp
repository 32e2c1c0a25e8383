// fuzz_maildir_name.cpp — feeds bytes to the Maildir source's file-name readers
// (copier/source_maildir_parse.hpp): base name, delivery time, info flags (":2,DFRST" and
// the keyword letters a–z), Dovecot's ",W=" size; and to the dovecot-keywords reader that
// gives the letters their names.
//
// Input: up to the first NUL, the text of a dovecot-keywords file; after it, file names,
// one per line (the first name's base also gets a Courier keyword, so that path runs).
// A bug: any sanitizer report or crash; a base that is not a prefix of the name or holds
// a ':'; a system flag letter after ":2," whose flag is missing from flags_of(); a ",W="
// size read from a name without ",W=" in its base; a delivery time of 0; a keyword letter
// outside a–z. Must never: read or write a file.
#include "source_maildir_parse.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>

namespace {

using namespace mf::copy::source::maildir;

void check_flags(const std::string& name, const std::string& flags) {
    auto pos = name.find(":2,");
    if (pos == std::string::npos) {
        return;
    }
    static const std::pair<char, const char*> kLetters[] = {{'D', "\\Draft"},
                                                            {'F', "\\Flagged"},
                                                            {'R', "\\Answered"},
                                                            {'S', "\\Seen"},
                                                            {'T', "\\Deleted"}};
    for (const auto& [letter, flag] : kLetters) {
        if (name.find(letter, pos + 3) != std::string::npos &&
            flags.find(flag) == std::string::npos) {
            std::abort();
        }
    }
}

void one_name(const std::string& name, const std::map<char, std::string>& kw,
              const std::map<std::string, std::vector<std::string>>& courier) {
    std::string base = base_of(name);
    if (name.compare(0, base.size(), base) != 0 || base.find(':') != std::string::npos) {
        std::abort();
    }
    if (auto t = name_time(name); t && *t == 0) {
        std::abort();
    }
    check_flags(name, flags_of(name, kw, courier));
    if (name_wire_size(name) && base.find(",W=") == std::string::npos) {
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto nul = in.find('\0');
    auto kw = parse_dovecot_keywords(in.substr(0, nul));
    for (const auto& [letter, name] : kw) {
        if (letter < 'a' || letter > 'z') {
            std::abort();
        }
    }
    std::string_view names = nul == std::string_view::npos ? in : in.substr(nul + 1);
    std::map<std::string, std::vector<std::string>> courier;
    bool first = true;
    while (!names.empty()) {
        auto lf = names.find('\n');
        std::string name(names.substr(0, lf));
        names = lf == std::string_view::npos ? std::string_view() : names.substr(lf + 1);
        if (first) {
            courier[base_of(name)] = {"$courier"};
            first = false;
        }
        one_name(name, kw, courier);
    }
    return 0;
}
