// worker_crash_test.cpp — what goes wrong, on two real Dovecots: a worker killed with -9
// mid-copy and another stopped with SIGTERM mid-copy, then a third finishes the copy
// exactly; tampered, truncated, wrong-key and missing spool entries; a missing secret
// key; the store locked by another process; a copy that kills its worker every time
// (stopped after worker.max_crashes). Always: a clear message, nothing lost.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/spool.hpp"
#include "support/migration_world.hpp"
#include "support/store_lock.hpp"

using namespace std::chrono_literals;
using mf::AccountState;

namespace {

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

long inbox_at_new(const wt::World& w, const std::string& user) {
    auto c = wt::counts(*w.fresh, user);
    auto it = c.find("INBOX");
    return it == c.end() ? 0 : it->second;
}

// Polls until the new server's INBOX holds more than `above` messages.
long wait_inbox_above(const wt::World& w, const std::string& user, long above,
                      std::chrono::seconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    long n = 0;
    while ((n = inbox_at_new(w, user)) <= above && std::chrono::steady_clock::now() < end) {
        std::this_thread::sleep_for(10ms);
    }
    return n;
}

mf::Job job_of(const wt::World& w, const std::string& account) {
    for (auto& j : w.jobs()) {
        if (j.account == account) {
            return j;
        }
    }
    FAIL("no job for " << account);
    return {};
}

} // namespace

TEST_CASE("kill -9 and SIGTERM mid-copy: the next worker finishes the copy exactly") {
    constexpr int kMessages = 4000;
    wt::WorldOptions o;
    o.users = {{"big@example.com", "big-pw-123"}};
    o.copies = 1;
    o.lease = "2s";
    wt::World w(o);
    wt::fill_mailbox(w.old, "big@example.com", "", kMessages, 2000, 7);
    REQUIRE(wt::imap_login(w.fresh->imap_port(), "big", "big-pw-123").rfind("a1 OK", 0) == 0);

    auto w1 = w.start_worker();
    long at_kill = wait_inbox_above(w, "big@example.com", 30, 60s);
    w1.signal(SIGKILL);
    CHECK(w1.wait(10s) == 128 + SIGKILL);
    at_kill = inbox_at_new(w, "big@example.com");
    INFO("worker 1 log:\n", mft::read_file(w1.log));
    REQUIRE(at_kill > 0);
    REQUIRE(at_kill < kMessages); // really mid-copy
    auto held = job_of(w, "big@example.com");
    CHECK(held.state == mf::JobState::running); // its lease is still there
    CHECK(w.account("big@example.com")->state == AccountState::copying);

    auto w2 = w.start_worker();
    long at_term = wait_inbox_above(w, "big@example.com", at_kill + 200, 60s);
    w2.signal(SIGTERM);
    CHECK(w2.wait(20s) == 0); // stops at a safe point, promptly
    std::string log2 = mft::read_file(w2.log);
    INFO("worker 2 log:\n", log2);
    CHECK(has(log2, "taking over from"));
    at_term = inbox_at_new(w, "big@example.com");
    REQUIRE(at_term > at_kill);
    if (at_term < kMessages) {
        CHECK(has(log2, "stopped at a safe point; job given back"));
        auto given_back = job_of(w, "big@example.com");
        CHECK(given_back.state == mf::JobState::queued);
        CHECK(given_back.claimed_by.empty());
    } else {
        MESSAGE("worker 2 finished before SIGTERM reached it; the stop path was not exercised");
    }

    auto t0 = std::chrono::steady_clock::now();
    auto w3 = w.start_worker();
    REQUIRE(w.wait_state({"big@example.com"}, AccountState::synced, 90s));
    if (at_term < kMessages) {
        CHECK(std::chrono::steady_clock::now() - t0 < 30s); // no lease to wait out
    }
    w3.signal(SIGTERM);
    CHECK(w3.wait(20s) == 0);
    INFO("worker 3 log:\n", mft::read_file(w3.log));
    CHECK(wt::counts(*w.fresh, "big@example.com") == wt::counts(w.old, "big@example.com"));
    CHECK(inbox_at_new(w, "big@example.com") == kMessages); // nothing twice
    auto report = w.verify("big@example.com", "big-pw-123");
    REQUIRE_MESSAGE(report.ok(), (report.ok() ? "" : report.error().message()));
    CHECK(report->ok());
    CHECK(report->messages_compared == static_cast<std::uint64_t>(kMessages));
    CHECK(report->extra_on_target == 0);
    for (const auto* p : {&w1, &w2, &w3}) {
        CHECK_FALSE(has(mft::read_file(p->log), "Sanitizer"));
    }
}

