// copier_imap_source_test.cpp — source::open_imap() against a real Dovecot.
//
// Checked: folders come out with UTF-8 levels, \Noselect parents and subscriptions;
// messages() gives UIDVALIDITY, UIDNEXT, the UIDs with their gaps, keep_uid, flags with
// keywords and without \Recent, INTERNALDATE and RFC822.SIZE; read() delivers the bytes of
// BODY[] exactly, a 5 MB message in several chunks; reading changes nothing on the server
// (\Seen, \Recent); a wrong password, a folder or message that vanished, and a server that
// stops and comes back give the errors the caller needs, and the source recovers.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_source_util.hpp"
#include "source_imap.hpp"

#include <algorithm>

namespace {

const std::string kUser = "carla@old.example";
const std::string kPw = "imap pw";

mft::DovecotOptions src_opts() {
    mft::DovecotOptions o;
    o.label = "imap-src";
    o.users = {{kUser, kPw}};
    o.pop3 = o.pop3s = o.submission = false;
    o.tls = o.imaps = false;
    o.extra_config = cu::source_config(); // '.' separator: levels are split at the server's
    return o;
}

std::unique_ptr<mf::copy::source::Source>
open(const mft::DovecotServer& srv, const std::string& pw = kPw, std::size_t chunk = 64u * 1024) {
    mf::copy::Options opts;
    opts.chunk = chunk;
    auto ep = cu::endpoint(srv.imap_port(), kUser, pw);
    ep.timeout = std::chrono::seconds(10);
    auto s = mf::copy::source::open_imap(ep, opts);
    REQUIRE_MESSAGE(s, (s ? "" : s.error().message()));
    return std::move(*s);
}

// Runs one command to completion; fails the test unless it ends OK.
mf::imap::Response ok(mf::imap::Client& c, const std::string& cmd,
                      const std::function<void(mf::imap::Response&)>& each = {}) {
    auto r = c.run(cmd, [&](mf::imap::Response& u) -> mf::Result<void> {
        if (each) {
            each(u);
        }
        return {};
    });
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message()));
    REQUIRE_MESSAGE(r->keyword == "OK", (cmd + ": " + r->summary()));
    return *r;
}

// APPENDs with flags and INTERNALDATE; returns the UID from APPENDUID.
std::uint32_t append(mf::imap::Client& c, const std::string& box, const std::string& flags,
                     const std::string& date, const std::string& bytes) {
    std::string tag = c.begin_command("APPEND " + box + " (" + flags + ")" +
                                      (date.empty() ? "" : " \"" + date + "\"") + " {" +
                                      std::to_string(bytes.size()) + "+}\r\n");
    c.queue(bytes);
    c.queue("\r\n");
    for (;;) {
        auto r = c.read();
        REQUIRE_MESSAGE(r, (r ? "" : r.error().message()));
        if (r->type == mf::imap::Response::Type::tagged && r->tag == tag) {
            REQUIRE_MESSAGE(r->keyword == "OK", r->summary());
            REQUIRE(r->code == "APPENDUID");
            auto sp = r->code_args.find(' ');
            return static_cast<std::uint32_t>(std::stoul(r->code_args.substr(sp + 1)));
        }
    }
}

void expunge(mf::imap::Client& c, const std::string& box, const std::string& uids) {
    ok(c, "SELECT " + box);
    ok(c, "UID STORE " + uids + " +FLAGS.SILENT (\\Deleted)");
    ok(c, "UID EXPUNGE " + uids);
    ok(c, "UNSELECT");
}

struct Status {
    std::uint32_t messages = 0, recent = 0, unseen = 0, uidnext = 0, uidvalidity = 0;
};

