// copier_maildir_copy_test.cpp — copy_account() from a local Maildir (Endpoint::local)
// into a real Dovecot over IMAP.
//
// The source tree is written by a real Dovecot (doveadm save / flags / subscribe) plus
// files an MTA or rsync left behind Dovecot's back (bare LF, keywords by letter, not yet
// in dovecot-uidlist). Checked: the target then shows exactly what the source Dovecot
// shows over IMAP (bytes, flags, keywords, dates, folders, subscriptions); the source
// tree is not changed by a byte or a timestamp; a re-run appends nothing; flag changes
// and new mail are carried; a lost state file is settled by content without duplicates;
// a broken file name is reported and the rest is copied; mailferry-copy --from
// maildir:… works and a missing tree fails clearly.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_util.hpp"

#include <filesystem>

namespace {

const std::string kSrcUser = "anna@old.example";
const std::string kSrcPw = "pw-old";
const std::string kDstUser = "anna@new.example";
const std::string kDstPw = "pw-new";

mft::DovecotOptions server(const std::string& label, const std::string& user, const std::string& pw,
                           const std::string& conf) {
    mft::DovecotOptions o;
    o.label = label;
    o.users = {{user, pw}};
    o.pop3 = o.pop3s = o.submission = false;
    o.tls = o.imaps = false;
    o.extra_config = conf;
    return o;
}

// path → (size, mtime, mode) of everything in the tree.
std::map<std::string, std::tuple<std::uintmax_t, std::int64_t, unsigned>>
tree(const std::string& root) {
    std::map<std::string, std::tuple<std::uintmax_t, std::int64_t, unsigned>> out;
    for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
        struct stat st {};
        REQUIRE(::lstat(e.path().c_str(), &st) == 0);
        out[e.path().string()] = {e.is_regular_file() ? e.file_size() : 0,
                                  static_cast<std::int64_t>(st.st_mtime), st.st_mode};
    }
    return out;
}

void populate(const mft::DovecotServer& src) {
    for (int i = 0; i < 8; ++i) {
        src.save_message(kSrcUser, "INBOX", cu::mail("inbox-" + std::to_string(i), 300 + i * 900));
    }
    src.save_message(kSrcUser, "Sent", cu::mail("sent"));
    src.save_message(kSrcUser, "Work.Projects", cu::mail("proj"));
    src.save_message(kSrcUser, "Entwürfe", "Subject: bare LF\n\nline\n");
    std::string out;
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

mf::copy::Endpoint local(const mft::DovecotServer& src) {
    mf::copy::Endpoint ep;
    ep.local = "maildir:" + src.mail_dir(kSrcUser);
    return ep;
}

} // namespace

TEST_CASE("a Maildir copies exactly, read-only, and incrementally") {
    mft::DovecotServer src(server("mdcopy-src", kSrcUser, kSrcPw, cu::source_config()));
    mft::DovecotServer dst(server("mdcopy-dst", kDstUser, kDstPw, cu::target_config()));
    populate(src);
    cu::put(src, kSrcUser, "", "Subject: late\n\nbare LF, unlisted\n", "S", 1500000000);
    mft::TempDir tmp("mdcopy");
    mf::copy::Options opts;
    opts.state_path = tmp.path() + "/state.db";
    auto to = cu::endpoint(dst.imap_port(), kDstUser, kDstPw);

    auto before = tree(src.mail_dir(kSrcUser));
    auto sum = mf::copy::copy_account(local(src), to, opts);
    REQUIRE_MESSAGE(sum, (sum ? "" : sum.error().message()));
    CHECK(sum->exact());
    CHECK(sum->messages_copied == 12);
    CHECK(tree(src.mail_dir(kSrcUser)) == before); // not a byte, not a timestamp

    auto want = cu::snapshot(src.imap_port(), kSrcUser, kSrcPw);
    auto got = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    CHECK(cu::compare(want, got) == "");
    CHECK(cu::total(got) == 12);
    CHECK(got.subscribed.count("Work/Projects") == 1);

    auto again = mf::copy::copy_account(local(src), to, opts);
    REQUIRE(again);
    CHECK(again->messages_copied == 0);
    CHECK(again->messages_flag_updates == 0);

    // New mail and a flag change on the source.
    src.save_message(kSrcUser, "Sent", cu::mail("sent-2"));
    std::string out;
    REQUIRE(
        src.doveadm({"flags", "add", "-u", kSrcUser, "\\Flagged", "mailbox", "INBOX", "uid", "7"},
                    &out) == 0);
    auto third = mf::copy::copy_account(local(src), to, opts);
    REQUIRE(third);
    CHECK(third->messages_copied == 1);
    CHECK(third->messages_flag_updates == 1);
    want = cu::snapshot(src.imap_port(), kSrcUser, kSrcPw);
    got = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    CHECK(cu::compare(want, got) == "");

    // The state file is lost: everything is found on the target by content.
    std::filesystem::remove(opts.state_path);
    std::filesystem::remove(opts.state_path + "-wal");
    std::filesystem::remove(opts.state_path + "-shm");
    auto lost = mf::copy::copy_account(local(src), to, opts);
    REQUIRE_MESSAGE(lost, (lost ? "" : lost.error().message()));
    CHECK(lost->messages_copied == 0);
    CHECK(lost->messages_recovered == 13);
    got = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    CHECK(cu::compare(want, got) == "");
    CHECK(cu::total(got) == 13);
}

