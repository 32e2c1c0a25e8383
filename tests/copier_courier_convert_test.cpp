// copier_courier_convert_test.cpp — mailferry-courier-to-dovecot on a tree real Courier-IMAP
// wrote, then a real Dovecot serving the converted tree must show what Courier showed:
// per folder the same UIDVALIDITY, per message the same UID, flags and keywords, and the
// same subscriptions. Also: without --convert nothing changes; a second run leaves the
// converted folders alone; more than 26 keywords in a folder are reported, not lost silently.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_util.hpp"
#include "courier_imapd.hpp"

#include <filesystem>

namespace {

namespace fs = std::filesystem;

const std::string kUser = "anna@old.example";
const std::string kPw = "pw-anna";

// name → size of every file under root: what "changes nothing" is checked against.
std::map<std::string, std::uintmax_t> listing(const std::string& root) {
    std::map<std::string, std::uintmax_t> out;
    for (const auto& e : fs::recursive_directory_iterator(root)) {
        out[e.path().string()] = e.is_regular_file() ? e.file_size() : 0;
    }
    return out;
}

mft::RunResult convert(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {mft::program_path("copier", "mailferry-courier-to-dovecot")};
    argv.insert(argv.end(), args.begin(), args.end());
    return mft::run(argv);
}

std::uint32_t dovecot_uidvalidity(const mft::DovecotServer& srv, const std::string& box) {
    std::string out;
    REQUIRE(srv.doveadm({"-f", "flow", "mailbox", "status", "-u", kUser, "uidvalidity", box},
                        &out) == 0);
    auto at = out.find("uidvalidity=");
    REQUIRE_MESSAGE(at != std::string::npos, out);
    return static_cast<std::uint32_t>(std::stoul(out.substr(at + 12)));
}

} // namespace

