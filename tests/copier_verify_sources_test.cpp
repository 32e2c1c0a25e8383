// copier_verify_sources_test.cpp — verify_account() when a side is not IMAP: a Maildir,
// mbox or POP3 source, a Maildir target of ours; against real Dovecots.
//
// Checked: after a copy every combination verifies clean with every message compared;
// damage on the target is found for what it is (flags changed, a message expunged, one
// delivered there is "extra" and no failure, a byte changed on disk is "sha256"); POP3's
// missing flags and dates are no mismatch; mail that arrived after the copy is "missing"
// and verify leaves the state file as it was (a missing one is an error, not created);
// mailferry-copy --verify exits 0 on a good copy and 1 with a mismatch, with a JSON report.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_util.hpp"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

namespace {

const std::string kSrcUser = "vera@old.example";
const std::string kSrcPw = "pw-old";
const std::string kDstUser = "vera@new.example";
const std::string kDstPw = "pw-new";

mft::DovecotOptions server(const std::string& label, const std::string& user, const std::string& pw,
                           const std::string& conf, bool pop3 = false) {
    mft::DovecotOptions o;
    o.label = label;
    o.users = {{user, pw}};
    o.pop3 = pop3;
    o.pop3s = o.submission = false;
    o.tls = o.imaps = false;
    o.extra_config = conf;
    return o;
}

mf::copy::Endpoint local(const std::string& spec) {
    mf::copy::Endpoint ep;
    ep.local = spec;
    ep.timeout = std::chrono::seconds(5);
    return ep;
}

mf::copy::Options options(const mft::TempDir& tmp, const std::string& name = "state.db") {
    mf::copy::Options o;
    o.state_path = tmp.path() + "/" + name;
    return o;
}

// Five in INBOX (flags and a keyword on some), one each in Sent and Work.Projects.
void populate(const mft::DovecotServer& src) {
    for (int i = 0; i < 5; ++i) {
        src.save_message(kSrcUser, "INBOX", cu::mail("inbox-" + std::to_string(i), 300 + i * 700));
    }
    src.save_message(kSrcUser, "Sent", cu::mail("sent"));
    src.save_message(kSrcUser, "Work.Projects", cu::mail("proj"));
    std::string out;
    REQUIRE(src.doveadm({"flags", "add", "-u", kSrcUser, "\\Seen $Label1", "mailbox", "INBOX",
                         "uid", "1:3"},
                        &out) == 0);
}

void doveadm(const mft::DovecotServer& srv, const std::vector<std::string>& args) {
    std::string out;
    INFO(out);
    REQUIRE(srv.doveadm(args, &out) == 0);
}

// "what" → how many, "extra" included.
std::map<std::string, int> kinds(const mf::copy::VerifyReport& rep) {
    std::map<std::string, int> out;
    for (const auto& m : rep.mismatches) {
        ++out[m.what];
    }
    return out;
}

std::string describe(const mf::copy::VerifyReport& rep) {
    std::string out;
    for (const auto& m : rep.mismatches) {
        out += m.folder + " " + std::to_string(m.src_uid) + "→" + std::to_string(m.dst_uid) + " " +
               m.what + "\n";
    }
    return out;
}

std::int64_t source_keys(const std::string& db) {
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(h, "SELECT COUNT(*) FROM copy_source_key", -1, &st, nullptr) ==
            SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    std::int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

mf::copy::VerifyReport verify(const mf::copy::Endpoint& from, const mf::copy::Endpoint& to,
                              const mf::copy::Options& opts) {
    auto rep = mf::copy::verify_account(from, to, opts);
    REQUIRE_MESSAGE(rep, (rep ? "" : rep.error().message()));
    INFO(describe(*rep));
    return *rep;
}

} // namespace

TEST_CASE("Maildir source → IMAP target: clean, then flags, missing and extra found") {
    mft::DovecotServer src(server("vfy-md-src", kSrcUser, kSrcPw, cu::source_config()));
    mft::DovecotServer dst(server("vfy-md-dst", kDstUser, kDstPw, cu::target_config()));
    populate(src);
    mft::TempDir tmp("vfy-md");
    auto from = local("maildir:" + src.mail_dir(kSrcUser));
    auto to = cu::endpoint(dst.imap_port(), kDstUser, kDstPw);
    auto opts = options(tmp);
    auto sum = mf::copy::copy_account(from, to, opts);
    REQUIRE_MESSAGE(sum, (sum ? "" : sum.error().message()));
    REQUIRE(sum->exact());
    REQUIRE(sum->messages_copied == 7);

    auto ok = verify(from, to, opts);
    CHECK(ok.ok());
    CHECK(ok.mismatches.empty());
    CHECK(ok.messages_compared == 7);
    CHECK(ok.folders == 3);

    doveadm(dst, {"flags", "add", "-u", kDstUser, "\\Flagged", "mailbox", "INBOX", "uid", "1"});
    doveadm(dst, {"expunge", "-u", kDstUser, "mailbox", "INBOX", "uid", "2"});
    dst.save_message(kDstUser, "INBOX", cu::mail("new-on-target"));
    // Arrived at the old server after the copy, not yet in its dovecot-uidlist.
    cu::put(src, kSrcUser, "Sent", cu::mail("late"), "S");
    const auto keys = source_keys(opts.state_path);
    const std::string db_before = mft::read_file(opts.state_path);

    auto bad = verify(from, to, opts);
    CHECK_FALSE(bad.ok());
    CHECK(bad.messages_compared == 6);
    CHECK(bad.extra_on_target == 1);
    CHECK(kinds(bad) == std::map<std::string, int>{{"extra", 1}, {"flags", 1}, {"missing", 2}});
    for (const auto& m : bad.mismatches) {
        if (m.what == "flags") {
            CHECK(m.folder == "INBOX");
            CHECK(m.dst_uid == 1);
        } else if (m.what == "extra") {
            CHECK(m.folder == "INBOX");
            CHECK(m.src_uid == 0);
        } else if (m.folder == "INBOX") {
            CHECK(m.dst_uid == 2);
        } else {
            CHECK(m.folder == "Sent");
            CHECK(m.dst_uid == 0);
        }
    }
    // Verify numbered the late message without writing it down.
    CHECK(source_keys(opts.state_path) == keys);
    CHECK(mft::read_file(opts.state_path) == db_before);

    // A state file that is not there is an error, not one created.
    auto none = mf::copy::verify_account(from, to, options(tmp, "none.db"));
    REQUIRE_FALSE(none);
    CHECK(none.error().scope == mf::Scope::config);
    CHECK(none.error().message().find("none.db") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(tmp.file("none.db")));

    // Only "extra" left once the copy has run again and the flags were carried back.
    doveadm(dst, {"flags", "remove", "-u", kDstUser, "\\Flagged", "mailbox", "INBOX", "uid", "1"});
    auto again = mf::copy::copy_account(from, to, opts);
    REQUIRE(again);
    auto after = verify(from, to, opts);
    // The expunged message is not copied again (the state maps it): still missing.
    CHECK(kinds(after) == std::map<std::string, int>{{"extra", 1}, {"missing", 1}});
    CHECK(after.messages_compared == 7);
}

TEST_CASE("IMAP source → Maildir target: clean, then a changed byte on disk is sha256") {
    mft::DovecotServer src(server("vfy-tomd-src", kSrcUser, kSrcPw, cu::source_config()));
    mft::DovecotServer dst(server("vfy-tomd-dst", kDstUser, kDstPw, cu::target_config()));
    populate(src);
    mft::TempDir tmp("vfy-tomd");
    auto from = cu::endpoint(src.imap_port(), kSrcUser, kSrcPw);
    auto to = local("maildir:" + dst.mail_dir(kDstUser));
    auto opts = options(tmp);
    auto sum = mf::copy::copy_account(from, to, opts);
    REQUIRE_MESSAGE(sum, (sum ? "" : sum.error().message()));
    REQUIRE(sum->exact());

    auto ok = verify(from, to, opts);
    CHECK(ok.ok());
    CHECK(ok.mismatches.empty());
    CHECK(ok.messages_compared == 7);

    // Same size, same name, same mtime: only the bytes tell.
    std::string victim;
    for (const auto& e : std::filesystem::directory_iterator(dst.mail_dir(kDstUser) + "/cur")) {
        victim = e.path().string();
    }
    REQUIRE(!victim.empty());
    struct stat st {};
    REQUIRE(::stat(victim.c_str(), &st) == 0);
    std::string bytes = mft::read_file(victim);
    auto x = bytes.rfind('x');
    REQUIRE(x != std::string::npos);
    bytes[x] = 'y';
    mft::write_file(victim, bytes, 0600);
    struct timeval tv[2] = {{st.st_mtime, 0}, {st.st_mtime, 0}};
    REQUIRE(::utimes(victim.c_str(), tv) == 0);

    auto bad = verify(from, to, opts);
    CHECK_FALSE(bad.ok());
    CHECK(kinds(bad) == std::map<std::string, int>{{"sha256", 1}});
    CHECK(bad.messages_compared == 7);
}

TEST_CASE("POP3 → IMAP: clean, and the target's flags are no mismatch") {
    mft::DovecotServer src(server("vfy-pop-src", kSrcUser, kSrcPw, cu::source_config(), true));
    mft::DovecotServer dst(server("vfy-pop-dst", kDstUser, kDstPw, cu::target_config()));
    for (int i = 0; i < 4; ++i) {
        src.save_message(kSrcUser, "INBOX", cu::mail("pop-" + std::to_string(i), 500 + i * 900));
    }
    mft::TempDir tmp("vfy-pop");
    auto from = cu::endpoint(src.pop3_port(), kSrcUser, kSrcPw);
    from.pop3 = true;
    auto to = cu::endpoint(dst.imap_port(), kDstUser, kDstPw);
    auto opts = options(tmp);
    auto sum = mf::copy::copy_account(from, to, opts);
    REQUIRE_MESSAGE(sum, (sum ? "" : sum.error().message()));
    REQUIRE(sum->messages_copied == 4);

    // The user read two on the new server.
    doveadm(dst, {"flags", "add", "-u", kDstUser, "\\Seen", "mailbox", "INBOX", "uid", "1:2"});
    auto ok = verify(from, to, opts);
    CHECK(ok.ok());
    CHECK(ok.mismatches.empty());
    CHECK(ok.messages_compared == 4);

    src.save_message(kSrcUser, "INBOX", cu::mail("pop-late"));
    const auto keys = source_keys(opts.state_path);
    auto late = verify(from, to, opts);
    CHECK(kinds(late) == std::map<std::string, int>{{"missing", 1}});
    CHECK(source_keys(opts.state_path) == keys);
}

TEST_CASE("mbox → Maildir and mbox → IMAP: clean") {
    mft::DovecotServer dst(server("vfy-mbox-dst", kDstUser, kDstPw, cu::target_config()));
    mft::TempDir tmp("vfy-mbox");
    std::filesystem::create_directories(tmp.path() + "/mail");
    mft::write_file(tmp.path() + "/mail/inbox",
                    "From a@x Mon Jan  1 10:00:00 2024\nSubject: one\nStatus: RO\n\nfirst\n\n"
                    "From b@x Tue Jan  2 11:30:00 2024\nSubject: two\nX-Status: F\n\n"
                    ">From the start\nsecond\n\n"
                    "From c@x Wed Jan  3 12:00:00 2024\nSubject: three\n\nthird\n",
                    0600);
    mft::write_file(tmp.path() + "/mail/Archive",
                    "From d@x Thu Jan  4 09:00:00 2024\nSubject: old\n\narchived\n", 0600);
    auto from = local("mbox:" + tmp.path() + "/mail");

    SUBCASE("into a Maildir of ours") {
        std::filesystem::create_directories(tmp.path() + "/md");
        auto to = local("maildir:" + tmp.path() + "/md");
        auto opts = options(tmp, "md.db");
        auto sum = mf::copy::copy_account(from, to, opts);
        REQUIRE_MESSAGE(sum, (sum ? "" : sum.error().message()));
        REQUIRE(sum->exact());
        REQUIRE(sum->messages_copied == 4);
        auto ok = verify(from, to, opts);
        CHECK(ok.ok());
        CHECK(ok.mismatches.empty());
        CHECK(ok.messages_compared == 4);
    }
    SUBCASE("into IMAP") {
        auto to = cu::endpoint(dst.imap_port(), kDstUser, kDstPw);
        auto opts = options(tmp, "imap.db");
        auto sum = mf::copy::copy_account(from, to, opts);
        REQUIRE_MESSAGE(sum, (sum ? "" : sum.error().message()));
        REQUIRE(sum->exact());
        auto ok = verify(from, to, opts);
        CHECK(ok.ok());
        CHECK(ok.mismatches.empty());
        CHECK(ok.messages_compared == 4);
    }
}

TEST_CASE("mailferry-copy --from maildir: --verify: exit 0 clean, 1 with a mismatch, JSON") {
    mft::DovecotServer src(server("vfy-cli-src", kSrcUser, kSrcPw, cu::source_config()));
    mft::DovecotServer dst(server("vfy-cli-dst", kDstUser, kDstPw, cu::target_config()));
    populate(src);
    mft::TempDir tmp("vfy-cli");
    mft::write_file(tmp.file("dst.pw"), kDstPw + "\n", 0600);
    auto argv = [&](const std::string& mode, const std::string& report) {
        return std::vector<std::string>{mft::program_path("copier", "mailferry-copy"),
                                        "--from",
                                        "maildir:" + src.mail_dir(kSrcUser),
                                        "--to",
                                        "imap+plain://" + kDstUser +
                                            "@127.0.0.1:" + std::to_string(dst.imap_port()),
                                        "--to-password-file",
                                        tmp.file("dst.pw"),
                                        "--state",
                                        tmp.file("state.db"),
                                        "--quiet",
                                        mode,
                                        "--report",
                                        tmp.file(report)};
    };
    auto good = mft::run(argv("--verify", "good.json"));
    INFO(good.err);
    REQUIRE(good.exit_code == 0);
    auto j = nlohmann::json::parse(mft::read_file(tmp.file("good.json")));
    CHECK(j["ok"] == true);
    CHECK(j["messages_compared"] == 7);
    CHECK(j["mismatches"].empty());

    doveadm(dst, {"flags", "add", "-u", kDstUser, "\\Deleted", "mailbox", "Sent", "uid", "1"});
    auto bad = mft::run(argv("--verify-only", "bad.json"));
    INFO(bad.err);
    CHECK(bad.exit_code == 1);
    auto b = nlohmann::json::parse(mft::read_file(tmp.file("bad.json")));
    CHECK(b["ok"] == false);
    REQUIRE(b["mismatches"].size() == 1);
    CHECK(b["mismatches"][0]["what"] == "flags");
    CHECK(b["mismatches"][0]["folder"] == "Sent");
}

TEST_CASE("Maildir source → IMAP target: a message with NUL bytes verifies") {
    // The copy appends the file's NULs and Dovecot stores them, but its BODY[] shows each
    // as 0x80: verify compares both sides that way instead of reporting sha256.
    mft::DovecotServer src(server("vfy-nul-src", kSrcUser, kSrcPw, cu::source_config()));
    mft::DovecotServer dst(server("vfy-nul-dst", kDstUser, kDstPw, cu::target_config()));
    const std::string nul("Subject: nul\r\n\r\nbefore\0after\r\n", 30);
    cu::put(src, kSrcUser, "", nul, "S");
    mft::TempDir tmp("vfy-nul");
    auto from = local("maildir:" + src.mail_dir(kSrcUser));
    auto to = cu::endpoint(dst.imap_port(), kDstUser, kDstPw);
    auto opts = options(tmp);
    auto sum = mf::copy::copy_account(from, to, opts);
    REQUIRE_MESSAGE(sum, (sum ? "" : sum.error().message()));
    REQUIRE(sum->messages_copied == 1);
    // Dovecot keeps the NUL on disk (its Maildir file stores LF line ends).
    std::string stored;
    for (const auto& e : std::filesystem::directory_iterator(dst.mail_dir(kDstUser) + "/cur")) {
        stored = mft::read_file(e.path().string());
    }
    CHECK(stored.find(std::string("before\0after", 12)) != std::string::npos);
    auto rep = verify(from, to, opts);
    INFO(rep.to_json());
    CHECK(rep.messages_compared == 1);
    CHECK(rep.mismatches.empty());
    CHECK(rep.ok());
}

TEST_CASE("IMAP source → Maildir target: verify reads a folder's bodies with one UID FETCH") {
    // Dovecot's rawlog keeps what each session sent (the .in files) when the user's home has
    // a dovecot.rawlog directory: the verify's commands at the source can be counted there.
    const std::string rawlog = "service imap {\n  executable = imap postlogin\n}\n"
                               "service postlogin {\n  executable = script-login -d rawlog\n"
                               "  unix_listener postlogin {\n  }\n}\n";
    mft::DovecotServer src(server("vfy-pipe-src", kSrcUser, kSrcPw, cu::source_config() + rawlog));
    mft::DovecotServer dst(server("vfy-pipe-dst", kDstUser, kDstPw, cu::target_config()));
    for (int i = 0; i < 30; ++i) {
        src.save_message(kSrcUser, "INBOX", cu::mail("pipe-" + std::to_string(i), 500 + i * 10));
    }
    mft::TempDir tmp("vfy-pipe");
    auto from = cu::endpoint(src.imap_port(), kSrcUser, kSrcPw);
    auto to = local("maildir:" + dst.mail_dir(kDstUser));
    auto opts = options(tmp);
    auto sum = mf::copy::copy_account(from, to, opts);
    REQUIRE_MESSAGE(sum, (sum ? "" : sum.error().message()));

    const std::filesystem::path logs =
        std::filesystem::path(src.mail_dir(kSrcUser)).parent_path() / "dovecot.rawlog";
    std::filesystem::create_directory(logs);
    std::filesystem::permissions(logs, std::filesystem::perms::all);
    auto rep = verify(from, to, opts);
    CHECK(rep.ok());
    CHECK(rep.messages_compared == 30);

    int sessions = 0;
    int body_fetches = 0;
    for (const auto& e : std::filesystem::directory_iterator(logs)) {
        if (e.path().extension() != ".in") {
            continue;
        }
        ++sessions;
        std::string text = mft::read_file(e.path().string());
        for (auto p = text.find("BODY.PEEK[]"); p != std::string::npos;
             p = text.find("BODY.PEEK[]", p + 1)) {
            ++body_fetches;
        }
    }
    REQUIRE(sessions >= 1);
    CHECK(body_fetches == 1); // one per message before: 30
}
