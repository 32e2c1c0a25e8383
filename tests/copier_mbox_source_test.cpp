// copier_mbox_source_test.cpp — the mbox Source against files real tools wrote, with the
// view of a real Dovecot serving the same files as the oracle.
//
// Dovecot (mail_location = mbox:) saves, flags, tags and subscribes (doveadm), so the
// files carry its X-IMAPbase, X-UID, Status, X-Status, X-Keywords and Content-Length and
// unescaped "From " body lines; formail (procmail) writes mboxo files with ">From " quoting
// and its own From_ lines. The Source must show what Dovecot shows over IMAP: folders,
// \Noselect parents, subscriptions, UIDVALIDITY and UIDs, bytes, flags, keywords, dates.
// Bad input, each also served by Dovecot where it has a view: a truncated last message,
// a From_ line inside a body (quoted and not), a file that is not an mbox, an empty file,
// a message appended behind Dovecot's back (stable keys instead of UIDs).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_source_util.hpp"
#include "copier_util.hpp"
#include "source_mbox.hpp"

#include <filesystem>

namespace {

namespace src = mf::copy::source;
const std::string kPw = "pw-mbox";

mft::DovecotOptions opts(std::vector<std::string> users) {
    mft::DovecotOptions o;
    o.label = "mboxsrc";
    for (auto& u : users) {
        o.users.push_back({u, kPw});
    }
    o.pop3 = o.pop3s = o.submission = false;
    o.tls = o.imaps = false;
    o.mail_location = "mbox:~/mail:INBOX=~/mail/inbox";
    o.extra_config = "mail_fsync = never\nnamespace inbox {\n  inbox = yes\n  separator = /\n}\n";
    return o;
}

// The user's mbox directory (Dovecot's ~/mail).
std::string mbox_dir(const mft::DovecotServer& srv, const std::string& user) {
    return std::filesystem::path(srv.mail_dir(user)).parent_path().string() + "/mail";
}

// Puts `bytes` as the user's INBOX file, as an MTA or an rsync would.
void put_inbox(const mft::DovecotServer& srv, const std::string& user, const std::string& bytes) {
    cu::mkdirs_vmail(mbox_dir(srv, user));
    std::string f = mbox_dir(srv, user) + "/inbox";
    mft::write_file(f, bytes, 0600);
    cu::chown_vmail(f);
}

// Same messages in the same order (bytes, flags, dates; UIDs too when `uids`).
void same(const std::vector<cu::Msg>& got, const std::vector<cu::Msg>& want, bool uids) {
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        INFO("message " << i + 1 << " (Dovecot UID " << want[i].uid << ")");
        if (uids) {
            CHECK(got[i].uid == want[i].uid);
        }
        CHECK(got[i].body == want[i].body);
        CHECK(got[i].flags == want[i].flags);
        CHECK(got[i].when == want[i].when);
    }
}

// The INBOX file alone (read before Dovecot sees it) against what Dovecot shows for it.
std::vector<cu::Msg> inbox_as(src::MboxQuoting q, const std::string& file) {
    auto s = src::open_mbox(file, q);
    auto a = cu::through_source(*s);
    return a.folders["INBOX"];
}

} // namespace