Status status(mf::imap::Client& c, const std::string& box) {
    Status s;
    ok(c, "STATUS " + box + " (MESSAGES RECENT UNSEEN UIDNEXT UIDVALIDITY)",
       [&](mf::imap::Response& u) {
           if (u.keyword != "STATUS" || u.data.size() < 2) {
               return;
           }
           const auto& l = u.data[1].list;
           for (std::size_t i = 0; i + 1 < l.size(); i += 2) {
               auto n = static_cast<std::uint32_t>(l[i + 1].num);
               if (l[i].is_atom("MESSAGES")) {
                   s.messages = n;
               } else if (l[i].is_atom("RECENT")) {
                   s.recent = n;
               } else if (l[i].is_atom("UNSEEN")) {
                   s.unseen = n;
               } else if (l[i].is_atom("UIDNEXT")) {
                   s.uidnext = n;
               } else if (l[i].is_atom("UIDVALIDITY")) {
                   s.uidvalidity = n;
               }
           }
       });
    return s;
}

// BODY[] and RFC822.SIZE per UID as a plain client sees them.
std::map<std::uint32_t, std::pair<std::string, std::uint64_t>> bodies(mf::imap::Client& c,
                                                                      const std::string& box) {
    std::map<std::uint32_t, std::pair<std::string, std::uint64_t>> out;
    ok(c, "EXAMINE " + box);
    ok(c, "UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[])", [&](mf::imap::Response& u) {
        if (u.keyword != "FETCH") {
            return;
        }
        auto meta = mf::copy::detail::parse_fetch_items(u.data[0].list);
        const auto& items = u.data[0].list;
        for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
            if (items[i].is_atom("BODY[]")) {
                out[meta.uid] = {items[i + 1].str, meta.size};
            }
        }
    });
    ok(c, "UNSELECT");
    return out;
}

const mf::copy::source::Folder* find(const std::vector<mf::copy::source::Folder>& fs,
                                     const std::string& name) {
    auto it = std::find_if(fs.begin(), fs.end(), [&](const auto& f) { return f.name() == name; });
    return it == fs.end() ? nullptr : &*it;
}

mf::copy::source::Folder folder_named(mf::copy::source::Source& s, const std::string& name) {
    auto fs = s.folders();
    REQUIRE_MESSAGE(fs, (fs ? "" : fs.error().message()));
    const auto* f = find(*fs, name);
    REQUIRE_MESSAGE(f != nullptr, name);
    return *f;
}

} // namespace

TEST_CASE("folders: UTF-8 levels, \\Noselect parents, subscriptions") {
    mft::DovecotServer srv(src_opts());
    auto c = cu::login(srv.imap_port(), kUser, kPw);
    ok(*c, "CREATE \"Entw&APw-rfe\"");
    ok(*c, "CREATE \"A.B\"");
    ok(*c, "CREATE \"Plain\"");
    ok(*c, "SUBSCRIBE INBOX");
    ok(*c, "SUBSCRIBE \"Entw&APw-rfe\"");
    ok(*c, "SUBSCRIBE \"A.B\"");
    // Subscribed, then deleted: Dovecot keeps the subscription, LIST no longer shows it.
    ok(*c, "CREATE Gone");
    ok(*c, "SUBSCRIBE Gone");
    ok(*c, "DELETE Gone");
    bool lsub_gone = false;
    ok(*c, "LSUB \"\" Gone", [&](mf::imap::Response& u) { lsub_gone |= u.keyword == "LSUB"; });
    CHECK(lsub_gone);

    auto s = open(srv);
    CHECK(s->label().find(kUser) != std::string::npos);
    auto fs = s->folders();
    REQUIRE_MESSAGE(fs, (fs ? "" : fs.error().message()));
    std::vector<std::string> names;
    for (const auto& f : *fs) {
        names.push_back(f.name());
    }
    CAPTURE(names);
    CHECK(fs->size() == 6);

    const auto* inbox = find(*fs, "INBOX");
    REQUIRE(inbox != nullptr);
    CHECK(inbox->parts == std::vector<std::string>{"INBOX"});
    CHECK(inbox->locator == "INBOX");
    CHECK(inbox->subscribed);
    CHECK_FALSE(inbox->noselect);

    const auto* drafts = find(*fs, "Entwürfe");
    REQUIRE(drafts != nullptr);
    CHECK(drafts->parts == std::vector<std::string>{"Entwürfe"});
    CHECK(drafts->locator == "Entw&APw-rfe");
    CHECK(drafts->subscribed);
    CHECK_FALSE(drafts->noselect);

    const auto* ab = find(*fs, "A/B");
    REQUIRE(ab != nullptr);
    CHECK(ab->parts == std::vector<std::string>{"A", "B"});
    CHECK(ab->locator == "A.B");
    CHECK(ab->subscribed);
    CHECK_FALSE(ab->noselect);

    const auto* a = find(*fs, "A");
    REQUIRE(a != nullptr);
    CHECK(a->noselect);
    CHECK_FALSE(a->subscribed);

    const auto* plain = find(*fs, "Plain");
    REQUIRE(plain != nullptr);
    CHECK_FALSE(plain->subscribed);
    // The subscription outlives the folder: a \Noselect folder for the target to subscribe.
    const auto* gone = find(*fs, "Gone");
    REQUIRE(gone != nullptr);
    CHECK(gone->noselect);
    CHECK(gone->subscribed);

    auto parent = s->messages(*a);
    REQUIRE_FALSE(parent);
    CHECK(parent.error().scope == mf::Scope::folder);
    auto empty = s->messages(*ab);
    REQUIRE_MESSAGE(empty, (empty ? "" : empty.error().message()));
    CHECK(empty->messages.empty());
    CHECK(empty->uidvalidity != 0);
    CHECK(empty->uidnext == 1);
}