TEST_CASE("bad spool entries fail their job with a clear message; nothing is lost") {
    wt::WorldOptions o;
    const std::vector<std::string> names = {"good", "tampered", "wrongkey", "missing", "truncated"};
    for (const auto& n : names) {
        o.users.push_back({n + "@example.com", n + "-pw-9"});
    }
    wt::World w(o);
    for (std::size_t i = 0; i < names.size(); ++i) {
        wt::fill_mailbox(w.old, names[i] + "@example.com", "", 3, 2000,
                         static_cast<unsigned>(10 + i));
        REQUIRE(
            wt::imap_login(w.fresh->imap_port(), names[i], names[i] + "-pw-9").rfind("a1 OK", 0) ==
            0);
    }
    mf::spool::Spool sp(w.spool_dir());
    auto path = [&](const std::string& n) { return sp.path_for(n + "@example.com"); };
    const std::string original = mft::read_file(path("tampered"));
    std::string tampered = original;
    tampered[tampered.size() - 5] = static_cast<char>(tampered[tampered.size() - 5] ^ 0x20);
    mft::write_file(path("tampered"), tampered, 0660);
    mft::TempDir other("mf-other-key");
    mf::spool::KeyFiles of{other.file("o.pub"), other.file("o.key"), {}, {}};
    auto other_id = mf::spool::generate_keys(of, false);
    REQUIRE(other_id.ok());
    mf::spool::Sealer other_sealer(of.public_key_file);
    const std::string foreign =
        *other_sealer.seal("wrongkey@example.com", mf::Secret("wrongkey-pw-9"));
    mft::write_file(path("wrongkey"), foreign, 0660);
    ::unlink(path("missing").c_str());
    const std::string cut = mft::read_file(path("truncated")).substr(0, 30);
    mft::write_file(path("truncated"), cut, 0660);

    auto worker = w.start_worker({"--once"});
    CHECK(worker.wait(60s) == 0); // a bad entry is never a crash
    std::string log = mft::read_file(worker.log);
    INFO("worker log:\n", log);
    CHECK_FALSE(has(log, "Sanitizer"));
    CHECK(w.account("good@example.com")->state == AccountState::synced);
    const std::map<std::string, std::string> expect = {
        {"tampered", "tampered with"},
        {"wrongkey", "sealed to key " + *other_id},
        {"missing", "no sealed password for missing@example.com"},
        {"truncated", "truncated: 30 bytes"}};
    for (const auto& [n, text] : expect) {
        CAPTURE(n);
        auto a = w.account(n + "@example.com");
        REQUIRE(a);
        CHECK(a->state == AccountState::failed);
        CHECK(has(a->last_error, text));
        auto j = job_of(w, n + "@example.com");
        CHECK(j.state == mf::JobState::failed); // given up: retrying cannot help
        CHECK(has(j.last_error, text));
        CHECK(has(log, n + "@example.com"));
        CHECK(wt::total(wt::counts(*w.fresh, n + "@example.com")) == 0);
    }
    // The entries are kept as they were, for an admin to look at.
    CHECK(mft::read_file(path("tampered")) == tampered);
    CHECK(mft::read_file(path("wrongkey")) == foreign);
    CHECK(mft::read_file(path("truncated")) == cut);

    // Put the right entry back and retry the given-up jobs: it copies.
    mft::write_file(path("tampered"), original, 0660);
    auto retry = mft::run({wt::kMailferry, "worker", "--retry-failed", "--config", w.config});
    CHECK(retry.exit_code == 0);
    CHECK(has(retry.out, "4 given-up job(s) queued again"));
    auto again = w.start_worker({"--once"});
    CHECK(again.wait(60s) == 0);
    CHECK(w.account("tampered@example.com")->state == AccountState::synced);
    CHECK(wt::counts(*w.fresh, "tampered@example.com") ==
          wt::counts(w.old, "tampered@example.com"));
}