TEST_CASE("an mbox tree Dovecot wrote reads exactly as Dovecot shows it over IMAP") {
    const std::string user = "anna@old.example";
    mft::DovecotServer srv(opts({user}));
    for (int i = 0; i < 5; ++i) {
        srv.save_message(user, "INBOX", cu::mail("inbox-" + std::to_string(i), 200 + i * 700));
    }
    // Dovecot does not escape these; only its Content-Length keeps them in the body.
    srv.save_message(user, "INBOX",
                     "Subject: from lines\n\nFrom here on\n>From quoted\n"
                     "From someone@example.org Mon Jan  1 10:00:00 2024\nend\n");
    srv.save_message(user, "Work/Projects", cu::mail("proj"));
    srv.save_message(user, "Entwürfe", cu::mail("draft"));
    srv.save_message(user, "Sent", "Subject: bare LF\n\nline one\nline two\n\n\n");
    auto doveadm = [&](const std::vector<std::string>& args) {
        std::string out;
        REQUIRE_MESSAGE(srv.doveadm(args, &out) == 0, out);
    };
    doveadm({"flags", "add", "-u", user, "\\Seen \\Answered", "mailbox", "INBOX", "uid", "1:3"});
    doveadm({"flags", "add", "-u", user, "\\Flagged $Forwarded project-x", "mailbox", "INBOX",
             "uid", "2"});
    doveadm({"flags", "add", "-u", user, "$Label1 \\Draft", "mailbox", "INBOX", "uid", "5"});
    doveadm({"flags", "add", "-u", user, "\\Deleted", "mailbox", "Sent", "uid", "1"});
    doveadm({"mailbox", "subscribe", "-u", user, "Work/Projects", "Entwürfe", "INBOX"});

    auto s = src::open_mbox(mbox_dir(srv, user), src::MboxQuoting::none);
    std::map<std::string, std::uint32_t> validity;
    auto mine = cu::through_source(*s, &validity);
    auto imap = cu::snapshot(srv.imap_port(), user, kPw);

    CHECK(mine.subscribed == imap.subscribed);
    CHECK(mine.noselect.count("Work") == 1);
    REQUIRE(mine.folders.size() == imap.folders.size());
    for (const auto& [name, msgs] : imap.folders) {
        INFO(name);
        REQUIRE(mine.folders.count(name) == 1);
        same(mine.folders[name], msgs, true);
    }
    CHECK(cu::total(imap) == 9);
    CHECK(imap.folders["INBOX"][1].flags == "$Forwarded \\Answered \\Flagged \\Seen project-x");
    CHECK(imap.folders["INBOX"][5].body.find("\r\nFrom someone@example.org Mon Jan  1") !=
          std::string::npos);
    for (const char* box : {"INBOX", "Work/Projects"}) {
        std::string st;
        REQUIRE(srv.doveadm({"-f", "flow", "mailbox", "status", "-u", user, "uidvalidity", box},
                            &st) == 0);
        CHECK(st.find("uidvalidity=" + std::to_string(validity[box])) != std::string::npos);
    }
    // After Dovecot served it, the same again (it may have rewritten its headers).
    auto again = cu::through_source(*s);
    for (const auto& [name, msgs] : imap.folders) {
        same(again.folders[name], msgs, true);
    }
}

TEST_CASE("formail's mboxo files, quoting modes, and mail appended behind Dovecot's back") {
    const std::string user = "bob@old.example";
    mft::DovecotServer srv(opts({user}));
    mft::TempDir tmp("mboxsrc-formail");
    std::string mbox;
    for (const std::string body : {"From here on\n>From already quoted\nbody\n", "plain\n",
                                   "Line\n\nFrom the start of a paragraph\n"}) {
        auto r = mft::run({"/usr/bin/formail"}, "From: Tester <t@example.org>\nSubject: formail\n"
                                                "Date: Mon, 1 Jan 2024 10:00:00 +0000\n\n" +
                                                    body);
        REQUIRE(r.exit_code == 0);
        mbox += r.out;
    }
    REQUIRE(mbox.find("\n>From here on\n") != std::string::npos); // formail quoted it
    std::string file = tmp.path() + "/formail.mbox";
    mft::write_file(file, mbox, 0600);
    put_inbox(srv, user, mbox);

    auto plain = inbox_as(src::MboxQuoting::none, file);
    auto imap = cu::snapshot(srv.imap_port(), user, kPw);
    same(plain, imap.folders["INBOX"], false);
    REQUIRE(plain.size() == 3);
    CHECK(plain[0].body.find("\r\n>From here on\r\n>From already quoted\r\n") != std::string::npos);

    auto o = inbox_as(src::MboxQuoting::mboxo, file);
    REQUIRE(o.size() == 3);
    CHECK(o[0].body.find("\r\nFrom here on\r\nFrom already quoted\r\n") != std::string::npos);
    CHECK(o[2].body.find("\r\nFrom the start") != std::string::npos);
    CHECK(o[0].body.size() + 2 == plain[0].body.size());

    mft::write_file(file,
                    "From a@x Mon Jan  1 10:00:00 2024\nSubject: rd\n\n>From one\n>>From two\n"
                    ">x From three\n\n",
                    0600);
    auto rd = inbox_as(src::MboxQuoting::mboxrd, file);
    REQUIRE(rd.size() == 1);
    CHECK(rd[0].body == "Subject: rd\r\n\r\nFrom one\r\n>From two\r\n>x From three\r\n");

    // Keys, not UIDs, for mail without X-UID; identical messages stay distinct and keep
    // their keys when an earlier message goes away.
    std::string dup = "From a@x Mon Jan  1 10:00:00 2024\nSubject: same\n\nx\n\n";
    std::string other = "From b@x Tue Jan  2 10:00:00 2024\nSubject: other\n\ny\n\n";
    mft::write_file(file, other + dup + dup, 0600);
    auto s = src::open_mbox(file, src::MboxQuoting::none);
    auto f = s->folders();
    REQUIRE(f);
    auto c = s->messages(f->front());
    REQUIRE(c);
    REQUIRE(c->messages.size() == 3);
    std::set<std::string> keys;
    for (const auto& m : c->messages) {
        CHECK(!m.key.empty());
        keys.insert(m.key);
    }
    CHECK(keys.size() == 3);
    mft::write_file(file, dup + dup, 0600);
    auto c2 = s->messages(f->front());
    REQUIRE(c2);
    REQUIRE(c2->messages.size() == 2);
    CHECK(c2->messages[0].key == c->messages[1].key);
    CHECK(c2->messages[1].key == c->messages[2].key);
    mft::write_file(file, dup.substr(0, dup.size() - 3), 0600); // its body cut short
    auto c3 = s->messages(f->front());
    REQUIRE(c3);
    REQUIRE(c3->messages.size() == 1);
    CHECK(c3->messages[0].key != c2->messages[0].key);
}

