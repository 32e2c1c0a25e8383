// copier_names_test.cpp — folder planning: delimiters, modified UTF-7, sanitizing,
// collisions, rename map, skip patterns, subscribed-only, special-use mapping; and the
// small parsers the copier relies on (INTERNALDATE, flags, UID sets).
//
// Pure functions over listings built in the test: no server. The behaviour against a
// real Dovecot (that it accepts what we plan) is in copier_copy_test.cpp.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copy_internal.hpp"
#include "mutf7.hpp"

#include <map>
#include <string>

using namespace mf::copy;
using namespace mf::copy::detail;

namespace {

Mailbox box(const std::string& utf8, char delim, bool noselect = false, bool sub = false,
            const std::string& use = {}) {
    Mailbox m;
    m.utf8 = utf8;
    m.wire = *mf::imap::mutf7_encode(utf8);
    m.noselect = noselect;
    m.subscribed = sub;
    m.special_use = use;
    std::size_t start = 0;
    for (;;) {
        std::size_t p = utf8.find(delim, start);
        m.parts.push_back(utf8.substr(start, p - start));
        if (p == std::string::npos) {
            break;
        }
        start = p + 1;
    }
    return m;
}

std::map<std::string, FolderPlan> by_name(const std::vector<FolderPlan>& plans) {
    std::map<std::string, FolderPlan> out;
    for (const auto& p : plans) {
        out[p.name] = p;
    }
    return out;
}

} // namespace

TEST_CASE("delimiter translation and modified UTF-7 on the target side") {
    Listing src;
    src.delim = '.';
    src.boxes = {box("INBOX", '.'), box("Work", '.', true), box("Work.Projects", '.'),
                 box("Entw\xc3\xbcrfe", '.'), box("A&B", '.')};
    Options opts;
    std::vector<std::string> notes;
    auto plans = by_name(plan_folders(src, nullptr, '/', opts, notes));
    CHECK(plans["INBOX"].dst_wire == "INBOX");
    CHECK(plans["Work/Projects"].dst_wire == "Work/Projects");
    CHECK(plans["Work/Projects"].copy);
    CHECK_FALSE(plans["Work"].copy);
    CHECK(plans["Work"].skip_reason == "not selectable");
    CHECK(plans["Entw\xc3\xbcrfe"].dst_wire == "Entw&APw-rfe");
    CHECK(plans["A&B"].dst_wire == "A&-B");
    CHECK(notes.empty()); // only delimiters changed: nothing renamed
}

TEST_CASE("names a Dovecot target refuses are sanitized, and never collide") {
    Listing src;
    src.delim = '/';
    const std::string long_name(200, 'x');
    src.boxes = {box("a.b", '/'),
                 box("~home", '/'),
                 box(".hidden", '/'),
                 box("_hidden", '/'),
                 box("sub/.dot", '/'),
                 box("trail.", '/'),
                 box(long_name + "/" + long_name, '/'),
                 box("ctl\x01x", '/'),
                 box("\xe6\x97\xa5\xe6\x9c\xac/~tilde", '/')};
    Options opts;
    std::vector<std::string> notes;
    auto plans = by_name(plan_folders(src, nullptr, '.', opts, notes));
    CHECK(plans["a.b"].dst_utf8 == "a_b"); // the target's delimiter inside a level
    CHECK(plans["~home"].dst_utf8 == "_home");
    // ".hidden" and "_hidden" would both be "_hidden": the second gets a suffix.
    CHECK(plans["_hidden"].dst_utf8 != plans[".hidden"].dst_utf8);
    CHECK(plans["sub/.dot"].dst_utf8 == "sub._dot");
    CHECK(plans["trail."].dst_utf8 == "trail_");
    CHECK(plans["ctl\x01x"].dst_utf8 == "ctl_x");
    // Only the top level may not start with '~'.
    CHECK(plans["\xe6\x97\xa5\xe6\x9c\xac/~tilde"].dst_utf8 == "\xe6\x97\xa5\xe6\x9c\xac.~tilde");
    const auto& lp = plans[long_name + "/" + long_name];
    CHECK(lp.copy);
    CHECK(lp.dst_wire.size() <= 250);
    std::set<std::string> wires;
    for (const auto& [n, p] : plans) {
        CHECK(wires.insert(p.dst_wire).second);
    }
    CHECK(!notes.empty());

    SUBCASE("--no-sanitize keeps names as they are") {
        Options raw;
        raw.sanitize_names = false;
        std::vector<std::string> n2;
        auto p2 = by_name(plan_folders(src, nullptr, '.', raw, n2));
        CHECK(p2["~home"].dst_utf8 == "~home");
        CHECK(p2["sub/.dot"].dst_utf8 == "sub..dot");
    }
}

