// copier_mbox_copy_test.cpp — copy_account() from local mbox files (Endpoint::local
// "mbox:…") into a real Dovecot over IMAP.
//
// The source files are written by a real Dovecot with mail_location = mbox: (doveadm save,
// flags, subscribe) plus a message an MTA appended behind its back (no X-UID). Checked: the
// target then shows exactly what the source Dovecot shows over IMAP (bytes, flags,
// keywords, dates, folders, subscriptions); the files are not changed by a byte or a
// timestamp (atime included); a re-run appends nothing; flag changes and appended mail are
// carried, and the appended message is not copied again once Dovecot gives it an X-UID;
// a file that is not an mbox is reported and the other folders are copied; mailferry-copy
// --from mbox:… and mboxo:… work and a missing file fails clearly.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_util.hpp"

#include <filesystem>
#include <fstream>

namespace {

const std::string kSrcUser = "anna@old.example";
const std::string kSrcPw = "pw-old";
const std::string kDstUser = "anna@new.example";
const std::string kDstPw = "pw-new";

mft::DovecotOptions server(const std::string& label, const std::string& user, const std::string& pw,
                           bool mbox) {
    mft::DovecotOptions o;
    o.label = label;
    o.users = {{user, pw}};
    o.pop3 = o.pop3s = o.submission = false;
    o.tls = o.imaps = false;
    if (mbox) {
        o.mail_location = "mbox:~/mail:INBOX=~/mail/inbox";
        o.extra_config =
            "mail_fsync = never\nnamespace inbox {\n  inbox = yes\n  separator = /\n}\n";
    } else {
        o.extra_config = cu::target_config();
    }
    return o;
}

std::string mbox_dir(const mft::DovecotServer& srv) {
    return std::filesystem::path(srv.mail_dir(kSrcUser)).parent_path().string() + "/mail";
}

// path → (size, mtime, atime, mode) of everything in the tree but Dovecot's own index.
std::map<std::string, std::tuple<std::uintmax_t, std::int64_t, std::int64_t, unsigned>>
tree(const std::string& root) {
    std::map<std::string, std::tuple<std::uintmax_t, std::int64_t, std::int64_t, unsigned>> out;
    for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
        if (e.path().string().find("/.imap") != std::string::npos) {
            continue;
        }
        struct stat st {};
        REQUIRE(::lstat(e.path().c_str(), &st) == 0);
        out[e.path().string()] = {
            e.is_regular_file() ? e.file_size() : 0, static_cast<std::int64_t>(st.st_mtime),
            e.is_regular_file() ? static_cast<std::int64_t>(st.st_atime) : 0, st.st_mode};
    }
    return out;
}

mf::copy::Endpoint local(const std::string& spec) {
    mf::copy::Endpoint ep;
    ep.local = spec;
    return ep;
}

} // namespace

TEST_CASE("an mbox tree copies exactly, read-only, and incrementally") {
    mft::DovecotServer src(server("mboxcopy-src", kSrcUser, kSrcPw, true));
    mft::DovecotServer dst(server("mboxcopy-dst", kDstUser, kDstPw, false));
    for (int i = 0; i < 6; ++i) {
        src.save_message(kSrcUser, "INBOX", cu::mail("inbox-" + std::to_string(i), 300 + i * 900));
    }
    src.save_message(kSrcUser, "INBOX",
                     "Subject: from lines\n\nFrom here on\n"
                     "From someone@example.org Mon Jan  1 10:00:00 2024\nend\n");
    src.save_message(kSrcUser, "Sent", cu::mail("sent"));
    src.save_message(kSrcUser, "Work/Projects", cu::mail("proj"));
    src.save_message(kSrcUser, "Entwürfe", "Subject: bare LF\n\nline\n");
    auto doveadm = [&](const std::vector<std::string>& args) {
        std::string out;
        REQUIRE_MESSAGE(src.doveadm(args, &out) == 0, out);
    };
    doveadm({"flags", "add", "-u", kSrcUser, "\\Seen $Label1", "mailbox", "INBOX", "uid", "1:4"});
    doveadm(
        {"flags", "add", "-u", kSrcUser, "\\Answered \\Flagged", "mailbox", "INBOX", "uid", "3"});
    doveadm({"mailbox", "subscribe", "-u", kSrcUser, "INBOX", "Work/Projects", "Entwürfe"});
    auto want = cu::snapshot(src.imap_port(), kSrcUser, kSrcPw);

    mft::TempDir tmp("mboxcopy");
    mf::copy::Options opts;
    opts.state_path = tmp.path() + "/state.db";
    auto to = cu::endpoint(dst.imap_port(), kDstUser, kDstPw);
    auto from = local("mbox:" + mbox_dir(src));

    auto before = tree(mbox_dir(src));
    auto sum = mf::copy::copy_account(from, to, opts);
    REQUIRE_MESSAGE(sum, (sum ? "" : sum.error().message()));
    CHECK(sum->exact());
    CHECK(sum->messages_copied == 10);
    CHECK(tree(mbox_dir(src)) == before); // not a byte, not a timestamp

    auto got = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    CHECK(cu::compare(want, got) == "");
    CHECK(cu::total(got) == 10);
    CHECK(got.subscribed.count("Work/Projects") == 1);

    auto again = mf::copy::copy_account(from, to, opts);
    REQUIRE(again);
    CHECK(again->messages_copied == 0);
    CHECK(again->messages_flag_updates == 0);

    // A flag change through Dovecot, then a message an MTA appends (no X-UID yet).
    doveadm({"flags", "add", "-u", kSrcUser, "\\Flagged", "mailbox", "INBOX", "uid", "6"});
    {
        std::ofstream out(mbox_dir(src) + "/inbox", std::ios::app | std::ios::binary);
        out << "From mta@example.org Thu Feb  1 12:00:00 2024\nSubject: appended\n"
               "Message-ID: <appended@test>\n\nFrom the MTA\n\n";
    }
    auto third = mf::copy::copy_account(from, to, opts);
    REQUIRE_MESSAGE(third, (third ? "" : third.error().message()));
    CHECK(third->messages_copied == 1);
    CHECK(third->messages_flag_updates == 1);
    CHECK(third->messages_recovered == 0);
    want = cu::snapshot(src.imap_port(), kSrcUser, kSrcPw); // Dovecot gives it an X-UID
    got = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    CHECK(cu::compare(want, got) == "");
    CHECK(cu::total(got) == 11);

    auto fourth = mf::copy::copy_account(from, to, opts);
    REQUIRE_MESSAGE(fourth, (fourth ? "" : fourth.error().message()));
    CHECK(fourth->messages_copied == 0);
    CHECK(fourth->messages_recovered == 0);
    CHECK(cu::total(cu::snapshot(dst.imap_port(), kDstUser, kDstPw)) == 11);
}

