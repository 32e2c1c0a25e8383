// queue_jobs_test.cpp — the copy job queue in the SQLite store, and the login-side hook:
// idempotent enqueue, claim order, per-server budget, leases and take-over, atomic claims
// across processes, backoff, given-up jobs, lost enqueues, a store locked by another
// process, and seal + enqueue + wake after a first login.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/queue.hpp"
#include "mailferry/spool.hpp"
#include "mailferry/store.hpp"
#include "support/store_lock.hpp"
#include "support/test_env.hpp"

#include <algorithm>
#include <fstream>
#include <set>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace mf;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<Store> open_store(const std::string& path, Millis busy = Millis(5000)) {
    auto s = open_sqlite_store(path, busy);
    REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message()));
    return std::move(*s);
}

EnqueueRequest req(const std::string& account, const std::string& provider = "old",
                   int priority = kPriorityLogin, UnixMillis run_at = 0) {
    EnqueueRequest r;
    r.account = account;
    r.provider = provider;
    r.source_login = account;
    r.priority = priority;
    r.run_at = run_at;
    return r;
}

ClaimRequest claim(const std::string& worker, unsigned budget = 10, Millis lease = 60s) {
    ClaimRequest c;
    c.worker = worker;
    c.now = now_unix_ms();
    c.lease = lease;
    c.per_provider = budget;
    return c;
}

std::optional<Job> take(Store& s, const ClaimRequest& c) {
    auto j = s.claim_job(c);
    REQUIRE_MESSAGE(j.ok(), (j.ok() ? "" : j.error().message()));
    return *j;
}

} // namespace

TEST_CASE("enqueue is idempotent: one active job per account, priority and due time merge") {
    mft::TempDir dir;
    auto s = open_store(dir.file("mf.db"));
    CHECK(s->schema_version() >= 2);
    auto later = now_unix_ms() + 3600 * 1000;
    auto a = s->enqueue_job(req("anna@ex.com", "old", kPriorityResync, later));
    REQUIRE(a.ok());
    for (int i = 0; i < 5; ++i) {
        auto again = s->enqueue_job(req("anna@ex.com"));
        REQUIRE(again.ok());
        CHECK(again->id == a->id);
    }
    auto j = s->active_job("anna@ex.com");
    REQUIRE(j->has_value());
    CHECK((**j).priority == kPriorityLogin); // raised
    CHECK((**j).run_at <= now_unix_ms());    // brought forward
    CHECK(s->list_jobs(true)->size() == 1);
}

TEST_CASE("claim order: the login first, future jobs wait, one claim per job") {
    mft::TempDir dir;
    auto s = open_store(dir.file("mf.db"));
    REQUIRE(s->enqueue_job(req("resync@ex.com", "old", kPriorityResync)).ok());
    REQUIRE(
        s->enqueue_job(req("future@ex.com", "old", kPriorityLogin, now_unix_ms() + 60000)).ok());
    REQUIRE(s->enqueue_job(req("login@ex.com")).ok());
    auto first = take(*s, claim("w1"));
    REQUIRE(first);
    CHECK(first->account == "login@ex.com");
    CHECK(first->state == JobState::running);
    CHECK(first->claimed_by == "w1");
    auto second = take(*s, claim("w2"));
    REQUIRE(second);
    CHECK(second->account == "resync@ex.com");
    CHECK_FALSE(take(*s, claim("w3"))); // the future one is not due
}

TEST_CASE("the per-server budget is shared by all workers") {
    mft::TempDir dir;
    auto s = open_store(dir.file("mf.db"));
    for (int i = 0; i < 5; ++i) {
        REQUIRE(s->enqueue_job(req("a" + std::to_string(i) + "@ex.com", "A")).ok());
    }
    for (int i = 0; i < 2; ++i) {
        REQUIRE(s->enqueue_job(req("b" + std::to_string(i) + "@ex.com", "B")).ok());
    }
    std::map<std::string, int> per;
    std::vector<Job> held;
    for (int w = 0; w < 10; ++w) {
        if (auto j = take(*s, claim("w" + std::to_string(w), 2))) {
            ++per[j->provider];
            held.push_back(*j);
        }
    }
    CHECK(per["A"] == 2);
    CHECK(per["B"] == 2);
    // One A finishes: exactly one more A may start.
    auto a = std::find_if(held.begin(), held.end(), [](const Job& j) { return j.provider == "A"; });
    JobFinish ok;
    ok.state = JobState::done;
    REQUIRE(s->finish_job(a->id, a->claimed_by, ok).ok());
    auto next = take(*s, claim("w99", 2));
    REQUIRE(next);
    CHECK(next->provider == "A");
    CHECK_FALSE(take(*s, claim("w100", 2)));
}

