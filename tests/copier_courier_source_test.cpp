// copier_courier_source_test.cpp — the Maildir Source against a tree real Courier-IMAP wrote.
//
// Debian's courier-imap `imapd` (unpacked by setup.sh) runs pre-authenticated on a pipe
// (AUTHENTICATED=user, as couriertcpd starts it after login) in a scratch home: it creates and
// subscribes folders, appends messages with flags, keywords and dates, and changes keywords, so the
// tree has Courier's own courierimapuiddb, courierimapsubscribed and courierimapkeywords/ (:list
// plus the per-message update files Courier writes between compactions). The Source must
// then show what the same Courier shows over IMAP: UIDVALIDITY, UIDs, flags, keywords,
// INTERNALDATE, sizes and bytes, folders and subscriptions.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_source_util.hpp"
#include "copier_util.hpp"
#include "courier_imapd.hpp"
#include "source_maildir.hpp"

#include <filesystem>

TEST_CASE("a Maildir Courier-IMAP wrote reads exactly as Courier shows it over IMAP") {
    REQUIRE_MESSAGE(::access(courier::kImapd, X_OK) == 0,
                    "Courier imapd missing: run ./setup.sh deps");
    mft::TempDir tmp("courier-src");
    std::string root = tmp.path() + "/Maildir";
    for (const char* d : {"/cur", "/new", "/tmp"}) {
        std::filesystem::create_directories(root + d);
    }
    const std::vector<std::string> bodies = {
        "Subject: one\r\n\r\nfirst\r\n",
        "Subject: two\r\n\r\nsecond, a little longer\r\n",
        "Subject: three\r\n\r\nthird\r\n",
    };
    std::map<std::uint32_t, courier::Seen> want;
    std::uint32_t validity = 0;
    {
        courier::Imapd c(tmp.path());
        c.cmd("CREATE INBOX.Work");
        c.cmd("CREATE \"INBOX.Entw&APw-rfe\"");
        c.cmd("SUBSCRIBE INBOX.Work");
        c.cmd("APPEND INBOX (\\Seen $Label1 project-x) \"01-Jan-2024 10:00:00 +0000\"", bodies[0],
              true);
        c.cmd("APPEND INBOX (\\Flagged) \"02-Feb-2024 11:30:00 +0100\"", bodies[1], true);
        c.cmd("APPEND INBOX () \"03-Mar-2024 12:00:00 +0000\"", bodies[2], true);
        c.cmd("APPEND \"INBOX.Entw&APw-rfe\" (\\Draft) \"04-Apr-2024 08:00:00 +0000\"",
              "Subject: draft\r\n\r\nd\r\n", true);
        c.cmd("SELECT INBOX");
        c.cmd("UID STORE 1 +FLAGS (\\Answered otherkw)"); // update files beside :list
        c.cmd("UID STORE 2 +FLAGS (zzz)");
        c.cmd("UID STORE 1 -FLAGS (project-x)");
        want = courier::fetch_all(c, &validity);
        c.cmd("LOGOUT");
    }
    REQUIRE(want.size() == 3);
    CHECK(want[1].flags == "$Label1 \\Answered \\Seen otherkw");
    REQUIRE(std::filesystem::exists(root + "/courierimapkeywords/:list"));
    REQUIRE(std::filesystem::exists(root + "/courierimapuiddb"));

    auto src = mf::copy::source::open_maildir(root);
    auto folders = src->folders();
    REQUIRE_MESSAGE(folders, (folders ? "" : folders.error().message()));
    std::map<std::string, mf::copy::source::Folder> by;
    for (const auto& f : *folders) {
        by[f.name()] = f;
    }
    REQUIRE(by.size() == 3);
    CHECK(by["Work"].subscribed);
    CHECK_FALSE(by["Entwürfe"].subscribed);
    auto inbox = src->messages(by["INBOX"]);
    REQUIRE(inbox);
    CHECK(inbox->problems.empty());
    CHECK(inbox->uidvalidity == validity);
    REQUIRE(inbox->messages.size() == want.size());
    for (std::size_t i = 0; i < inbox->messages.size(); ++i) {
        const auto& m = inbox->messages[i];
        INFO("UID " << m.uid);
        REQUIRE(want.count(m.uid) == 1);
        CHECK(m.flags == want[m.uid].flags);
        CHECK(m.when == want[m.uid].when);
        CHECK(m.size == want[m.uid].size);
        CHECK(cu::read_all(*src, by["INBOX"], m) == bodies[i]);
    }
    auto drafts = src->messages(by["Entwürfe"]);
    REQUIRE(drafts);
    REQUIRE(drafts->messages.size() == 1);
    CHECK(drafts->messages[0].flags == "\\Draft");

    // Courier compacts the update files into :list on a later session: same answer.
    {
        courier::Imapd c(tmp.path());
        c.cmd("SELECT INBOX");
        c.cmd("UID STORE 3 +FLAGS (later)");
        want = courier::fetch_all(c, &validity);
        c.cmd("LOGOUT");
    }
    auto again = src->messages(by["INBOX"]);
    REQUIRE(again);
    REQUIRE(again->messages.size() == want.size());
    for (const auto& m : again->messages) {
        INFO("UID " << m.uid);
        CHECK(m.flags == want[m.uid].flags);
    }
}
