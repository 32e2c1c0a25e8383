// copier_parser_grammar_test.cpp — the IMAP response parser against the server grammar,
// one rule per row.
//
// Each row is a server's bytes (as Dovecot, Cyrus, Courier or the RFC 3501 / RFC 9051
// examples send them) and the value the parser must return, written as a compact text
// (render() below), so a row states both the input and the exact parse. Rows cover the
// extensions the copier uses: LITERAL+, CONDSTORE/QRESYNC, SPECIAL-USE, LIST-EXTENDED,
// NAMESPACE, UIDPLUS, MULTIAPPEND, BINARY. Must never: accept a row by a looser check
// than the whole rendered parse.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "imap_parser.hpp"

#include <cstdio>
#include <string>
#include <vector>

using namespace mf::imap;

namespace {

std::string render_text(std::string_view s) {
    std::string out = "\"";
    for (char ch : s) {
        auto u = static_cast<unsigned char>(ch);
        if (u < 0x20 || u == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", u);
            out += buf;
        } else {
            out.push_back(ch);
        }
    }
    return out + "\"";
}

// atom a:X, number n:5, string s:"…", NIL, list (…), streamed literal lit:N.
std::string render(const Value& v) {
    switch (v.kind) {
    case Value::Kind::atom:
        return "a:" + v.str;
    case Value::Kind::number:
        return "n:" + std::to_string(v.num);
    case Value::Kind::string:
        return "s:" + render_text(v.str);
    case Value::Kind::nil:
        return "NIL";
    case Value::Kind::streamed:
        return "lit:" + std::to_string(v.num);
    case Value::Kind::list: {
        std::string out = "(";
        for (const auto& item : v.list) {
            out += (out.size() > 1 ? " " : "") + render(item);
        }
        return out + ")";
    }
    }
    return "?";
}

// tagged:   T <tag> <KW> [<CODE>|<args>] <text>
// untagged: * [<n>] <KW> values…   or   * <KW> [<CODE>|<args>] <text>
// continuation: + [<CODE>|<args>] <text>
std::string render(const Response& r) {
    std::string out;
    switch (r.type) {
    case Response::Type::tagged:
        out = "T " + r.tag + " " + r.keyword;
        break;
    case Response::Type::untagged:
        out = "*";
        if (r.number) {
            out += " " + std::to_string(*r.number);
        }
        out += " " + r.keyword;
        break;
    case Response::Type::continuation:
        out = "+";
        break;
    }
    if (r.type != Response::Type::untagged || r.is_status()) {
        if (!r.code.empty()) {
            out += " [" + r.code + "|" + r.code_args + "]";
        }
        return out + " " + render_text(r.text);
    }
    for (const auto& v : r.data) {
        out += " " + render(v);
    }
    return out;
}

struct Row {
    const char* rule;   // what the row checks
    std::string server; // bytes on the wire (one response)
    std::string parsed; // render() of the response
};

// clang-format off
const std::vector<Row> kRows = {
    // Flags: any ATOM-CHAR, '[' included, in FLAGS, PERMANENTFLAGS and FETCH.
    {"FLAGS keyword with '['", "* FLAGS (\\Answered \\Seen foo[bar $Label1)\r\n",
     "* FLAGS (a:\\Answered a:\\Seen a:foo[bar a:$Label1)"},
    {"FLAGS keyword named like a section item", "* FLAGS (BODY[x BINARY[ x[1 \\*)\r\n",
     "* FLAGS (a:BODY[x a:BINARY[ a:x[1 a:\\*)"},
    {"PERMANENTFLAGS code with '[' keyword",
     "* OK [PERMANENTFLAGS (\\Seen foo[bar \\*)] Flags permitted.\r\n",
     "* OK [PERMANENTFLAGS|(\\Seen foo[bar \\*)] \"Flags permitted.\""},
    {"FETCH FLAGS with '[' keywords", "* 3 FETCH (UID 7 FLAGS (\\Seen [x y[z))\r\n",
     "* 3 FETCH (a:UID n:7 a:FLAGS (a:\\Seen a:[x a:y[z))"},
    {"keyword of digits and one too long for a number", "* FLAGS (2024 123456789012345678901234)\r\n",
     "* FLAGS (n:2024 a:123456789012345678901234)"},
    // Sections only after the data items that take them.
    {"BODY[] literal", "* 1 FETCH (UID 5 BODY[] {3}\r\nabc)\r\n",
     "* 1 FETCH (a:UID n:5 a:BODY[] s:\"abc\")"},
    {"section with a header list and a quoted ']'",
     "* 1 FETCH (BODY[HEADER.FIELDS (FROM \"X]Y\")] {2}\r\nhi UID 4)\r\n",
     "* 1 FETCH (a:BODY[HEADER.FIELDS (FROM \"X]Y\")] s:\"hi\" a:UID n:4)"},
    {"partial body with origin", "* 2 FETCH (BODY[]<0> \"ab\")\r\n",
     "* 2 FETCH (a:BODY[]<0> s:\"ab\")"},
    {"BINARY literal8 with a NUL", std::string("* 2 FETCH (BINARY[1] ~{3}\r\na\0b)\r\n", 33),
     "* 2 FETCH (a:BINARY[1] s:\"a\\x00b\")"},
    {"BINARY.SIZE", "* 2 FETCH (BINARY.SIZE[1] 42)\r\n", "* 2 FETCH (a:BINARY.SIZE[1] n:42)"},
    {"NIL where an nstring stands", "* 1 FETCH (UID 5 BODY[] NIL)\r\n",
     "* 1 FETCH (a:UID n:5 a:BODY[] NIL)"},
    {"INTERNALDATE as a literal", "* 1 FETCH (INTERNALDATE {26}\r\n17-Jul-1996 02:44:25 -0700)\r\n",
     "* 1 FETCH (a:INTERNALDATE s:\"17-Jul-1996 02:44:25 -0700\")"},
    {"CONDSTORE MODSEQ", "* 1 FETCH (MODSEQ (12345) UID 9 FLAGS ())\r\n",
     "* 1 FETCH (a:MODSEQ (n:12345) a:UID n:9 a:FLAGS ())"},
    // Mailbox names: any character, quoted or literal; NIL delimiter; a name "NIL".
    {"LIST quoted name with escapes", "* LIST (\\HasNoChildren) \".\" \"a\\\\b\\\"c\"\r\n",
     "* LIST (a:\\HasNoChildren) s:\".\" s:\"a\\b\"c\""},
    {"LIST literal name with spaces, quote and braces",
     "* LIST () \"/\" {9}\r\n a \"{}\" b\r\n", "* LIST () s:\"/\" s:\" a \"{}\" b\""},
    {"LIST UTF-8 name (UTF8=ACCEPT)", "* LIST () \"/\" \"Gr\xc3\xbc\xc3\x9f\x65\"\r\n",
     "* LIST () s:\"/\" s:\"Gr\xc3\xbc\xc3\x9f\x65\""},
    {"LIST NIL delimiter, atom name", "* LIST (\\Noselect) NIL Archive\r\n",
     "* LIST (a:\\Noselect) NIL a:Archive"},
    {"LIST name NIL as an astring", "* LIST () \"/\" NIL\r\n", "* LIST () s:\"/\" NIL"},
    {"LIST-EXTENDED \\NonExistent with CHILDINFO",
     "* LIST (\\NonExistent \\Subscribed) \"/\" \"Gone\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n",
     "* LIST (a:\\NonExistent a:\\Subscribed) s:\"/\" s:\"Gone\" (s:\"CHILDINFO\" (s:\"SUBSCRIBED\"))"},
    {"SPECIAL-USE attributes", "* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n",
     "* LIST (a:\\HasNoChildren a:\\Sent) s:\"/\" a:Sent"},
    {"LSUB of a \\Noselect parent", "* LSUB (\\Noselect) \".\" \"Old\"\r\n",
     "* LSUB (a:\\Noselect) s:\".\" s:\"Old\""},
    {"STATUS with a literal name", "* STATUS {3}\r\na b (MESSAGES 2 UIDNEXT 9 HIGHESTMODSEQ 4)\r\n",
     "* STATUS s:\"a b\" (a:MESSAGES n:2 a:UIDNEXT n:9 a:HIGHESTMODSEQ n:4)"},
    {"NAMESPACE", "* NAMESPACE ((\"\" \"/\")) NIL ((\"#shared/\" \"/\"))\r\n",
     "* NAMESPACE ((s:\"\" s:\"/\")) NIL ((s:\"#shared/\" s:\"/\"))"},
    {"ID", "* ID (\"name\" \"Dovecot\" \"version\" NIL)\r\n",
     "* ID (s:\"name\" s:\"Dovecot\" s:\"version\" NIL)"},
    {"ENABLED", "* ENABLED CONDSTORE QRESYNC\r\n", "* ENABLED a:CONDSTORE a:QRESYNC"},
    {"QRESYNC VANISHED (EARLIER)", "* VANISHED (EARLIER) 1:3,5\r\n",
     "* VANISHED (a:EARLIER) a:1:3,5"},
    {"ESEARCH", "* ESEARCH (TAG \"A2\") UID ALL 1:9\r\n",
     "* ESEARCH (a:TAG s:\"A2\") a:UID a:ALL a:1:9"},
    {"SEARCH", "* SEARCH 2 84 882\r\n", "* SEARCH n:2 n:84 n:882"},
    // Unsolicited responses.
    {"EXISTS", "* 4 EXISTS\r\n", "* 4 EXISTS"},
    {"EXPUNGE", "* 2 EXPUNGE\r\n", "* 2 EXPUNGE"},
    {"unsolicited FETCH FLAGS", "* 2 FETCH (FLAGS (\\Deleted))\r\n",
     "* 2 FETCH (a:FLAGS (a:\\Deleted))"},
    {"BYE", "* BYE Server shutting down\r\n", "* BYE \"Server shutting down\""},
    {"OK with HIGHESTMODSEQ", "* OK [HIGHESTMODSEQ 77] Highest\r\n",
     "* OK [HIGHESTMODSEQ|77] \"Highest\""},
    {"ALERT with ']' in the text", "* OK [ALERT] maintenance [today] 10:00\r\n",
     "* OK [ALERT|] \"maintenance [today] 10:00\""},
    {"response code with a quoted ']'", "* NO [BADCHARSET (\"X]\" UTF-8)] no\r\n",
     "* NO [BADCHARSET|(\"X]\" UTF-8)] \"no\""},
    // Tagged completions and continuations.
    {"MULTIAPPEND APPENDUID with a set", "A1 OK [APPENDUID 17 3:5] done\r\n",
     "T A1 OK [APPENDUID|17 3:5] \"done\""},
    {"COPYUID", "A3 OK [COPYUID 17 1:2 7:8] copied\r\n", "T A3 OK [COPYUID|17 1:2 7:8] \"copied\""},
    {"TRYCREATE", "A2 NO [TRYCREATE] no such mailbox\r\n",
     "T A2 NO [TRYCREATE|] \"no such mailbox\""},
    {"lower-case completion", "a4 ok done\r\n", "T a4 OK \"done\""},
    {"continuation", "+ Ready for literal data\r\n", "+ \"Ready for literal data\""},
};
// clang-format on

} // namespace