TEST_CASE("messages: UIDs with gaps, UIDNEXT, flags, keywords, INTERNALDATE, size") {
    mft::DovecotServer srv(src_opts());
    auto c = cu::login(srv.imap_port(), kUser, kPw);
    ok(*c, "CREATE Box");
    const std::vector<std::string> flags = {
        "\\Seen", "", "\\Flagged $Label1 custom", "\\Answered", "\\Draft \\Seen", "\\Deleted"};
    for (std::size_t i = 0; i < flags.size(); ++i) {
        CHECK(append(*c, "Box", flags[i], "01-Feb-2020 10:20:3" + std::to_string(i) + " +0100",
                     cu::mail("m" + std::to_string(i), 300 + i * 100)) == i + 1);
    }
    expunge(*c, "Box", "2,4,6"); // 6 is the last one: UIDNEXT stays above what is left
    const Status st = status(*c, "Box");
    const auto want = bodies(*c, "Box");

    auto s = open(srv);
    auto box = folder_named(*s, "Box");
    auto r = s->messages(box);
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message()));
    CHECK(r->problems.empty());
    CHECK(r->uidvalidity == st.uidvalidity);
    CHECK(r->uidnext == 7);
    CHECK(r->uidnext == st.uidnext);
    REQUIRE(r->messages.size() == 3);
    const std::vector<std::uint32_t> uids = {1, 3, 5};
    const std::vector<std::string> want_flags = {"\\Seen", "$Label1 \\Flagged custom",
                                                 "\\Draft \\Seen"};
    for (std::size_t i = 0; i < 3; ++i) {
        const auto& m = r->messages[i];
        CAPTURE(m.uid);
        CHECK(m.uid == uids[i]);
        CHECK(m.keep_uid == m.uid);
        CHECK(m.key.empty());
        CHECK(m.flags == want_flags[i]);
        CHECK(m.flags.find("Recent") == std::string::npos);
        // 01-Feb-2020 10:20:3x +0100 = 2020-02-01 09:20:3x UTC
        REQUIRE(m.when.has_value());
        CHECK(*m.when == 1580548830 + static_cast<std::int64_t>(uids[i] - 1));
        REQUIRE(want.count(m.uid) == 1);
        CHECK(m.size == want.at(m.uid).second);
        CHECK(m.size == want.at(m.uid).first.size());
    }
    // New mail shows up in a second call on the same session.
    append(*c, "Box", "", "", cu::mail("late"));
    auto again = s->messages(box);
    REQUIRE_MESSAGE(again, (again ? "" : again.error().message()));
    CHECK(again->messages.size() == 4);
    CHECK(again->uidnext == 8);
    CHECK(again->messages.back().uid == 7);
    CHECK(again->messages.back().flags.empty()); // \Recent to this session, never copied
}

