// copier_crash_test.cpp — kill -9 mailferry-copy at random moments, then finish the copy:
// the target must equal the source, nothing lost, nothing duplicated.
//
// The program runs as a child process against two real Dovecots; it is killed with
// SIGKILL at least 20 times at random delays, each before the target has gained 100 more
// messages (the seed is printed, so a failure can be replayed with MF_CRASH_SEED), each
// time leaving whatever it had in flight: committed
// intents, APPENDs sent and maybe saved, half-sent literals. A final run must then finish
// with exit 0, and the account read back over IMAP must match the source exactly. The
// same is done (10 kills, half of them after a random number of new messages on the target)
// with a local Maildir as the source (--from maildir:), and with a Maildir of ours as the
// target (--to maildir:), where the UIDs must also come out as the source has them.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_util.hpp"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <random>
#include <sys/wait.h>
#include <thread>

using namespace std::chrono_literals;

namespace {

pid_t spawn(const std::vector<std::string>& argv, const std::string& log) {
    pid_t pid = ::fork();
    if (pid == 0) {
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        std::vector<char*> args;
        for (const auto& a : argv) {
            args.push_back(const_cast<char*>(a.c_str())); // NOLINT: execv's signature
        }
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    return pid;
}

// Starts the program `times` times and SIGKILLs it when `strike` says (strike waits, and
// returns true if the program exited by itself first, its status in `status`); returns
// how often it struck (fewer when a run finished first: then the corpus was too small for
// this machine, and that run must have succeeded).
int kill_repeatedly(const std::vector<std::string>& argv, const std::string& log, int times,
                    const std::function<bool(pid_t, int kills, int& status)>& strike) {
    int kills = 0;
    while (kills < times) {
        pid_t pid = spawn(argv, log);
        REQUIRE(pid > 0);
        int status = 0;
        if (strike(pid, kills, status) || ::waitpid(pid, &status, WNOHANG) == pid) {
            INFO(mft::read_file(log));
            CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
            break;
        }
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        ++kills;
    }
    return kills;
}

// Message files in a Maildir tree (what the target Dovecot has saved so far).
std::size_t maildir_files(const std::string& root) {
    std::size_t n = 0;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        auto dir = it->path().parent_path().filename();
        if ((dir == "cur" || dir == "new") && it->is_regular_file(ec)) {
            ++n;
        }
    }
    return n;
}

// After a random delay, or once the target (a Maildir tree) has gained `cap` more
// messages, whichever comes first: a fast machine must not finish the copy before the
// last kill, and a slow one still gets kills deep in a folder.
int kill_randomly(const std::vector<std::string>& argv, const std::string& log, int times,
                  std::uniform_int_distribution<int>& delay_ms, std::mt19937& rng,
                  const std::string& target_root, std::size_t cap) {
    return kill_repeatedly(argv, log, times, [&](pid_t pid, int, int& status) {
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms(rng));
        std::size_t limit = maildir_files(target_root) + cap;
        while (std::chrono::steady_clock::now() < until && maildir_files(target_root) < limit) {
            if (::waitpid(pid, &status, WNOHANG) == pid) {
                return true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        return false;
    });
}

// Every other kill waits for the target to gain a random number of messages (at most
// `step`) instead of a random time: listing a large local tree takes seconds or
// milliseconds depending on the machine and its load, and kills that all land before the
// first APPEND prove nothing. The others strike at 5–300 ms, in the startup.
int kill_at_progress(const std::vector<std::string>& argv, const std::string& log,
                     const std::string& target_root, int times, int step, std::mt19937& rng) {
    std::uniform_int_distribution<int> early_ms(5, 300);
    std::uniform_int_distribution<int> more(1, step);
    return kill_repeatedly(argv, log, times, [&](pid_t pid, int kills, int& status) {
        if (kills % 2 == 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(early_ms(rng)));
            return false;
        }
        std::size_t want = maildir_files(target_root) + static_cast<std::size_t>(more(rng));
        auto give_up = std::chrono::steady_clock::now() + 120s;
        while (maildir_files(target_root) < want && std::chrono::steady_clock::now() < give_up) {
            if (::waitpid(pid, &status, WNOHANG) == pid) {
                return true;
            }
            std::this_thread::sleep_for(2ms);
        }
        return false;
    });
}

// A loopback Dovecot with IMAP only, no TLS, one user.
mft::DovecotOptions plain_server(const std::string& label, const std::string& user,
                                 const std::string& pw, const std::string& conf) {
    mft::DovecotOptions o;
    o.label = label;
    o.users = {{user, pw}};
    o.tls = o.imaps = o.pop3 = o.pop3s = o.submission = false;
    o.extra_config = conf;
    return o;
}

} // namespace

constexpr int kMessages = 5000;

