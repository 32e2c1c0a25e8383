// worker_cutover_batch_test.cpp — `mailferry cutover --batch` on two real Dovecots: a plan
// in the store cuts accounts over N at a time, a run that times out is resumed by the
// next one where it stopped, mail that arrived meanwhile is copied by the final round, no
// login outside the batch on hold is ever refused, and bad input is refused clearly.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "support/migration_world.hpp"
#include "support/store_lock.hpp"

#include <nlohmann/json.hpp>

using namespace std::chrono_literals;
using mf::AccountState;

namespace {

const std::vector<mft::TestUser> kUsers = {
    {"ada@example.com", "ada-pw-1"},   {"ben@example.com", "ben-pw-1"},
    {"cleo@example.com", "cleo-pw-1"}, {"dan@example.com", "dan-pw-1"},
    {"eve@example.com", "eve-pw-1"},
};

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

std::map<std::string, std::string> plan_states(const wt::World& w) {
    auto r = cutover(w, {"--show-plan", "--json"});
    REQUIRE(r.exit_code == 0);
    std::map<std::string, std::string> out;
    auto doc = nlohmann::json::parse(r.out);
    for (const auto& s : doc["plan"]) {
        out[s["account"].get<std::string>()] = s["state"].get<std::string>();
    }
    return out;
}

// A world whose five accounts are synced and whose worker is stopped, so no final round
// runs until the test starts one.
void migrate_all(wt::World& w) {
    for (const auto& u : kUsers) {
        wt::fill_mailbox(w.old, u.name, "", 6, 1500, 1);
    }
    auto worker = w.start_worker();
    for (const auto& u : kUsers) {
        REQUIRE(ok_reply(wt::imap_login(w.fresh->imap_port(), u.name, u.password)));
    }
    std::vector<std::string> names;
    for (const auto& u : kUsers) {
        names.push_back(u.name);
    }
    INFO("worker log:\n", mft::read_file(worker.log));
    REQUIRE(w.wait_state(names, AccountState::synced, 90s));
    worker.signal(SIGTERM);
    REQUIRE(worker.wait(15s) == 0);
}

} // namespace

TEST_CASE("cutover --batch: two at a time, resumed after a timeout, nobody else refused") {
    wt::WorldOptions o;
    o.users = kUsers;
    wt::World w(o);
    migrate_all(w);

    // No worker: the first batch's final rounds cannot run, so the run times out with
    // exactly two accounts on hold and the rest untouched.
    auto first = cutover(w, {"--all", "--batch", "2", "--wait", "1s"});
    INFO(first.out, first.err);
    CHECK(first.exit_code == 75);
    CHECK(has(first.out, "batch 1: 0 of 2 cut over; 5 of 5 accounts left in the plan"));
    auto plan = plan_states(w);
    CHECK(plan.size() == 5);
    CHECK(plan["ada@example.com"] == "started");
    CHECK(plan["ben@example.com"] == "started");
    CHECK(plan["cleo@example.com"] == "pending");
    CHECK(w.account("ada@example.com")->state == AccountState::held);
    CHECK(w.account("cleo@example.com")->state == AccountState::synced);
    CHECK(has(wt::imap_login(w.fresh->imap_port(), "ada", "ada-pw-1"), "[UNAVAILABLE]"));
    CHECK(ok_reply(wt::imap_login(w.fresh->imap_port(), "cleo", "cleo-pw-1")));

    // A new plan is not made over an unfinished one: naming accounts resumes it.
    auto again = cutover(w, {"eve", "--batch", "1", "--wait", "1s"});
    CHECK(again.exit_code == 75);
    CHECK(has(again.out, "resumed the unfinished plan"));
    CHECK(w.account("eve@example.com")->state == AccountState::synced);

    // Mail that arrives before cleo's batch: its final round copies it.
    w.old.save_message("cleo@example.com", "INBOX",
                       "From: late@example.org\r\nSubject: during the campaign\r\n\r\nhi\r\n");

    // With a worker the resumed run finishes every batch. Meanwhile eve, in the last batch,
    // logs in again and again: refused only while her own batch holds her.
    auto worker = w.start_worker();
    auto run = wt::start_as(
        "root", {wt::kMailferry, "cutover", "--config", w.config, "--batch", "2", "--wait", "60s"},
        w.dir.file("cutover-run.log"));
    int logins = 0;
    int refused_outside = 0;
    while (run.alive()) {
        auto before = w.account("eve@example.com")->state;
        bool ok = ok_reply(wt::imap_login(w.fresh->imap_port(), "eve", "eve-pw-1"));
        auto after = w.account("eve@example.com")->state;
        ++logins;
        if (!ok && before == AccountState::synced && after == AccountState::synced) {
            ++refused_outside;
        }
    }
    INFO("cutover log:\n", mft::read_file(run.log), "\nworker log:\n", mft::read_file(worker.log));
    CHECK(run.wait(1s) == 0);
    CHECK(logins > 0);
    CHECK(refused_outside == 0);
    std::string log = mft::read_file(run.log);
    CHECK(has(log, "batch 1: 2 of 2 cut over; 3 of 5 accounts left"));
    CHECK(has(log, "batch 3: 1 of 1 cut over; 0 of 5 accounts left"));
    for (const auto& u : kUsers) {
        CHECK(w.account(u.name)->state == AccountState::cutover);
        CHECK(plan_states(w)[u.name] == "done");
        CHECK(wt::counts(*w.fresh, u.name) == wt::counts(w.old, u.name));
    }
    CHECK(wt::counts(*w.fresh, "cleo@example.com")["INBOX"] == 7);
    worker.signal(SIGTERM);
    CHECK(worker.wait(15s) == 0);

    // A finished plan is replaced by the next one; nothing is left to cut over.
    auto next = cutover(w, {"--all", "--batch", "3", "--json"});
    CHECK(next.exit_code == 0);
    CHECK(nlohmann::json::parse(next.out)["planned"] == 0);
}