TEST_CASE("the server grammar, one rule per row") {
    for (const Row& row : kRows) {
        // Small chunks: every read boundary falls somewhere inside the row.
        for (std::size_t chunk : {std::size_t{1}, std::size_t{5}, std::size_t{4096}}) {
            const std::string rule = row.rule;
            CAPTURE(rule);
            CAPTURE(chunk);
            StringSource src(row.server, chunk);
            Input in(src, 64);
            Parser parser(in, Limits{});
            auto r = parser.read();
            INFO((r.ok() ? std::string() : r.error().message()));
            REQUIRE(r.ok());
            CHECK(render(*r) == row.parsed);
        }
    }
}

TEST_CASE("a FETCH stream with unsolicited responses in between") {
    std::string wire = "* 1 FETCH (UID 1 BODY[] {2}\r\nab)\r\n"
                       "* OK [HIGHESTMODSEQ 9] changed\r\n"
                       "* 5 EXISTS\r\n"
                       "* 1 FETCH (FLAGS (\\Seen foo[bar))\r\n"
                       "* 2 EXPUNGE\r\n"
                       "* 3 FETCH (UID 4 BODY[] {1}\r\nc)\r\n"
                       "A7 OK Fetch completed.\r\n";
    StringSource src(wire, 3);
    Input in(src, 64);
    Parser parser(in, Limits{});
    std::vector<std::string> got;
    for (int i = 0; i < 7; ++i) {
        auto r = parser.read();
        INFO((r.ok() ? std::string() : r.error().message()));
        REQUIRE(r.ok());
        got.push_back(render(*r));
    }
    CHECK(got == std::vector<std::string>{
                     "* 1 FETCH (a:UID n:1 a:BODY[] s:\"ab\")",
                     "* OK [HIGHESTMODSEQ|9] \"changed\"",
                     "* 5 EXISTS",
                     "* 1 FETCH (a:FLAGS (a:\\Seen a:foo[bar))",
                     "* 2 EXPUNGE",
                     "* 3 FETCH (a:UID n:4 a:BODY[] s:\"c\")",
                     "T A7 OK \"Fetch completed.\"",
                 });
}