TEST_CASE("bad input: truncated, From_ lines in bodies, not an mbox, empty") {
    const std::vector<std::string> users = {"t1@old.example", "t2@old.example", "t3@old.example",
                                            "t4@old.example"};
    mft::DovecotServer srv(opts(users));
    mft::TempDir tmp("mboxsrc-bad");
    auto like_dovecot = [&](const std::string& user, const std::string& bytes, std::size_t count) {
        std::string file = tmp.path() + "/" + user;
        mft::write_file(file, bytes, 0600);
        auto mine = inbox_as(src::MboxQuoting::none, file);
        put_inbox(srv, user, bytes);
        auto imap = cu::snapshot(srv.imap_port(), user, kPw);
        same(mine, imap.folders["INBOX"], false);
        CHECK(mine.size() == count);
        return mine;
    };

    // A Dovecot-written message cut in its body: Content-Length no longer fits, the rest
    // of the file is the message.
    std::string full = "From a@x Mon Jan  1 10:00:00 2024\nSubject: one\nX-UID: 1\nStatus: RO\n"
                       "Content-Length: 4\n\none\n\n"
                       "From a@x Mon Jan  1 11:00:00 2024\nSubject: two\nStatus: R\n"
                       "Content-Length: 2000\n\nthe first part of a long body\n";
    auto cut = like_dovecot(users[0], full, 2);
    CHECK(cut[1].body == "Subject: two\r\n\r\nthe first part of a long body");
    CHECK(cut[0].flags == "\\Seen");

    // A From_ line in a body: a valid date splits (as in Dovecot), a quoted one does not,
    // an invalid date does not; a message can end inside its headers.
    auto split = like_dovecot(users[1],
                              "From a@x Mon Jan  1 10:00:00 2024 +0200\nSubject: a\n\nbody\n"
                              ">From b@x Mon Jan  1 10:00:00 2024\nFrom nobody in particular\n"
                              "From b@x Tue Jan  2 10:00:00 2024\nSubject: b\r\n\r\nb\r\n"
                              "From c@x Wed Jan  3 10:00:00 2024\nSubject: headers only",
                              3);
    CHECK(split[0].when == 1704096000); // 2024-01-01 08:00 UTC
    CHECK(split[2].body == "Subject: headers only\r\n");

    like_dovecot(users[2], "", 0);

    // Lines longer than the reader's 64 KiB window: a CRLF that would straddle it, a bare CR,
    // a hidden header of 70 KB, a quoted From_ line after them; a few MB in all.
    std::string big =
        "From a@x Mon Jan  1 10:00:00 2024\nSubject: big\nX-Keywords: " + std::string(70000, 'k') +
        "\n\n" + std::string(65535, 'a') + "\r\n" + std::string(150000, 'b') + "\r" +
        std::string(10, 'c') + "\n>From x\n";
    for (int i = 0; i < 40; ++i) {
        big += std::string(100000, static_cast<char>('d' + i % 20)) + "\n";
    }
    big +=
        "\nFrom a@x Mon Jan  1 11:00:00 2024\nSubject: after\n\n" + std::string(70000, 'z') + "\n";
    auto large = like_dovecot(users[3], big, 2);
    CHECK(large[0].body.size() > 4000000);

    std::string file = tmp.path() + "/not-mbox";
    mft::write_file(file, "Subject: just a message\n\nhello\n", 0600);
    auto s = src::open_mbox(file, src::MboxQuoting::none);
    auto f = s->folders();
    REQUIRE(f);
    auto c = s->messages(f->front());
    REQUIRE_FALSE(c);
    CHECK(c.error().message().find("not an mbox") != std::string::npos);
    CHECK(c.error().message().find(file) != std::string::npos);
    CHECK(c.error().scope == mf::Scope::folder);

    auto none = src::open_mbox(tmp.path() + "/nothing", src::MboxQuoting::none);
    REQUIRE_FALSE(none->folders());

    // The file changes between indexing and reading: a clear error, not wrong bytes.
    mft::write_file(file, "From a@x Mon Jan  1 10:00:00 2024\nSubject: x\n\nshort\n", 0600);
    auto c2 = s->messages(f->front());
    REQUIRE(c2);
    REQUIRE(c2->messages.size() == 1);
    mft::write_file(file, "From a@x Mon Jan  1 10:00:00 2024\nSubject: x\n\nchanged\n", 0600);
    auto r = s->read(f->front(), c2->messages[0],
                     [](std::string_view) -> mf::Result<void> { return {}; });
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("changed") != std::string::npos);
}