TEST_CASE("read: exact bytes of BODY[], big messages in chunks") {
    mft::DovecotServer srv(src_opts());
    auto c = cu::login(srv.imap_port(), kUser, kPw);
    std::string eight_bit = "Subject: 8bit\r\nContent-Type: text/plain; charset=latin1\r\n\r\n";
    for (int b = 1; b < 256; ++b) {
        if (b != '\r' && b != '\n') {
            eight_bit.push_back(static_cast<char>(b));
        }
    }
    eight_bit += "\r\nGr\xfc\xdf"
                 "e\r\n";
    const std::vector<std::string> msgs = {cu::mail("small"), "Subject: empty body\r\n\r\n",
                                           eight_bit, cu::mail("big", 5u << 20, 'b')};
    for (const auto& m : msgs) {
        append(*c, "INBOX", "", "", m);
    }
    const auto want = bodies(*c, "INBOX");
    REQUIRE(want.size() == 4);

    auto s = open(srv);
    auto inbox = folder_named(*s, "INBOX");
    auto r = s->messages(inbox);
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message()));
    REQUIRE(r->messages.size() == 4);
    for (std::size_t i = 0; i < 4; ++i) {
        const auto& m = r->messages[i];
        CAPTURE(m.uid);
        std::string got;
        std::size_t chunks = 0;
        std::size_t largest = 0;
        auto rd = s->read(inbox, m, [&](std::string_view ch) -> mf::Result<void> {
            got.append(ch);
            ++chunks;
            largest = std::max(largest, ch.size());
            return {};
        });
        REQUIRE_MESSAGE(rd, (rd ? "" : rd.error().message()));
        CHECK(got == want.at(m.uid).first);
        CHECK(got == msgs[i]);
        CHECK(got.size() == m.size);
        CHECK(largest <= 64u * 1024);
        if (i == 3) {
            CHECK(chunks > 1);
            CHECK(chunks >= (5u << 20) / (64u * 1024));
        }
    }

    // A sink that refuses stops the read with its own error; the next read works.
    auto refused = s->read(inbox, r->messages[3], [](std::string_view) -> mf::Result<void> {
        return mf::make_error("write to the target", "disk full", mf::Scope::account);
    });
    REQUIRE_FALSE(refused);
    CHECK(refused.error().detail == "disk full");
    CHECK(cu::read_all(*s, inbox, r->messages[0]) == msgs[0]);

    // A size that is not RFC822.SIZE fails the message, before any byte reaches the sink.
    auto wrong = r->messages[0];
    wrong.size += 1;
    bool called = false;
    auto bad = s->read(inbox, wrong, [&](std::string_view) -> mf::Result<void> {
        called = true;
        return {};
    });
    REQUIRE_FALSE(bad);
    CHECK(bad.error().scope == mf::Scope::message);
    CHECK(bad.error().message().find("UID 1") != std::string::npos);
    CHECK_FALSE(called);
    CHECK(cu::read_all(*s, inbox, r->messages[1]) == msgs[1]);
}

