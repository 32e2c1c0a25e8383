// source_common.cpp — helpers every Source shares.
#include "source.hpp"

#include <algorithm>

namespace mf::copy::source {

std::string Folder::name() const {
    std::string out;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        out += (i != 0 ? "/" : "") + parts[i];
    }
    return out;
}

std::string join_flags(std::vector<std::string> flags) {
    std::sort(flags.begin(), flags.end());
    flags.erase(std::unique(flags.begin(), flags.end()), flags.end());
    std::string out;
    for (const auto& f : flags) {
        out += (out.empty() ? "" : " ") + f;
    }
    return out;
}

} // namespace mf::copy::source
