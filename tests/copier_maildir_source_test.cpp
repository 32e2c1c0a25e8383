// copier_maildir_source_test.cpp — the Maildir Source against trees a real Dovecot wrote.
//
// Dovecot delivers (doveadm save), flags and tags (doveadm flags add), subscribes
// (doveadm mailbox subscribe) into its Maildir++ tree; files written straight to disk
// (not yet in dovecot-uidlist, bare LF) are added. Then the tree is read by the Maildir
// Source and compared with what the same Dovecot shows over IMAP: the same folders,
// subscriptions, \Noselect parents, UIDVALIDITY, and per message the same UID, bytes,
// flags, keywords and INTERNALDATE. Bad input: broken names, a directory inside cur/,
// a missing root, a file that vanishes or changes before it is read.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_source_util.hpp"
#include "copier_util.hpp"
#include "source_maildir.hpp"

#include <filesystem>

namespace {

const std::string kUser = "anna@old.example";
const std::string kPw = "pw-anna";

mft::DovecotOptions opts() {
    mft::DovecotOptions o;
    o.label = "mdsrc";
    o.users = {{kUser, kPw}};
    o.pop3 = o.pop3s = o.submission = false;
    o.tls = o.imaps = false;
    o.extra_config = cu::source_config();
    return o;
}

} // namespace

TEST_CASE("a Maildir Dovecot wrote reads exactly as Dovecot shows it over IMAP") {
    mft::DovecotServer srv(opts());
    std::string md = srv.mail_dir(kUser);
    for (int i = 0; i < 6; ++i) {
        srv.save_message(kUser, "INBOX", cu::mail("inbox-" + std::to_string(i), 200 + i * 500));
    }
    srv.save_message(kUser, "Work.Projects", cu::mail("proj"));
    srv.save_message(kUser, "Entwürfe", cu::mail("draft"));
    srv.save_message(kUser, "Sent", "Subject: bare LF\n\nline one\nline two\n");
    auto doveadm = [&](const std::vector<std::string>& args) {
        std::string out;
        REQUIRE_MESSAGE(srv.doveadm(args, &out) == 0, out);
    };
    doveadm({"flags", "add", "-u", kUser, "\\Seen \\Answered", "mailbox", "INBOX", "uid", "1:3"});
    doveadm({"flags", "add", "-u", kUser, "\\Flagged $Forwarded project-x", "mailbox", "INBOX",
             "uid", "2"});
    doveadm({"flags", "add", "-u", kUser, "$Label1 \\Draft", "mailbox", "INBOX", "uid", "5"});
    doveadm({"flags", "add", "-u", kUser, "\\Deleted", "mailbox", "Sent", "uid", "1"});
    doveadm({"mailbox", "subscribe", "-u", kUser, "Work.Projects", "Entwürfe", "INBOX"});
    // A subscription that outlived its folder stays the user's.
    doveadm({"mailbox", "create", "-s", "-u", kUser, "Gone"});
    doveadm({"mailbox", "delete", "-u", kUser, "Gone"});
    // Delivered behind Dovecot's back (an MTA writing new/, an rsync): not in the uidlist.
    cu::put(srv, kUser, "", "Subject: late\n\nbare LF body\n", "S", 1500000000);

    auto src = mf::copy::source::open_maildir(md);
    auto mine = cu::through_source(*src); // before Dovecot sees the late file
    auto imap = cu::snapshot(srv.imap_port(), kUser, kPw);

    CHECK(mine.subscribed == imap.subscribed);
    CHECK(mine.subscribed.count("Gone") == 1);
    CHECK(mine.folders.count("Work/Projects") == 1);
    CHECK(mine.folders.count("Entwürfe") == 1);
    CHECK(mine.noselect.count("Work") == 1);
    REQUIRE(mine.folders.size() == imap.folders.size());
    for (const auto& [name, msgs] : imap.folders) {
        REQUIRE_MESSAGE(mine.folders.count(name) == 1, name);
        const auto& got = mine.folders[name];
        REQUIRE_MESSAGE(got.size() == msgs.size(), name);
        for (std::size_t i = 0; i < msgs.size(); ++i) {
            INFO(name << " UID " << msgs[i].uid);
            CHECK(got[i].uid == msgs[i].uid);
            CHECK(got[i].body == msgs[i].body);
            CHECK(got[i].flags == msgs[i].flags);
            CHECK(got[i].when == msgs[i].when);
        }
    }
    CHECK(cu::total(imap) == 10);

    // UIDVALIDITY is Dovecot's.
    auto folders = src->folders();
    REQUIRE(folders);
    auto inbox = std::find_if(folders->begin(), folders->end(),
                              [](const auto& f) { return f.name() == "INBOX"; });
    REQUIRE(inbox != folders->end());
    auto c = src->messages(*inbox);
    REQUIRE(c);
    std::string st;
    REQUIRE(srv.doveadm({"-f", "flow", "mailbox", "status", "-u", kUser, "uidvalidity", "INBOX"},
                        &st) == 0);
    CHECK(st.find("uidvalidity=" + std::to_string(c->uidvalidity)) != std::string::npos);
}

