// campaign_worker.cpp — bench/campaign's worker rows: a migration world (old Dovecot over
// TLS, new Dovecot whose passdb is mailferry-checkpassword, `mailferry worker` as user
// mailferry), all first logins in a burst, then the wait until every account is `synced`.
// "worker imap master": [target] IMAP with master_user; "worker imap user": without (each
// target connection a login through mailferry-checkpassword, a hash each); "worker
// maildir": [target] maildir. These three start the worker once the burst is over, so
// their time is the copy alone, as the loops' is: the loops pay no first-login hash.
// "campaign imap master" runs the worker during the burst, as a real campaign does; its
// time is the first login to the last account synced.
//
// Must never: put a password in argv or the environment (logins go over IMAP).
#include "campaign.hpp"
#include "campaign_probe.hpp"
#include "support/migration_world.hpp"

#include <fmt/core.h>
#include <optional>

namespace mfbench {
namespace {

using namespace std::chrono_literals;

double secs_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Replaces `from` by `to` in the world's mailferry.toml (kept root:mailferry 0640).
void edit_config(const wt::World& w, const std::string& from, const std::string& to) {
    std::string text = mft::read_file(w.config);
    auto at = text.find(from);
    if (at == std::string::npos) {
        throw std::runtime_error("config has no \"" + from + "\"");
    }
    text.replace(at, from.size(), to);
    mft::write_file(w.config, text, 0640);
    wt::chown_path(w.config, 0, w.mf_group);
}

// All first logins at the new server, 8 at a time: users arriving within seconds.
int login_burst(const wt::World& w, const Set& s) {
    std::atomic<int> next{0};
    std::atomic<int> failed{0};
    std::vector<std::thread> t;
    for (int k = 0; k < 8; ++k) {
        t.emplace_back([&] {
            for (int i = next++; i < s.accounts; i = next++) {
                std::string reply =
                    wt::imap_login(w.fresh->imap_port(), user_name(i), password_of(i));
                failed += reply.rfind("a1 OK", 0) == 0 ? 0 : 1;
            }
        });
    }
    for (auto& x : t) {
        x.join();
    }
    return failed;
}

wt::WorldOptions world_options(const Args& a, const Set& s, const std::string& name) {
    wt::WorldOptions o;
    o.users = users_of(s);
    o.copies = a.copies;
    o.budget = a.budget;
    o.master_user = name == "worker imap master" || name == "campaign imap master";
    o.maildir_target = name == "worker maildir";
    o.lease = "60s";
    o.idle_exit = "1h";
    return o;
}

} // namespace

Row worker_row(const Args& a, const Set& s, const std::string& name) {
    Row r;
    r.name = name;
    const bool during_logins = name.rfind("campaign", 0) == 0;
    wt::World w(world_options(a, s, name));
    if (!a.cheap_hash) { // mailferry's default argon2id cost, as in production
        edit_config(w, "argon2_ops = 1\nargon2_memory_kib = 8192\n", "");
    }
    fill(w.old, s, a.size);
    std::optional<wt::Proc> worker;
    if (during_logins) {
        worker.emplace(w.start_worker());
        std::this_thread::sleep_for(1s);
    }
    long synced = 0;
    int failed = 0;
    StateCounter states(w.db());
    {
        ConnSampler sampler(w.old.imaps_port(), worker ? worker->pid : 0);
        auto t0 = Clock::now();
        const double cpu0 = machine_cpu_secs();
        failed = login_burst(w, s);
        r.login_secs = secs_since(t0);
        auto t1 = Clock::now();
        const double cpu1 = machine_cpu_secs();
        if (!during_logins) {
            worker.emplace(w.start_worker());
            sampler.watch_pid(worker->pid);
        }
        while ((synced = states.count(mf::AccountState::synced)) < s.accounts &&
               Clock::now() - t0 < std::chrono::minutes(30) && worker->alive()) {
            std::this_thread::sleep_for(100ms);
        }
        r.campaign_secs = secs_since(t0);
        r.secs = during_logins ? r.campaign_secs : secs_since(t1);
        r.cpu_secs = machine_cpu_secs() - (during_logins ? cpu0 : cpu1);
        r.peak_old_all = sampler.peak_all();
        r.peak_old_worker = sampler.peak_pid();
    }
    worker->signal(SIGTERM);
    worker->wait(60s);
    check_counts(*w.fresh, s, r);
    r.ok = synced == s.accounts && failed == 0 && r.wrong == 0;
    if (!r.ok) {
        r.note = fmt::format("{} of {} synced, {} logins failed", synced, s.accounts, failed);
        fmt::print(stderr, "{}: {}; worker log tail:\n{}\n", name, r.note,
                   mft::file_tail(worker->log, 30));
    }
    return r;
}

} // namespace mfbench