TEST_CASE("killed at 20+ random points, the copy resumes without loss or duplicates") {
    const std::string su = "crash@old.example";
    const std::string du = "crash@new.example";
    mft::DovecotServer src(plain_server("crash-src", su, "src-pw", cu::source_config()));
    mft::DovecotServer dst(plain_server("crash-dst", du, "dst-pw", cu::target_config()));

    unsigned seed = static_cast<unsigned>(std::random_device{}());
    if (const char* s = std::getenv("MF_CRASH_SEED")) {
        seed = static_cast<unsigned>(std::strtoul(s, nullptr, 10));
    }
    MESSAGE("MF_CRASH_SEED=" << seed);
    std::mt19937 rng(seed);

    const char* folders[] = {"", "Sent", "Archive.2023", "Lists.dev"};
    cu::write_keywords(src, su, "", {"$Forwarded", "project-x"});
    std::uniform_int_distribution<int> size(400, 16000);
    for (int i = 0; i < kMessages; ++i) {
        const char* f = folders[i % 4];
        std::size_t n = i % 397 == 0 ? 300000 : static_cast<std::size_t>(size(rng));
        std::string flags = i % 3 == 0 ? "S" : (i % 5 == 0 ? "FS" : "");
        if (f[0] == '\0' && i % 7 == 0) {
            flags += "ab";
        }
        cu::put(src, su, f, cu::mail("m" + std::to_string(i), n, static_cast<char>('a' + i % 26)),
                flags);
    }
    REQUIRE(src.doveadm({"mailbox", "subscribe", "-u", su, "Sent"}) == 0);

    mft::TempDir tmp("copier-crash");
    mft::write_file(tmp.file("src.pw"), "src-pw\n", 0600);
    mft::write_file(tmp.file("dst.pw"), "dst-pw\n", 0600);
    const std::vector<std::string> argv = {
        mft::program_path("copier", "mailferry-copy"), "--from",
        "imap+plain://" + su + "@127.0.0.1:" + std::to_string(src.imap_port()),
        "--from-password-file", tmp.file("src.pw"), "--to",
        "imap+plain://" + du + "@127.0.0.1:" + std::to_string(dst.imap_port()),
        "--to-password-file", tmp.file("dst.pw"), "--state", tmp.file("state.db"), "--quiet",
        // Small steps: more journal points to strike between, and a copy slow enough that
        // 20 kills land before it is done even on an idle machine.
        "--connections", "2", "--batch", "10", "--window", "8", "--multiappend", "4"};

    // Delays from "still starting up" to "deep in a folder": a run needs a few hundred
    // milliseconds to log in, list and resolve what the last one left open.
    std::uniform_int_distribution<int> delay_ms(5, 1000);
    int kills = kill_randomly(argv, tmp.file("runs.log"), 20, delay_ms, rng, dst.mail_dir(du),
                              static_cast<std::size_t>(kMessages / 50));
    MESSAGE("killed " << kills << " times");
    REQUIRE(kills >= 20);
    // The kills must have struck mid-copy, or this test proves nothing.
    std::string status;
    REQUIRE(dst.doveadm({"mailbox", "status", "-u", du, "messages", "*"}, &status) == 0);
    long before = 0;
    for (std::size_t p = status.find("messages="); p != std::string::npos;
         p = status.find("messages=", p + 1)) {
        before += std::strtol(status.c_str() + p + 9, nullptr, 10);
    }
    MESSAGE(before << " of " << kMessages << " messages on the target before the final run");
    CHECK(before > 0);
    CHECK(before < kMessages);

    auto fin = mft::run(argv, {}, 300s);
    INFO(fin.err);
    REQUIRE(fin.exit_code == 0);

    auto s = cu::snapshot(src.imap_port(), su, "src-pw");
    auto d = cu::snapshot(dst.imap_port(), du, "dst-pw");
    CHECK(cu::total(s) == kMessages);
    CHECK(cu::total(d) == cu::total(s)); // no duplicates, nothing lost
    CHECK(cu::compare(s, d) == "");

    // And one more run changes nothing.
    auto again = mft::run(argv, {}, 120s);
    CHECK(again.exit_code == 0);
    CHECK(cu::total(cu::snapshot(dst.imap_port(), du, "dst-pw")) == kMessages);
}