TEST_CASE("a Courier tree converted for Dovecot keeps UIDs, keywords and subscriptions") {
    REQUIRE_MESSAGE(::access(courier::kImapd, X_OK) == 0,
                    "Courier imapd missing: run ./setup.sh deps");
    mft::TempDir tmp("courier-convert");
    std::string root = tmp.path() + "/Maildir";
    for (const char* d : {"/cur", "/new", "/tmp"}) {
        fs::create_directories(root + d);
    }
    std::map<std::string, std::map<std::uint32_t, courier::Seen>> want; // Dovecot name →
    std::map<std::string, std::uint32_t> validity;
    {
        courier::Imapd c(tmp.path());
        c.cmd("CREATE INBOX.Lists");
        c.cmd("CREATE INBOX.Lists.dev");
        c.cmd("SUBSCRIBE INBOX");
        c.cmd("SUBSCRIBE INBOX.Lists.dev");
        for (int i = 0; i < 6; ++i) {
            std::string flags = i % 2 ? "(\\Seen work)" : "($Forwarded)";
            c.cmd("APPEND INBOX " + flags + " \"0" + std::to_string(i + 1) +
                      "-May-2024 09:00:00 +0000\"",
                  "Subject: m" + std::to_string(i) + "\r\n\r\nbody " + std::to_string(i) + "\r\n",
                  true);
        }
        c.cmd("APPEND INBOX.Lists.dev (\\Flagged) \"10-Jun-2024 09:00:00 +0000\"",
              "Subject: dev\r\n\r\nd\r\n", true);
        c.cmd("SELECT INBOX");
        c.cmd("UID STORE 2 +FLAGS (later \\Answered)");
        c.cmd("UID STORE 3 -FLAGS ($Forwarded)");
        c.cmd("UID STORE 4:5 +FLAGS \\Deleted");
        c.cmd("EXPUNGE"); // UIDs 4 and 5 gone: Dovecot must not hand them out again
        c.cmd("APPEND INBOX () \"20-May-2024 09:00:00 +0000\"", "Subject: after\r\n\r\na\r\n",
              true);
        want["INBOX"] = courier::fetch_all(c, &validity["INBOX"]);
        want["Lists.dev"] = courier::fetch_all(c, &validity["Lists.dev"], "INBOX.Lists.dev");
        c.cmd("LOGOUT");
    }
    REQUIRE(want["INBOX"].size() == 5);
    REQUIRE(want["INBOX"].count(7) == 1);

    // Without --convert: a report, and not a byte changed.
    auto before = listing(root);
    auto dry = convert({root});
    CHECK_MESSAGE(dry.exit_code == 0, (dry.out + dry.err));
    CHECK(dry.out.find("would convert 3 folders, 6 messages") != std::string::npos);
    CHECK(listing(root) == before);

    auto run = convert({"--convert", root});
    REQUIRE_MESSAGE(run.exit_code == 0, (run.out + run.err));
    CHECK(run.out.find("converted 3 folders, 6 messages, 3 keywords") != std::string::npos);
    auto again = convert({"--convert", root});
    CHECK(again.exit_code == 0);
    CHECK(again.out.find("converted 0 folders") != std::string::npos);
    CHECK(again.out.find("has a dovecot-uidlist already") != std::string::npos);

    // Dovecot serves the converted tree.
    mft::DovecotOptions o;
    o.label = "courier-conv";
    o.users = {{kUser, kPw}};
    o.pop3 = o.pop3s = o.submission = o.tls = o.imaps = false;
    o.extra_config = cu::source_config();
    mft::DovecotServer srv(o);
    std::string md = srv.mail_dir(kUser);
    fs::remove_all(md);
    cu::mkdirs_vmail(fs::path(md).parent_path().string());
    // As an rsync -a would: Dovecot's INTERNALDATE is the file's mtime.
    REQUIRE(mft::run({"/bin/cp", "-a", root, md}).exit_code == 0);
    for (const auto& e : fs::recursive_directory_iterator(md)) {
        cu::chown_vmail(e.path().string());
    }
    cu::chown_vmail(md);

    auto got = cu::snapshot(srv.imap_port(), kUser, kPw);
    for (const auto& [box, msgs] : want) {
        INFO(box);
        CHECK(dovecot_uidvalidity(srv, box) == validity[box]);
        std::string name = box == "Lists.dev" ? "Lists/dev" : box;
        REQUIRE(got.folders.count(name) == 1);
        const auto& seen = got.folders[name];
        REQUIRE(seen.size() == msgs.size());
        for (const auto& m : seen) {
            INFO("UID " << m.uid);
            REQUIRE(msgs.count(m.uid) == 1);
            CHECK(m.flags == msgs.at(m.uid).flags);
            CHECK(m.when == msgs.at(m.uid).when);
        }
    }
    CHECK(got.subscribed == std::set<std::string>{"INBOX", "Lists/dev"});
    // The next message Dovecot saves gets a UID above every one Courier gave out.
    srv.save_message(kUser, "INBOX", cu::mail("new on dovecot"));
    auto after = cu::snapshot(srv.imap_port(), kUser, kPw);
    std::uint32_t top = 0;
    for (const auto& m : after.folders["INBOX"]) {
        top = std::max(top, m.uid);
    }
    CHECK(top == 8);
}

TEST_CASE("more than 26 keywords in a folder: the rest is reported") {
    REQUIRE(::access(courier::kImapd, X_OK) == 0);
    mft::TempDir tmp("courier-kw");
    std::string root = tmp.path() + "/Maildir";
    for (const char* d : {"/cur", "/new", "/tmp"}) {
        fs::create_directories(root + d);
    }
    {
        courier::Imapd c(tmp.path());
        std::string kws;
        for (int i = 0; i < 28; ++i) {
            kws += (kws.empty() ? "" : " ") + std::string("kw") + std::to_string(100 + i);
        }
        c.cmd("APPEND INBOX (" + kws + ") \"01-May-2024 09:00:00 +0000\"",
              "Subject: many\r\n\r\nk\r\n", true);
        c.cmd("LOGOUT");
    }
    auto run = convert({"--convert", root});
    CHECK(run.exit_code == 1);
    CHECK(run.err.find("keyword \"kw127\" not carried") != std::string::npos);
    CHECK(run.out.find("26 keywords") != std::string::npos);
    CHECK(fs::exists(root + "/dovecot-uidlist"));

    auto missing = convert({tmp.path() + "/nothing"});
    CHECK(missing.exit_code == 2);
    CHECK(missing.err.find("not a Maildir") != std::string::npos);
}