TEST_CASE("a broken Maildir name is reported, the rest is copied") {
    mft::DovecotServer src(server("mdbad-src", kSrcUser, kSrcPw, cu::source_config()));
    mft::DovecotServer dst(server("mdbad-dst", kDstUser, kDstPw, cu::target_config()));
    src.save_message(kSrcUser, "INBOX", cu::mail("good"));
    std::string bad = src.mail_dir(kSrcUser) + "/cur/:2,S";
    mft::write_file(bad, "Subject: nameless\r\n\r\n", 0600);
    mft::TempDir tmp("mdbad");
    mf::copy::Options opts;
    opts.state_path = tmp.path() + "/state.db";
    auto sum =
        mf::copy::copy_account(local(src), cu::endpoint(dst.imap_port(), kDstUser, kDstPw), opts);
    REQUIRE(sum);
    CHECK_FALSE(sum->exact());
    REQUIRE(sum->skipped.size() == 1);
    CHECK(sum->skipped[0].reason.find(":2,S") != std::string::npos);
    CHECK(sum->messages_copied == 1);
}

TEST_CASE("mailferry-copy --from maildir:") {
    mft::DovecotServer src(server("mdcli-src", kSrcUser, kSrcPw, cu::source_config()));
    mft::DovecotServer dst(server("mdcli-dst", kDstUser, kDstPw, cu::target_config()));
    src.save_message(kSrcUser, "INBOX", cu::mail("one"));
    mft::TempDir tmp("mdcli");
    mft::write_file(tmp.path() + "/to.pw", kDstPw, 0600);
    std::string to = "imap+plain://" + kDstUser + "@127.0.0.1:" + std::to_string(dst.imap_port());
    auto r = mft::run({mft::program_path("copier", "mailferry-copy"), "--from",
                       "maildir:" + src.mail_dir(kSrcUser), "--to", to, "--to-password-file",
                       tmp.path() + "/to.pw", "--state", tmp.path() + "/s.db", "--quiet"});
    CHECK_MESSAGE(r.exit_code == 0, (r.out + r.err));
    CHECK(cu::total(cu::snapshot(dst.imap_port(), kDstUser, kDstPw)) == 1);

    r = mft::run({mft::program_path("copier", "mailferry-copy"), "--from",
                  "maildir:" + tmp.path() + "/none", "--to", to, "--to-password-file",
                  tmp.path() + "/to.pw", "--state", tmp.path() + "/s2.db", "--quiet"});
    CHECK(r.exit_code != 0);
    CHECK_MESSAGE((r.out + r.err).find("not a Maildir") != std::string::npos, (r.out + r.err));
}

// A file not yet in dovecot-uidlist has only a guessed UID. Here a second unlisted file
// arrives whose name sorts before the first, then Dovecot lists both: under guessed UIDs
// the first would be copied twice and the second never. The state is keyed by name.
TEST_CASE("guessed UIDs that shift neither skip nor duplicate a message") {
    mft::DovecotServer src(server("mdshift-src", kSrcUser, kSrcPw, cu::source_config()));
    mft::DovecotServer dst(server("mdshift-dst", kDstUser, kDstPw, cu::target_config()));
    src.save_message(kSrcUser, "INBOX", cu::mail("listed-1"));
    src.save_message(kSrcUser, "INBOX", cu::mail("listed-2"));
    cu::put(src, kSrcUser, "", "Subject: later name\r\n\r\nB\r\n", "S", 1700000200);
    mft::TempDir tmp("mdshift");
    mf::copy::Options opts;
    opts.state_path = tmp.path() + "/state.db";
    auto to = cu::endpoint(dst.imap_port(), kDstUser, kDstPw);

    auto first = mf::copy::copy_account(local(src), to, opts);
    REQUIRE_MESSAGE(first, (first ? "" : first.error().message()));
    CHECK(first->messages_copied == 3);

    cu::put(src, kSrcUser, "", "Subject: earlier name\r\n\r\nA\r\n", "", 1700000100);
    auto second = mf::copy::copy_account(local(src), to, opts);
    REQUIRE_MESSAGE(second, (second ? "" : second.error().message()));
    CHECK(second->messages_copied == 1);

    auto want = cu::snapshot(src.imap_port(), kSrcUser, kSrcPw); // Dovecot lists both now
    auto third = mf::copy::copy_account(local(src), to, opts);
    REQUIRE_MESSAGE(third, (third ? "" : third.error().message()));
    CHECK(third->messages_copied == 0);
    CHECK(third->messages_recovered == 0);
    auto got = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    CHECK(cu::total(got) == 4);
    CHECK(cu::compare(want, got) == "");
}

