// fuzz_import_fields.cpp — feeds bytes to the import code's small readers
// (include/mailferry/import.hpp): TextFile::from_text (BOM, CRLF, UTF-16 and NUL refusal,
// line splitting), then each line to utf8_problem(), line_problem(), split_csv() (with
// ';', ',' and TAB) and decode_cgp_string() (CommuniGate quoted strings).
//
// A bug: any sanitizer report or crash; a line handed out holding a LF; split_csv()
// refusing without a reason, or giving more fields than separators + 1 or more bytes than
// the line; decode_cgp_string() giving more bytes than the quoted text. A refused line is
// never a bug. Must never: read or write a file.
#include "mailferry/import.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>

namespace {

void one_csv(std::string_view line, char sep) {
    std::string why;
    auto fields = mf::split_csv(line, sep, &why);
    if (!fields) {
        if (why.empty()) {
            std::abort();
        }
        return;
    }
    std::size_t seps = 0;
    for (char c : line) {
        seps += c == sep ? 1 : 0;
    }
    std::size_t bytes = 0;
    for (const auto& f : *fields) {
        bytes += f.size();
    }
    if (fields->size() > seps + 1 || bytes > line.size()) {
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto file = mf::TextFile::from_text(text, "fuzz");
    if (!file) {
        return 0;
    }
    for (std::string_view line : file->lines()) {
        if (line.find('\n') != std::string_view::npos) {
            std::abort();
        }
        (void)mf::utf8_problem(line);
        (void)mf::line_problem(line);
        for (char sep : {';', ',', '\t'}) {
            one_csv(line, sep);
        }
        if (auto s = mf::decode_cgp_string(line); s && s->size() > line.size()) {
            std::abort();
        }
    }
    return 0;
}