TEST_CASE("an expired lease is taken over; the old holder can neither renew nor finish") {
    mft::TempDir dir;
    auto s = open_store(dir.file("mf.db"));
    REQUIRE(s->enqueue_job(req("anna@ex.com")).ok());
    auto j = take(*s, claim("dead-worker", 1, 300ms));
    REQUIRE(j);
    CHECK_FALSE(take(*s, claim("w2", 1))); // running, lease alive, budget 1 used
    REQUIRE(s->renew_job(j->id, "dead-worker", now_unix_ms() + 300).ok());
    std::this_thread::sleep_for(400ms);
    auto t = take(*s, claim("w2", 1));
    REQUIRE(t);
    CHECK(t->id == j->id);
    CHECK(t->taken_over_from == "dead-worker");
    CHECK(t->runs == 2);
    // The dead run is a failed attempt (the worker stops a job at worker.max_crashes).
    CHECK(t->attempts == 1);
    CHECK((**s->find_job(j->id)).attempts == 1);
    CHECK((**s->find_job(j->id)).last_error ==
          "worker dead-worker died mid-copy (its lease expired)");
    auto renew = s->renew_job(j->id, "dead-worker", now_unix_ms() + 1000);
    REQUIRE_FALSE(renew.ok());
    CHECK(renew.error().scope == Scope::account);
    CHECK(renew.error().message().find("held by w2") != std::string::npos);
    JobFinish late;
    late.state = JobState::done;
    CHECK_FALSE(s->finish_job(j->id, "dead-worker", late).ok());
    CHECK((**s->find_job(j->id)).state == JobState::running); // unchanged
    CHECK((**s->find_job(j->id)).claimed_by == "w2");
}

TEST_CASE("claims are atomic across processes: no job is taken twice") {
    mft::TempDir dir;
    const std::string db = dir.file("mf.db");
    {
        auto s = open_store(db);
        for (int i = 0; i < 120; ++i) {
            REQUIRE(s->enqueue_job(req("u" + std::to_string(i) + "@ex.com")).ok());
        }
    }
    constexpr int kProcs = 4;
    // A start barrier: every child blocks on the pipe until all are forked, so the first
    // one cannot drain the queue before the others exist.
    int gate[2];
    REQUIRE(::pipe(gate) == 0);
    std::vector<pid_t> pids;
    for (int p = 0; p < kProcs; ++p) {
        pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::close(gate[1]);
            char byte = 0;
            (void)!::read(gate[0], &byte, 1); // returns at EOF: the parent opened the gate
            int rc = 0;
            {
                auto s = open_sqlite_store(db, Millis(20000));
                std::ofstream out(dir.file("claimed-" + std::to_string(p)));
                for (;;) {
                    if (!s) {
                        rc = 3;
                        break;
                    }
                    ClaimRequest c;
                    c.worker = "p" + std::to_string(p);
                    c.now = now_unix_ms();
                    c.lease = 60s;
                    c.per_provider = 1000;
                    auto j = (*s)->claim_job(c);
                    if (!j) {
                        rc = 4;
                        break;
                    }
                    if (!j->has_value()) {
                        break;
                    }
                    out << (**j).id << "\n";
                    // A worker does work between claims; without it one process can
                    // take every job before the others get a turn.
                    std::this_thread::sleep_for(1ms);
                }
            }
            ::_exit(rc);
        }
        pids.push_back(pid);
    }
    ::close(gate[0]);
    ::close(gate[1]);
    for (pid_t pid : pids) {
        int st = 0;
        REQUIRE(::waitpid(pid, &st, 0) == pid);
        CHECK(WIFEXITED(st));
        CHECK(WEXITSTATUS(st) == 0);
    }
    std::multiset<std::int64_t> ids;
    int processes_that_claimed = 0;
    for (int p = 0; p < kProcs; ++p) {
        std::ifstream in(dir.file("claimed-" + std::to_string(p)));
        std::int64_t id = 0;
        int n = 0;
        while (in >> id) {
            ids.insert(id);
            ++n;
        }
        processes_that_claimed += n > 0 ? 1 : 0;
    }
    CHECK(ids.size() == 120);
    CHECK(std::set<std::int64_t>(ids.begin(), ids.end()).size() == 120);
    CHECK(processes_that_claimed >= 2); // they really raced
}

