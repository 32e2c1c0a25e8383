// copier_parser_test.cpp — the IMAP response parser on good and hostile input.
//
// Feeds byte strings (split into small chunks, so every read boundary is exercised) to
// the parser and checks both the structure it returns and that absurd sizes, bad
// nesting, truncation and stray bytes are refused with a clear error instead of being
// trusted. No server is needed: this is the parser alone.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "imap_parser.hpp"
#include "mutf7.hpp"

#include <string>

using namespace mf::imap;

namespace {

struct Fixture {
    explicit Fixture(std::string data, Limits lim = {}, std::size_t chunk = 7)
        : src(std::move(data), chunk), in(src, 64), parser(in, lim) {}
    StringSource src;
    Input in;
    Parser parser;
};

} // namespace

TEST_CASE("tagged completion with a response code") {
    Fixture f("A1 OK [APPENDUID 1700000000 42] Append completed.\r\n");
    auto r = f.parser.read();
    REQUIRE(r.ok());
    CHECK(r->type == Response::Type::tagged);
    CHECK(r->tag == "A1");
    CHECK(r->keyword == "OK");
    CHECK(r->code == "APPENDUID");
    CHECK(r->code_args == "1700000000 42");
    CHECK(r->text == "Append completed.");
}

TEST_CASE("untagged status, continuation, capability, exists") {
    Fixture f("* OK [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS] ready\r\n"
              "+ go ahead\r\n"
              "+\r\n"
              "* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR\r\n"
              "* 17 EXISTS\r\n"
              "* BYE shutting down\r\n");
    auto a = f.parser.read();
    REQUIRE(a.ok());
    CHECK(a->type == Response::Type::untagged);
    CHECK(a->code == "CAPABILITY");
    CHECK(a->code_args == "IMAP4rev1 LITERAL+ UIDPLUS");
    auto b = f.parser.read();
    REQUIRE(b.ok());
    CHECK(b->type == Response::Type::continuation);
    CHECK(b->text == "go ahead");
    auto b2 = f.parser.read();
    REQUIRE(b2.ok());
    CHECK(b2->type == Response::Type::continuation);
    CHECK(b2->text.empty());
    auto c = f.parser.read();
    REQUIRE(c.ok());
    CHECK(c->keyword == "CAPABILITY");
    REQUIRE(c->data.size() == 3);
    CHECK(c->data[1].str == "AUTH=PLAIN");
    auto d = f.parser.read();
    REQUIRE(d.ok());
    CHECK(d->keyword == "EXISTS");
    CHECK(d->number == 17u);
    auto e = f.parser.read();
    REQUIRE(e.ok());
    CHECK(e->keyword == "BYE");
    CHECK(e->text == "shutting down");
}

TEST_CASE("LIST with attributes, quoted delimiter, NIL delimiter and a literal name") {
    Fixture f("* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"\r\n"
              "* LIST (\\Noselect) NIL Flat\r\n"
              "* LIST () \".\" {11}\r\nwith \"q\" \\x\r\n"
              "* LIST () \"\\\\\" \"a\\\"b\"\r\n");
    auto a = f.parser.read();
    REQUIRE(a.ok());
    REQUIRE(a->data.size() == 3);
    CHECK(a->data[0].kind == Value::Kind::list);
    CHECK(a->data[0].list[1].str == "\\Sent");
    CHECK(a->data[1].str == "/");
    CHECK(a->data[2].str == "Sent Items");
    auto b = f.parser.read();
    REQUIRE(b.ok());
    CHECK(b->data[1].kind == Value::Kind::nil);
    CHECK(b->data[2].str == "Flat");
    auto c = f.parser.read();
    REQUIRE(c.ok());
    CHECK(c->data[2].kind == Value::Kind::string);
    CHECK(c->data[2].str == "with \"q\" \\x");
    auto d = f.parser.read();
    REQUIRE(d.ok());
    CHECK(d->data[1].str == "\\");
    CHECK(d->data[2].str == "a\"b");
}

TEST_CASE("FETCH with sections, a buffered literal and a streamed body") {
    std::string body = "Subject: x\r\n\r\nhello\r\n";
    std::string wire = "* 3 FETCH (UID 9 FLAGS (\\Seen $Label1) INTERNALDATE \" 1-Jan-2020 "
                       "10:00:00 +0100\" RFC822.SIZE 22 BODY[HEADER.FIELDS (MESSAGE-ID)] {4}\r\n"
                       "ab\r\n BODY[] {" +
                       std::to_string(body.size()) + "}\r\n" + body + ")\r\n";
    Fixture f(wire);
    std::string got;
    std::uint32_t uid_seen = 0;
    auto r = f.parser.read(
        [&](const LiteralContext& ctx, std::uint64_t size, LiteralReader& rd) -> mf::Result<bool> {
            if (ctx.siblings.empty() || !ctx.siblings.back().is_atom("BODY[]")) {
                return false;
            }
            CHECK(ctx.response.number == 3u);
            for (std::size_t i = 0; i + 1 < ctx.siblings.size(); ++i) {
                if (ctx.siblings[i].is_atom("UID")) {
                    uid_seen = static_cast<std::uint32_t>(ctx.siblings[i + 1].num);
                }
            }
            CHECK(size == body.size());
            for (;;) {
                auto ch = rd.next(5);
                REQUIRE(ch.ok());
                if (ch->empty()) {
                    break;
                }
                got.append(*ch);
            }
            return true;
        });
    REQUIRE(r.ok());
    CHECK(got == body);
    CHECK(uid_seen == 9);
    REQUIRE(r->keyword == "FETCH");
    const auto& items = r->data[0].list;
    REQUIRE(items.size() == 12);
    CHECK(items[3].list.size() == 2);
    CHECK(items[5].str == " 1-Jan-2020 10:00:00 +0100");
    CHECK(items[8].str == "BODY[HEADER.FIELDS (MESSAGE-ID)]");
    CHECK(items[9].str == "ab\r\n");
    CHECK(items[11].kind == Value::Kind::streamed);
    CHECK(items[11].num == body.size());
}

