// copier_pop3_copy_test.cpp — copy_account() from a real Dovecot's POP3 (Endpoint::pop3)
// into another Dovecot over IMAP.
//
// Checked: over POP3S with CA verification every message arrives in INBOX byte for byte
// (dot-stuffed lines, bare LF, a "From " line, an empty body); a re-run appends nothing;
// new mail is copied by UIDL; nothing on the POP3 server is deleted unless asked, and with
// pop3_delete only what the target holds; a wrong password
// stops the copy before anything is written; a server that is gone gives a temporary
// error and the next run completes; mailferry-copy takes pop3+plain:// URLs.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_util.hpp"

#include <filesystem>

namespace {

const std::string kSrcUser = "bob@old.example";
const std::string kSrcPw = "pop pw";
const std::string kDstUser = "bob@new.example";
const std::string kDstPw = "pw-new";

mft::DovecotOptions src_opts() {
    mft::DovecotOptions o;
    o.label = "pop3-src";
    o.users = {{kSrcUser, kSrcPw}};
    o.submission = false;
    o.extra_config = cu::source_config();
    return o;
}

mft::DovecotOptions dst_opts() {
    mft::DovecotOptions o;
    o.label = "pop3-dst";
    o.users = {{kDstUser, kDstPw}};
    o.pop3 = o.pop3s = o.submission = false;
    o.tls = o.imaps = false;
    o.extra_config = cu::target_config();
    return o;
}

std::multiset<std::string> bodies(const cu::Account& a) {
    std::multiset<std::string> out;
    auto it = a.folders.find("INBOX");
    if (it != a.folders.end()) {
        for (const auto& m : it->second) {
            out.insert(m.body);
        }
    }
    return out;
}

mf::copy::Endpoint pop3s(const mft::DovecotServer& src, const std::string& pw) {
    auto ep = cu::endpoint(src.pop3s_port(), kSrcUser, pw);
    ep.pop3 = true;
    ep.tls = mf::TlsMode::implicit;
    ep.ca_file = src.ca_file();
    ep.timeout = std::chrono::seconds(10);
    return ep;
}

} // namespace

TEST_CASE("POP3S into IMAP: exact bytes, incremental by UIDL, nothing deleted") {
    mft::DovecotServer src(src_opts());
    mft::DovecotServer dst(dst_opts());
    for (int i = 0; i < 5; ++i) {
        src.save_message(kSrcUser, "INBOX", cu::mail("pop-" + std::to_string(i), 400 + i * 3000));
    }
    src.save_message(kSrcUser, "INBOX", "Subject: dots\r\n\r\n.\r\n..leading dots\r\n.x\r\n");
    src.save_message(kSrcUser, "INBOX", "Subject: bare LF\n\nFrom me\nline\n");
    src.save_message(kSrcUser, "INBOX", "Subject: empty body\r\n\r\n");
    mft::TempDir tmp("pop3copy");
    mf::copy::Options opts;
    opts.state_path = tmp.path() + "/state.db";
    auto to = cu::endpoint(dst.imap_port(), kDstUser, kDstPw);

    auto sum = mf::copy::copy_account(pop3s(src, kSrcPw), to, opts);
    REQUIRE_MESSAGE(sum, (sum ? "" : sum.error().message()));
    CHECK(sum->exact());
    CHECK(sum->messages_copied == 8);
    auto want = cu::snapshot(src.imap_port(), kSrcUser, kSrcPw);
    auto got = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    CHECK(bodies(want).size() == 8); // nothing deleted at the source
    CHECK(bodies(want) == bodies(got));

    auto again = mf::copy::copy_account(pop3s(src, kSrcPw), to, opts);
    REQUIRE(again);
    CHECK(again->messages_copied == 0);

    src.save_message(kSrcUser, "INBOX", cu::mail("pop-new"));
    auto third = mf::copy::copy_account(pop3s(src, kSrcPw), to, opts);
    REQUIRE(third);
    CHECK(third->messages_copied == 1);
    want = cu::snapshot(src.imap_port(), kSrcUser, kSrcPw);
    got = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    CHECK(bodies(want) == bodies(got));
    CHECK(bodies(got).size() == 9);
}