TEST_CASE("failures: retry with backoff, last error kept, success resets, give up and retry") {
    mft::TempDir dir;
    auto s = open_store(dir.file("mf.db"));
    WorkerConfig wc;
    wc.retry_min = Millis(1000);
    wc.retry_max = Millis(5000);
    CHECK(queue::backoff(wc, 1) == Millis(1000));
    CHECK(queue::backoff(wc, 2) == Millis(2000));
    CHECK(queue::backoff(wc, 3) == Millis(4000));
    CHECK(queue::backoff(wc, 4) == Millis(5000));
    CHECK(queue::backoff(wc, 400) == Millis(5000));

    REQUIRE(s->enqueue_job(req("anna@ex.com")).ok());
    auto j = take(*s, claim("w"));
    REQUIRE(j);
    JobFinish f;
    f.state = JobState::retry;
    f.failure = true;
    f.error = "connect to old: refused";
    f.next_kind = JobKind::copy;
    f.run_at = now_unix_ms() + 400;
    REQUIRE(s->finish_job(j->id, "w", f).ok());
    auto after = **s->find_job(j->id);
    CHECK(after.state == JobState::retry);
    CHECK(after.attempts == 1);
    CHECK(after.last_error == "connect to old: refused");
    CHECK(after.claimed_by.empty());
    CHECK_FALSE(take(*s, claim("w"))); // waiting out its backoff
    std::this_thread::sleep_for(450ms);
    j = take(*s, claim("w"));
    REQUIRE(j);
    JobFinish ok;
    ok.state = JobState::queued;
    ok.next_kind = JobKind::resync;
    ok.run_at = now_unix_ms() + 3600000;
    ok.result = "copied 3 messages";
    REQUIRE(s->finish_job(j->id, "w", ok).ok());
    after = **s->find_job(j->id);
    CHECK(after.attempts == 0);
    CHECK(after.kind == JobKind::resync);
    CHECK(after.priority == kPriorityResync);
    CHECK(after.last_result == "copied 3 messages");
    CHECK(after.last_error == "connect to old: refused"); // history, not cleared

    // A new login while the retry waits makes it due at once.
    REQUIRE(s->enqueue_job(req("bob@ex.com")).ok());
    auto b = take(*s, claim("w"));
    f.run_at = now_unix_ms() + 3600000;
    REQUIRE(s->finish_job(b->id, "w", f).ok());
    REQUIRE(s->enqueue_job(req("bob@ex.com")).ok());
    auto b2 = take(*s, claim("w"));
    REQUIRE(b2);
    CHECK(b2->id == b->id);

    // Given up: stays as history; a new login adds a new job; retry_failed requeues.
    JobFinish gave_up = f;
    gave_up.state = JobState::failed;
    REQUIRE(s->finish_job(b2->id, "w", gave_up).ok());
    CHECK_FALSE(s->active_job("bob@ex.com")->has_value());
    CHECK(*s->retry_failed_jobs(now_unix_ms()) == 1);
    CHECK((**s->active_job("bob@ex.com")).id == b2->id);
    auto b3 = take(*s, claim("w"));
    REQUIRE(s->finish_job(b3->id, "w", gave_up).ok());
    auto fresh = s->enqueue_job(req("bob@ex.com"));
    REQUIRE(fresh.ok());
    CHECK(fresh->id != b3->id);
    CHECK(*s->retry_failed_jobs(now_unix_ms()) == 0); // bob has an active job again
}

TEST_CASE("a stopping worker gives its job back unchanged") {
    mft::TempDir dir;
    auto s = open_store(dir.file("mf.db"));
    REQUIRE(s->enqueue_job(req("anna@ex.com")).ok());
    auto j = take(*s, claim("w1"));
    REQUIRE(s->release_job(j->id, "w1").ok());
    auto k = take(*s, claim("w2"));
    REQUIRE(k);
    CHECK(k->id == j->id);
    CHECK(k->runs == 1);
    CHECK(k->taken_over_from.empty());
    CHECK_FALSE(s->release_job(j->id, "w1").ok()); // not w1's any more
}

