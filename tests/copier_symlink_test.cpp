// copier_symlink_test.cpp — symbolic links in a local source (Maildir, mbox) are refused
// and reported unless --follow-symlinks, and followed at most once per directory with it.
//
// Trees are written by hand (links cannot come from a server): a linked message file, a
// linked folder, and two directories that each hold two links to the other (followed
// naively, 2^depth walks). Read through the Source API and through the real mailferry-copy
// into a Maildir target. Bad input: --follow-symlinks with a network source.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_source_util.hpp"
#include "source_maildir.hpp"
#include "source_mbox.hpp"
#include "support/test_env.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace fs = std::filesystem;
namespace src = mf::copy::source;
using namespace std::chrono_literals;

namespace {

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

void maildir(const fs::path& dir) {
    for (const char* sub : {"cur", "new", "tmp"}) {
        fs::create_directories(dir / sub);
    }
}

std::vector<std::string> names(src::Source& s) {
    auto fs = s.folders();
    REQUIRE_MESSAGE(fs, (fs ? "" : fs.error().message()));
    std::vector<std::string> out;
    for (const auto& f : *fs) {
        if (!f.noselect) {
            out.push_back(f.name());
        }
    }
    return out;
}

std::string problems(const src::Source& s) {
    std::string out;
    for (const auto& p : s.tree_problems()) {
        out += p.folder + ": " + p.reason + "\n";
    }
    return out;
}

// Runs folders() of `open()`'s source in a child and kills it after 5 s: a walk that
// follows a link loop must fail this test, not hang it.
template <typename Open>
bool lists_in_time(Open open) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        auto s = open();
        ::_exit(s->folders() ? 0 : 1);
    }
    for (auto end = std::chrono::steady_clock::now() + 5s;
         std::chrono::steady_clock::now() < end;) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            return WIFEXITED(status) && WEXITSTATUS(status) == 0;
        }
        std::this_thread::sleep_for(10ms);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return false;
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
}

// root: INBOX with one message and one linked message file; .Linked → a Maildir outside.
struct LinkedMaildir {
    mft::TempDir dir{"mf-symlink"};
    fs::path root = fs::path(dir.file("Maildir"));
    fs::path outside = fs::path(dir.file("outside"));
    LinkedMaildir() {
        maildir(root);
        mft::write_file((root / "cur/1000.M1P1.h:2,S").string(), "Subject: mine\n\nbody\n");
        mft::write_file(dir.file("secret"), "Subject: not yours\n\nsecret\n");
        fs::create_symlink(dir.file("secret"), root / "cur/1001.M2P1.h:2,");
        maildir(outside);
        mft::write_file((outside / "cur/1002.M3P1.h:2,").string(), "Subject: far\n\nx\n");
        fs::create_directory_symlink(outside, root / ".Linked");
    }
};

// root/A and root/B, Maildirs, each with two links to the other.
fs::path link_loop(const mft::TempDir& dir) {
    fs::path root(dir.file("Loop"));
    maildir(root);
    maildir(root / "A");
    maildir(root / "B");
    mft::write_file((root / "A/cur/1000.M1P1.h:2,").string(), "Subject: a\n\na\n");
    for (const char* l : {"l1", "l2"}) {
        fs::create_directory_symlink("../B", root / "A" / l);
        fs::create_directory_symlink("../A", root / "B" / l);
    }
    return root;
}

} // namespace

TEST_CASE("Maildir: a linked message file and a linked folder are skipped and reported") {
    LinkedMaildir t;
    auto s = src::open_maildir(t.root.string());
    auto folders = names(*s);
    CHECK_FALSE(contains(folders, "Linked"));
    std::string why = problems(*s);
    CHECK(has(why, "Linked: " + (t.root / ".Linked").string() + ": a symbolic link, not followed"));
    src::Folder inbox;
    inbox.parts = {"INBOX"};
    inbox.locator = t.root.string();
    auto m = s->messages(inbox);
    REQUIRE(m);
    CHECK(m->messages.size() == 1);
    REQUIRE(m->problems.size() == 1);
    CHECK(has(m->problems[0], "1001.M2P1.h:2,: a symbolic link, not followed"));
    CHECK(has(cu::read_all(*s, inbox, m->messages[0]), "Subject: mine"));
}