TEST_CASE("POP3 with --pop3-delete: only what the target holds is deleted") {
    mft::DovecotServer src(src_opts());
    mft::DovecotServer dst(dst_opts());
    for (int i = 0; i < 3; ++i) {
        src.save_message(kSrcUser, "INBOX", cu::mail("del-" + std::to_string(i)));
    }
    src.save_message(kSrcUser, "INBOX", cu::mail("too big", 20000));
    mft::TempDir tmp("pop3del");
    mf::copy::Options opts;
    opts.state_path = tmp.path() + "/state.db";
    opts.pop3_delete = true;
    opts.max_message_size = 10000; // the big one is skipped, so it must stay at the source
    auto to = cu::endpoint(dst.imap_port(), kDstUser, kDstPw);

    auto sum = mf::copy::copy_account(pop3s(src, kSrcPw), to, opts);
    REQUIRE_MESSAGE(sum, (sum ? "" : sum.error().message()));
    CHECK(sum->messages_copied == 3);
    CHECK(sum->messages_deleted_at_source == 3);
    CHECK(sum->skipped.size() == 1);
    auto left = cu::snapshot(src.imap_port(), kSrcUser, kSrcPw);
    REQUIRE(bodies(left).size() == 1);
    CHECK(bodies(left).begin()->find("too big") != std::string::npos);
    CHECK(bodies(cu::snapshot(dst.imap_port(), kDstUser, kDstPw)).size() == 3);

    auto again = mf::copy::copy_account(pop3s(src, kSrcPw), to, opts);
    REQUIRE(again);
    CHECK(again->messages_copied == 0);
    CHECK(again->messages_deleted_at_source == 0);

    src.save_message(kSrcUser, "INBOX", cu::mail("later"));
    auto third = mf::copy::copy_account(pop3s(src, kSrcPw), to, opts);
    REQUIRE(third);
    CHECK(third->messages_copied == 1);
    CHECK(third->messages_deleted_at_source == 1);
    CHECK(bodies(cu::snapshot(src.imap_port(), kSrcUser, kSrcPw)).size() == 1);
    CHECK(bodies(cu::snapshot(dst.imap_port(), kDstUser, kDstPw)).size() == 4);
}

TEST_CASE("POP3: a wrong password and a server that is gone") {
    mft::DovecotServer src(src_opts());
    mft::DovecotServer dst(dst_opts());
    src.save_message(kSrcUser, "INBOX", cu::mail("one"));
    mft::TempDir tmp("pop3bad");
    mf::copy::Options opts;
    opts.state_path = tmp.path() + "/state.db";
    auto to = cu::endpoint(dst.imap_port(), kDstUser, kDstPw);

    auto bad = mf::copy::copy_account(pop3s(src, "wrong"), to, opts);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().scope == mf::Scope::account);
    CHECK(bad.error().message().find("log in as") != std::string::npos);
    CHECK(cu::total(cu::snapshot(dst.imap_port(), kDstUser, kDstPw)) == 0);

    src.stop();
    auto gone = mf::copy::copy_account(pop3s(src, kSrcPw), to, opts);
    REQUIRE_FALSE(gone);
    CHECK(gone.error().temporary());
    src.start();
    auto ok = mf::copy::copy_account(pop3s(src, kSrcPw), to, opts);
    REQUIRE_MESSAGE(ok, (ok ? "" : ok.error().message()));
    CHECK(ok->messages_copied == 1);
}

TEST_CASE("mailferry-copy --from pop3+plain://") {
    mft::DovecotServer src(src_opts());
    mft::DovecotServer dst(dst_opts());
    src.save_message(kSrcUser, "INBOX", cu::mail("cli"));
    mft::TempDir tmp("pop3cli");
    mft::write_file(tmp.path() + "/from.pw", kSrcPw, 0600);
    mft::write_file(tmp.path() + "/to.pw", kDstPw, 0600);
    auto r = mft::run({mft::program_path("copier", "mailferry-copy"), "--from",
                       "pop3+plain://" + kSrcUser + "@127.0.0.1:" + std::to_string(src.pop3_port()),
                       "--from-password-file", tmp.path() + "/from.pw", "--to",
                       "imap+plain://" + kDstUser + "@127.0.0.1:" + std::to_string(dst.imap_port()),
                       "--to-password-file", tmp.path() + "/to.pw", "--state", tmp.path() + "/s.db",
                       "--quiet"});
    CHECK_MESSAGE(r.exit_code == 0, (r.out + r.err));
    CHECK(cu::total(cu::snapshot(dst.imap_port(), kDstUser, kDstPw)) == 1);

    // --pop3-delete makes sense only with a POP3 source.
    r = mft::run({mft::program_path("copier", "mailferry-copy"), "--from",
                  "imap+plain://" + kSrcUser + "@127.0.0.1:" + std::to_string(src.imap_port()),
                  "--from-password-file", tmp.path() + "/from.pw", "--to",
                  "imap+plain://" + kDstUser + "@127.0.0.1:" + std::to_string(dst.imap_port()),
                  "--to-password-file", tmp.path() + "/to.pw", "--state", tmp.path() + "/s2.db",
                  "--pop3-delete", "--quiet"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--pop3-delete needs a") != std::string::npos);
    CHECK(cu::total(cu::snapshot(src.imap_port(), kSrcUser, kSrcPw)) == 1);
}