TEST_CASE("what stays refused") {
    struct Bad {
        const char* rule;
        std::string server;
        const char* error; // part of the message
    };
    const std::vector<Bad> rows = {
        {"section never closed", "* 1 FETCH (BODY[HEADER {3}\r\nabc)\r\n", "without ']'"},
        {"response code never closed", "* OK [ALERT text\r\n", "without ']'"},
        {"quoted string with a bad escape", "* LIST () \"/\" \"a\\b\"\r\n", "bad escape"},
        {"literal not at the end of its line", "* LIST () \"/\" {3} x\r\nabc\r\n", "end the line"},
        {"FETCH without a list", "* 1 FETCH UID 3\r\n", "FETCH response"},
    };
    for (const Bad& row : rows) {
        const std::string rule = row.rule;
        CAPTURE(rule);
        StringSource src(row.server, 4);
        Input in(src, 64);
        Parser parser(in, Limits{});
        auto r = parser.read();
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message().find(row.error) != std::string::npos);
    }
}

TEST_CASE("a mailbox named NIL is an astring, not a missing value") {
    StringSource src("* LIST () \"/\" NIL\r\n", 4);
    Input in(src, 64);
    Parser parser(in, Limits{});
    auto r = parser.read();
    REQUIRE(r.ok());
    REQUIRE(r->data.size() == 3);
    CHECK(r->data[2].kind == Value::Kind::nil);
    CHECK(r->data[2].is_astring());
    CHECK_FALSE(r->data[2].is_string_like());
    CHECK(r->data[2].str == "NIL");
}
