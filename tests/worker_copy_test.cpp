// worker_copy_test.cpp — the promise end to end, on two real Dovecots: log in once at the
// NEW server with the OLD password and the mail arrives there within seconds, then keeps
// up through resync rounds; the secret key belongs to the worker alone; a spawning login
// side starts exactly one worker; keep_until = "first-sync" deletes the entry.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/queue.hpp"
#include "mailferry/spool.hpp"
#include "support/migration_world.hpp"

#include <algorithm>

using namespace std::chrono_literals;
using mf::AccountState;

namespace {

const std::string kAnnaPw = "anna's \"first\" pass\\word % x";

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

std::string log_of(const wt::Proc& p) {
    return mft::read_file(p.log);
}

unsigned mode_of(const std::string& path, struct stat* out = nullptr) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    if (out != nullptr) {
        *out = st;
    }
    return st.st_mode & 07777;
}

std::vector<std::string> states_in_audit(const wt::World& w, const std::string& acct) {
    auto s = mf::open_sqlite_store(w.db(), mf::Millis(5000));
    REQUIRE(s.ok());
    std::vector<std::string> out;
    auto rows = (*s)->audit_log(acct);
    REQUIRE(rows.ok());
    for (const auto& row : *rows) {
        if (row.from_state != row.to_state) {
            out.push_back(row.to_state);
        }
    }
    return out;
}

} // namespace

TEST_CASE("first login at the new server: mail copied within seconds, then resynced") {
    wt::WorldOptions o;
    o.users = {{"anna@example.com", kAnnaPw}, {"bob@example.com", "bob-pw-77"}};
    o.resync_interval = "2s";
    wt::World w(o);
    wt::fill_mailbox(w.old, "anna@example.com", "", 40, 8000, 1);
    wt::fill_mailbox(w.old, "anna@example.com", "Sent", 10, 3000, 2);
    wt::fill_mailbox(w.old, "anna@example.com", "Work.Projects", 5, 2000, 3);
    auto worker = w.start_worker();

    auto t0 = std::chrono::steady_clock::now();
    std::string reply = wt::imap_login(w.fresh->imap_port(), "anna", kAnnaPw);
    auto login_took = std::chrono::steady_clock::now() - t0;
    INFO("new server log:\n", w.fresh->log_tail());
    REQUIRE(reply.rfind("a1 OK", 0) == 0);
    CHECK(login_took < 10s); // the answer does not wait for the copy

    bool synced = w.wait_state({"anna@example.com"}, AccountState::synced, 60s);
    auto copy_took = std::chrono::steady_clock::now() - t0;
    INFO("worker log:\n", log_of(worker));
    REQUIRE(synced);
    CHECK(copy_took < 30s);
    MESSAGE("first login → synced in ",
            std::chrono::duration_cast<std::chrono::milliseconds>(copy_took).count(), " ms");
    auto old_counts = wt::counts(w.old, "anna@example.com");
    CHECK(wt::total(old_counts) == 55);
    CHECK(wt::counts(*w.fresh, "anna@example.com") == old_counts);

    // New mail at the old server arrives with the next resync round.
    w.old.save_message("anna@example.com", "INBOX",
                       "From: late@example.org\r\nSubject: after the copy\r\n\r\nhello\r\n");
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (wt::counts(*w.fresh, "anna@example.com")["INBOX"] != 41 &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(200ms);
    }
    CHECK(wt::counts(*w.fresh, "anna@example.com")["INBOX"] == 41);
    CHECK(w.wait_state({"anna@example.com"}, AccountState::synced, 20s));

    auto states = states_in_audit(w, "anna@example.com");
    REQUIRE(states.size() >= 5);
    CHECK(states[0] == "provisioned");
    CHECK(states[1] == "copying");
    CHECK(states[2] == "synced");
    CHECK(states[3] == "resyncing");
    CHECK(states[4] == "synced");
    auto jobs = w.jobs();
    REQUIRE(jobs.size() == 1); // one job for anna, however many rounds
    CHECK(jobs[0].kind == mf::JobKind::resync);
    CHECK(jobs[0].runs >= 2);
    CHECK(has(jobs[0].last_result, "copied"));
    // bob never logged in: nothing of his was touched.
    CHECK_FALSE(w.account("bob@example.com"));

    worker.signal(SIGTERM);
    CHECK(worker.wait(15s) == 0);
    std::string log = log_of(worker);
    CHECK(has(log, "stopped"));
    CHECK_FALSE(has(log, "Sanitizer"));
    auto report = w.verify("anna@example.com", kAnnaPw);
    REQUIRE_MESSAGE(report.ok(), (report.ok() ? "" : report.error().message()));
    CHECK(report->ok());
    CHECK(report->messages_compared == 56);
    CHECK(report->mismatches.empty());
}

