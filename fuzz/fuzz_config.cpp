// fuzz_config.cpp — feeds bytes to the config reader (include/mailferry/config.hpp
// parse_config) as the text of mailferry.toml, and the input's first line to
// parse_duration() as a duration value ("10s", "500ms", …).
//
// A bug: any sanitizer report or crash, a hang or runaway memory (toml++ included: a
// config is written by an admin, but a crash here would take down every login face on
// start); an error without the "file:line: key" place it promises (it must start with the
// source name); a parsed duration that format_duration() prints as something that parses
// to another value. A refused config is never a bug. Must never: write a file (parsing
// only stats the paths a config names, for its permission warnings).
#include "mailferry/config.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    const std::string name = "fuzz.toml";
    auto cfg = mf::parse_config(text, name);
    if (!cfg && cfg.error().message().find(name) == std::string::npos) {
        std::abort();
    }

    auto d = mf::parse_duration(text.substr(0, text.find('\n')));
    if (d) {
        auto again = mf::parse_duration(mf::format_duration(*d));
        if (!again || *again != *d) {
            std::abort();
        }
    }
    return 0;
}