TEST_CASE("From_ dates as Dovecot parses them") {
    using src::mbox_from_date;
    CHECK(mbox_from_date("From a@x Mon Jan  1 10:00:00 2024 +0200") == 1704096000);
    CHECK(mbox_from_date("From a@x Mon Jan  1 10:00:00 +0200 2024") == 1704096000);
    CHECK(mbox_from_date("From a@x Mon, 1 Jan 2024 10:00:00") ==
          mbox_from_date("From a@x Mon Jan  1 10:00:00 2024"));
    CHECK(mbox_from_date("From \"a b\"@x Mon Jan  1 10:00 2024").has_value());
    CHECK(mbox_from_date("From a@x Mon Jan  1 10:00:00 CET 2024").has_value());
    CHECK_FALSE(mbox_from_date("From \"a b\"@x Mon Jan 1 10:00 2024")); // too short for Dovecot
    CHECK_FALSE(mbox_from_date("From here on"));
    CHECK_FALSE(mbox_from_date("From a@x Mon Foo  1 10:00:00 2024"));
    CHECK_FALSE(mbox_from_date("From a@x Mon Jan  1 1x:00:00 2024"));
}

TEST_CASE("a folder Dovecot emptied keeps its UIDVALIDITY in the X-IMAP pseudo message") {
    const std::string user = "carl@old.example";
    mft::DovecotServer srv(opts({user}));
    srv.save_message(user, "Trash", cu::mail("gone-1"));
    srv.save_message(user, "Trash", cu::mail("gone-2"));
    std::string out;
    REQUIRE_MESSAGE(srv.doveadm({"expunge", "-u", user, "mailbox", "Trash", "all"}, &out) == 0,
                    out);
    auto s = src::open_mbox(mbox_dir(srv, user), src::MboxQuoting::none);
    std::map<std::string, std::uint32_t> validity;
    auto empty = cu::through_source(*s, &validity);
    CHECK(empty.folders["Trash"].empty());
    std::string st;
    REQUIRE(srv.doveadm({"-f", "flow", "mailbox", "status", "-u", user, "uidvalidity", "Trash"},
                        &st) == 0);
    auto trash = mft::read_file(mbox_dir(srv, user) + "/Trash");
    REQUIRE(trash.find("\nX-IMAP: ") != std::string::npos); // Dovecot's pseudo message
    CHECK(st.find("uidvalidity=" + std::to_string(validity["Trash"])) != std::string::npos);

    srv.save_message(user, "Trash", cu::mail("kept"));
    auto mine = cu::through_source(*s);
    auto imap = cu::snapshot(srv.imap_port(), user, kPw);
    same(mine.folders["Trash"], imap.folders["Trash"], true);
    CHECK(imap.folders["Trash"].size() == 1);
}

