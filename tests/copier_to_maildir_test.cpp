// copier_to_maildir_test.cpp — copy_account() into a Maildir tree of ours
// (Endpoint::local = "maildir:…" as the target), served afterwards by a real Dovecot.
//
// Checked over IMAP on the Dovecot that serves the written tree: the same folders,
// subscriptions, bytes, flags, keywords and dates as the source shows, and — the point of
// this target — the same UIDVALIDITY and UIDs, from an IMAP source and from a Maildir
// source's dovecot-uidlist; a re-run stores nothing; new source mail and flag changes are
// carried; a message the new server received meanwhile keeps its UID and the source's new
// message takes the next one; POP3 into a Maildir; the bad inputs: a root that is a file,
// a file where a folder's directory belongs and a uidlist lock held by someone else (those
// folders wait for the next run, the rest is copied, nothing lost or doubled), and
// mailferry-copy's usage error for a Maildir target without a path.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_util.hpp"

#include <filesystem>

namespace {

const std::string kSrcUser = "tina@old.example";
const std::string kSrcPw = "pw-old";
const std::string kDstUser = "tina@new.example";
const std::string kDstPw = "pw-new";

mft::DovecotOptions server(const std::string& label, const std::vector<mft::TestUser>& users,
                           const std::string& conf, bool pop3 = false) {
    mft::DovecotOptions o;
    o.label = label;
    o.users = users;
    o.pop3 = pop3;
    o.pop3s = o.submission = false;
    o.tls = o.imaps = false;
    o.extra_config = conf;
    return o;
}

mf::copy::Endpoint maildir(const std::string& path) {
    mf::copy::Endpoint ep;
    ep.local = "maildir:" + path;
    ep.timeout = std::chrono::seconds(5);
    return ep;
}

// Folder → (UIDVALIDITY, UIDNEXT), read over IMAP.
std::map<std::string, std::pair<std::uint32_t, std::uint32_t>>
validities(std::uint16_t port, const std::string& user, const std::string& pw) {
    auto c = cu::login(port, user, pw);
    auto list = mf::copy::detail::list_mailboxes(*c);
    REQUIRE(list);
    std::map<std::string, std::pair<std::uint32_t, std::uint32_t>> out;
    for (const auto& m : list->boxes) {
        if (m.noselect) {
            continue;
        }
        auto st = mf::copy::detail::select_box(*c, m.wire, true, false);
        REQUIRE(st);
        std::string name;
        for (std::size_t i = 0; i < m.parts.size(); ++i) {
            name += (i ? "/" : "") + m.parts[i];
        }
        out[name] = {st->uidvalidity, st->uidnext};
    }
    (void)c->logout();
    return out;
}

mf::copy::Digest digest(const std::string& body) {
    mf::copy::Hasher h;
    h.update(body);
    return h.finish();
}

// "folder uid:sha256-prefix …" per folder, so a failing comparison shows which UIDs differ.
std::string by_uid(const cu::Account& a) {
    std::string out;
    for (const auto& [name, msgs] : a.folders) {
        std::map<std::uint32_t, const std::string*> sorted;
        for (const auto& m : msgs) {
            sorted[m.uid] = &m.body;
        }
        out += name;
        for (const auto& [uid, body] : sorted) {
            out += " " + std::to_string(uid) + ":" + mf::copy::hex(digest(*body)).substr(0, 8);
        }
        out += "\n";
    }
    return out;
}

// Folder → UID → bytes.
std::map<std::string, std::map<std::uint32_t, std::string>> bodies(const cu::Account& a) {
    std::map<std::string, std::map<std::uint32_t, std::string>> out;
    for (const auto& [name, msgs] : a.folders) {
        for (const auto& m : msgs) {
            out[name][m.uid] = m.body;
        }
    }
    return out;
}

void populate(const mft::DovecotServer& src) {
    for (int i = 0; i < 8; ++i) {
        src.save_message(kSrcUser, "INBOX", cu::mail("inbox-" + std::to_string(i), 300 + i * 700));
    }
    src.save_message(kSrcUser, "Sent", cu::mail("sent"));
    src.save_message(kSrcUser, "Work.Projects", cu::mail("proj"));
    src.save_message(kSrcUser, "Entwürfe", cu::mail("draft"));
    std::string out;
    // Gaps: UIDs a client of the old server saw and that must not come back for others.
    REQUIRE(src.doveadm({"expunge", "-u", kSrcUser, "mailbox", "INBOX", "uid", "2,5"}, &out) == 0);
    REQUIRE(src.doveadm({"flags", "add", "-u", kSrcUser, "\\Seen $Label1", "mailbox", "INBOX",
                         "uid", "1:4"},
                        &out) == 0);
    REQUIRE(src.doveadm({"flags", "add", "-u", kSrcUser, "\\Answered \\Flagged", "mailbox", "INBOX",
                         "uid", "3"},
                        &out) == 0);
    REQUIRE(
        src.doveadm({"mailbox", "subscribe", "-u", kSrcUser, "INBOX", "Work.Projects", "Entwürfe"},
                    &out) == 0);
}

mf::copy::Options options(const mft::TempDir& tmp, const std::string& state = "state.db") {
    mf::copy::Options o;
    o.state_path = tmp.file(state);
    o.group = 4;
    return o;
}

} // namespace

