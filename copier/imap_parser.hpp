// imap_parser.hpp — a strict reader of IMAP server responses (RFC 3501 / 9051 syntax).
//
// One call reads one whole response — a tagged completion, an untagged status or data
// response, or a continuation request — from an Input, including any literals it carries.
// Nothing the server says about sizes or structure is trusted: every line has a length
// limit, every buffered literal a size limit, lists a nesting limit and responses a total
// budget. A literal may instead be handed, still on the wire, to a caller's hook (the body
// of a FETCH), which reads it in chunks so a 50 MB message never sits in memory.
//
// Must never: allocate what the server announces before checking it against a limit,
// accept a NUL, CR or LF inside a quoted string, or leave a literal half-read.
// Errors: any violation is an Error (scope server, retry later) and the stream must be
// considered broken: the caller drops the connection.
#pragma once

#include "imap_io.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mf::imap {

struct Limits {
    std::size_t max_line = 1 << 20;                // one physical line of a response
    std::size_t max_literal = 1 << 20;             // a literal the parser buffers itself
    std::uint64_t max_stream_literal = 1ull << 30; // a literal handed to a hook (a message)
    std::size_t max_response = 16u << 20;          // all buffered bytes of one response
    unsigned max_depth = 32;                       // nested parentheses
    std::size_t max_items = 1u << 20;              // values in one response
};

struct Value {
    enum class Kind : std::uint8_t { atom, number, string, nil, list, streamed };
    Kind kind = Kind::nil;
    std::string str;         // atom text ("BODY[]" with its section), number text,
                             // string contents, NIL's own text
    std::uint64_t num = 0;   // number value; size of a streamed literal
    std::vector<Value> list; // list items

    [[nodiscard]] bool is_atom(std::string_view upper) const; // case-insensitive
    [[nodiscard]] bool is_string_like() const {
        return kind == Kind::atom || kind == Kind::number || kind == Kind::string;
    }
    // Where the grammar wants an astring (a mailbox name), a bare NIL is the name "NIL".
    [[nodiscard]] bool is_astring() const { return is_string_like() || kind == Kind::nil; }
};

struct Response {
    enum class Type : std::uint8_t { tagged, untagged, continuation };
    Type type = Type::untagged;
    std::string tag;                     // tagged only
    std::string keyword;                 // OK NO BAD BYE PREAUTH, or FETCH LIST EXISTS … (upper)
    std::optional<std::uint32_t> number; // "* 12 FETCH", "* 3 EXISTS"
    // Status responses (tagged, OK/NO/BAD/BYE/PREAUTH) and continuations:
    std::string code;      // response code atom, upper-cased: "APPENDUID", "CAPABILITY"
    std::string code_args; // raw text after the code atom up to ']'
    std::string text;      // human-readable rest
    // Data responses: everything after the keyword.
    std::vector<Value> data;

    [[nodiscard]] bool is_status() const {
        return keyword == "OK" || keyword == "NO" || keyword == "BAD" || keyword == "BYE" ||
               keyword == "PREAUTH";
    }
    // "NO [CODE args] text" shortened and sanitized, for error details.
    [[nodiscard]] std::string summary() const;
};

// Streams one literal: hands out its bytes in chunks, never more than remain.
class LiteralReader {
  public:
    LiteralReader(Input& in, std::uint64_t size) : in_(in), remaining_(size) {}
    [[nodiscard]] std::uint64_t remaining() const { return remaining_; }
    // Up to `max` bytes (at least one while any remain). Empty view once all are read.
    Result<std::string_view> next(std::size_t max = std::size_t{64} * 1024);
    Result<void> skip_rest();

  private:
    Input& in_;
    std::uint64_t remaining_;
};

// Where a literal sits, for a hook to decide whether it wants it.
struct LiteralContext {
    const Response& response;           // keyword and number filled in
    const std::vector<Value>& siblings; // values of the enclosing list so far
    unsigned depth;                     // 1 = directly inside the FETCH msg-att list
};

// Return true after reading the literal (all of it, or the parser skips the rest); false
// to let the parser buffer it like any other literal (subject to max_literal).
using LiteralHook =
    std::function<Result<bool>(const LiteralContext&, std::uint64_t size, LiteralReader&)>;

class Parser {
  public:
    Parser(Input& in, Limits limits) : in_(in), lim_(limits) {}

    // Reads one complete response. `hook` may be empty.
    Result<Response> read(const LiteralHook& hook = {});

    [[nodiscard]] const Limits& limits() const { return lim_; }
    void set_limits(const Limits& l) { lim_ = l; }

  private:
    struct Cursor;
    Result<void> parse_values(Cursor& c, Response& r, std::vector<Value>& out, unsigned depth,
                              const LiteralHook& hook);
    Result<Value> parse_value(Cursor& c, Response& r, std::vector<Value>& siblings, unsigned depth,
                              const LiteralHook& hook);
    Result<Value> parse_quoted(Cursor& c);
    Result<Value> parse_literal(Cursor& c, Response& r, std::vector<Value>& siblings,
                                unsigned depth, const LiteralHook& hook);
    Result<Value> parse_atom(Cursor& c, bool item_name);
    Result<void> parse_resp_text(Cursor& c, Response& r);
    Result<void> next_line(Cursor& c);
    Error fail(const Cursor& c, std::string why) const;

    Input& in_;
    Limits lim_;
};

// Helpers for building commands.

// A mailbox name or other astring as a quoted string, or nullopt if it cannot be quoted
// (8-bit, CR, LF, NUL): the caller must send a literal then.
std::optional<std::string> quote(std::string_view s);
// True if s is a valid IMAP atom (flag keyword) we may send back unquoted.
bool is_atom(std::string_view s);
// True for a system flag or keyword usable in STORE/APPEND (not \Recent, not \*).
bool is_storable_flag(std::string_view s);

// Upper-cases ASCII.
std::string upper(std::string_view s);

} // namespace mf::imap
