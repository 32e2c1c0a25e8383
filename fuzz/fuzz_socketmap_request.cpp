// fuzz_socketmap_request.cpp — feeds bytes to the socketmap netstring parser
// (mf::mailflow::parse_netstring, include/mailferry/mailflow.hpp) the way `mailferry
// transport` reads a connection: netstring after netstring until one is incomplete or bad.
//
// A bug: any sanitizer report or crash, a hang; a complete netstring that consumed more
// than it was given, whose payload is longer than the limit, or that does not survive a
// round trip through netstring(); a bad one without a reason. Must never: touch the
// network or files.
#include "mailferry/mailflow.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using mf::mailflow::ParseStatus;
    std::string_view rest(reinterpret_cast<const char*>(data), size); // NOLINT
    for (int guard = 0; guard < 10000 && !rest.empty(); ++guard) {
        auto n = mf::mailflow::parse_netstring(rest);
        if (n.status == ParseStatus::bad && n.error.empty()) {
            std::abort();
        }
        if (n.status != ParseStatus::complete) {
            break;
        }
        if (n.consumed == 0 || n.consumed > rest.size() ||
            n.payload.size() > mf::mailflow::kMaxSocketmapRequest) {
            std::abort();
        }
        auto again = mf::mailflow::parse_netstring(mf::mailflow::netstring(n.payload));
        if (again.status != ParseStatus::complete || again.payload != n.payload) {
            std::abort();
        }
        rest.remove_prefix(n.consumed);
    }
    return 0;
}