// A file that cannot be read in the middle of a MULTIAPPEND group (a symlink: opened with
// O_NOFOLLOW) spoils that command; the group is sent again message by message, so only
// that file is skipped and nothing is duplicated.
TEST_CASE("an unreadable file inside an APPEND group: the others are copied once") {
    mft::DovecotServer src(server("mdgroup-src", kSrcUser, kSrcPw, cu::source_config()));
    mft::DovecotServer dst(server("mdgroup-dst", kDstUser, kDstPw, cu::target_config()));
    for (int i = 0; i < 10; ++i) {
        cu::put(src, kSrcUser, "", cu::mail("g" + std::to_string(i)), "S", 1700000000 + i * 10);
    }
    std::string md = src.mail_dir(kSrcUser);
    std::filesystem::create_symlink(md + "/../outside", md + "/cur/1700000005.link.host:2,S");
    mft::write_file(md + "/../outside", "Subject: outside\r\n\r\nx\r\n", 0600);
    mft::TempDir tmp("mdgroup");
    mf::copy::Options opts;
    opts.state_path = tmp.path() + "/state.db";
    auto to = cu::endpoint(dst.imap_port(), kDstUser, kDstPw);
    auto sum = mf::copy::copy_account(local(src), to, opts);
    REQUIRE_MESSAGE(sum, (sum ? "" : sum.error().message()));
    CHECK(sum->messages_copied == 10);
    REQUIRE(sum->skipped.size() == 1);
    CHECK(sum->skipped[0].reason.find("1700000005.link.host") != std::string::npos);
    CHECK(cu::total(cu::snapshot(dst.imap_port(), kDstUser, kDstPw)) == 10);
    auto again = mf::copy::copy_account(local(src), to, opts);
    REQUIRE(again);
    CHECK(again->messages_copied == 0);
    CHECK(cu::total(cu::snapshot(dst.imap_port(), kDstUser, kDstPw)) == 10);
}

TEST_CASE("flag changes of a Maildir source go to IMAP as a few grouped, pipelined STOREs") {
    // Dovecot's rawlog keeps what each target session received (.in files) when the user's
    // home has a dovecot.rawlog directory: the STORE commands can be counted there.
    const std::string rawlog = "service imap {\n  executable = imap postlogin\n}\n"
                               "service postlogin {\n  executable = script-login -d rawlog\n"
                               "  unix_listener postlogin {\n  }\n}\n";
    mft::DovecotServer src(server("mdflags-src", kSrcUser, kSrcPw, cu::source_config()));
    mft::DovecotServer dst(server("mdflags-dst", kDstUser, kDstPw, cu::target_config() + rawlog));
    for (int i = 0; i < 40; ++i) {
        src.save_message(kSrcUser, "INBOX", cu::mail("flag-" + std::to_string(i), 400));
    }
    mft::TempDir tmp("mdflags");
    mf::copy::Options opts;
    opts.state_path = tmp.path() + "/state.db";
    auto to = cu::endpoint(dst.imap_port(), kDstUser, kDstPw);
    auto first = mf::copy::copy_account(local(src), to, opts);
    REQUIRE_MESSAGE(first, (first ? "" : first.error().message()));
    REQUIRE(first->messages_copied == 40);

    // 30 messages read, 10 of them flagged too; the user marks one message on the new
    // server with a keyword of their own, which the resync must leave alone.
    std::string out;
    REQUIRE(
        src.doveadm({"flags", "add", "-u", kSrcUser, "\\Seen", "mailbox", "INBOX", "uid", "1:30"},
                    &out) == 0);
    REQUIRE(src.doveadm(
                {"flags", "add", "-u", kSrcUser, "\\Flagged", "mailbox", "INBOX", "uid", "21:30"},
                &out) == 0);
    REQUIRE(dst.doveadm({"flags", "add", "-u", kDstUser, "$Mine", "mailbox", "INBOX", "uid", "5"},
                        &out) == 0);
    const std::filesystem::path logs =
        std::filesystem::path(dst.mail_dir(kDstUser)).parent_path() / "dovecot.rawlog";
    std::filesystem::create_directory(logs);
    std::filesystem::permissions(logs, std::filesystem::perms::all);

    auto second = mf::copy::copy_account(local(src), to, opts);
    REQUIRE_MESSAGE(second, (second ? "" : second.error().message()));
    CHECK(second->messages_copied == 0);
    CHECK(second->messages_flag_updates == 30);
    int stores = 0;
    for (const auto& e : std::filesystem::directory_iterator(logs)) {
        if (e.path().extension() != ".in") {
            continue;
        }
        std::string text = mft::read_file(e.path().string());
        for (auto p = text.find("UID STORE"); p != std::string::npos;
             p = text.find("UID STORE", p + 1)) {
            ++stores;
        }
    }
    CHECK(stores == 2); // one per message before: 30

    auto want = cu::snapshot(src.imap_port(), kSrcUser, kSrcPw);
    auto got = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    auto& msgs = got.folders["INBOX"];
    REQUIRE(msgs.size() == 40);
    CHECK(msgs[4].flags == "$Mine \\Seen");
    msgs[4].flags = "\\Seen";
    CHECK(cu::compare(want, got) == "");
    auto third = mf::copy::copy_account(local(src), to, opts);
    REQUIRE(third);
    CHECK(third->messages_flag_updates == 0);
}
