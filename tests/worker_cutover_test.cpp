// worker_cutover_test.cpp — `mailferry cutover` on two real Dovecots: the final round
// copies what arrived last, then the account is cut over, its sealed password deleted and
// its logins answered by mailferry alone; accounts on hold answer TEMPFAIL; bad input is
// refused with a clear message and the right exit status.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "support/migration_world.hpp"
#include "support/store_lock.hpp"

using namespace std::chrono_literals;
using mf::AccountState;

namespace {

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

mft::RunResult cutover(const wt::World& w, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {wt::kMailferry, "cutover", "--config", w.config};
    argv.insert(argv.end(), args.begin(), args.end());
    return mft::run(argv, {}, 120s);
}

bool ok_reply(const std::string& reply) {
    return reply.rfind("a1 OK", 0) == 0;
}

} // namespace

TEST_CASE("cutover: a final round copies the last mail, then logins are answered locally") {
    wt::WorldOptions o;
    o.users = {{"anna@example.com", "anna-pw-1"}, {"bob@example.com", "bob-pw-1"}};
    wt::World w(o);
    wt::fill_mailbox(w.old, "anna@example.com", "", 20, 4000, 1);
    wt::fill_mailbox(w.old, "anna@example.com", "Sent", 5, 2000, 2);
    auto worker = w.start_worker();
    REQUIRE(ok_reply(wt::imap_login(w.fresh->imap_port(), "anna", "anna-pw-1")));
    INFO("worker log:\n", mft::read_file(worker.log));
    REQUIRE(w.wait_state({"anna@example.com"}, AccountState::synced, 60s));
    REQUIRE(std::filesystem::exists(w.spool_dir() + "/anna@example.com.sealed"));

    // Mail that arrives after the last round, before the cut-over.
    w.old.save_message("anna@example.com", "INBOX",
                       "From: late@example.org\r\nSubject: just before the cut-over\r\n\r\nhi\r\n");
    auto r = cutover(w, {"anna", "--wait", "60s"});
    INFO(r.out, r.err);
    CHECK(r.exit_code == 0);
    CHECK(has(r.out, "anna@example.com  cutover"));
    CHECK(w.account("anna@example.com")->state == AccountState::cutover);
    CHECK(wt::counts(*w.fresh, "anna@example.com") == wt::counts(w.old, "anna@example.com"));
    CHECK(wt::counts(*w.fresh, "anna@example.com")["INBOX"] == 21);
    CHECK_FALSE(std::filesystem::exists(w.spool_dir() + "/anna@example.com.sealed"));
    auto jobs = w.jobs();
    REQUIRE(jobs.size() == 1);
    CHECK(jobs[0].state == mf::JobState::done);
    CHECK(has(jobs[0].last_result, "cut over"));

    // The old server is switched off: anna still logs in, from mailferry's store.
    w.old.stop();
    CHECK(ok_reply(wt::imap_login(w.fresh->imap_port(), "anna@example.com", "anna-pw-1")));
    CHECK_FALSE(ok_reply(wt::imap_login(w.fresh->imap_port(), "anna@example.com", "wrong")));

    // Again: nothing to do, still exit 0; JSON for scripts.
    auto again = cutover(w, {"anna@example.com", "--json"});
    CHECK(again.exit_code == 0);
    CHECK(has(again.out, "\"already\""));
    worker.signal(SIGTERM);
    CHECK(worker.wait(15s) == 0);
    CHECK_FALSE(has(mft::read_file(worker.log), "Sanitizer"));
}

TEST_CASE("cutover: on hold answers TEMPFAIL; --no-final-sync; bad input refused clearly") {
    wt::WorldOptions o;
    o.users = {{"carl@example.com", "carl-pw-1"},
               {"dora@example.com", "dora-pw-1"},
               {"emil@example.com", "emil-pw-1"}};
    o.busy_timeout = "300ms";
    wt::World w(o);
    // No worker runs: the logins provision and queue, nothing is copied.
    REQUIRE(ok_reply(wt::imap_login(w.fresh->imap_port(), "carl", "carl-pw-1")));
    REQUIRE(ok_reply(wt::imap_login(w.fresh->imap_port(), "dora", "dora-pw-1")));
    REQUIRE(ok_reply(wt::imap_login(w.fresh->imap_port(), "emil", "emil-pw-1")));

    // Without a worker the final round cannot run: the account waits on hold, and its
    // logins are answered TEMPFAIL ("maintenance"), never FAIL.
    auto held = cutover(w, {"dora"});
    INFO(held.out, held.err);
    CHECK(held.exit_code == 0);
    CHECK(has(held.out, "dora@example.com  held"));
    CHECK(w.account("dora@example.com")->state == AccountState::held);
    std::string reply = wt::imap_login(w.fresh->imap_port(), "dora", "dora-pw-1");
    CHECK(has(reply, "[UNAVAILABLE]"));
    auto timed = cutover(w, {"dora", "--wait", "1s"});
    CHECK(timed.exit_code == 75);
    CHECK(has(timed.out, "timed out"));

    // --no-final-sync: at once, and the sealed password is gone.
    REQUIRE(std::filesystem::exists(w.spool_dir() + "/carl@example.com.sealed"));
    auto direct = cutover(w, {"carl@example.com", "--no-final-sync"});
    CHECK(direct.exit_code == 0);
    CHECK(has(direct.out, "carl@example.com  cutover"));
    CHECK(w.account("carl@example.com")->state == AccountState::cutover);
    CHECK_FALSE(std::filesystem::exists(w.spool_dir() + "/carl@example.com.sealed"));
    CHECK(ok_reply(wt::imap_login(w.fresh->imap_port(), "carl", "carl-pw-1")));

    // Usage errors: exit 2, nothing changed.
    auto none = cutover(w, {});
    CHECK(none.exit_code == 2);
    CHECK(has(none.err, "name the accounts, or --all"));
    auto both = cutover(w, {"emil", "--all"});
    CHECK(both.exit_code == 2);
    auto bad_wait = cutover(w, {"emil", "--wait", "soon"});
    CHECK(bad_wait.exit_code == 2);
    CHECK(has(bad_wait.err, "--wait soon"));
    auto bad_config =
        mft::run({wt::kMailferry, "cutover", "--config", w.dir.file("nope.toml"), "emil"});
    CHECK(bad_config.exit_code == 2);
    CHECK(has(bad_config.err, "nope.toml"));
    CHECK(w.account("emil@example.com")->state == AccountState::provisioned);

    // Accounts that cannot be cut over: exit 1, each with its reason; the rest proceeds.
    auto mixed = cutover(w, {"nobody", "bad name@@", "emil", "--no-final-sync"});
    INFO(mixed.out, mixed.err);
    CHECK(mixed.exit_code == 1);
    CHECK(has(mixed.out, "nobody@example.com  refused  no such account"));
    CHECK(has(mixed.out, "bad name@@  refused"));
    CHECK(has(mixed.out, "emil@example.com  cutover"));

    // The store locked by another process: a temporary failure (75), nothing changed.
    {
        mft::StoreLockHolder lock(w.db());
        auto busy = cutover(w, {"dora", "--no-final-sync"});
        CHECK(busy.exit_code == 75);
        CHECK(has(busy.err, "busy"));
    }
    CHECK(w.account("dora@example.com")->state == AccountState::held);
}