TEST_CASE("[target] maildir: the worker writes the new server's Maildirs, old UIDs kept") {
    wt::WorldOptions o;
    o.users = {{"anna@example.com", kAnnaPw}};
    o.maildir_target = true;
    wt::World w(o);
    wt::fill_mailbox(w.old, "anna@example.com", "", 30, 4000, 1);
    wt::fill_mailbox(w.old, "anna@example.com", "Sent", 5, 2000, 2);
    auto worker = w.start_worker();
    std::string reply = wt::imap_login(w.fresh->imap_port(), "anna", kAnnaPw);
    INFO("new server log:\n", w.fresh->log_tail());
    REQUIRE(reply.rfind("a1 OK", 0) == 0);
    bool synced = w.wait_state({"anna@example.com"}, AccountState::synced, 60s);
    INFO("worker log:\n", log_of(worker));
    REQUIRE(synced);
    auto old_counts = wt::counts(w.old, "anna@example.com");
    CHECK(wt::total(old_counts) == 35);
    CHECK(wt::counts(*w.fresh, "anna@example.com") == old_counts);
    // What a client of the old server cached stays valid: same UIDVALIDITY, UIDs, UIDNEXT.
    for (const char* box : {"INBOX", "Sent"}) {
        std::string a;
        std::string b;
        const std::vector<std::string> args = {"-f",  "tab",     "fetch", "-u", "anna@example.com",
                                               "uid", "mailbox", box,     "all"};
        REQUIRE(w.old.doveadm(args, &a) == 0);
        REQUIRE(w.fresh->doveadm(args, &b) == 0);
        CHECK(a == b);
        const std::vector<std::string> st = {
            "-f", "tab", "mailbox", "status", "-u", "anna@example.com", "uidvalidity uidnext", box};
        REQUIRE(w.old.doveadm(st, &a) == 0);
        REQUIRE(w.fresh->doveadm(st, &b) == 0);
        CHECK(a == b);
    }
    worker.signal(SIGTERM);
    CHECK(worker.wait(15s) == 0);
    CHECK_FALSE(has(log_of(worker), "Sanitizer"));
}

TEST_CASE("the secret key belongs to the worker alone; first-sync deletes the entry") {
    wt::WorldOptions o;
    o.users = {{"carl@example.com", "carl-pw-1"}};
    o.keep_until = "first-sync";
    o.master_user = false; // the worker logs in at the new server with carl's password
    wt::World w(o);
    wt::fill_mailbox(w.old, "carl@example.com", "", 12, 5000, 4);

    struct stat st {};
    CHECK(mode_of(w.secret_key(), &st) == 0600);
    CHECK(st.st_uid == w.mf.uid);
    CHECK(mode_of(w.public_key()) == 0644);
    CHECK(mode_of(w.spool_dir(), &st) == 02770);
    CHECK(st.st_gid == w.mf_group);

    // The login side's user — Dovecot's auth user with the mailferry group — cannot read
    // it, and a worker started as that user refuses to start, saying why.
    const std::vector<gid_t> login_groups = {w.mf_group};
    auto cat =
        wt::start_as("mfvmail", {"/bin/cat", w.secret_key()}, w.dir.file("cat.log"), login_groups);
    CHECK(cat.wait(10s) != 0);
    CHECK_FALSE(has(mft::read_file(cat.log), "mailferry-spool-secret"));
    auto as_login =
        wt::start_as("mfvmail", {wt::kMailferry, "worker", "--once", "--config", w.config},
                     w.dir.file("worker-as-mfvmail.log"), login_groups);
    CHECK(as_login.wait(30s) == 2);
    std::string refused = mft::read_file(as_login.log);
    CHECK(has(refused, "cannot open the secret key"));
    CHECK(has(refused, "Permission denied"));

    // A real first login through the login helper (as mfvmail): it seals, it cannot open.
    REQUIRE(
        wt::imap_login(w.fresh->imap_port(), "carl@example.com", "carl-pw-1").rfind("a1 OK", 0) ==
        0);
    mf::spool::Spool sp(w.spool_dir());
    std::string entry = sp.path_for("carl@example.com");
    CHECK(mode_of(entry) == 0660);
    CHECK_FALSE(has(mft::read_file(entry), "carl-pw-1"));

    auto worker = w.start_worker({"--once"});
    CHECK(worker.wait(60s) == 0);
    INFO("worker log:\n", log_of(worker));
    CHECK(w.account("carl@example.com")->state == AccountState::synced);
    CHECK(wt::counts(*w.fresh, "carl@example.com") == wt::counts(w.old, "carl@example.com"));
    CHECK_FALSE(std::filesystem::exists(entry)); // deleted after the first full sync
    auto jobs = w.jobs();
    REQUIRE(jobs.size() == 1);
    CHECK(jobs[0].state == mf::JobState::done);
    CHECK(has(log_of(worker), "spool entry deleted"));
}

