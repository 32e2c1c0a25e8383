// campaign_loops.cpp — bench/campaign's baselines: the same accounts copied one after
// another, by a loop of mailferry-copy or of `doveadm backup -R` (imapc: over TLS), from an
// old Dovecot into a new Dovecot that reads its own passwd-file (no mailferry in its
// logins): what an admin's shell loop would do. Fresh servers for each row.
//
// Must never: put a password in argv or the environment (password files and doveadm
// config files, 0600, in the row's temp dir).
#include "campaign.hpp"
#include "campaign_probe.hpp"
#include "support/migration_world.hpp"

#include <fmt/core.h>

namespace mfbench {
namespace {

mft::RunResult copy_one(const mft::DovecotServer& old, const mft::DovecotServer& fresh,
                        const mft::TestUser& u, const mft::TempDir& dir) {
    static const std::string copy = mft::program_path("copier", "mailferry-copy");
    std::string pw = dir.file(u.name + ".pw");
    mft::write_file(pw, u.password + "\n", 0600);
    return mft::run({copy, "--from",
                     "imaps://" + u.name + "@localhost:" + std::to_string(old.imaps_port()), "--to",
                     "imap+plain://" + u.name + "@127.0.0.1:" + std::to_string(fresh.imap_port()),
                     "--from-password-file", pw, "--to-password-file", pw, "--from-ca-file",
                     old.ca_file(), "--state", dir.file(u.name + ".db"), "-q"},
                    {}, std::chrono::minutes(10));
}

mft::RunResult backup_one(const mft::DovecotServer& old, const mft::DovecotServer& fresh,
                          const mft::TestUser& u, const mft::TempDir& dir) {
    // The old server's password goes in a config file that includes the new server's.
    std::string conf = dir.file(u.name + ".conf");
    mft::write_file(conf,
                    "!include " + fresh.config_path() + "\nimapc_host = localhost\nimapc_port = " +
                        std::to_string(old.imaps_port()) +
                        "\nimapc_ssl = imaps\nssl_client_ca_file = " + old.ca_file() +
                        "\nimapc_user = " + u.name + "\nimapc_password = " + u.password +
                        "\nimapc_features = rfc822.size fetch-headers modseq\n"
                        "mail_prefetch_count = 20\n",
                    0600);
    return mft::run({"doveadm", "-c", conf, "backup", "-R", "-u", u.name, "imapc:"}, {},
                    std::chrono::minutes(10));
}

} // namespace

Row loop_row(const Args& a, const Set& s, const std::string& name) {
    Row r;
    r.name = name;
    const auto users = users_of(s);
    mft::DovecotOptions oo;
    oo.label = "cold";
    oo.users = users;
    oo.pop3 = oo.pop3s = oo.submission = false;
    mft::DovecotServer old(oo);
    fill(old, s, a.size);
    mft::DovecotOptions no;
    no.label = "cnew";
    no.users = users;
    no.tls = false;
    no.imaps = no.pop3 = no.pop3s = no.submission = false;
    mft::DovecotServer fresh(no);
    mft::TempDir dir{"mf-campaign-loop"};
    int failures = 0;
    {
        ConnSampler sampler(old.imaps_port(), 0);
        auto t0 = Clock::now();
        const double cpu0 = machine_cpu_secs();
        for (const auto& u : users) {
            auto rr = name == "loop mailferry-copy" ? copy_one(old, fresh, u, dir)
                                                    : backup_one(old, fresh, u, dir);
            if (rr.exit_code != 0 && failures++ == 0) {
                fmt::print(stderr, "{}: {}: exit {}: {}{}\n", name, u.name, rr.exit_code, rr.out,
                           rr.err);
            }
        }
        r.secs = std::chrono::duration<double>(Clock::now() - t0).count();
        r.cpu_secs = machine_cpu_secs() - cpu0;
        r.peak_old_all = sampler.peak_all();
    }
    check_counts(fresh, s, r);
    r.ok = failures == 0 && r.wrong == 0;
    if (!r.ok) {
        r.note = fmt::format("{} copies failed, {} of {} checked accounts differ", failures,
                             r.wrong, r.checked);
    }
    return r;
}

} // namespace mfbench
