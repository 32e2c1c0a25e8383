// imap_parser.cpp — strict recursive-descent reader of IMAP responses.
//
// Grammar subset of RFC 3501 §9 / RFC 9051 that a client receives: continuation, tagged
// and untagged status with response codes, and data responses as generic values (atoms,
// numbers, quoted strings, literals and literal8, NIL, nested lists). A literal always
// ends its line; the response continues on the next line. Must never trust an announced
// size before checking it, nor accept structure it cannot account for. Errors carry the
// offending line, sanitized and shortened.
#include "imap_parser.hpp"

#include <algorithm>
#include <cctype>

namespace mf::imap {

namespace {

bool is_ctl(unsigned char c) {
    return c < 0x20 || c == 0x7f;
}

bool ieq(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::toupper(static_cast<unsigned char>(x)) ==
                      std::toupper(static_cast<unsigned char>(y));
           });
}

// Characters that end an atom in a server response: the atom-specials but '%', '*', '\\'
// and ']' (flags start with '\\', "\\*" is a flag, astrings may hold ']'), and '[' is an
// ordinary ATOM-CHAR: keywords such as "foo[bar" are legal. Only a data item that takes a
// section (section_item) starts one with '['.
bool ends_atom(char c) {
    auto u = static_cast<unsigned char>(c);
    return c == ' ' || c == '(' || c == ')' || c == '"' || c == '{' || is_ctl(u);
}

// The FETCH data items whose name is followed by a section: BODY[...], BINARY[...],
// BINARY.SIZE[...] (RFC 9051 msg-att-static; the .PEEK forms are echoed by some servers).
bool section_item(std::string_view name) {
    for (std::string_view n : {"BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE"}) {
        if (ieq(name, n)) {
            return true;
        }
    }
    return false;
}

// Where the ']' that closes a bracket opened just before `from` is: the first one outside
// quoted strings and parentheses (a section's header list, a response code's flag list),
// or npos.
std::size_t closing_bracket(std::string_view line, std::size_t from) {
    int depth = 0;
    for (std::size_t i = from; i < line.size(); ++i) {
        char ch = line[i];
        if (ch == '"') {
            for (++i; i < line.size() && line[i] != '"'; ++i) {
                if (line[i] == '\\') {
                    ++i;
                }
            }
            if (i >= line.size()) {
                return std::string_view::npos;
            }
        } else if (ch == '(') {
            ++depth;
        } else if (ch == ')') {
            depth = depth > 0 ? depth - 1 : 0;
        } else if (ch == ']' && depth == 0) {
            return i;
        }
    }
    return std::string_view::npos;
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
    if (s.empty() || s.size() > 20) {
        return std::nullopt;
    }
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        std::uint64_t d = static_cast<std::uint64_t>(c - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return std::nullopt;
        }
        v = v * 10 + d;
    }
    return v;
}

} // namespace

bool Value::is_atom(std::string_view u) const {
    return (kind == Kind::atom || kind == Kind::number) && ieq(str, u);
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return out;
}

std::string Response::summary() const {
    std::string s = keyword;
    if (!code.empty()) {
        s += " [" + code + (code_args.empty() ? "" : " " + code_args) + "]";
    }
    if (!text.empty()) {
        s += " " + text;
    }
    return sanitize_reply(s);
}

// ---- LiteralReader ----------------------------------------------------------------------

Result<std::string_view> LiteralReader::next(std::size_t max) {
    if (remaining_ == 0) {
        return std::string_view();
    }
    auto want = static_cast<std::size_t>(std::min<std::uint64_t>(max, remaining_));
    auto v = in_.some(want);
    if (!v) {
        return make_error("read a literal",
                          v.error().detail + " (" + std::to_string(remaining_) +
                              " bytes of it still missing)",
                          Scope::server, Retry::later);
    }
    remaining_ -= v->size();
    return *v;
}

Result<void> LiteralReader::skip_rest() {
    while (remaining_ > 0) {
        auto v = next();
        if (!v) {
            return v.error();
        }
    }
    return {};
}

// ---- Parser -----------------------------------------------------------------------------

struct Parser::Cursor {
    std::string line;
    std::size_t pos = 0;
    std::size_t budget = 0; // buffered bytes so far in this response
    std::size_t items = 0;

    [[nodiscard]] bool at_end() const { return pos >= line.size(); }
    [[nodiscard]] char peek() const { return at_end() ? '\0' : line[pos]; }
};

