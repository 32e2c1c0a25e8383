// worker_wake_test.cpp — the worker starts work at once, not at its next poll: with
// poll_interval = 60s, a job queued by a first login after the worker went to sleep is
// claimed within seconds (the login side touches the wake file); with one copy slot, a
// finished copy hands its slot to the waiting job at once; a wake-up with nothing queued
// (the wake file touched by hand) claims nothing and the worker keeps running; and a spool
// directory that does not exist yet when the worker starts (a fresh install: the first
// seal creates it) still wakes the worker. Real Dovecots (old and new), real worker.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/queue.hpp"
#include "support/migration_world.hpp"

#include <filesystem>

using namespace std::chrono_literals;
using mf::AccountState;
using Clock = std::chrono::steady_clock;

namespace {

// The world writes poll_interval = "1s"; these tests need a long one, so that only a
// wake-up can explain a prompt claim.
void long_poll(const wt::World& w) {
    std::string text = mft::read_file(w.config);
    std::string from = "poll_interval = \"1s\"";
    auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), "poll_interval = \"60s\"");
    mft::write_file(w.config, text, 0640);
    wt::chown_path(w.config, 0, w.mf_group);
}

double secs_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Logs in at the new server (a first login: provision, seal, enqueue, wake) and returns
// how long after the login answer the account reached `synced`.
double login_until_synced(const wt::World& w, const std::string& user, const std::string& pw,
                          std::chrono::milliseconds limit) {
    std::string reply = wt::imap_login(w.fresh->imap_port(), user, pw);
    REQUIRE_MESSAGE(reply.rfind("a1 OK", 0) == 0, reply);
    auto t0 = Clock::now();
    bool synced = w.wait_state({user}, AccountState::synced, limit);
    double took = secs_since(t0);
    INFO("worker log:\n", synced ? std::string() : mft::read_file(w.dir.file("worker-1.log")));
    CHECK_MESSAGE(synced, user << " not synced within " << limit.count() << " ms");
    return took;
}

wt::WorldOptions options(unsigned copies) {
    wt::WorldOptions o;
    o.users = {{"anna@example.com", "anna-pw-1"},
               {"bob@example.com", "bob-pw-2"},
               {"carl@example.com", "carl-pw-3"}};
    o.copies = copies;
    // The loop also wakes to renew leases (every lease/3): a long lease, so that neither
    // that nor poll_interval can explain a prompt claim.
    o.lease = "300s";
    return o;
}

} // namespace

TEST_CASE("a job queued after the worker went to sleep is claimed at once, not at poll_interval") {
    wt::World w(options(2));
    wt::fill_mailbox(w.old, "anna@example.com", "", 5, 2000, 1);
    long_poll(w);
    auto worker = w.start_worker();
    std::this_thread::sleep_for(1500ms); // the worker has looked, found nothing, and sleeps
    double took = login_until_synced(w, "anna@example.com", "anna-pw-1", 20s);
    CHECK_MESSAGE(took < 5.0, "synced " << took << " s after the login (poll_interval 60 s)");
    worker.signal(SIGTERM);
    CHECK(worker.wait(30s) == 0);
}

TEST_CASE("one copy slot: a finished copy frees the slot for the waiting job at once") {
    wt::World w(options(1));
    wt::fill_mailbox(w.old, "anna@example.com", "", 30, 20000, 1);
    wt::fill_mailbox(w.old, "bob@example.com", "", 5, 2000, 2);
    long_poll(w);
    auto worker = w.start_worker();
    std::this_thread::sleep_for(1500ms);
    REQUIRE(
        wt::imap_login(w.fresh->imap_port(), "anna@example.com", "anna-pw-1").rfind("a1 OK", 0) ==
        0);
    // bob's job waits for anna's slot; when anna's copy ends, bob's must start then.
    double took = login_until_synced(w, "bob@example.com", "bob-pw-2", 30s);
    CHECK(w.wait_state({"anna@example.com"}, AccountState::synced, 1s));
    CHECK_MESSAGE(took < 8.0, "bob synced " << took << " s after his login (one slot, poll 60 s)");
    worker.signal(SIGTERM);
    CHECK(worker.wait(30s) == 0);
}

TEST_CASE("a wake-up with nothing queued claims nothing; a later job is still claimed at once") {
    wt::World w(options(2));
    wt::fill_mailbox(w.old, "carl@example.com", "", 3, 2000, 3);
    long_poll(w);
    auto worker = w.start_worker();
    std::this_thread::sleep_for(1500ms);
    // Spurious wake-ups, as a stray `touch` or a systemd path unit would make them.
    // The spool directory exists once keys init ran (it is setgid mailferry, so the wake
    // file made here stays writable by the login side).
    REQUIRE(std::filesystem::is_directory(w.spool_dir()));
    const std::string wake = w.spool_dir() + "/wake";
    for (int i = 0; i < 5; ++i) {
        REQUIRE(mf::queue::wake_worker(wake));
    }
    // Made by root here under umask 022: give the login side (group mailferry) its write
    // back, as it has on a file it made itself.
    REQUIRE(::chmod(wake.c_str(), 0660) == 0);
    std::this_thread::sleep_for(500ms);
    CHECK(w.jobs().empty());
    CHECK(worker.alive()); // still running
    double took = login_until_synced(w, "carl@example.com", "carl-pw-3", 20s);
    CHECK_MESSAGE(took < 5.0, "synced " << took << " s after the login");
    worker.signal(SIGTERM);
    CHECK(worker.wait(30s) == 0);
}

TEST_CASE("the spool directory does not exist yet when the worker starts: the wake still works") {
    wt::World w(options(2));
    wt::fill_mailbox(w.old, "anna@example.com", "", 5, 2000, 1);
    long_poll(w);
    std::filesystem::remove_all(w.spool_dir()); // a fresh install: no login has sealed yet
    auto worker = w.start_worker();
    std::this_thread::sleep_for(1500ms);
    double took = login_until_synced(w, "anna@example.com", "anna-pw-1", 20s);
    CHECK_MESSAGE(took < 5.0, "synced " << took << " s after the login (poll_interval 60 s)");
    worker.signal(SIGTERM);
    CHECK(worker.wait(30s) == 0);
}