TEST_CASE("IMAP into a Maildir of ours: UIDs and UIDVALIDITY kept, incremental") {
    mft::DovecotServer src(server("tomd-src", {{kSrcUser, kSrcPw}}, cu::source_config()));
    mft::DovecotServer dst(server("tomd-dst", {{kDstUser, kDstPw}}, cu::target_config()));
    populate(src);
    mft::TempDir tmp("copier-tomd");
    auto from = cu::endpoint(src.imap_port(), kSrcUser, kSrcPw);
    auto to = maildir(dst.mail_dir(kDstUser));

    auto sum = mf::copy::copy_account(from, to, options(tmp));
    REQUIRE_MESSAGE(sum, (sum ? "" : sum.error().message()));
    CHECK(sum->exact());
    CHECK(sum->messages_copied == 9);

    auto s = cu::snapshot(src.imap_port(), kSrcUser, kSrcPw);
    auto d = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    CHECK(cu::compare(s, d) == "");
    CHECK(by_uid(s) == by_uid(d));
    auto sv = validities(src.imap_port(), kSrcUser, kSrcPw);
    auto dv = validities(dst.imap_port(), kDstUser, kDstPw);
    for (const auto& [name, v] : sv) {
        INFO(name);
        REQUIRE(dv.count(name) == 1);
        CHECK(dv[name].first == v.first);   // UIDVALIDITY
        CHECK(dv[name].second >= v.second); // UIDNEXT: no UID of the old server is reused
    }
    CHECK(dv["INBOX"].second >= 9);

    // Nothing new: nothing stored.
    auto again = mf::copy::copy_account(from, to, options(tmp));
    REQUIRE(again);
    CHECK(again->messages_copied == 0);
    CHECK(again->messages_recovered == 0);

    // The new server gets a message of its own (UID 9 there), the old server a new one
    // (UID 9 there too) and a flag change: the copy carries both, the old server's new
    // message takes the next UID, nothing is doubled.
    dst.save_message(kDstUser, "INBOX", cu::mail("delivered-to-new"));
    src.save_message(kSrcUser, "INBOX", cu::mail("late-at-old"));
    REQUIRE(src.doveadm({"flags", "add", "-u", kSrcUser, "\\Flagged", "mailbox", "INBOX", "uid",
                         "1"}) == 0);
    auto third = mf::copy::copy_account(from, to, options(tmp));
    REQUIRE_MESSAGE(third, (third ? "" : third.error().message()));
    CHECK(third->messages_copied == 1);
    CHECK(third->messages_flag_updates == 1);
    auto d2 = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    auto s2 = cu::snapshot(src.imap_port(), kSrcUser, kSrcPw);
    REQUIRE(d2.folders["INBOX"].size() == s2.folders["INBOX"].size() + 1);
    std::map<std::string, int> copies;
    for (const auto& m : d2.folders["INBOX"]) {
        ++copies[m.body];
        if (m.uid == 1) {
            CHECK(m.flags.find("\\Flagged") != std::string::npos);
        }
    }
    for (const auto& m : s2.folders["INBOX"]) {
        CHECK(copies[m.body] == 1);
    }
    auto by = bodies(d2);
    REQUIRE(by["INBOX"].count(9) == 1);
    CHECK(by["INBOX"][9].find("delivered-to-new") != std::string::npos);
    REQUIRE(by["INBOX"].count(10) == 1);
    CHECK(by["INBOX"][10].find("late-at-old") != std::string::npos);
}

TEST_CASE("a Maildir source keeps its dovecot-uidlist UIDs; POP3 into a Maildir") {
    mft::DovecotServer src(server("tomd2-src", {{kSrcUser, kSrcPw}}, cu::source_config(), true));
    mft::DovecotServer dst(
        server("tomd2-dst", {{kDstUser, kDstPw}, {"pop@new.example", "pw"}}, cu::target_config()));
    populate(src);
    mft::TempDir tmp("copier-tomd2");
    auto from = maildir(src.mail_dir(kSrcUser));
    auto sum = mf::copy::copy_account(from, maildir(dst.mail_dir(kDstUser)), options(tmp));
    REQUIRE_MESSAGE(sum, (sum ? "" : sum.error().message()));
    CHECK(sum->exact());
    auto s = cu::snapshot(src.imap_port(), kSrcUser, kSrcPw);
    auto d = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    CHECK(cu::compare(s, d) == "");
    CHECK(by_uid(s) == by_uid(d));
    auto sv = validities(src.imap_port(), kSrcUser, kSrcPw);
    auto dv = validities(dst.imap_port(), kDstUser, kDstPw);
    CHECK(dv["INBOX"].first == sv["INBOX"].first);

    // POP3: INBOX only, no UIDs to keep; byte-exact, and a re-run stores nothing.
    auto pop = cu::endpoint(src.pop3_port(), kSrcUser, kSrcPw);
    pop.pop3 = true;
    auto to = maildir(dst.mail_dir("pop@new.example"));
    auto p1 = mf::copy::copy_account(pop, to, options(tmp, "pop.db"));
    REQUIRE_MESSAGE(p1, (p1 ? "" : p1.error().message()));
    CHECK(p1->messages_copied == 6);
    auto p2 = mf::copy::copy_account(pop, to, options(tmp, "pop.db"));
    REQUIRE(p2);
    CHECK(p2->messages_copied == 0);
    auto pd = cu::snapshot(dst.imap_port(), "pop@new.example", "pw");
    std::multiset<std::string> want;
    std::multiset<std::string> got;
    for (const auto& m : s.folders["INBOX"]) {
        want.insert(m.body);
    }
    for (const auto& m : pd.folders["INBOX"]) {
        got.insert(m.body);
    }
    CHECK(want == got);
}