TEST_CASE("accounts whose enqueue was lost get a job") {
    mft::TempDir dir;
    auto s = open_store(dir.file("mf.db"));
    AuditContext ctx{"test", "", ""};
    for (auto [name, state] :
         {std::pair{"p@ex.com", AccountState::provisioned},
          std::pair{"c@ex.com", AccountState::copying}, std::pair{"s@ex.com", AccountState::synced},
          std::pair{"v@ex.com", AccountState::verified},
          std::pair{"has@ex.com", AccountState::provisioned}}) {
        Account a;
        a.name = name;
        a.provider = "old";
        a.state = state;
        REQUIRE(s->create_account(a, ctx).ok());
    }
    REQUIRE(s->enqueue_job(req("has@ex.com")).ok());
    auto added = s->enqueue_missing_jobs(kPriorityRecovered, now_unix_ms());
    REQUIRE(added.ok());
    CHECK(*added == 2);
    CHECK((**s->active_job("p@ex.com")).priority == kPriorityRecovered);
    CHECK((**s->active_job("p@ex.com")).provider == "old");
    CHECK(s->active_job("c@ex.com")->has_value());
    CHECK_FALSE(s->active_job("s@ex.com")->has_value());
    CHECK_FALSE(s->active_job("v@ex.com")->has_value());
    CHECK(*s->enqueue_missing_jobs(kPriorityRecovered, now_unix_ms()) == 0);
}

TEST_CASE("store locked by another process: clear temporary errors, nothing lost") {
    mft::TempDir dir;
    const std::string db = dir.file("mf.db");
    auto s = open_store(db, Millis(300));
    REQUIRE(s->enqueue_job(req("anna@ex.com")).ok());

    mft::StoreLockHolder lock(db);

    auto claimed = s->claim_job(claim("w"));
    REQUIRE_FALSE(claimed.ok());
    CHECK(claimed.error().temporary());
    CHECK(claimed.error().message().find("busy") != std::string::npos);
    auto enq = s->enqueue_job(req("bob@ex.com"));
    REQUIRE_FALSE(enq.ok());
    CHECK(enq.error().temporary());

    lock.release();
    auto j = take(*s, claim("w"));
    REQUIRE(j);
    CHECK(j->account == "anna@ex.com"); // still there, claimable
    REQUIRE(s->enqueue_job(req("bob@ex.com")).ok());
    CHECK(s->list_jobs(true)->size() == 2);
}

TEST_CASE("the provisioned hook: seals, enqueues, wakes; without a key the job still shows up") {
    mft::TempDir dir;
    const std::string text = "[store]\npath = \"" + dir.file("mf.db") +
                             "\"\n[[provider]]\nname = \"old\"\ndomains = [\"ex.com\"]\n"
                             "host = \"127.0.0.1\"\n[target]\nhost = \"127.0.0.1\"\n";
    auto cfg = parse_config(text, dir.file("mailferry.toml"));
    REQUIRE_MESSAGE(cfg.ok(), (cfg.ok() ? "" : cfg.error().message()));
    CHECK(cfg->spool.dir == dir.file("spool"));
    CHECK(cfg->worker.wake_file == dir.file("spool") + "/wake");
    auto store = open_store(cfg->store.path);
    auto hook = queue::make_provisioned_hook(*cfg, *store);
    Identity id;
    id.canonical = "anna@ex.com";
    id.old_login = "anna@ex.com";
    id.provider = &cfg->providers[0];

    // No key pair yet: a clear error, and the job is queued anyway (it will fail visibly).
    auto r = hook(id, Secret("anna-pw"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find(dir.file("spool.pub")) != std::string::npos);
    CHECK(r.error().message().find("keys init") != std::string::npos);
    CHECK(store->active_job("anna@ex.com")->has_value());

    spool::KeyFiles kf{cfg->spool.public_key_file, cfg->spool.secret_key_file, {}, {}};
    REQUIRE(spool::generate_keys(kf, false).ok());
    id.canonical = id.old_login = "bob@ex.com";
    r = hook(id, Secret("bob-pw"));
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));
    auto job = store->active_job("bob@ex.com");
    REQUIRE(job->has_value());
    CHECK((**job).priority == kPriorityLogin);
    CHECK((**job).source_login == "bob@ex.com");
    struct stat st {};
    CHECK(::stat(cfg->worker.wake_file.c_str(), &st) == 0);
    auto op = spool::Opener::load(cfg->spool.secret_key_file);
    REQUIRE(op.ok());
    auto pw = spool::load_password(*op, spool::Spool(cfg->spool.dir), "bob@ex.com");
    REQUIRE(pw.ok());
    CHECK(pw->view() == "bob-pw");
    // A second first login of bob: still one job.
    REQUIRE(hook(id, Secret("bob-pw2")).ok());
    CHECK(store->list_jobs(true)->size() == 2);
    CHECK(mft::read_file(dir.file("mf.db")).find("bob-pw") == std::string::npos);
}

