// copier_copy_test.cpp — copy_account() between two real Dovecots on loopback.
//
// The source uses '.' as hierarchy separator, the target '/'. Checked: a full copy is
// exact (every folder, every message's bytes, flags, keywords and INTERNALDATE,
// subscriptions, \Noselect parents left implicit), over STARTTLS and implicit TLS with CA
// verification; a re-run changes nothing (and with CONDSTORE never touches the target);
// flag changes and new mail are carried; a flag set by the user on the target survives;
// a changed UIDVALIDITY (either side) and a lost state file are resolved by content
// without duplicates; a master user logs in with an authorization id; a wrong CA and a
// wrong password stop the copy with a clear error before anything is written.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_util.hpp"

#include <filesystem>

using namespace std::chrono_literals;

namespace {

const std::string kSrcUser = "anna@old.example";
const std::string kSrcPw = "old pass \"quoted\" \\ wörd";
const std::string kDstUser = "anna@new.example";
const std::string kDstPw = "new-pw";

mft::DovecotOptions src_opts(bool tls = false) {
    mft::DovecotOptions o;
    o.label = "copy-src";
    o.users = {{kSrcUser, kSrcPw}};
    o.pop3 = o.pop3s = o.submission = false;
    o.tls = tls;
    o.imaps = tls;
    o.extra_config = cu::source_config();
    return o;
}

mft::DovecotOptions dst_opts(bool tls = false) {
    mft::DovecotOptions o;
    o.label = "copy-dst";
    o.users = {{kDstUser, kDstPw}};
    o.pop3 = o.pop3s = o.submission = false;
    o.tls = tls;
    o.imaps = tls;
    o.extra_config = cu::target_config();
    return o;
}

// A small account with everything that is easy to get wrong.
void populate(const mft::DovecotServer& src) {
    cu::write_keywords(src, kSrcUser, "", {"$Forwarded", "project-x", "$Label1"});
    for (int i = 0; i < 25; ++i) {
        std::string flags = (i % 3 == 0 ? "S" : "") + std::string(i % 5 == 0 ? "F" : "") +
                            (i % 7 == 0 ? "R" : "") + (i % 4 == 0 ? "a" : "") +
                            (i % 6 == 0 ? "bc" : "");
        // Maildir wants the letters sorted: capitals first, then keywords.
        std::string caps;
        std::string kws;
        for (char c : flags) {
            (std::isupper(static_cast<unsigned char>(c)) != 0 ? caps : kws).push_back(c);
        }
        std::sort(caps.begin(), caps.end());
        cu::put(src, kSrcUser, "", cu::mail("inbox-" + std::to_string(i), 300 + i * 997),
                caps + kws);
    }
    cu::put(src, kSrcUser, "", "Subject: bare LF\n\nline one\nline two\n", "S");
    cu::put(src, kSrcUser, "",
            "Subject: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9f"
            "e \xff\xfe\r\n");
    cu::put(src, kSrcUser, "", std::string("Subject: nul\r\n\r\na\0b\r\n", 21));
    cu::put(src, kSrcUser, "", cu::mail("big", 5u << 20, 'B'), "S");
    cu::put(src, kSrcUser, "", "Subject: no final newline\r\n\r\nabc");
    for (int i = 0; i < 5; ++i) {
        cu::put(src, kSrcUser, "Sent", cu::mail("sent-" + std::to_string(i)), "S");
        cu::put(src, kSrcUser, "Work.Projects", cu::mail("proj-" + std::to_string(i)), "");
    }
    cu::put(src, kSrcUser, "Entw&APw-rfe", cu::mail("draft"), "D");
    cu::put(src, kSrcUser, "R&-D", cu::mail("rnd"), "");
    cu::put(src, kSrcUser, "Empty.Child", cu::mail("child"), "");
    REQUIRE(src.doveadm({"mailbox", "create", "-u", kSrcUser, "Empty"}) == 0);
    for (const char* box : {"INBOX", "Sent", "Work.Projects", "Entwürfe"}) {
        REQUIRE(src.doveadm({"mailbox", "subscribe", "-u", kSrcUser, box}) == 0);
    }
}

mf::copy::Options options(const mft::TempDir& tmp) {
    mf::copy::Options o;
    o.state_path = tmp.file("state.db");
    return o;
}

std::string skipped_text(const mf::copy::Summary& s) {
    std::string t;
    for (const auto& k : s.skipped) {
        t += k.folder + " UID " + std::to_string(k.uid) + ": " + k.reason + "\n";
    }
    return t;
}

} // namespace

