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

std::vector<std::string> split(std::string_view s, char sep) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (true) {
        std::size_t pos = s.find(sep, start);
        out.emplace_back(s.substr(start, pos == std::string_view::npos ? s.npos : pos - start));
        if (pos == std::string_view::npos) {
            return out;
        }
        start = pos + 1;
    }
}

std::optional<std::uint64_t> to_u64(std::string_view s) {
    if (s.empty() || s.size() > 19) {
        return std::nullopt;
    }
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return v;
}

} // namespace mf::copy::source
