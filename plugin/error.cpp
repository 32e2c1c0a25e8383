// error.cpp — helpers for mf::Error.
#include "mailferry/error.hpp"

namespace mf {

std::string sanitize_reply(std::string_view reply, std::size_t max_len) {
    std::string out;
    out.reserve(std::min(reply.size(), max_len) + 3);
    for (char c : reply) {
        if (out.size() >= max_len) {
            out += "...";
            break;
        }
        auto u = static_cast<unsigned char>(c);
        if (c == '\r' || c == '\n') {
            continue;
        }
        out += (u < 0x20 || u == 0x7f) ? '?' : c;
    }
    return out;
}

} // namespace mf