Error Parser::fail(const Cursor& c, std::string why) const {
    std::string near = c.line.substr(c.pos > 40 ? c.pos - 40 : 0, 80);
    // The server would send the same bytes again: retrying cannot mend it (the caller
    // skips what the answer was about and drops the connection).
    return make_error("parse server response", why + " near \"" + sanitize_reply(near, 80) + "\"",
                      Scope::server, Retry::never);
}

Result<void> Parser::next_line(Cursor& c) {
    auto l = in_.line(lim_.max_line);
    if (!l) {
        return l.error();
    }
    c.budget += l->size();
    if (c.budget > lim_.max_response) {
        return make_error("parse server response",
                          "response larger than " + std::to_string(lim_.max_response) + " bytes",
                          Scope::server, Retry::never);
    }
    c.line.assign(l->data(), l->size());
    c.pos = 0;
    return {};
}

Result<Response> Parser::read(const LiteralHook& hook) {
    Cursor c;
    if (auto r = next_line(c); !r) {
        return r.error();
    }
    Response r;
    if (c.peek() == '+') {
        r.type = Response::Type::continuation;
        c.pos = c.line.size() > 1 && c.line[1] == ' ' ? 2 : 1;
        // A continuation may carry base64 (AUTHENTICATE) or text with a code.
        if (auto e = parse_resp_text(c, r); !e) {
            return e.error();
        }
        return r;
    }
    auto word = [&c]() {
        std::size_t start = c.pos;
        while (!c.at_end() && c.line[c.pos] != ' ') {
            ++c.pos;
        }
        return std::string_view(c.line).substr(start, c.pos - start);
    };
    auto space = [&c, this]() -> Result<void> {
        if (c.peek() != ' ') {
            return fail(c, "expected a space");
        }
        ++c.pos;
        return {};
    };

    if (c.peek() == '*') {
        r.type = Response::Type::untagged;
        ++c.pos;
        if (auto e = space(); !e) {
            return e.error();
        }
        std::string_view w = word();
        if (w.empty()) {
            return fail(c, "missing keyword");
        }
        if (std::isdigit(static_cast<unsigned char>(w[0])) != 0) {
            auto n = parse_u64(w);
            if (!n || *n > UINT32_MAX) {
                return fail(c, "bad message number");
            }
            r.number = static_cast<std::uint32_t>(*n);
            if (auto e = space(); !e) {
                return e.error();
            }
            w = word();
            if (w.empty()) {
                return fail(c, "missing keyword");
            }
        }
        r.keyword = upper(w);
        for (char ch : r.keyword) {
            if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '.' &&
                ch != '_') {
                return fail(c, "bad response keyword");
            }
        }
        if (r.is_status()) {
            if (r.number) {
                return fail(c, "status response with a number");
            }
            if (!c.at_end()) {
                ++c.pos; // the space
            }
            if (auto e = parse_resp_text(c, r); !e) {
                return e.error();
            }
            return r;
        }
        if (!c.at_end()) {
            if (auto e = space(); !e) {
                return e.error();
            }
        }
        if (auto e = parse_values(c, r, r.data, 0, hook); !e) {
            return e.error();
        }
        if (r.keyword == "FETCH" &&
            (!r.number || r.data.size() != 1 || r.data[0].kind != Value::Kind::list)) {
            return fail(c, "FETCH response without a message number and one list");
        }
        return r;
    }

    r.type = Response::Type::tagged;
    std::string_view tag = word();
    if (tag.empty()) {
        return fail(c, "empty tag");
    }
    for (char ch : tag) {
        auto u = static_cast<unsigned char>(ch);
        if (is_ctl(u) || u >= 0x80 || ch == '(' || ch == ')' || ch == '{' || ch == '"' ||
            ch == '\\' || ch == '%' || ch == '*' || ch == '+') {
            return fail(c, "bad tag");
        }
    }
    r.tag = std::string(tag);
    if (auto e = space(); !e) {
        return e.error();
    }
    r.keyword = upper(word());
    if (r.keyword != "OK" && r.keyword != "NO" && r.keyword != "BAD") {
        return fail(c, "tagged response is not OK, NO or BAD");
    }
    if (!c.at_end()) {
        ++c.pos;
    }
    if (auto e = parse_resp_text(c, r); !e) {
        return e.error();
    }
    return r;
}