TEST_CASE("cutover --batch: refused accounts fail their step, bad input is refused") {
    wt::WorldOptions o;
    o.users = {kUsers[0], kUsers[1], kUsers[2]};
    o.busy_timeout = "300ms";
    wt::World w(o);
    for (int i = 0; i < 3; ++i) {
        REQUIRE(ok_reply(wt::imap_login(w.fresh->imap_port(), kUsers[i].name, kUsers[i].password)));
    }
    {
        auto s = mf::open_sqlite_store(w.db(), mf::Millis(5000));
        REQUIRE(s);
        REQUIRE((*s)->set_state("ben@example.com", AccountState::disabled,
                                mf::AuditContext{"test", "", ""}));
    }

    // Usage errors: exit 2, no plan made.
    CHECK(cutover(w, {"--batch", "0", "--all"}).exit_code == 2);
    auto show_all = cutover(w, {"--show-plan", "--all"});
    CHECK(show_all.exit_code == 2);
    CHECK(has(show_all.err, "--show-plan and --forget-plan take no other option"));
    auto nothing = cutover(w, {"--batch", "2"});
    CHECK(nothing.exit_code == 2);
    CHECK(has(nothing.err, "no unfinished cut-over plan to resume"));
    CHECK(has(cutover(w, {"--show-plan"}).out, "no cut-over plan"));

    // The store locked by another process: 75, and still no plan.
    {
        mft::StoreLockHolder lock(w.db());
        auto busy = cutover(w, {"ada", "cleo", "--batch", "1", "--no-final-sync"});
        CHECK(busy.exit_code == 75);
    }
    CHECK(has(cutover(w, {"--show-plan"}).out, "no cut-over plan"));

    // A name nobody logged in with is refused before the plan; a disabled account fails
    // its step; the others are cut over (no final round: no worker needed).
    auto mixed = cutover(w, {"ada", "nobody", "ben", "cleo", "--batch", "2", "--no-final-sync"});
    INFO(mixed.out, mixed.err);
    CHECK(mixed.exit_code == 1);
    CHECK(has(mixed.out, "nobody@example.com  refused"));
    CHECK(has(mixed.out, "ben@example.com  refused  the account is disabled"));
    CHECK(has(mixed.out, "ada@example.com  cutover"));
    CHECK(has(mixed.out, "cleo@example.com  cutover"));
    auto plan = plan_states(w);
    CHECK(plan.size() == 3);
    CHECK(plan["ben@example.com"] == "failed");
    CHECK(plan["cleo@example.com"] == "done");
    CHECK(w.account("ben@example.com")->state == AccountState::disabled);

    auto forget = cutover(w, {"--forget-plan"});
    CHECK(forget.exit_code == 0);
    CHECK(has(forget.out, "cut-over plan of 3 accounts dropped"));
    CHECK(plan_states(w).empty());
}