TEST_CASE("a hook that reads only part of a literal leaves the stream in sync") {
    Fixture f("* 1 FETCH (BODY[] {10}\r\n0123456789 UID 4)\r\nT1 OK done\r\n");
    auto r = f.parser.read(
        [](const LiteralContext&, std::uint64_t, LiteralReader& rd) -> mf::Result<bool> {
            auto ch = rd.next(3);
            REQUIRE(ch.ok());
            CHECK(*ch == "012");
            return true;
        });
    REQUIRE(r.ok());
    CHECK(r->data[0].list[3].num == 4);
    auto t = f.parser.read();
    REQUIRE(t.ok());
    CHECK(t->tag == "T1");
}

TEST_CASE("absurd literal sizes are refused before anything is allocated") {
    SUBCASE("bigger than the limit") {
        Fixture f("* 1 FETCH (BODY[] {99999999999999}\r\n");
        auto r = f.parser.read();
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().detail.find("limit") != std::string::npos);
    }
    SUBCASE("overflows 64 bits") {
        Fixture f("* 1 FETCH (BODY[] {184467440737095516160}\r\n");
        auto r = f.parser.read();
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().detail.find("literal size") != std::string::npos);
    }
    SUBCASE("a buffered literal above max_literal even when below the stream limit") {
        Limits lim;
        lim.max_literal = 16;
        Fixture f("* LIST () \"/\" {17}\r\n12345678901234567\r\n", lim);
        auto r = f.parser.read();
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().detail.find("larger than allowed") != std::string::npos);
    }
    SUBCASE("not a number") {
        Fixture f("* 1 FETCH (BODY[] {12a}\r\n");
        CHECK_FALSE(f.parser.read().ok());
    }
    SUBCASE("literal marker not at the end of the line") {
        Fixture f("* 1 FETCH (BODY[] {3} abc)\r\n");
        auto r = f.parser.read();
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().detail.find("end the line") != std::string::npos);
    }
}

TEST_CASE("disconnect in the middle of a literal") {
    Fixture f("* 1 FETCH (UID 1 BODY[] {100}\r\nonly a few bytes");
    std::string got;
    auto r = f.parser.read(
        [&](const LiteralContext&, std::uint64_t, LiteralReader& rd) -> mf::Result<bool> {
            for (;;) {
                auto ch = rd.next();
                if (!ch) {
                    return ch.error();
                }
                if (ch->empty()) {
                    return true;
                }
                got.append(*ch);
            }
        });
    REQUIRE_FALSE(r.ok());
    CHECK(got == "only a few bytes");
    CHECK(r.error().detail.find("84 bytes of it still missing") != std::string::npos);
}

TEST_CASE("nesting, balance and truncation") {
    SUBCASE("too deep") {
        Limits lim;
        lim.max_depth = 8;
        std::string deep = "* X " + std::string(9, '(') + std::string(9, ')') + "\r\n";
        Fixture f(deep, lim);
        auto r = f.parser.read();
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().detail.find("nested deeper") != std::string::npos);
    }
    SUBCASE("just deep enough") {
        Limits lim;
        lim.max_depth = 8;
        Fixture f("* X " + std::string(8, '(') + std::string(8, ')') + "\r\n", lim);
        CHECK(f.parser.read().ok());
    }
    SUBCASE("a million parentheses do not blow the stack") {
        Fixture f("* X " + std::string(1000000, '(') + "\r\n", Limits{}, 65536);
        CHECK_FALSE(f.parser.read().ok());
    }
    SUBCASE("unbalanced close") {
        Fixture f("* 1 FETCH (UID 1))\r\n");
        CHECK_FALSE(f.parser.read().ok());
    }
    SUBCASE("unclosed list") {
        Fixture f("* 1 FETCH (UID 1 FLAGS (\\Seen)\r\n");
        auto r = f.parser.read();
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().detail.find("inside a list") != std::string::npos);
    }
    SUBCASE("line cut before CRLF, then the connection closes") {
        Fixture f("* 1 FETCH (UID 1");
        auto r = f.parser.read();
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().detail.find("closed") != std::string::npos);
    }
    SUBCASE("unclosed quoted string") {
        Fixture f("* LIST () \"/\" \"abc\r\n");
        CHECK_FALSE(f.parser.read().ok());
    }
    SUBCASE("bad escape") {
        Fixture f("* LIST () \"/\" \"a\\nb\"\r\n");
        CHECK_FALSE(f.parser.read().ok());
    }
    SUBCASE("FETCH without a list") {
        Fixture f("* 3 FETCH UID 4\r\n");
        CHECK_FALSE(f.parser.read().ok());
    }
}

