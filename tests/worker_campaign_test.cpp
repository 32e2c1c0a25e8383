// worker_campaign_test.cpp — a small campaign on two real Dovecots: 20 users log in at the
// new server at once → 20 jobs; two workers share the per-old-server budget (never more
// copies at once, seen both in the store and as live IMAP sessions at the old server);
// every mailbox is copied exactly; and afterwards no test password is found anywhere we
// wrote (database, spool, copier state, logs) or in the argv/environment of any process
// we started.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "support/migration_world.hpp"

#include <dirent.h>
#include <set>

using namespace std::chrono_literals;
using mf::AccountState;

namespace {

constexpr int kUsers = 20;
constexpr unsigned kBudget = 4;

// Distinct users with an IMAP session at the server right now (`doveadm who`).
std::set<std::string> imap_users(const mft::DovecotServer& srv) {
    std::string out;
    std::set<std::string> users;
    if (srv.doveadm({"-f", "tab", "who"}, &out) != 0) {
        return users;
    }
    std::size_t pos = out.find('\n'); // header
    while (pos != std::string::npos && pos + 1 < out.size()) {
        auto nl = out.find('\n', pos + 1);
        std::string line = out.substr(pos + 1, nl - pos - 1);
        pos = nl;
        auto tab = line.find('\t');
        if (tab != std::string::npos && line.find("imap") != std::string::npos) {
            users.insert(line.substr(0, tab));
        }
    }
    return users;
}

std::vector<pid_t> pids_to_check(const wt::World& w, const std::vector<const wt::Proc*>& workers) {
    std::vector<pid_t> pids;
    for (const auto* p : workers) {
        pids.push_back(p->pid);
    }
    for (const mft::DovecotServer* srv :
         std::vector<const mft::DovecotServer*>{&w.old, w.fresh.get()}) {
        pids.push_back(
            static_cast<pid_t>(std::stol(mft::read_file(srv->dir() + "/run/master.pid"))));
    }
    // Any helper of ours alive right now (mailferry-checkpassword forked by Dovecot).
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir("/proc"), ::closedir);
    while (dirent* e = ::readdir(d.get())) {
        std::string name = e->d_name;
        if (name.find_first_not_of("0123456789") != std::string::npos) {
            continue;
        }
        std::string cmd;
        try {
            cmd = mft::read_file("/proc/" + name + "/cmdline");
        } catch (...) { // NOLINT(bugprone-empty-catch): it exited meanwhile
        }
        if (cmd.find("mailferry") != std::string::npos) {
            pids.push_back(static_cast<pid_t>(std::stol(name)));
        }
    }
    pids.push_back(::getpid());
    return pids;
}

} // namespace