TEST_CASE("missing secret key, store locked by another process: clear errors, no loss") {
    wt::WorldOptions o;
    o.users = {{"mia@example.com", "mia-pw-5"}};
    o.busy_timeout = "1s";
    wt::World w(o);
    wt::fill_mailbox(w.old, "mia@example.com", "", 6, 3000, 20);
    REQUIRE(wt::imap_login(w.fresh->imap_port(), "mia", "mia-pw-5").rfind("a1 OK", 0) == 0);

    const std::string away = w.secret_key() + ".away";
    REQUIRE(::rename(w.secret_key().c_str(), away.c_str()) == 0);
    auto nokey = w.start_worker();
    CHECK(nokey.wait(30s) == 2);
    std::string log = mft::read_file(nokey.log);
    CHECK(has(log, "cannot open the secret key"));
    CHECK(has(log, "No such file"));
    CHECK(has(log, "keys init"));
    auto j = job_of(w, "mia@example.com");
    CHECK(j.state == mf::JobState::queued);
    CHECK(j.runs == 0);
    REQUIRE(::rename(away.c_str(), w.secret_key().c_str()) == 0);

    // Another process holds the store's write lock while the worker starts.
    mft::StoreLockHolder lock(w.db());
    auto worker = w.start_worker();
    std::this_thread::sleep_for(3500ms);
    std::string during = mft::read_file(worker.log);
    CHECK(worker.alive()); // a locked store is a pause, not the end
    CHECK(has(during, "database busy"));
    CHECK(has(during, "will retry"));
    CHECK(w.account("mia@example.com")->state == AccountState::provisioned);
    lock.release();
    CHECK(w.wait_state({"mia@example.com"}, AccountState::synced, 30s));
    CHECK(wt::counts(*w.fresh, "mia@example.com") == wt::counts(w.old, "mia@example.com"));
    worker.signal(SIGTERM);
    CHECK(worker.wait(15s) == 0);
    INFO("worker log:\n", mft::read_file(worker.log));
    CHECK_FALSE(has(mft::read_file(worker.log), "Sanitizer"));
}

TEST_CASE("the same failure max_same_failure times in a row stops the job for an admin") {
    wt::WorldOptions o;
    o.users = {{"anna@example.com", "anna-pw-1"}};
    o.retry_min = "100ms";
    o.worker_extra = "max_same_failure = 2\n";
    wt::World w(o);
    wt::fill_mailbox(w.old, "anna@example.com", "", 3, 2000, 1);
    REQUIRE(wt::imap_login(w.fresh->imap_port(), "anna", "anna-pw-1").rfind("a1 OK", 0) == 0);
    w.old.stop(); // every copy now fails the same way: the old server refuses connections

    auto first = w.start_worker({"--once"});
    CHECK(first.wait(60s) == 0);
    auto j = job_of(w, "anna@example.com");
    CHECK(j.state == mf::JobState::retry); // once is no pattern: try again after a wait
    CHECK(j.attempts == 1);
    std::this_thread::sleep_for(300ms);
    auto second = w.start_worker({"--once"});
    CHECK(second.wait(60s) == 0);
    std::string log = mft::read_file(first.log) + mft::read_file(second.log);
    INFO("worker logs:\n", log);
    j = job_of(w, "anna@example.com");
    CHECK(j.state == mf::JobState::failed); // stopped, not retried for ever
    CHECK(has(j.last_result, "needs an admin: the same error 2 times in a row"));
    CHECK(has(j.last_error, "localhost:")); // names the old server
    CHECK(has(log, "needs an admin"));

    // The admin mends it and queues the job again: it copies.
    w.old.start();
    auto retry = mft::run({wt::kMailferry, "worker", "--retry-failed", "--config", w.config});
    CHECK(retry.exit_code == 0);
    auto third = w.start_worker({"--once"});
    CHECK(third.wait(60s) == 0);
    CHECK(w.account("anna@example.com")->state == AccountState::synced);
    CHECK(wt::counts(*w.fresh, "anna@example.com") == wt::counts(w.old, "anna@example.com"));
}