// Dovecot reads a From_ date without a zone as its local time, and takes X-Keywords only
// when X-IMAPbase declares every keyword in it (else the header came with the mail).
TEST_CASE("local From_ dates, declared and undeclared keywords, X-UIDs, as Dovecot reads them") {
    const char* old_tz = std::getenv("TZ");
    std::string saved = old_tz != nullptr ? old_tz : "";
    ::setenv("TZ", "Europe/Berlin", 1);
    ::tzset();
    {
        const std::string user = "dora@old.example";
        mft::DovecotServer srv(opts({user}));
        std::string bytes =
            "From a@x Mon Jul  1 10:00:00 2024\nX-IMAPbase: 4242 30 kw1 $Label2\nSubject: a\n"
            "X-UID: 7\nStatus: RO\nX-Status: AF\nX-Keywords: kw1 $Label2\n\na\n\n"
            "From a@x Mon Jan  1 10:00:00 2024\nSubject: b\nX-UID: 9\nX-Keywords: kw1 other\n"
            "\nb\n\n"
            "From a@x Mon Jan  1 10:00:00 2024 -0500\nSubject: c\nX-UID: 12\nX-Status: TD\n\nc\n";
        put_inbox(srv, user, bytes);
        mft::TempDir tmp("mboxsrc-tz");
        mft::write_file(tmp.path() + "/inbox", bytes, 0600);
        std::map<std::string, std::uint32_t> validity;
        auto s = src::open_mbox(tmp.path() + "/inbox", src::MboxQuoting::none);
        auto mine = cu::through_source(*s, &validity);
        auto imap = cu::snapshot(srv.imap_port(), user, kPw);
        same(mine.folders["INBOX"], imap.folders["INBOX"], true);
        CHECK(validity["INBOX"] == 4242);
        REQUIRE(mine.folders["INBOX"].size() == 3);
        CHECK(mine.folders["INBOX"][0].when == 1719820800); // 10:00 CEST = 08:00 UTC
        CHECK(mine.folders["INBOX"][0].flags == "$Label2 \\Answered \\Flagged \\Seen kw1");
        CHECK(mine.folders["INBOX"][1].flags == "");
        CHECK(mine.folders["INBOX"][2].flags == "\\Deleted \\Draft");
    }
    if (old_tz != nullptr) {
        ::setenv("TZ", saved.c_str(), 1);
    } else {
        ::unsetenv("TZ");
    }
    ::tzset();
}

TEST_CASE("UW-IMAP's .mailboxlist: subscriptions in the tree or in the home above it") {
    mft::TempDir tmp("mboxsrc-uw");
    const std::string home = tmp.path();
    const std::string mail = home + "/mail";
    std::filesystem::create_directories(mail + "/lists");
    const std::string msg = "From a@x Mon Jan  1 10:00:00 2024\nSubject: uw\n\nx\n\n";
    for (const char* f : {"/Sent", "/lists/dev", "/Drafts"}) {
        mft::write_file(mail + f, msg, 0600);
    }
    // UW-IMAP names folders relative to the home directory; entries outside mail/ are not
    // this tree's and a name that is no folder stays out.
    mft::write_file(home + "/.mailboxlist", "mail/Sent\nmail/lists/dev\nnews/x\nmail/gone\n", 0600);
    auto subscribed = [&] {
        auto s = src::open_mbox(mail, src::MboxQuoting::none);
        auto folders = s->folders();
        REQUIRE(folders);
        std::set<std::string> out;
        for (const auto& f : *folders) {
            if (f.subscribed) {
                out.insert(f.name());
            }
        }
        return out;
    };
    CHECK(subscribed() == std::set<std::string>{"Sent", "lists/dev"});
    // The same file kept in the tree itself names folders relative to it.
    std::filesystem::remove(home + "/.mailboxlist");
    mft::write_file(mail + "/.mailboxlist", "Drafts\n", 0600);
    CHECK(subscribed() == std::set<std::string>{"Drafts"});
}