Result<void> Parser::parse_resp_text(Cursor& c, Response& r) {
    if (c.peek() == '[') {
        std::size_t close = closing_bracket(c.line, c.pos + 1);
        if (close == std::string::npos) {
            return fail(c, "response code without ']'");
        }
        std::string_view inner = std::string_view(c.line).substr(c.pos + 1, close - c.pos - 1);
        std::size_t sp = inner.find(' ');
        r.code = upper(inner.substr(0, sp));
        if (r.code.empty()) {
            return fail(c, "empty response code");
        }
        if (sp != std::string_view::npos) {
            r.code_args = std::string(inner.substr(sp + 1));
        }
        c.pos = close + 1;
        if (c.peek() == ' ') {
            ++c.pos;
        }
    }
    r.text = c.line.substr(std::min(c.pos, c.line.size()));
    c.pos = c.line.size();
    return {};
}

Result<void> Parser::parse_values(Cursor& c, Response& r, std::vector<Value>& out, unsigned depth,
                                  const LiteralHook& hook) {
    for (;;) {
        if (c.at_end()) {
            if (depth > 0) {
                return fail(c, "response ends inside a list");
            }
            return {};
        }
        if (c.peek() == ')') {
            if (depth == 0) {
                return fail(c, "unbalanced ')'");
            }
            return {};
        }
        if (!out.empty()) {
            if (c.peek() != ' ') {
                return fail(c, "expected a space between values");
            }
            ++c.pos;
            if (c.at_end() || c.peek() == ')') {
                // Tolerated: some servers put a space before ')' or at the end.
                continue;
            }
        }
        auto v = parse_value(c, r, out, depth, hook);
        if (!v) {
            return v.error();
        }
        if (++c.items > lim_.max_items) {
            return fail(c, "more than " + std::to_string(lim_.max_items) + " values");
        }
        out.push_back(std::move(*v));
    }
}

Result<Value> Parser::parse_value(Cursor& c, Response& r, std::vector<Value>& siblings,
                                  unsigned depth, const LiteralHook& hook) {
    Value v;
    char ch = c.peek();
    if (ch == '(') {
        if (depth + 1 > lim_.max_depth) {
            return fail(c, "lists nested deeper than " + std::to_string(lim_.max_depth));
        }
        ++c.pos;
        v.kind = Value::Kind::list;
        if (auto e = parse_values(c, r, v.list, depth + 1, hook); !e) {
            return e.error();
        }
        if (c.peek() != ')') {
            return fail(c, "list not closed");
        }
        ++c.pos;
        return v;
    }
    if (ch == '"') {
        return parse_quoted(c);
    }
    if (ch == '{' || (ch == '~' && c.pos + 1 < c.line.size() && c.line[c.pos + 1] == '{')) {
        return parse_literal(c, r, siblings, depth, hook);
    }
    // An item name where a FETCH's data items stand (depth 1, even position).
    return parse_atom(c, r.keyword == "FETCH" && depth == 1 && siblings.size() % 2 == 0);
}

Result<Value> Parser::parse_quoted(Cursor& c) {
    Value v;
    ++c.pos;
    v.kind = Value::Kind::string;
    for (;;) {
        if (c.at_end()) {
            return fail(c, "quoted string not closed");
        }
        char q = c.line[c.pos++];
        if (q == '"') {
            break;
        }
        if (q == '\\') {
            if (c.at_end()) {
                return fail(c, "quoted string not closed");
            }
            q = c.line[c.pos++];
            if (q != '"' && q != '\\') {
                return fail(c, "bad escape in quoted string");
            }
        } else if (q == '\r' || q == '\n' || q == '\0') {
            return fail(c, "control character in quoted string");
        }
        v.str.push_back(q);
    }
    return v;
}

