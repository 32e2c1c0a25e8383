// fuzz_cgpauth_request.cpp — feeds bytes to the CommuniGate Pro helper's request parser
// (external-auth/cgpauth_proto.hpp parse_request) as the lines CommuniGate writes to the
// helper's stdin: the input is split at LF, each line at most kMaxLine bytes as the
// server's reader allows, and every line is parsed and answered with reply_line().
//
// A bug: any sanitizer report or crash; a request without a sequence number, or with one
// that is not 1–20 digits; a command word with a control byte or longer than 35 bytes; a
// reply line (to the request, or the ERROR answer of a refused one) or an info line that
// is longer than kMaxLine plus its LF, lacks the final LF, or holds a control byte before
// it; next_string() moving past the end of the line. A refused line alone is never a bug. Must
// never: start the helper or talk to a server.
#include "cgpauth_proto.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>

namespace {

void check_line(const std::string& out) {
    if (out.empty() || out.size() > mf::cgp::kMaxLine + 1 || out.back() != '\n') {
        std::abort();
    }
    for (std::size_t i = 0; i + 1 < out.size(); ++i) {
        auto c = static_cast<unsigned char>(out[i]);
        if (c < 0x20 || c == 0x7f) {
            std::abort();
        }
    }
}

bool all_digits(std::string_view s) {
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
    }
    return true;
}

void one_line(std::string_view line) {
    auto p = mf::cgp::parse_request(line);
    if (!p.request) {
        if (p.error.empty() || p.seq.size() > 20 || !all_digits(p.seq)) {
            std::abort();
        }
        if (!p.seq.empty()) {
            check_line(mf::cgp::reply_line(p.seq, "ERROR", p.error));
        }
        check_line(mf::cgp::info_line(p.error));
        return;
    }
    const auto& r = *p.request;
    if (r.seq.empty() || r.seq.size() > 20 || !all_digits(r.seq) || r.word.size() > 35) {
        std::abort();
    }
    for (char c : r.word) {
        if (static_cast<unsigned char>(c) < 0x20) {
            std::abort();
        }
    }
    check_line(mf::cgp::reply_line(r.seq, r.word, "unsupported command " + r.word));
    check_line(mf::cgp::reply_line(r.seq, "OK"));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    while (!in.empty()) {
        auto lf = in.find('\n');
        std::string_view line = in.substr(0, lf);
        in = lf == std::string_view::npos ? std::string_view() : in.substr(lf + 1);
        if (line.size() <= mf::cgp::kMaxLine) {
            one_line(line);
        }
    }
    // The reader of an argument on its own, from the start of the input.
    std::string out;
    std::string why;
    std::size_t pos = 0;
    std::string_view all(reinterpret_cast<const char*>(data), size);
    if (mf::cgp::next_string(all, pos, out, why) && pos > all.size()) {
        std::abort();
    }
    return 0;
}