TEST_CASE("a Maildir source killed at 10 random points resumes without loss or duplicates") {
    const std::string su = "mdcrash@old.example";
    const std::string du = "mdcrash@new.example";
    mft::DovecotServer src(plain_server("mdcrash-src", su, "src-pw", cu::source_config()));
    mft::DovecotServer dst(plain_server("mdcrash-dst", du, "dst-pw", cu::target_config()));
    std::mt19937 rng(static_cast<unsigned>(std::random_device{}()));
    constexpr int kLocal = 1500;
    const char* folders[] = {"", "Sent", "Archive.2023"};
    std::uniform_int_distribution<int> size(400, 9000);
    for (int i = 0; i < kLocal; ++i) {
        cu::put(src, su, folders[i % 3],
                cu::mail("l" + std::to_string(i), static_cast<std::size_t>(size(rng))),
                i % 3 == 0 ? "S" : "");
    }
    mft::TempDir tmp("copier-mdcrash");
    mft::write_file(tmp.file("dst.pw"), "dst-pw\n", 0600);
    const std::vector<std::string> argv = {mft::program_path("copier", "mailferry-copy"),
                                           "--from",
                                           "maildir:" + src.mail_dir(su),
                                           "--to",
                                           "imap+plain://" + du +
                                               "@127.0.0.1:" + std::to_string(dst.imap_port()),
                                           "--to-password-file",
                                           tmp.file("dst.pw"),
                                           "--state",
                                           tmp.file("state.db"),
                                           "--quiet"};
    int kills =
        kill_at_progress(argv, tmp.file("runs.log"), dst.mail_dir(du), 10, kLocal / 10, rng);
    MESSAGE("killed " << kills << " times");
    CHECK(kills >= 5);
    // The kills must have struck mid-copy, or this test proves nothing.
    auto mid = cu::total(cu::snapshot(dst.imap_port(), du, "dst-pw"));
    MESSAGE(mid << " of " << kLocal << " messages on the target before the final run");
    CHECK(mid > 0);
    CHECK(mid < kLocal);
    auto fin = mft::run(argv, {}, 300s);
    INFO(fin.err);
    REQUIRE(fin.exit_code == 0);
    auto s = cu::snapshot(src.imap_port(), su, "src-pw");
    auto d = cu::snapshot(dst.imap_port(), du, "dst-pw");
    CHECK(cu::total(s) == kLocal);
    CHECK(cu::total(d) == kLocal); // no duplicates, nothing lost
    CHECK(cu::compare(s, d) == "");
}

TEST_CASE("into a Maildir of ours, killed at 10 points: no loss, no duplicates, UIDs kept") {
    const std::string su = "tocrash@old.example";
    const std::string du = "tocrash@new.example";
    mft::DovecotServer src(plain_server("tocrash-src", su, "src-pw", cu::source_config()));
    mft::DovecotServer dst(plain_server("tocrash-dst", du, "dst-pw", cu::target_config()));
    std::mt19937 rng(static_cast<unsigned>(std::random_device{}()));
    constexpr int kCount = 1500;
    const char* folders[] = {"", "Sent", "Archive.2023"};
    std::uniform_int_distribution<int> size(400, 9000);
    for (int i = 0; i < kCount; ++i) {
        cu::put(src, su, folders[i % 3],
                cu::mail("t" + std::to_string(i), static_cast<std::size_t>(size(rng))),
                i % 3 == 0 ? "S" : "");
    }
    mft::TempDir tmp("copier-tocrash");
    mft::write_file(tmp.file("src.pw"), "src-pw\n", 0600);
    const std::vector<std::string> argv = {mft::program_path("copier", "mailferry-copy"),
                                           "--from",
                                           "imap+plain://" + su +
                                               "@127.0.0.1:" + std::to_string(src.imap_port()),
                                           "--from-password-file",
                                           tmp.file("src.pw"),
                                           "--to",
                                           "maildir:" + dst.mail_dir(du),
                                           "--state",
                                           tmp.file("state.db"),
                                           "--quiet",
                                           "--multiappend",
                                           "8"};
    int kills =
        kill_at_progress(argv, tmp.file("runs.log"), dst.mail_dir(du), 10, kCount / 10, rng);
    MESSAGE("killed " << kills << " times");
    CHECK(kills >= 5);
    // Counted on disk: a kill inside a commit leaves the uidlist lock, which Dovecot
    // respects (IMAP waits) until our next run takes it over or it goes stale (2 min).
    auto mid = maildir_files(dst.mail_dir(du));
    MESSAGE(mid << " of " << kCount << " messages on the target before the final run");
    CHECK(mid > 0);
    CHECK(mid < kCount);
    auto fin = mft::run(argv, {}, 300s);
    INFO(fin.err);
    REQUIRE(fin.exit_code == 0);
    auto s = cu::snapshot(src.imap_port(), su, "src-pw");
    auto d = cu::snapshot(dst.imap_port(), du, "dst-pw");
    CHECK(cu::total(s) == kCount);
    CHECK(cu::total(d) == kCount); // no duplicates, nothing lost
    CHECK(cu::compare(s, d) == "");
    for (const auto& [name, msgs] : s.folders) {
        std::map<std::uint32_t, std::string> a;
        std::map<std::uint32_t, std::string> b;
        for (const auto& m : msgs) {
            a[m.uid] = m.body;
        }
        for (const auto& m : d.folders[name]) {
            b[m.uid] = m.body;
        }
        CHECK_MESSAGE(a == b, name << ": UIDs differ");
    }
}