TEST_CASE("spawn: a first login starts one detached worker, which exits when idle") {
    wt::WorldOptions o;
    o.users = {{"dora@example.com", "dora-pw-1"}, {"emil@example.com", "emil-pw-2"}};
    o.spawn = true;
    o.idle_exit = "3s";
    wt::World w(o);
    wt::fill_mailbox(w.old, "dora@example.com", "", 15, 4000, 5);
    wt::fill_mailbox(w.old, "emil@example.com", "", 5, 4000, 6);
    // A single-user install: the login side's user (mfvmail) is the worker's user too.
    auto r = mft::run(
        {wt::kMailferry, "keys", "init", "--force", "--owner", "mfvmail", "--config", w.config});
    REQUIRE_MESSAGE(r.exit_code == 0, (r.out + r.err));
    wt::Ids v = wt::ids_of("mfvmail");
    wt::chown_path(w.state + "/master-password", v.uid, v.gid);

    auto cfg = mf::load_config(w.config);
    REQUIRE(cfg.ok());
    CHECK_FALSE(*mf::queue::worker_running(*cfg));
    REQUIRE(wt::imap_login(w.fresh->imap_port(), "dora", "dora-pw-1").rfind("a1 OK", 0) == 0);
    INFO("new server log:\n", w.fresh->log_tail(60));
    REQUIRE(w.wait_state({"dora@example.com"}, AccountState::synced, 60s));
    CHECK(*mf::queue::worker_running(*cfg));
    std::string lock = cfg->store.lock_dir + "/worker.lock";
    const std::string pid = mft::read_file(lock);
    REQUIRE_FALSE(pid.empty());
    // The spawned worker: the login side's user, no password in argv or environment.
    std::string proc = "/proc/" + pid.substr(0, pid.find('\n'));
    std::string status = mft::read_file(proc + "/status");
    CHECK(has(status, "Uid:\t" + std::to_string(v.uid)));
    std::string cmdline = mft::read_file(proc + "/cmdline");
    CHECK(has(cmdline, "worker"));
    for (const char* pw : {"dora-pw-1", "emil-pw-2"}) {
        CHECK_FALSE(has(cmdline, pw));
        CHECK_FALSE(has(mft::read_file(proc + "/environ"), pw));
    }

    REQUIRE(wt::imap_login(w.fresh->imap_port(), "emil", "emil-pw-2").rfind("a1 OK", 0) == 0);
    REQUIRE(w.wait_state({"emil@example.com"}, AccountState::synced, 60s));
    CHECK(mft::read_file(lock) == pid); // the same worker did it: one per host
    CHECK(wt::counts(*w.fresh, "emil@example.com") == wt::counts(w.old, "emil@example.com"));

    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (*mf::queue::worker_running(*cfg) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(200ms);
    }
    CHECK_FALSE(*mf::queue::worker_running(*cfg)); // idle_exit
}

TEST_CASE("examples/systemd: the units pass systemd-analyze verify") {
    if (::access("/usr/bin/systemd-analyze", X_OK) != 0) {
        MESSAGE("systemd-analyze not installed: units not checked");
        return;
    }
    mft::TempDir dir("mf-units");
    const std::string src = std::string(MF_SOURCE_DIR) + "/examples/systemd/";
    for (const char* unit : {"mailferry-worker.service", "mailferry-worker.path"}) {
        std::string text = mft::read_file(src + unit);
        text = wt::replace_all(text, "/usr/local/bin/mailferry", wt::kMailferry);
        mft::write_file(dir.file(unit), text, 0644);
    }
    auto r = mft::run({"/usr/bin/systemd-analyze", "verify", dir.file("mailferry-worker.service"),
                       dir.file("mailferry-worker.path")});
    INFO(r.out, r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("mailferry-worker") == std::string::npos); // no complaint about ours
}