TEST_CASE("full copy over TLS is exact; re-runs are incremental and never duplicate") {
    mft::DovecotServer src(src_opts(true));
    mft::DovecotServer dst(dst_opts(true));
    populate(src);
    mft::TempDir tmp("copier-copy");
    auto opts = options(tmp);

    auto from = cu::endpoint(src.imap_port(), kSrcUser, kSrcPw);
    from.tls = mf::TlsMode::starttls;
    from.ca_file = src.ca_file();
    auto to = cu::endpoint(dst.imaps_port(), kDstUser, kDstPw);
    to.tls = mf::TlsMode::implicit;
    to.ca_file = dst.ca_file();

    auto s0 = cu::snapshot(src.imap_port(), kSrcUser, kSrcPw);
    const std::size_t n = cu::total(s0);
    REQUIRE(n == 25 + 5 + 10 + 3);

    auto sum = mf::copy::copy_account(from, to, opts);
    REQUIRE_MESSAGE(sum.ok(), sum.error().message());
    INFO(skipped_text(*sum));
    CHECK(sum->exact());
    CHECK(sum->messages_copied == n);
    CHECK(sum->messages_recovered == 0);

    auto d1 = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    CHECK(cu::compare(s0, d1) == "");
    CHECK(cu::total(d1) == n);
    // Spot checks that do not rely on compare(): keywords, \Noselect parent, names.
    bool saw_keyword = false;
    for (const auto& m : d1.folders["INBOX"]) {
        saw_keyword |= m.flags.find("project-x") != std::string::npos;
    }
    CHECK(saw_keyword);
    CHECK(d1.folders.count("Work/Projects") == 1);
    CHECK(d1.folders.count("Work") == 0); // parent stays a \Noselect hierarchy node
    CHECK(d1.folders.count("Entw\xc3\xbcrfe") == 1);
    CHECK(d1.folders.count("R&D") == 1);
    CHECK(d1.folders.count("Empty") == 1);
    CHECK(d1.folders.count("Empty/Child") == 1);
    CHECK(d1.subscribed.count("Work/Projects") == 1);
    CHECK(d1.subscribed.count("Entw\xc3\xbcrfe") == 1);

    // Re-run: the quick check sees nothing changed and does not even log in at the target.
    auto sum2 = mf::copy::copy_account(from, to, opts);
    REQUIRE(sum2.ok());
    CHECK(sum2->exact());
    CHECK(sum2->messages_copied == 0);
    CHECK(sum2->folders_unchanged == s0.folders.size());
    auto d2 = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    CHECK(cu::compare(s0, d2) == "");

    // Source changes: a flag added, a keyword removed, a new message.
    REQUIRE(src.doveadm({"flags", "add", "-u", kSrcUser, "\\Flagged $Label1", "mailbox", "INBOX",
                         "uid", "2"}) == 0);
    REQUIRE(src.doveadm({"flags", "remove", "-u", kSrcUser, "$Forwarded", "mailbox", "INBOX", "uid",
                         "1"}) == 0);
    src.save_message(kSrcUser, "Sent", cu::mail("sent-new"));
    // The user flags a message on the target meanwhile: that must survive.
    REQUIRE(dst.doveadm({"flags", "add", "-u", kDstUser, "\\Answered", "mailbox", "Sent", "uid",
                         "1"}) == 0);
    auto sum3 = mf::copy::copy_account(from, to, opts);
    REQUIRE(sum3.ok());
    CHECK(sum3->exact());
    CHECK(sum3->messages_copied == 1);
    CHECK(sum3->messages_flag_updates == 2);
    auto s3 = cu::snapshot(src.imap_port(), kSrcUser, kSrcPw);
    auto d3 = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    CHECK(cu::compare(s3, d3, {"Sent"}) == "");
    CHECK(d3.folders["Sent"].size() == 6);
    bool answered = false;
    for (const auto& m : d3.folders["Sent"]) {
        answered |= m.uid == 1 && m.flags.find("\\Answered") != std::string::npos;
    }
    CHECK(answered);

    // UIDVALIDITY changes on the source: matched again by content, nothing copied twice.
    REQUIRE(src.doveadm({"mailbox", "update", "-u", kSrcUser, "--uid-validity", "4242",
                         "Work.Projects"}) == 0);
    auto sum4 = mf::copy::copy_account(from, to, opts);
    REQUIRE(sum4.ok());
    CHECK(sum4->messages_copied == 0);
    CHECK(sum4->messages_recovered == 5);
    auto d4 = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    CHECK(d4.folders["Work/Projects"].size() == 5);

    // … and on the target.
    REQUIRE(dst.doveadm({"mailbox", "update", "-u", kDstUser, "--uid-validity", "4343", "R&D"}) ==
            0);
    src.save_message(kSrcUser, "R&D", cu::mail("rnd-2"));
    auto sum5 = mf::copy::copy_account(from, to, opts);
    REQUIRE(sum5.ok());
    CHECK(sum5->messages_copied == 1);
    CHECK(sum5->messages_recovered == 1);

    // The state file is lost: the next run adopts what the target has, copies nothing.
    std::filesystem::remove(opts.state_path);
    std::filesystem::remove(opts.state_path + "-wal");
    std::filesystem::remove(opts.state_path + "-shm");
    auto sum6 = mf::copy::copy_account(from, to, opts);
    REQUIRE(sum6.ok());
    CHECK(sum6->messages_copied == 0);
    CHECK(sum6->messages_recovered == cu::total(d4) + 1);
    auto s6 = cu::snapshot(src.imap_port(), kSrcUser, kSrcPw);
    auto d6 = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    CHECK(cu::total(d6) == cu::total(s6));

    // verify_account agrees (the user's \Answered on the target is a flags difference).
    auto rep = mf::copy::verify_account(from, to, opts);
    REQUIRE(rep.ok());
    CHECK(rep->messages_compared == cu::total(s6));
    std::size_t other = 0;
    for (const auto& m : rep->mismatches) {
        if (!(m.folder == "Sent" && m.what == "flags")) {
            ++other;
        }
    }
    CHECK(other == 0);
}