TEST_CASE("the subdirectory layout and Courier's uiddb and subscriptions") {
    mft::TempDir tmp("mdsrc-fs");
    std::string root = tmp.path() + "/Maildir";
    for (const char* d :
         {"", "/Lists", "/Lists/dev", "/Lists/dev/cur", "/Lists/dev/new", "/cur", "/new", "/tmp"}) {
        std::filesystem::create_directories(root + d);
    }
    mft::write_file(root + "/cur/1000.a.host:2,SR", "Subject: a\r\n\r\nA\r\n", 0600);
    mft::write_file(root + "/cur/1001.b.host:2,", "Subject: b\n\nB\n", 0600);
    mft::write_file(root + "/new/1002.c.host", "Subject: c\r\n\r\nC\r\n", 0600);
    mft::write_file(root + "/courierimapuiddb", "1 777 20\n7 1000.a.host\n9 1001.b.host\n", 0600);
    mft::write_file(root + "/courierimapsubscribed", "INBOX.Lists.dev\n", 0600);
    mft::write_file(root + "/Lists/dev/cur/1.x.host:2,F", "Subject: dev\n\nD\n", 0600);

    auto src = mf::copy::source::open_maildir(root);
    auto folders = src->folders();
    REQUIRE(folders);
    std::map<std::string, mf::copy::source::Folder> by;
    for (const auto& f : *folders) {
        by[f.name()] = f;
    }
    REQUIRE(by.count("Lists/dev") == 1);
    CHECK(by["Lists/dev"].subscribed);
    CHECK(by["Lists"].noselect);
    auto c = src->messages(by["INBOX"]);
    REQUIRE(c);
    CHECK(c->uidvalidity == 777);
    REQUIRE(c->messages.size() == 3);
    CHECK(c->messages[0].uid == 7);
    CHECK(c->messages[0].flags == "\\Answered \\Seen");
    CHECK(c->messages[1].uid == 9);
    CHECK(cu::read_all(*src, by["INBOX"], c->messages[1]) == "Subject: b\r\n\r\nB\r\n");
    CHECK(c->messages[2].uid == 20); // unlisted: above the next UID
    auto d = src->messages(by["Lists/dev"]);
    REQUIRE(d);
    REQUIRE(d->messages.size() == 1);
    CHECK(d->messages[0].flags == "\\Flagged");
}

TEST_CASE("bad input: broken names, odd entries, a missing root, files that change") {
    mft::TempDir tmp("mdsrc-bad");
    std::string root = tmp.path() + "/Maildir";
    for (const char* d : {"/cur", "/new", "/tmp", "/cur/adir"}) {
        std::filesystem::create_directories(root + d);
    }
    mft::write_file(root + "/cur/:2,S", "Subject: nameless\r\n\r\n", 0600);
    mft::write_file(root + "/cur/1.ok.host:2,ZS", "Subject: ok\r\n\r\nok\r\n", 0600);
    mft::write_file(root + "/cur/2.gone.host:2,", "Subject: gone\r\n\r\n", 0600);
    mft::write_file(root + "/cur/3.grows.host:2,", "Subject: grows\r\n\r\n", 0600);

    auto src = mf::copy::source::open_maildir(root);
    auto folders = src->folders();
    REQUIRE(folders);
    REQUIRE(folders->size() == 1);
    auto c = src->messages(folders->front());
    REQUIRE(c);
    CHECK(c->problems.size() == 2); // the nameless file, the directory
    REQUIRE(c->messages.size() == 3);
    CHECK(c->messages[0].flags == "\\Seen"); // unknown letter Z ignored
    CHECK(cu::read_all(*src, folders->front(), c->messages[0]) == "Subject: ok\r\n\r\nok\r\n");

    std::filesystem::remove(root + "/cur/2.gone.host:2,");
    auto r = src->read(folders->front(), c->messages[1],
                       [](std::string_view) -> mf::Result<void> { return {}; });
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("2.gone.host") != std::string::npos);

    mft::write_file(root + "/cur/3.grows.host:2,", "Subject: grows\r\n\r\nmore bytes\r\n", 0600);
    r = src->read(folders->front(), c->messages[2],
                  [](std::string_view) -> mf::Result<void> { return {}; });
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("while it was copied") != std::string::npos);

    auto none = mf::copy::source::open_maildir(tmp.path() + "/nothing");
    auto f = none->folders();
    REQUIRE_FALSE(f);
    CHECK(f.error().message().find("not a Maildir") != std::string::npos);
}
