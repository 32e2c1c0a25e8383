// pop3_proto.hpp — the server's side of POP3 (RFC 1939) as the POP3 source reads it, apart
// from the connection: multi-line answers and the UIDL and LIST lines inside them.
//
// Split out of source_pop3.cpp so that the fuzzer (fuzz/fuzz_pop3_reply.cpp) can feed
// these readers any bytes without a server; source_pop3.cpp is their only other user.
//
// Must never: read past the "." that ends a multi-line answer, or trust a number or a
// length the server sends beyond what the reader's line limit allows.
// Errors: what Input::line() reports (over-long line, NUL, end of stream), or what the
// per-line callback returns.
#pragma once

#include "imap_io.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace mf::copy::pop3 {

// The longest line we accept from a POP3 server (a message line included).
inline constexpr std::size_t kMaxLine = 1u << 20;

// Reads a multi-line answer up to ".", dot-unstuffed, one call per line.
Result<void> read_lines(imap::Input& in, std::size_t max_line,
                        const std::function<Result<void>(std::string_view)>& each);

// One line of a UIDL answer, "<number> <uidl>": stored as number → uidl. A line without
// a space is ignored; a number that does not parse counts as 0 (strtoul's reading).
void add_uidl_line(std::string_view line, std::map<unsigned long, std::string>& uidls);

// One line of a LIST answer, "<number> <size>": stored as number → size, read the same way.
void add_list_line(std::string_view line, std::map<unsigned long, std::uint64_t>& sizes);

} // namespace mf::copy::pop3