Result<Value> Parser::parse_literal(Cursor& c, Response& r, std::vector<Value>& siblings,
                                    unsigned depth, const LiteralHook& hook) {
    Value v;
    const char ch = c.peek();
    std::size_t open = ch == '~' ? c.pos + 1 : c.pos;
    std::size_t close = c.line.find('}', open);
    if (close == std::string::npos || close + 1 != c.line.size()) {
        return fail(c, "literal size must end the line");
    }
    auto size = parse_u64(std::string_view(c.line).substr(open + 1, close - open - 1));
    if (!size) {
        return fail(c, "bad literal size");
    }
    if (*size > lim_.max_stream_literal) {
        return fail(c, "literal of " + std::to_string(*size) + " bytes announced, limit is " +
                           std::to_string(lim_.max_stream_literal));
    }
    c.pos = c.line.size();
    LiteralReader reader(in_, *size);
    bool streamed = false;
    if (hook) {
        LiteralContext ctx{r, siblings, depth};
        auto h = hook(ctx, *size, reader);
        if (!h) {
            return h.error();
        }
        streamed = *h;
    }
    if (streamed) {
        if (auto e = reader.skip_rest(); !e) {
            return e.error();
        }
        v.kind = Value::Kind::streamed;
        v.num = *size;
    } else {
        if (*size > lim_.max_literal || c.budget + *size > lim_.max_response) {
            return fail(c, "literal of " + std::to_string(*size) +
                               " bytes is larger than allowed here (" +
                               std::to_string(lim_.max_literal) + ")");
        }
        v.kind = Value::Kind::string;
        v.str.reserve(static_cast<std::size_t>(*size));
        while (reader.remaining() > 0) {
            auto chunk = reader.next();
            if (!chunk) {
                return chunk.error();
            }
            v.str.append(chunk->data(), chunk->size());
        }
        c.budget += v.str.size();
    }
    if (auto e = next_line(c); !e) {
        return e.error();
    }
    return v;
}

Result<Value> Parser::parse_atom(Cursor& c, bool item_name) {
    Value v;
    // Atom, number or NIL.
    std::size_t start = c.pos;
    while (!c.at_end()) {
        char a = c.line[c.pos];
        // Only a FETCH data item's name takes a section: in a flag list "BODY[x" is a
        // keyword like any other.
        if (a == '[' && item_name &&
            section_item(std::string_view(c.line).substr(start, c.pos - start))) {
            // A section: up to its ']' (may hold spaces, a header list, quoted names).
            std::size_t close = closing_bracket(c.line, c.pos + 1);
            if (close == std::string::npos) {
                return fail(c, "section '[' without ']'");
            }
            for (std::size_t i = c.pos; i < close; ++i) {
                auto u = static_cast<unsigned char>(c.line[i]);
                if (is_ctl(u) || c.line[i] == '{') {
                    return fail(c, "bad character in section");
                }
            }
            c.pos = close + 1;
            continue;
        }
        if (ends_atom(a)) {
            break;
        }
        ++c.pos;
    }
    if (c.pos == start) {
        return fail(c, "unexpected character");
    }
    v.str = c.line.substr(start, c.pos - start);
    bool digits =
        std::all_of(v.str.begin(), v.str.end(), [](char d) { return d >= '0' && d <= '9'; });
    if (auto n = digits ? parse_u64(v.str) : std::nullopt) {
        v.kind = Value::Kind::number;
        v.num = *n;
    } else if (ieq(v.str, "NIL")) {
        // NIL where an nstring may stand; `str` keeps the text, since where the grammar
        // wants an astring (a mailbox named NIL) the same bytes are a name.
        v.kind = Value::Kind::nil;
    } else {
        // Includes digit strings too long for a number: a keyword "2024123112345678901234"
        // is an atom, and a message number that long is refused by its reader.
        v.kind = Value::Kind::atom;
    }
    return v;
}

// ---- command helpers --------------------------------------------------------------------

std::optional<std::string> quote(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    out.push_back('"');
    for (char ch : s) {
        auto u = static_cast<unsigned char>(ch);
        if (u >= 0x80 || ch == '\r' || ch == '\n' || ch == '\0') {
            return std::nullopt;
        }
        if (ch == '"' || ch == '\\') {
            out.push_back('\\');
        }
        out.push_back(ch);
    }
    out.push_back('"');
    return out;
}

bool is_atom(std::string_view s) {
    if (s.empty()) {
        return false;
    }
    for (std::size_t i = 0; i < s.size(); ++i) {
        char ch = s[i];
        auto u = static_cast<unsigned char>(ch);
        if (is_ctl(u) || u >= 0x80 || ch == ' ' || ch == '(' || ch == ')' || ch == '{' ||
            ch == '%' || ch == '*' || ch == '"' || ch == ']') {
            return false;
        }
        if (ch == '\\' && i != 0) {
            return false; // only a leading backslash (system flag)
        }
    }
    return true;
}

bool is_storable_flag(std::string_view s) {
    if (!is_atom(s)) {
        return false;
    }
    if (s[0] == '\\') {
        return ieq(s, "\\Seen") || ieq(s, "\\Answered") || ieq(s, "\\Flagged") ||
               ieq(s, "\\Deleted") || ieq(s, "\\Draft");
    }
    return true;
}

} // namespace mf::imap