TEST_CASE("a copy that kills its worker every time stops after max_crashes for an admin") {
    constexpr int kMessages = 3000;
    wt::WorldOptions o;
    o.users = {{"crash@example.com", "crash-pw-12"}};
    o.copies = 1;
    o.lease = "1s";
    o.worker_extra = "max_crashes = 3\n";
    wt::World w(o);
    wt::fill_mailbox(w.old, "crash@example.com", "", kMessages, 2000, 3);
    REQUIRE(wt::imap_login(w.fresh->imap_port(), "crash", "crash-pw-12").rfind("a1 OK", 0) == 0);

    // Three workers die mid-copy, as if one message crashed the copier each time.
    long copied = 0;
    std::string logs;
    for (int crash = 1; crash <= 3; ++crash) {
        auto wk = w.start_worker();
        copied = wait_inbox_above(w, "crash@example.com", copied + 10, 60s);
        wk.signal(SIGKILL);
        CHECK(wk.wait(10s) == 128 + SIGKILL);
        logs += mft::read_file(wk.log);
        copied = inbox_at_new(w, "crash@example.com");
        REQUIRE_MESSAGE(copied < kMessages, "the copy finished before crash " << crash);
        auto j = job_of(w, "crash@example.com");
        CHECK(j.state == mf::JobState::running);               // the dead worker's lease
        CHECK(j.attempts == static_cast<unsigned>(crash - 1)); // counted at each takeover
        std::this_thread::sleep_for(1200ms);                   // the lease runs out
    }

    // The fourth takeover finds 3 crashed runs in a row: the job stops, not a fourth crash.
    auto fourth = w.start_worker({"--once"});
    CHECK(fourth.wait(60s) == 0);
    std::string log = mft::read_file(fourth.log);
    INFO("worker logs:\n", logs, log);
    auto j = job_of(w, "crash@example.com");
    CHECK(j.state == mf::JobState::failed);
    CHECK(j.attempts >= 3);
    CHECK(has(j.last_error, "needs an admin: 3 failed runs in a row"));
    CHECK(has(j.last_error, "died mid-copy (its lease expired)"));
    CHECK(has(log, "needs an admin"));
    CHECK(inbox_at_new(w, "crash@example.com") == copied); // it did not copy on
    CHECK(w.account("crash@example.com")->state == AccountState::failed);

    // The admin looks, then queues it again: the next worker finishes the copy exactly.
    auto retry = mft::run({wt::kMailferry, "worker", "--retry-failed", "--config", w.config});
    CHECK(retry.exit_code == 0);
    CHECK(job_of(w, "crash@example.com").state == mf::JobState::queued);
    auto fifth = w.start_worker({"--once"});
    CHECK(fifth.wait(120s) == 0);
    CHECK(w.account("crash@example.com")->state == AccountState::synced);
    CHECK(inbox_at_new(w, "crash@example.com") == kMessages); // nothing twice
}

TEST_CASE("worker.max_crashes: out of range or not a number is a config error") {
    wt::WorldOptions o;
    o.users = {{"cfg@example.com", "cfg-pw-123"}};
    o.worker_extra = "max_crashes = 3\n";
    wt::World w(o);
    const std::string good = mft::read_file(w.config);
    const auto at = good.find("max_crashes = 3\n");
    REQUIRE(at != std::string::npos);
    for (const char* bad : {"0", "1001", "-1", "\"three\"", "2.5"}) {
        std::string text = good;
        text.replace(at, std::string("max_crashes = 3").size(),
                     std::string("max_crashes = ") + bad);
        const std::string path = w.dir.file("bad.toml");
        mft::write_file(path, text, 0640);
        auto r = mft::run({wt::kMailferry, "worker", "--once", "--config", path});
        INFO("max_crashes = ", bad, ": ", r.err);
        CHECK(r.exit_code == 2);
        CHECK(has(r.err, "max_crashes"));
    }
}
