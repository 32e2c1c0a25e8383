// fuzz_imap_response.cpp — feeds bytes to the IMAP response parser (copier/imap_parser.hpp)
// as if an IMAP server had sent them.
//
// Input: byte 0 sets the transport's chunk size (1–16 bytes per read, so every read
// boundary gets hit) and, in its top bits, what the LiteralHook does (none; reads the whole
// literal; reads part and lets the parser skip the rest; declines so the parser buffers
// it). The rest is the server's byte stream; responses are read until the parser reports
// an error (the end of the data is one) or 64 responses, with small limits so the limit
// checks are reached too.
// A bug: any sanitizer report or crash, a hang or runaway memory; a LiteralReader handing
// out more bytes than the literal announced or than asked for, or a reader whose
// remaining() is not 0 once it says the literal is done; a response accepted with lists
// nested deeper than Limits::max_depth. An error Result is never a bug: it is the parser
// refusing input. Must never: touch the network or the file system.
#include "imap_parser.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

using namespace mf::imap;

namespace {

enum class HookMode { none, read_all, read_part, decline };

unsigned depth_of(const std::vector<Value>& values) {
    unsigned deepest = 0;
    for (const auto& v : values) {
        if (v.kind == Value::Kind::list) {
            deepest = std::max(deepest, 1 + depth_of(v.list));
        }
    }
    return deepest;
}

// Reads up to `want` bytes of the literal in chunks of `chunk`, checking the reader's word.
mf::Result<bool> drain(LiteralReader& rd, std::uint64_t size, std::uint64_t want,
                       std::size_t chunk) {
    std::uint64_t got = 0;
    while (got < want) {
        auto ch = rd.next(chunk);
        if (!ch) {
            return ch.error();
        }
        if (ch->empty()) {
            if (rd.remaining() != 0) {
                std::abort(); // "done" while bytes remain: the stream is out of sync
            }
            break;
        }
        if (ch->size() > chunk) {
            std::abort(); // more than asked for
        }
        got += ch->size();
        if (got > size) {
            std::abort(); // more than the literal holds
        }
    }
    return true;
}

LiteralHook make_hook(HookMode mode, std::size_t chunk) {
    if (mode == HookMode::none) {
        return {};
    }
    return [mode, chunk](const LiteralContext& ctx, std::uint64_t size,
                         LiteralReader& rd) -> mf::Result<bool> {
        (void)ctx;
        if (mode == HookMode::decline) {
            return false;
        }
        return drain(rd, size, mode == HookMode::read_all ? size : size / 2, chunk);
    };
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) {
        return 0;
    }
    const std::size_t chunk = 1 + (data[0] & 0x0f);
    const auto mode = static_cast<HookMode>((data[0] >> 4) & 0x03);
    StringSource src(std::string(reinterpret_cast<const char*>(data) + 1, size - 1), chunk);
    Input in(src, 256);
    Limits lim;
    lim.max_line = 4096;
    lim.max_literal = 4096;
    lim.max_stream_literal = 1u << 20;
    lim.max_response = 64u << 10;
    lim.max_depth = 8;
    lim.max_items = 2048;
    Parser parser(in, lim);
    LiteralHook hook = make_hook(mode, chunk * 3);
    for (int i = 0; i < 64; ++i) {
        auto r = parser.read(hook);
        if (!r) {
            break;
        }
        if (depth_of(r->data) > lim.max_depth) {
            std::abort();
        }
        (void)r->summary();
    }
    return 0;
}