TEST_CASE("a file that is not an mbox is reported, the other folders are copied") {
    mft::DovecotServer dst(server("mboxbad-dst", kDstUser, kDstPw, false));
    mft::TempDir tmp("mboxbad");
    std::string root = tmp.path() + "/mail";
    std::filesystem::create_directories(root + "/Lists");
    mft::write_file(root + "/inbox",
                    "From a@x Mon Jan  1 10:00:00 2024\nSubject: one\nStatus: RO\n\none\n\n"
                    "From a@x Mon Jan  1 11:00:00 2024\nSubject: two\n\ntwo\n",
                    0600);
    mft::write_file(root + "/Broken", "Subject: a lone message\n\nno From_ line\n", 0600);
    mft::write_file(root + "/Empty", "", 0600);
    mft::write_file(root + "/Lists/Cut",
                    "From a@x Mon Jan  1 10:00:00 2024\nSubject: cut\nContent-Length: 9999\n\n"
                    "the first part\n",
                    0600);
    mf::copy::Options opts;
    opts.state_path = tmp.path() + "/state.db";
    auto sum = mf::copy::copy_account(local("mbox:" + root),
                                      cu::endpoint(dst.imap_port(), kDstUser, kDstPw), opts);
    REQUIRE_MESSAGE(sum, (sum ? "" : sum.error().message()));
    CHECK_FALSE(sum->exact());
    REQUIRE(sum->skipped.size() == 1);
    CHECK(sum->skipped[0].folder == "Broken");
    CHECK(sum->skipped[0].reason.find("not an mbox") != std::string::npos);
    CHECK(sum->skipped[0].reason.find("/Broken") != std::string::npos);
    CHECK(sum->messages_copied == 3);
    auto got = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    CHECK(got.folders.count("Empty") == 1);
    REQUIRE(got.folders["Lists/Cut"].size() == 1);
    CHECK(got.folders["Lists/Cut"][0].body == "Subject: cut\r\n\r\nthe first part");
    REQUIRE(got.folders["INBOX"].size() == 2);
    CHECK(got.folders["INBOX"][0].flags == "\\Seen");
}

TEST_CASE("mailferry-copy --from mbox:") {
    mft::DovecotServer dst(server("mboxcli-dst", kDstUser, kDstPw, false));
    mft::TempDir tmp("mboxcli");
    mft::write_file(tmp.path() + "/spool", "From a@x Mon Jan  1 10:00:00 2024\nSubject: one\n\n1\n",
                    0600);
    mft::write_file(tmp.path() + "/to.pw", kDstPw, 0600);
    std::string to = "imap+plain://" + kDstUser + "@127.0.0.1:" + std::to_string(dst.imap_port());
    auto r = mft::run({mft::program_path("copier", "mailferry-copy"), "--from",
                       "mbox:" + tmp.path() + "/spool", "--to", to, "--to-password-file",
                       tmp.path() + "/to.pw", "--state", tmp.path() + "/s.db", "--quiet"});
    CHECK_MESSAGE(r.exit_code == 0, (r.out + r.err));
    CHECK(cu::total(cu::snapshot(dst.imap_port(), kDstUser, kDstPw)) == 1);

    // mboxo: unquotes formail's ">From " lines.
    mft::write_file(tmp.path() + "/quoted",
                    "From a@x Mon Jan  1 10:00:00 2024\nSubject: quoted\n\n>From the past\n", 0600);
    r = mft::run({mft::program_path("copier", "mailferry-copy"), "--from",
                  "mboxo:" + tmp.path() + "/quoted", "--to", to, "--to-password-file",
                  tmp.path() + "/to.pw", "--state", tmp.path() + "/s3.db", "--quiet"});
    CHECK_MESSAGE(r.exit_code == 0, (r.out + r.err));
    auto got = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    REQUIRE(got.folders["INBOX"].size() == 2);
    CHECK(got.folders["INBOX"][1].body == "Subject: quoted\r\n\r\nFrom the past");

    r = mft::run({mft::program_path("copier", "mailferry-copy"), "--from",
                  "mbox:" + tmp.path() + "/none", "--to", to, "--to-password-file",
                  tmp.path() + "/to.pw", "--state", tmp.path() + "/s2.db", "--quiet"});
    CHECK(r.exit_code != 0);
    CHECK_MESSAGE((r.out + r.err).find("No such file") != std::string::npos, (r.out + r.err));
}
