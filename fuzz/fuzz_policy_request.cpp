// fuzz_policy_request.cpp — feeds bytes to the Postfix policy request parser
// (mf::mailflow::parse_policy_request, include/mailferry/mailflow.hpp) the way
// `mailferry policy` reads a connection: request after request until one is incomplete
// or bad, each answered with policy_reply().
//
// A bug: any sanitizer report or crash, a hang; a complete request that consumed more than
// it was given, nothing, or more than the limits allow (attributes, line length); an
// attribute name or value holding LF; a reply that is not one "action=…" line plus the
// empty line. A bad request is never a bug. Must never: touch the network or files.
#include "mailferry/mailflow.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

void check_reply(std::string_view action) {
    std::string r = mf::mailflow::policy_reply(action);
    if (r.rfind("action=", 0) != 0 || r.size() < 9 || r.substr(r.size() - 2) != "\n\n" ||
        r.find('\n') != r.size() - 2) {
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view rest(reinterpret_cast<const char*>(data), size); // NOLINT
    for (int guard = 0; guard < 10000 && !rest.empty(); ++guard) {
        auto req = mf::mailflow::parse_policy_request(rest);
        if (req.status != mf::mailflow::ParseStatus::complete) {
            if (req.status == mf::mailflow::ParseStatus::bad && req.error.empty()) {
                std::abort();
            }
            check_reply(req.error);
            break;
        }
        if (req.consumed == 0 || req.consumed > rest.size() || req.attrs.empty() ||
            req.attrs.size() > mf::mailflow::kMaxPolicyAttributes) {
            std::abort();
        }
        for (const auto& [k, v] : req.attrs) {
            if (k.empty() || k.find('\n') != k.npos || v.find('\n') != v.npos ||
                k.size() + v.size() + 1 > mf::mailflow::kMaxPolicyLine) {
                std::abort();
            }
            check_reply(v);
        }
        rest.remove_prefix(req.consumed);
    }
    return 0;
}
