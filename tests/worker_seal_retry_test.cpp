// worker_seal_retry_test.cpp — a seal that failed at the first login is retried at the next
// login that has the password, on two real Dovecots: the spool is a full 64 KiB tmpfs at the
// first login (the login still succeeds, the copy job fails "no sealed password"); space is
// freed, the user logs in again, the password is sealed, the job runs, the mailbox arrives.
// Also: a login with the entry in place writes nothing to the spool.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "support/migration_world.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace std::chrono_literals;
using mf::AccountState;

namespace {

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// A tiny tmpfs over the spool directory, filled to the last byte; unmounted at the end.
struct FullSpool {
    std::string dir;
    std::string filler;
    bool mounted = false;
    FullSpool(const std::string& spool_dir, gid_t group) : dir(spool_dir) {
        ::mkdir(dir.c_str(), 02770);
        std::string opts = "size=64k,mode=2770,gid=" + std::to_string(group);
        mounted = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) == 0;
        INFO("mount tmpfs on ", dir, ": ", std::strerror(errno));
        REQUIRE(mounted);
        filler = dir + "/.filler";
        int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        REQUIRE(fd >= 0);
        std::string block(4096, 'x');
        while (::write(fd, block.data(), block.size()) > 0) {
        }
        while (::write(fd, block.data(), 1) > 0) { // the last partial block
        }
        ::close(fd);
    }
    void make_room() const { REQUIRE(::unlink(filler.c_str()) == 0); }
    ~FullSpool() {
        if (mounted) {
            ::umount2(dir.c_str(), MNT_DETACH);
        }
    }
    FullSpool(const FullSpool&) = delete;
    FullSpool& operator=(const FullSpool&) = delete;
};

mf::Job job_of(const wt::World& w, const std::string& account) {
    mf::Job last;
    for (auto& j : w.jobs()) {
        if (j.account == account && j.id > last.id) {
            last = j;
        }
    }
    REQUIRE_MESSAGE(last.id != 0, "no job for " << account);
    return last;
}

bool spool_has(const wt::World& w, const std::string& account) {
    struct stat st {};
    return ::stat((w.spool_dir() + "/" + account + ".sealed").c_str(), &st) == 0;
}

} // namespace

TEST_CASE("a seal that failed at the first login (spool full) is retried at the next login") {
    wt::WorldOptions o;
    o.users = {{"anna@example.com", "anna-pw-42"}};
    wt::World w(o);
    wt::fill_mailbox(w.old, "anna@example.com", "", 20, 3000, 1);
    wt::fill_mailbox(w.old, "anna@example.com", "Sent", 5, 2000, 2);
    FullSpool full(w.spool_dir(), w.mf_group);

    // First login: provisioned and answered OK although the seal finds no space.
    REQUIRE(wt::imap_login(w.fresh->imap_port(), "anna", "anna-pw-42").rfind("a1 OK", 0) == 0);
    CHECK_FALSE(spool_has(w, "anna@example.com"));
    auto first = w.start_worker({"--once"});
    CHECK(first.wait(60s) == 0);
    auto j = job_of(w, "anna@example.com");
    INFO("worker log:\n", mft::read_file(first.log));
    CHECK(j.state == mf::JobState::failed);
    CHECK(has(j.last_error, "no sealed password"));
    CHECK(w.account("anna@example.com")->state == AccountState::failed);

    // Space again; the user logs in again (answered from the store): sealed, queued, copied.
    full.make_room();
    REQUIRE(wt::imap_login(w.fresh->imap_port(), "anna", "anna-pw-42").rfind("a1 OK", 0) == 0);
    CHECK(spool_has(w, "anna@example.com"));
    CHECK(job_of(w, "anna@example.com").state == mf::JobState::queued);
    auto second = w.start_worker({"--once"});
    CHECK(second.wait(120s) == 0);
    INFO("worker log:\n", mft::read_file(second.log));
    CHECK(w.account("anna@example.com")->state == AccountState::synced);
    CHECK(wt::counts(*w.fresh, "anna@example.com") == wt::counts(w.old, "anna@example.com"));

    // With the entry in place, a later login leaves the spool and the jobs alone.
    struct stat before {};
    REQUIRE(::stat((w.spool_dir() + "/anna@example.com.sealed").c_str(), &before) == 0);
    const auto jobs_before = w.jobs().size();
    std::this_thread::sleep_for(1100ms); // a rewrite would show in the mtime
    REQUIRE(wt::imap_login(w.fresh->imap_port(), "anna", "anna-pw-42").rfind("a1 OK", 0) == 0);
    struct stat after {};
    REQUIRE(::stat((w.spool_dir() + "/anna@example.com.sealed").c_str(), &after) == 0);
    CHECK(after.st_ino == before.st_ino);
    CHECK(after.st_mtim.tv_sec == before.st_mtim.tv_sec);
    CHECK(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
    CHECK(w.jobs().size() == jobs_before);
}

TEST_CASE("a wrong password at a later login seals nothing and queues nothing") {
    wt::WorldOptions o;
    o.users = {{"bob@example.com", "bob-pw-77"}};
    wt::World w(o);
    wt::fill_mailbox(w.old, "bob@example.com", "", 3, 2000, 1);
    FullSpool full(w.spool_dir(), w.mf_group);
    REQUIRE(wt::imap_login(w.fresh->imap_port(), "bob", "bob-pw-77").rfind("a1 OK", 0) == 0);
    auto first = w.start_worker({"--once"});
    CHECK(first.wait(60s) == 0);
    REQUIRE(job_of(w, "bob@example.com").state == mf::JobState::failed);
    full.make_room();
    CHECK(wt::imap_login(w.fresh->imap_port(), "bob", "not-bobs-pw").rfind("a1 OK", 0) != 0);
    CHECK_FALSE(spool_has(w, "bob@example.com"));
    CHECK(job_of(w, "bob@example.com").state == mf::JobState::failed);
}