TEST_CASE("a master user copies into the target with an authorization id") {
    mft::DovecotServer src(src_opts());
    mft::TempDir tmp("copier-master");
    mft::write_file(tmp.file("masters"), "admin:{PLAIN}master secret\n", 0644);
    auto o = dst_opts();
    o.extra_config +=
        "passdb {\n  driver = passwd-file\n  master = yes\n  args = " + tmp.file("masters") +
        "\n}\n";
    mft::DovecotServer dst(o);
    cu::put(src, kSrcUser, "", cu::mail("m1"), "S");
    cu::put(src, kSrcUser, "Sent", cu::mail("m2"), "");
    auto from = cu::endpoint(src.imap_port(), kSrcUser, kSrcPw);
    auto to = cu::endpoint(dst.imap_port(), kDstUser, "master secret");
    to.auth_user = "admin";
    auto sum = mf::copy::copy_account(from, to, options(tmp));
    REQUIRE_MESSAGE(sum.ok(), sum.error().message());
    CHECK(sum->messages_copied == 2);
    CHECK(cu::compare(cu::snapshot(src.imap_port(), kSrcUser, kSrcPw),
                      cu::snapshot(dst.imap_port(), kDstUser, kDstPw)) == "");

    // A wrong master password is refused as such.
    // (A fresh state file: with the old one the unchanged source is a no-op that never
    // logs in at the target.)
    auto bad = cu::endpoint(dst.imap_port(), kDstUser, "wrong");
    bad.auth_user = "admin";
    auto fresh = options(tmp);
    fresh.state_path = tmp.file("fresh.db");
    auto r = mf::copy::copy_account(from, bad, fresh);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().scope == mf::Scope::account);
    CHECK(r.error().retry == mf::Retry::never);
    CHECK(r.error().message().find("master admin") != std::string::npos);
}

TEST_CASE("TLS with the wrong CA and a wrong password stop before anything is written") {
    mft::DovecotServer src(src_opts(true));
    mft::DovecotServer dst(dst_opts(true));
    cu::put(src, kSrcUser, "", cu::mail("m1"), "S");
    mft::TempDir tmp("copier-tls");
    auto from = cu::endpoint(src.imaps_port(), kSrcUser, kSrcPw);
    from.tls = mf::TlsMode::implicit;
    from.ca_file = mft::other_ca_file();
    auto to = cu::endpoint(dst.imaps_port(), kDstUser, kDstPw);
    to.tls = mf::TlsMode::implicit;
    to.ca_file = dst.ca_file();

    auto r = mf::copy::copy_account(from, to, options(tmp));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().retry == mf::Retry::never);
    CHECK(r.error().message().find("certificate not trusted") != std::string::npos);

    // Right CA, but the name we dial is not in the certificate.
    from.ca_file = src.ca_file();
    from.host = "127.0.0.2";
    auto r2 = mf::copy::copy_account(from, to, options(tmp));
    REQUIRE_FALSE(r2.ok());

    from.host = "127.0.0.1";
    from.password = mf::Secret("not the password");
    auto r3 = mf::copy::copy_account(from, to, options(tmp));
    REQUIRE_FALSE(r3.ok());
    CHECK(r3.error().scope == mf::Scope::account);
    CHECK(r3.error().message().find("AUTHENTICATIONFAILED") != std::string::npos);
    CHECK(r3.error().message().find("not the password") == std::string::npos);

    // Nothing reached the target.
    auto d = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    CHECK(cu::total(d) == 0);
}