TEST_CASE("prefetch: answers read in order, or skipped when read() goes elsewhere") {
    mft::DovecotServer srv(src_opts());
    auto c = cu::login(srv.imap_port(), kUser, kPw);
    std::vector<std::string> msgs;
    for (int i = 0; i < 40; ++i) {
        // Every fifth one large enough to span many reads of the socket.
        msgs.push_back(cu::mail("pre-" + std::to_string(i), i % 5 == 0 ? 300000 : 2000,
                                static_cast<char>('a' + i % 26)));
        append(*c, "INBOX", "", "", msgs.back());
    }
    ok(*c, "CREATE Other");
    append(*c, "Other", "", "", cu::mail("other"));
    auto s = open(srv);
    auto inbox = folder_named(*s, "INBOX");
    auto other = folder_named(*s, "Other");
    auto r = s->messages(inbox);
    REQUIRE(r);
    REQUIRE(r->messages.size() == 40);
    std::vector<const mf::copy::source::Message*> all;
    for (const auto& m : r->messages) {
        all.push_back(&m);
    }
    // All 40 hinted (more than the window): read in that order, each exact.
    s->prefetch(inbox, all);
    for (std::size_t i = 0; i < 40; ++i) {
        CHECK(cu::read_all(*s, inbox, r->messages[i]) == msgs[i]);
    }
    // Hinted, then read out of order, then another folder: the unread answers are skipped.
    s->prefetch(inbox, {all[3], all[4], all[5], all[6]});
    CHECK(cu::read_all(*s, inbox, r->messages[5]) == msgs[5]);
    CHECK(cu::read_all(*s, inbox, r->messages[0]) == msgs[0]);
    s->prefetch(inbox, {all[10], all[11]});
    auto o = s->messages(other);
    REQUIRE_MESSAGE(o, (o ? "" : o.error().message()));
    REQUIRE(o->messages.size() == 1);
    CHECK(cu::read_all(*s, other, o->messages[0]) == cu::mail("other"));
    // A hint for a folder that is not the one examined is ignored.
    s->prefetch(inbox, {all[1]});
    CHECK(cu::read_all(*s, other, o->messages[0]) == cu::mail("other"));

    // Expunged after the list was taken: its turn in the batch brings the next message's
    // body, so it fails alone, and the next one is still read exactly.
    r = s->messages(inbox);
    REQUIRE(r);
    ok(*c, "SELECT INBOX");
    ok(*c, "UID STORE " + std::to_string(r->messages[21].uid) + " +FLAGS.SILENT (\\Deleted)");
    ok(*c, "EXPUNGE");
    s->prefetch(inbox, {&r->messages[20], &r->messages[21], &r->messages[22], &r->messages[23]});
    CHECK(cu::read_all(*s, inbox, r->messages[20]) == msgs[20]);
    auto gone =
        s->read(inbox, r->messages[21], [](std::string_view) -> mf::Result<void> { return {}; });
    REQUIRE_FALSE(gone);
    CHECK(gone.error().scope == mf::Scope::message);
    CHECK(cu::read_all(*s, inbox, r->messages[22]) == msgs[22]);
    CHECK(cu::read_all(*s, inbox, r->messages[23]) == msgs[23]);
}

TEST_CASE("reading changes nothing: \\Seen and \\Recent stay") {
    mft::DovecotServer srv(src_opts());
    for (int i = 0; i < 3; ++i) {
        srv.save_message(kUser, "INBOX", cu::mail("fresh" + std::to_string(i)));
    }
    auto c = cu::login(srv.imap_port(), kUser, kPw);
    const Status before = status(*c, "INBOX");
    REQUIRE(before.recent == 3);
    REQUIRE(before.unseen == 3);

    {
        auto s = open(srv);
        auto account = cu::through_source(*s);
        CHECK(account.folders["INBOX"].size() == 3);
        for (const auto& m : account.folders["INBOX"]) {
            CHECK(m.flags.empty());
        }
    }
    const Status after = status(*c, "INBOX");
    CHECK(after.recent == 3);
    CHECK(after.unseen == 3);
    CHECK(after.messages == 3);
    CHECK(after.uidnext == before.uidnext);

    std::size_t recent = 0;
    ok(*c, "EXAMINE INBOX");
    ok(*c, "FETCH 1:* (FLAGS)", [&](mf::imap::Response& u) {
        if (u.keyword == "FETCH") {
            for (const auto& f : u.data[0].list[1].list) {
                CHECK_FALSE(f.is_atom("\\SEEN"));
                recent += f.is_atom("\\RECENT") ? 1 : 0;
            }
        }
    });
    CHECK(recent == 3);
}