TEST_CASE("rename map moves a subtree; skip patterns; subscribed-only") {
    Listing src;
    src.delim = '.';
    src.boxes = {box("INBOX", '.', false, true),      box("Old", '.', false, true),
                 box("Old.Child", '.', false, false), box("Old.Child.Deep", '.'),
                 box("Trash", '.', false, true),      box("Archive.2019", '.', false, true)};
    Options opts;
    opts.filters.rename = {{"Old", "New"}, {"Old/Child", "Elsewhere/Kid"}};
    opts.filters.skip = {"Trash", "Archive/*"};
    std::vector<std::string> notes;
    auto plans = by_name(plan_folders(src, nullptr, '/', opts, notes));
    CHECK(plans["Old"].dst_utf8 == "New");
    CHECK(plans["Old/Child"].dst_utf8 == "Elsewhere/Kid"); // the longest rule wins
    CHECK(plans["Old/Child/Deep"].dst_utf8 == "Elsewhere/Kid/Deep");
    CHECK_FALSE(plans["Trash"].copy);
    CHECK(plans["Trash"].skip_reason == "skipped by pattern Trash");
    CHECK_FALSE(plans["Archive/2019"].copy);
    CHECK(plans["INBOX"].copy);

    opts.filters.subscribed_only = true;
    auto sub = by_name(plan_folders(src, nullptr, '/', opts, notes));
    CHECK(sub["Old"].copy);
    CHECK_FALSE(sub["Old/Child"].copy);
    CHECK(sub["Old/Child"].skip_reason == "not subscribed");
}

TEST_CASE("special-use folders go to the target's folder with the same use") {
    Listing src;
    src.delim = '.';
    src.boxes = {box("INBOX", '.'), box("Sent Items", '.', false, false, "\\Sent"),
                 box("Deleted Items", '.', false, false, "\\Trash"),
                 box("Sent2", '.', false, false, "\\Sent")};
    Listing dst;
    dst.delim = '/';
    dst.boxes = {box("INBOX", '/'), box("Sent", '/', false, true, "\\Sent")};
    Options opts;
    std::vector<std::string> notes;
    auto plans = by_name(plan_folders(src, &dst, '/', opts, notes));
    CHECK(plans["Sent Items"].dst_wire == "Sent");
    CHECK(plans["Sent Items"].dst_exists);
    CHECK(plans["Sent Items"].dst_subscribed);
    CHECK(plans["Sent2"].dst_wire == "Sent2");                 // only one folder per use
    CHECK(plans["Deleted Items"].dst_wire == "Deleted Items"); // no \Trash on the target
    CHECK_FALSE(plans["Deleted Items"].dst_exists);

    opts.map_special_use = false;
    auto plain = by_name(plan_folders(src, &dst, '/', opts, notes));
    CHECK(plain["Sent Items"].dst_wire == "Sent Items");
}

TEST_CASE("INTERNALDATE parsing") {
    CHECK(parse_internaldate("01-Jan-1970 00:00:00 +0000") == std::optional<std::int64_t>(0));
    CHECK(parse_internaldate(" 1-Jan-1970 01:00:00 +0100") == std::optional<std::int64_t>(0));
    CHECK(parse_internaldate("1-Jan-1970 00:00:00 -0130") == std::optional<std::int64_t>(5400));
    CHECK(parse_internaldate("29-Feb-2024 12:34:56 +0000") ==
          std::optional<std::int64_t>(1709210096));
    CHECK_FALSE(parse_internaldate("").has_value());
    CHECK_FALSE(parse_internaldate("32-Jan-2020 00:00:00 +0000").has_value());
    CHECK_FALSE(parse_internaldate("01-Foo-2020 00:00:00 +0000").has_value());
    CHECK_FALSE(parse_internaldate("01-Jan-2020 24:00:00 +0000").has_value());
    CHECK_FALSE(parse_internaldate("01-Jan-2020 00:00:00 0000").has_value());
    CHECK_FALSE(parse_internaldate("01-Jan-2020 00:00:00 +0000 trailing").has_value());
}

TEST_CASE("flags are normalized; UID sets are compact") {
    mf::imap::Value l;
    l.kind = mf::imap::Value::Kind::list;
    for (const char* f : {"\\Seen", "\\Recent", "$Label1", "\\Flagged", "\\*", "\\Seen"}) {
        mf::imap::Value v;
        v.kind = mf::imap::Value::Kind::atom;
        v.str = f;
        l.list.push_back(v);
    }
    CHECK(normalize_flags(l) == "$Label1 \\Flagged \\Seen");
    CHECK(split_flags("$Label1 \\Flagged \\Seen").size() == 3);
    CHECK(split_flags("").empty());
    CHECK(uid_set({1, 2, 3, 5, 7, 8, 10}) == "1:3,5,7:8,10");
    CHECK(uid_set({42}) == "42");
    CHECK(uid_set({}).empty());
}