TEST_CASE("filters: skip patterns, subscribed-only, dates, rename map") {
    mft::DovecotServer src(src_opts());
    mft::DovecotServer dst(dst_opts());
    cu::put(src, kSrcUser, "", cu::mail("old"), "S", 1262304000); // 2010-01-01
    cu::put(src, kSrcUser, "", cu::mail("mid"), "S", 1420070400); // 2015-01-01
    cu::put(src, kSrcUser, "", cu::mail("new"), "S", 1704067200); // 2024-01-01
    cu::put(src, kSrcUser, "Trash", cu::mail("trash"), "S");
    cu::put(src, kSrcUser, "Old.Sub", cu::mail("oldsub"), "S", 1500000000);
    cu::put(src, kSrcUser, "Unsub", cu::mail("unsub"), "S");
    for (const char* box : {"INBOX", "Trash", "Old.Sub"}) {
        REQUIRE(src.doveadm({"mailbox", "subscribe", "-u", kSrcUser, box}) == 0);
    }
    mft::TempDir tmp("copier-filters");
    auto opts = options(tmp);
    opts.filters.skip = {"Trash"};
    opts.filters.subscribed_only = true;
    opts.filters.after = 1388534400;  // 2014-01-01
    opts.filters.before = 1577836800; // 2020-01-01
    opts.filters.rename = {{"Old", "Archive/Old"}};
    auto sum = mf::copy::copy_account(cu::endpoint(src.imap_port(), kSrcUser, kSrcPw),
                                      cu::endpoint(dst.imap_port(), kDstUser, kDstPw), opts);
    REQUIRE_MESSAGE(sum.ok(), sum.error().message());
    CHECK(sum->exact());
    CHECK(sum->messages_copied == 2); // "mid" and Old/Sub's message
    CHECK(sum->messages_filtered == 2);
    auto d = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    REQUIRE(d.folders["INBOX"].size() == 1);
    CHECK(d.folders["INBOX"][0].body.find("Subject: mid") != std::string::npos);
    CHECK(d.folders.count("Trash") == 0);
    CHECK(d.folders.count("Unsub") == 0);
    CHECK(d.folders["Archive/Old/Sub"].size() == 1);
    bool noted = false;
    for (const auto& note : sum->notes) {
        noted |= note.find("Archive/Old/Sub") != std::string::npos;
    }
    CHECK(noted);
}

TEST_CASE("parallel folders: same result on 4 connections, and within a budget of 1") {
    mft::DovecotServer src(src_opts());
    mft::DovecotServer dst(dst_opts());
    for (int f = 0; f < 6; ++f) {
        for (int i = 0; i < 15; ++i) {
            cu::put(src, kSrcUser, "Box" + std::to_string(f),
                    cu::mail("p" + std::to_string(f) + "-" + std::to_string(i), 500 + i * 300),
                    i % 2 == 0 ? "S" : "");
        }
    }
    mft::TempDir tmp("copier-parallel");
    auto opts = options(tmp);
    opts.connections = 4;
    opts.messages_per_connection = 0; // 90 small messages: parallel only when asked for
    auto from = cu::endpoint(src.imap_port(), kSrcUser, kSrcPw);
    auto to = cu::endpoint(dst.imap_port(), kDstUser, kDstPw);
    auto sum = mf::copy::copy_account(from, to, opts);
    REQUIRE_MESSAGE(sum.ok(), sum.error().message());
    CHECK(sum->exact());
    CHECK(sum->messages_copied == 90);
    auto s = cu::snapshot(src.imap_port(), kSrcUser, kSrcPw);
    CHECK(cu::compare(s, cu::snapshot(dst.imap_port(), kDstUser, kDstPw)) == "");

    // A budget of one connection per server: no helper can start, nothing deadlocks, and
    // the copy (here: of new mail in every folder) still completes on one pair.
    for (int f = 0; f < 6; ++f) {
        cu::put(src, kSrcUser, "Box" + std::to_string(f), cu::mail("late-" + std::to_string(f)));
    }
    opts.max_connections_per_server = 1;
    auto sum2 = mf::copy::copy_account(from, to, opts);
    REQUIRE_MESSAGE(sum2.ok(), sum2.error().message());
    CHECK(sum2->messages_copied == 6);
    CHECK(cu::compare(cu::snapshot(src.imap_port(), kSrcUser, kSrcPw),
                      cu::snapshot(dst.imap_port(), kDstUser, kDstPw)) == "");
}