TEST_CASE("bad input: wrong password, vanished folder and message, server restart") {
    mft::DovecotServer srv(src_opts());
    auto c = cu::login(srv.imap_port(), kUser, kPw);
    ok(*c, "CREATE Doomed");
    ok(*c, "CREATE Keep");
    append(*c, "Doomed", "", "", cu::mail("doomed"));
    append(*c, "Keep", "", "", cu::mail("k1"));
    append(*c, "Keep", "", "", cu::mail("k2"));

    SUBCASE("wrong password") {
        mf::copy::Options opts;
        auto s = mf::copy::source::open_imap(cu::endpoint(srv.imap_port(), kUser, "wrong"), opts);
        REQUIRE_FALSE(s);
        CHECK(s.error().scope == mf::Scope::account);
        CHECK(s.error().message().find("log in as") != std::string::npos);
    }

    SUBCASE("folder deleted after folders(), message expunged before read()") {
        auto s = open(srv);
        auto fs = s->folders();
        REQUIRE(fs);
        const auto* doomed = find(*fs, "Doomed");
        const auto* keep = find(*fs, "Keep");
        REQUIRE((doomed != nullptr && keep != nullptr));
        ok(*c, "DELETE Doomed");
        auto gone = s->messages(*doomed);
        REQUIRE_FALSE(gone);
        CHECK(gone.error().scope == mf::Scope::folder);
        CHECK(gone.error().message().find("Doomed") != std::string::npos);

        auto list = s->messages(*keep);
        REQUIRE_MESSAGE(list, (list ? "" : list.error().message()));
        REQUIRE(list->messages.size() == 2);
        expunge(*c, "Keep", "1");
        bool called = false;
        auto vanished =
            s->read(*keep, list->messages[0], [&](std::string_view) -> mf::Result<void> {
                called = true;
                return {};
            });
        REQUIRE_FALSE(vanished);
        CHECK(vanished.error().scope == mf::Scope::message);
        CHECK(vanished.error().message().find("UID 1") != std::string::npos);
        CHECK_FALSE(called);
        CHECK(cu::read_all(*s, *keep, list->messages[1]) == cu::mail("k2"));
    }

    SUBCASE("server stops mid-way and comes back") {
        auto s = open(srv);
        auto keep = folder_named(*s, "Keep");
        auto list = s->messages(keep);
        REQUIRE(list);
        REQUIRE(list->messages.size() == 2);
        CHECK(cu::read_all(*s, keep, list->messages[0]) == cu::mail("k1"));

        srv.stop();
        auto down = s->read(keep, list->messages[1],
                            [](std::string_view) -> mf::Result<void> { return {}; });
        REQUIRE_FALSE(down);
        CHECK(down.error().temporary());
        auto down2 = s->folders();
        REQUIRE_FALSE(down2);
        CHECK(down2.error().temporary());

        srv.start();
        CHECK(cu::read_all(*s, keep, list->messages[1]) == cu::mail("k2"));
        auto again = s->messages(keep);
        REQUIRE_MESSAGE(again, (again ? "" : again.error().message()));
        CHECK(again->messages.size() == 2);
    }

    SUBCASE("server restarts between calls: the kept session is replaced at once") {
        auto s = open(srv);
        auto keep = folder_named(*s, "Keep");
        auto list = s->messages(keep);
        REQUIRE(list);
        srv.stop();
        srv.start();
        CHECK(cu::read_all(*s, keep, list->messages[0]) == cu::mail("k1"));
        auto fs = s->folders();
        REQUIRE_MESSAGE(fs, (fs ? "" : fs.error().message()));
    }
}