TEST_CASE("bad input for a Maildir target: clear errors, nothing lost, the rest copied") {
    mft::DovecotServer src(server("tomd3-src", {{kSrcUser, kSrcPw}}, cu::source_config()));
    mft::DovecotServer dst(server("tomd3-dst", {{kDstUser, kDstPw}}, cu::target_config()));
    populate(src);
    mft::TempDir tmp("copier-tomd3");
    auto from = cu::endpoint(src.imap_port(), kSrcUser, kSrcPw);

    SUBCASE("the root is a file") {
        mft::write_file(tmp.file("plain"), "x", 0600);
        auto r = mf::copy::copy_account(from, maildir(tmp.file("plain")), options(tmp));
        REQUIRE_FALSE(r);
        CHECK(r.error().message().find(tmp.file("plain")) != std::string::npos);
    }

    SUBCASE("a held uidlist lock: that folder waits, the rest is copied, then all of it") {
        const std::string root = dst.mail_dir(kDstUser);
        cu::mkdirs_vmail(root + "/cur");
        cu::mkdirs_vmail(root + "/new");
        cu::mkdirs_vmail(root + "/tmp");
        mft::write_file(root + "/dovecot-uidlist.lock", "", 0600);
        // A broken tree: where Sent's directory belongs there is a file.
        mft::write_file(root + "/.Sent", "not a folder", 0600);
        auto to = maildir(root);
        to.timeout = std::chrono::seconds(1);
        auto r = mf::copy::copy_account(from, to, options(tmp));
        REQUIRE_MESSAGE(r, (r ? "" : r.error().message()));
        CHECK_FALSE(r->exact());
        bool inbox_waits = false;
        bool sent_skipped = false;
        for (const auto& sk : r->skipped) {
            inbox_waits = inbox_waits || (sk.folder == "INBOX" && sk.uid == 0);
            sent_skipped = sent_skipped || (sk.folder == "Sent" && sk.uid == 0);
        }
        CHECK(inbox_waits);
        CHECK(sent_skipped);
        CHECK(r->messages_copied == 2); // Work/Projects, Entwürfe
        std::size_t in_cur = 0;
        for (const auto& e : std::filesystem::directory_iterator(root + "/cur")) {
            (void)e;
            ++in_cur;
        }
        CHECK(in_cur == 0);
        std::filesystem::remove(root + "/dovecot-uidlist.lock");
        std::filesystem::remove(root + "/.Sent");
        auto r2 = mf::copy::copy_account(from, to, options(tmp));
        REQUIRE(r2);
        CHECK(r2->exact());
        CHECK(r2->messages_copied == 7);
        auto s = cu::snapshot(src.imap_port(), kSrcUser, kSrcPw);
        auto d = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
        CHECK(cu::compare(s, d) == "");
        CHECK(bodies(s)["INBOX"] == bodies(d)["INBOX"]);
    }

    SUBCASE("mailferry-copy: usage errors for a Maildir target") {
        mft::write_file(tmp.file("src.pw"), kSrcPw + "\n", 0600);
        const std::string prog = mft::program_path("copier", "mailferry-copy");
        const std::string url =
            "imap+plain://" + kSrcUser + "@127.0.0.1:" + std::to_string(src.imap_port());
        auto no_path = mft::run({prog, "--from", url, "--from-password-file", tmp.file("src.pw"),
                                 "--to", "maildir:", "--state", tmp.file("s.db")});
        CHECK(no_path.exit_code == 2);
        CHECK(no_path.err.find("maildir:/path needs a path") != std::string::npos);
        auto ok = mft::run({prog, "--from", url, "--from-password-file", tmp.file("src.pw"), "--to",
                            "maildir:" + dst.mail_dir(kDstUser), "--state", tmp.file("cli.db"),
                            "--quiet"});
        INFO(ok.err);
        CHECK(ok.exit_code == 0);
        auto d = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
        CHECK(cu::total(d) == 9);
        CHECK(by_uid(cu::snapshot(src.imap_port(), kSrcUser, kSrcPw)) == by_uid(d));
    }
}