TEST_CASE("line length, NUL bytes and bad tags") {
    SUBCASE("line too long") {
        Limits lim;
        lim.max_line = 100;
        Fixture f("* OK " + std::string(200, 'x') + "\r\n", lim);
        auto r = f.parser.read();
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().detail.find("longer than 100") != std::string::npos);
    }
    SUBCASE("an endless line without LF stops at the limit") {
        Limits lim;
        lim.max_line = 1000;
        Fixture f(std::string(100000, 'x'), lim, 4096);
        auto r = f.parser.read();
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().detail.find("longer than") != std::string::npos);
    }
    SUBCASE("NUL inside a line") {
        Fixture f(std::string("* OK a\0b\r\n", 10));
        auto r = f.parser.read();
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().detail.find("NUL") != std::string::npos);
    }
    SUBCASE("tag with a bad character") {
        Fixture f("A(1 OK x\r\n");
        CHECK_FALSE(f.parser.read().ok());
    }
    SUBCASE("tagged response that is not OK/NO/BAD") {
        Fixture f("A1 FETCH x\r\n");
        CHECK_FALSE(f.parser.read().ok());
    }
    SUBCASE("message number too big") {
        Fixture f("* 99999999999 EXISTS\r\n");
        CHECK_FALSE(f.parser.read().ok());
    }
    SUBCASE("response code without ]") {
        Fixture f("A1 OK [APPENDUID 1 2 done\r\n");
        CHECK_FALSE(f.parser.read().ok());
    }
    SUBCASE("too many values") {
        Limits lim;
        lim.max_items = 50;
        std::string s = "* SEARCH";
        for (int i = 1; i <= 60; ++i) {
            s += " " + std::to_string(i);
        }
        Fixture f(s + "\r\n", lim);
        CHECK_FALSE(f.parser.read().ok());
    }
    SUBCASE("response budget across many literals") {
        Limits lim;
        lim.max_response = 1000;
        std::string s = "* X (";
        for (int i = 0; i < 20; ++i) {
            s += "{100}\r\n" + std::string(100, 'a') + " ";
        }
        s += ")\r\n";
        Fixture f(s, lim);
        CHECK_FALSE(f.parser.read().ok());
    }
}

TEST_CASE("bare LF line ends and a tolerated trailing space") {
    Fixture f("* SEARCH 1 2 3 \n* 2 FETCH (UID 5 )\r\n");
    auto a = f.parser.read();
    REQUIRE(a.ok());
    CHECK(a->data.size() == 3);
    auto b = f.parser.read();
    REQUIRE(b.ok());
    CHECK(b->data[0].list.size() == 2);
}

TEST_CASE("quote() and atoms for commands") {
    CHECK(quote("a\"b\\c") == std::optional<std::string>("\"a\\\"b\\\\c\""));
    CHECK_FALSE(quote("caf\xc3\xa9").has_value());
    CHECK_FALSE(quote("a\r\nb").has_value());
    CHECK(is_storable_flag("\\Seen"));
    CHECK(is_storable_flag("$Forwarded"));
    CHECK_FALSE(is_storable_flag("\\Recent"));
    CHECK_FALSE(is_storable_flag("\\*"));
    CHECK_FALSE(is_storable_flag("a b"));
    CHECK_FALSE(is_storable_flag("x\\y"));
}

TEST_CASE("modified UTF-7") {
    struct Case {
        const char* utf8;
        const char* wire;
    };
    const Case cases[] = {
        {"INBOX", "INBOX"},
        {"A&B", "A&-B"},
        {"Entw\xc3\xbcrfe", "Entw&APw-rfe"},
        {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "&ZeVnLIqe-"},
        {"~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
         "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
        {"\xf0\x9f\x98\x80 smile", "&2D3eAA- smile"},
    };
    for (const auto& c : cases) {
        auto enc = mutf7_encode(c.utf8);
        REQUIRE(enc.ok());
        CHECK(*enc == c.wire);
        auto dec = mutf7_decode(c.wire);
        REQUIRE(dec.ok());
        CHECK(*dec == c.utf8);
    }
    CHECK_FALSE(mutf7_decode("&ZeVnLIqe").ok()); // no closing '-'
    CHECK_FALSE(mutf7_decode("&AGE-").ok());     // 'a' encoded: not canonical
    CHECK_FALSE(mutf7_decode("&2D3-").ok());     // lone high surrogate
    CHECK_FALSE(mutf7_decode("&Ze!-").ok());     // bad base64
    CHECK_FALSE(mutf7_encode("\xff\xfe").ok());  // not UTF-8
    CHECK_FALSE(mutf7_encode("\xc0\xaf").ok());  // overlong
}