TEST_CASE("config: [spool], [target], [worker] — defaults, and bad values named by file:line") {
    const std::string base = "[store]\npath = \"/var/lib/mf/mf.db\"\n[[provider]]\nname = \"old\"\n"
                             "domains = [\"ex.com\"]\nhost = \"imap.ex.com\"\n";
    auto ok = parse_config(base, "/etc/mf/mf.toml");
    REQUIRE(ok.ok());
    CHECK_FALSE(ok->target.configured); // no [target]: no copies queued
    CHECK(ok->spool.dir == "/var/lib/mf/spool");
    CHECK(ok->spool.public_key_file == "/var/lib/mf/spool.pub");
    CHECK(ok->spool.secret_key_file == "/var/lib/mf/spool.key");
    CHECK(ok->spool.keep_until == SpoolKeep::cutover);
    CHECK(ok->worker.state_dir == "/var/lib/mf/copy-state");
    CHECK(ok->worker.wake_file == "/var/lib/mf/spool/wake");

    auto full = parse_config(base + "[spool]\nkeep_until = \"first-sync\"\ndir = \"sp\"\n"
                                    "[target]\nhost = \"new.ex.com\"\ntls = \"starttls\"\n"
                                    "[worker]\ncopies = 8\nresync_interval = \"0\"\n",
                             "/etc/mf/mf.toml");
    REQUIRE_MESSAGE(full.ok(), (full.ok() ? "" : full.error().message()));
    CHECK(full->target.configured);
    CHECK(full->target.effective_port() == 143);
    CHECK(full->spool.keep_until == SpoolKeep::first_sync);
    CHECK(full->spool.dir == "/etc/mf/sp"); // relative to the config file
    CHECK(full->worker.wake_file == "/etc/mf/sp/wake");
    CHECK(full->worker.copies == 8);
    CHECK(full->worker.resync_interval.count() == 0);

    auto md = parse_config(base + "[target]\nmaildir = \"/var/vmail/{domain}/{local}/Maildir\"\n",
                           "/etc/mf/mf.toml");
    REQUIRE_MESSAGE(md.ok(), (md.ok() ? "" : md.error().message()));
    CHECK(md->target.configured);
    CHECK(md->target.host.empty());
    CHECK(md->target.maildir == "/var/vmail/{domain}/{local}/Maildir");

    const std::vector<std::pair<std::string, std::string>> bad = {
        {"[target]\nport = 993\n", "target.host"},
        {"[target]\nhost = \"h\"\nmaildir = \"/m/{user}\"\n", "exclude each other"},
        {"[target]\nmaildir = \"/var/vmail/Maildir\"\n", "each account's own tree"},
        {"[target]\nmaildir = \"/m/{user}\"\nmaster_user = \"m\"\nmaster_password_file = \"/x\"\n",
         "is for an IMAP target"},
        {"[target]\nhost = \"h\"\nmaster_user = \"m\"\n", "needs target.master_password_file"},
        {"[target]\nhost = \"h\"\nmaster_password_file = \"/x\"\n", "needs target.master_user"},
        {"[target]\nhost = \"h\"\ntls = \"none\"\nca_file = \"/ca.pem\"\n", "target.ca_file"},
        {"[worker]\ncopies = 0\n", "worker.copies"},
        {"[worker]\nretry_min = \"1h\"\nretry_max = \"1m\"\n", "worker.retry_max"},
        {"[worker]\nlease = \"10ms\"\n", "worker.lease"},
        {"[worker]\nthreads = 3\n", "worker.threads"},
        {"[spool]\nkeep_until = \"forever\"\n", "spool.keep_until"},
    };
    for (const auto& [text, key] : bad) {
        CAPTURE(text);
        auto r = parse_config(base + text, "/etc/mf/mf.toml");
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message().find(key) != std::string::npos);
        CHECK(r.error().message().find("/etc/mf/mf.toml:") == 0);
    }
}

TEST_CASE("the wake file is group-writable whatever the creator's umask") {
    mft::TempDir dir{"mf-wake"};
    std::string wake = dir.file("wake");
    mode_t old = ::umask(027);
    auto r = mf::queue::wake_worker(wake);
    ::umask(old);
    REQUIRE(r);
    struct stat st {};
    REQUIRE(::stat(wake.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0660);
    REQUIRE(::chmod(wake.c_str(), 0600) == 0); // as an older version may have left it
    REQUIRE(mf::queue::wake_worker(wake));
    REQUIRE(::stat(wake.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0660);
}
