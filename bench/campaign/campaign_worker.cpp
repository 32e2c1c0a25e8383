// campaign_worker.cpp — bench/campaign's worker rows: a migration world (old Dovecot over
// TLS, new Dovecot whose passdb is mailferry-checkpassword, `mailferry worker` as user
// mailferry), all first logins in a burst, then the wait until every account is `synced`.
// "worker imap master": [target] IMAP with master_user; "worker imap user": without (each
// target connection a login through mailferry-checkpassword, a hash each); "worker
// maildir": [target] maildir.
//
// Must never: put a password in argv or the environment (logins go over IMAP).
#include "campaign.hpp"
#include "campaign_probe.hpp"
#include "support/migration_world.hpp"

#include <fmt/core.h>

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
    o.master_user = name == "worker imap master";
    o.maildir_target = name == "worker maildir";
    o.lease = "60s";
    o.idle_exit = "1h";
    return o;
}

} // namespace

Row worker_row(const Args& a, const Set& s, const std::string& name) {
    Row r;
    r.name = name;
    wt::World w(world_options(a, s, name));
    if (!a.cheap_hash) { // mailferry's default argon2id cost, as in production
        edit_config(w, "argon2_ops = 1\nargon2_memory_kib = 8192\n", "");
    }
    fill(w.old, s, a.size);
    auto worker = w.start_worker();
    std::this_thread::sleep_for(1s);
    long synced = 0;
    int failed = 0;
    {
        ConnSampler sampler(w.old.imaps_port(), worker.pid);
        auto t0 = Clock::now();
        failed = login_burst(w, s);
        r.login_secs = secs_since(t0);
        while ((synced = count_in_state(w.db(), mf::AccountState::synced)) < s.accounts &&
               Clock::now() - t0 < std::chrono::minutes(30) && worker.alive()) {
            std::this_thread::sleep_for(100ms);
        }
        r.secs = secs_since(t0);
        r.peak_old_all = sampler.peak_all();
        r.peak_old_worker = sampler.peak_pid();
    }
    worker.signal(SIGTERM);
    worker.wait(60s);
    check_counts(*w.fresh, s, r);
    r.ok = synced == s.accounts && failed == 0 && r.wrong == 0;
    if (!r.ok) {
        r.note = fmt::format("{} of {} synced, {} logins failed", synced, s.accounts, failed);
        fmt::print(stderr, "{}: {}; worker log tail:\n{}\n", name, r.note,
                   mft::file_tail(worker.log, 30));
    }
    return r;
}

} // namespace mfbench