TEST_CASE("20 users at once: 20 jobs, the budget holds across workers, all copied, no secrets") {
    wt::WorldOptions o;
    std::vector<std::string> passwords;
    for (int i = 0; i < kUsers; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "u%02d@example.com", i);
        std::string pw = "cmp-" + std::to_string(i) + "-" + std::to_string(::getpid()) + "-Zk\"q";
        o.users.push_back({name, pw});
        passwords.push_back(pw);
    }
    o.copies = 3; // two workers: 6 slots, more than the budget
    o.budget = kBudget;
    o.lease = "5s";
    wt::World w(o);
    for (int i = 0; i < kUsers; ++i) {
        wt::fill_mailbox(w.old, o.users[i].name, "", 25, 20000, static_cast<unsigned>(100 + i));
        wt::fill_mailbox(w.old, o.users[i].name, "Archive", 5, 5000,
                         static_cast<unsigned>(200 + i));
    }

    // All at once, through the new server's real login path.
    std::vector<std::string> replies(kUsers);
    {
        std::vector<std::thread> logins;
        for (int i = 0; i < kUsers; ++i) {
            logins.emplace_back([&, i] {
                replies[i] = wt::imap_login(w.fresh->imap_port(), o.users[i].name, passwords[i]);
            });
        }
        for (auto& t : logins) {
            t.join();
        }
    }
    INFO("new server log:\n", w.fresh->log_tail(60));
    for (int i = 0; i < kUsers; ++i) {
        CAPTURE(i);
        CHECK(replies[i].rfind("a1 OK", 0) == 0);
    }
    auto jobs = w.jobs();
    CHECK(jobs.size() == static_cast<std::size_t>(kUsers));
    std::set<std::string> accounts;
    for (const auto& j : jobs) {
        accounts.insert(j.account);
        CHECK(j.state == mf::JobState::queued);
        CHECK(j.priority == mf::kPriorityLogin);
    }
    CHECK(accounts.size() == static_cast<std::size_t>(kUsers));

    auto w1 = w.start_worker({"--no-host-lock"});
    auto w2 = w.start_worker({"--no-host-lock"});
    // Watch: running jobs in the store, and live IMAP users at the old server.
    std::atomic<bool> watching{true};
    std::atomic<long> max_running{0};
    std::atomic<long> max_sessions{0};
    std::atomic<int> samples{0};
    std::thread store_watch([&] {
        auto s = mf::open_sqlite_store(w.db(), mf::Millis(5000));
        while (watching && s) {
            auto live = (*s)->list_jobs(true);
            if (live) {
                long n = 0;
                auto now = mf::now_unix_ms();
                for (const auto& j : *live) {
                    n += j.state == mf::JobState::running && j.lease_until > now ? 1 : 0;
                }
                max_running = std::max(max_running.load(), n);
                ++samples;
            }
            std::this_thread::sleep_for(10ms);
        }
    });
    std::thread who_watch([&] {
        while (watching) {
            long n = static_cast<long>(imap_users(w.old).size());
            max_sessions = std::max(max_sessions.load(), n);
        }
    });
    std::vector<std::string> names;
    for (const auto& u : o.users) {
        names.push_back(u.name);
    }
    auto t0 = std::chrono::steady_clock::now();
    bool all = w.wait_state(names, AccountState::synced, 120s);
    auto took = std::chrono::steady_clock::now() - t0;
    watching = false;
    store_watch.join();
    who_watch.join();
    INFO("worker 1 log:\n", mft::read_file(w1.log), "\nworker 2 log:\n", mft::read_file(w2.log));
    REQUIRE(all);
    MESSAGE("20 accounts copied in ",
            std::chrono::duration_cast<std::chrono::milliseconds>(took).count(), " ms; at most ",
            max_running.load(), " copies at once in the store, ", max_sessions.load(),
            " users with IMAP sessions at the old server (", samples.load(), " samples)");
    CHECK(max_running <= static_cast<long>(kBudget));
    CHECK(max_sessions <= static_cast<long>(kBudget));
    CHECK(max_running >= 2); // the copies did run in parallel
    // Both workers took part.
    CHECK(mft::read_file(w1.log).find("copy started") != std::string::npos);
    CHECK(mft::read_file(w2.log).find("copy started") != std::string::npos);

    // Secrets, while every process is still alive.
    std::vector<std::string> needles = passwords;
    needles.push_back(w.master_password);
    std::vector<std::string> found;
    CHECK(mft::read_file("/proc/" + std::to_string(w1.pid) + "/cmdline").find("worker") !=
          std::string::npos);
    for (pid_t pid : pids_to_check(w, {&w1, &w2})) {
        for (const char* what : {"cmdline", "environ"}) {
            std::string f = "/proc/" + std::to_string(pid) + "/" + what;
            if (auto hit = wt::find_secrets(f, needles); !hit.empty()) {
                found.push_back(hit);
            }
        }
    }
    w1.signal(SIGTERM);
    w2.signal(SIGTERM);
    CHECK(w1.wait(20s) == 0);
    CHECK(w2.wait(20s) == 0);

    for (int i = 0; i < kUsers; ++i) {
        CAPTURE(o.users[i].name);
        CHECK(wt::counts(*w.fresh, o.users[i].name) == wt::counts(w.old, o.users[i].name));
        auto report = w.verify(o.users[i].name, passwords[i]);
        REQUIRE_MESSAGE(report.ok(), (report.ok() ? "" : report.error().message()));
        CHECK(report->ok());
        CHECK(report->messages_compared == 30);
    }

    // Everything we wrote: store (with -wal/-shm), spool, copier state, locks, keys,
    // config, worker logs, both servers' logs, the new mail.
    std::vector<std::string> files = wt::files_under(w.dir.path());
    for (const mft::DovecotServer* srv :
         std::vector<const mft::DovecotServer*>{&w.old, w.fresh.get()}) {
        files.push_back(srv->dir() + "/dovecot.log");
    }
    for (const auto& f : files) {
        // The master password is in the two files that exist to hold it.
        std::vector<std::string> look = needles;
        if (f == w.state + "/master-password" || f == w.dir.file("master-users")) {
            look = passwords;
        }
        if (auto hit = wt::find_secrets(f, look); !hit.empty()) {
            found.push_back(hit);
        }
    }
    CHECK(files.size() > 20);
    // The search can find what is there: the master password's own file holds it.
    CHECK_FALSE(wt::find_secrets(w.state + "/master-password", needles).empty());
    CHECK_MESSAGE(found.empty(), "password found: " << (found.empty() ? "" : found.front()));
    for (const auto* p : {&w1, &w2}) {
        CHECK(mft::read_file(p->log).find("Sanitizer") == std::string::npos);
    }
}