TEST_CASE("Maildir with follow_symlinks: the linked file and folder are read") {
    LinkedMaildir t;
    auto s = src::open_maildir(t.root.string(), true);
    CHECK(contains(names(*s), "Linked"));
    CHECK(problems(*s).empty());
    src::Folder inbox;
    inbox.parts = {"INBOX"};
    inbox.locator = t.root.string();
    auto m = s->messages(inbox);
    REQUIRE(m);
    CHECK(m->messages.size() == 2);
    CHECK(m->problems.empty());
    std::string all;
    for (const auto& msg : m->messages) {
        all += cu::read_all(*s, inbox, msg);
    }
    CHECK(has(all, "Subject: not yours"));
}

TEST_CASE("Maildir: two directories linking to each other: the walk ends at once, both ways") {
    mft::TempDir dir("mf-symlink");
    fs::path root = link_loop(dir);
    for (bool follow : {false, true}) {
        INFO("follow_symlinks = ", follow);
        REQUIRE(lists_in_time([&] { return src::open_maildir(root.string(), follow); }));
        auto s = src::open_maildir(root.string(), follow);
        auto folders = names(*s);
        CHECK(folders.size() <= 4); // INBOX, A, B, at most one name through a link
        std::string why = problems(*s);
        CHECK(has(why, follow ? "read once" : "a symbolic link, not followed"));
    }
}

TEST_CASE("mailferry-copy: links skipped and listed; --follow-symlinks reads the loop once") {
    mft::TempDir dir("mf-symlink");
    fs::path root = link_loop(dir);
    const std::string copy = mft::program_path("copier", "mailferry-copy");
    auto plain = mft::run({copy, "--from", "maildir:" + root.string(), "--to",
                           "maildir:" + dir.file("dst1"), "--state", dir.file("s1.db")},
                          {}, 30s);
    INFO("stdout: ", plain.out, "\nstderr: ", plain.err);
    CHECK(plain.exit_code == 1); // copied, with items left out
    CHECK(has(plain.err, "a symbolic link, not followed"));
    CHECK(has(plain.out, "\"messages_copied\":1"));

    auto follow =
        mft::run({copy, "--from", "maildir:" + root.string(), "--to", "maildir:" + dir.file("dst2"),
                  "--state", dir.file("s2.db"), "--follow-symlinks"},
                 {}, 30s);
    INFO("stdout: ", follow.out, "\nstderr: ", follow.err);
    CHECK((follow.exit_code == 0 || follow.exit_code == 1)); // not killed by the timeout
    CHECK(has(follow.err, "read once"));

    mft::write_file(dir.file("pw"), "secret\n", 0600);
    auto bad = mft::run({copy, "--from", "imap+plain://a@127.0.0.1:9", "--from-password-file",
                         dir.file("pw"), "--to", "maildir:" + dir.file("dst3"), "--state",
                         dir.file("s3.db"), "--follow-symlinks"},
                        {}, 30s);
    CHECK(bad.exit_code == 2);
    CHECK(has(bad.err, "--follow-symlinks needs a maildir:"));
}

TEST_CASE("mbox: a linked mbox file, a linked directory and a link loop") {
    mft::TempDir dir("mf-symlink");
    fs::path root(dir.file("mail"));
    fs::create_directories(root / "dir1");
    fs::create_directories(root / "dir2");
    const std::string one = "From a@b Mon Jan  1 00:00:00 2024\nSubject: s\n\nx\n";
    mft::write_file((root / "Sent").string(), one);
    mft::write_file(dir.file("other-user"), one);
    fs::create_symlink(dir.file("other-user"), root / "Stolen");
    for (const char* l : {"l1", "l2"}) {
        fs::create_directory_symlink("../dir2", root / "dir1" / l);
        fs::create_directory_symlink("../dir1", root / "dir2" / l);
    }
    REQUIRE(lists_in_time([&] { return src::open_mbox(root.string(), src::MboxQuoting::none); }));
    auto s = src::open_mbox(root.string(), src::MboxQuoting::none);
    auto folders = names(*s);
    CHECK(contains(folders, "Sent"));
    CHECK_FALSE(contains(folders, "Stolen"));
    std::string why = problems(*s);
    CHECK(has(why, "Stolen: " + (root / "Stolen").string() + ": a symbolic link, not followed"));
    CHECK(has(why, "dir1/l1: "));

    REQUIRE(
        lists_in_time([&] { return src::open_mbox(root.string(), src::MboxQuoting::none, true); }));
    auto f = src::open_mbox(root.string(), src::MboxQuoting::none, true);
    folders = names(*f);
    CHECK(contains(folders, "Stolen"));
    CHECK(has(problems(*f), "read once"));
}
