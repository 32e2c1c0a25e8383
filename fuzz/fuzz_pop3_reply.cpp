// fuzz_pop3_reply.cpp — feeds bytes to the POP3 source's readers (copier/pop3_proto.hpp)
// as a POP3 server's side of a session: greeting, the answer to AUTH, the UIDL and LIST answers,
// then one RETR answer per listed message, the way source_pop3.cpp reads them.
//
// Input: byte 0 sets the transport's chunk size (1–16); the rest is what the server sent.
// A reply line is "+OK…" or the session stops there, as the source stops.
// A bug: any sanitizer report or crash, a hang or runaway memory; a dot-unstuffed line
// holding a LF or a NUL (a CR inside a line is a byte of the message, as the source
// passes it on). An error Result is never a bug. Must never: touch the network or the file system.
#include "imap_io.hpp"
#include "pop3_proto.hpp"

#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>

namespace {

using mf::Result;

constexpr std::size_t kLine = 8192; // keeps the fuzzer's inputs small; the source has 1 MiB

bool ok_reply(mf::imap::Input& in) {
    auto l = in.line(kLine);
    return l && l->rfind("+OK", 0) == 0;
}

// Every line the reader hands out must be a line's content, never the terminator.
void check_line(std::string_view l) {
    if (l.find_first_of(std::string_view("\n\0", 2)) != std::string_view::npos) {
        std::abort();
    }
}

// A RETR answer, counted as source_pop3.cpp counts it against LIST's size.
bool retr(mf::imap::Input& in, std::uint64_t listed) {
    if (!ok_reply(in)) {
        return false;
    }
    std::uint64_t sent = 0;
    auto r = mf::copy::pop3::read_lines(in, kLine, [&](std::string_view l) -> Result<void> {
        check_line(l);
        sent += l.size() + 2;
        if (sent > listed) {
            return mf::make_error("RETR", "longer than LIST said", mf::Scope::message);
        }
        return {};
    });
    return r.ok();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) {
        return 0;
    }
    mf::imap::StringSource src(std::string(reinterpret_cast<const char*>(data) + 1, size - 1),
                               1 + (data[0] & 0x0f));
    mf::imap::Input in(src, 256);
    std::map<unsigned long, std::string> uidls;
    std::map<unsigned long, std::uint64_t> sizes;
    using mf::copy::pop3::read_lines;
    if (!ok_reply(in) || !ok_reply(in) ||
        !read_lines(in, kLine, [&](std::string_view l) -> Result<void> {
            check_line(l);
            mf::copy::pop3::add_uidl_line(l, uidls);
            return {};
        })) {
        return 0;
    }
    if (!ok_reply(in) || !read_lines(in, kLine, [&](std::string_view l) -> Result<void> {
            check_line(l);
            mf::copy::pop3::add_list_line(l, sizes);
            return {};
        })) {
        return 0;
    }
    for (const auto& [num, uidl] : uidls) {
        auto listed = sizes.find(num);
        if (listed == sizes.end() || !retr(in, listed->second)) {
            break;
        }
    }
    return 0;
}
