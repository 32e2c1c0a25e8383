// campaign_bench.cpp — bench/campaign: a whole campaign on loopback, N accounts x M
// messages, copied by `mailferry worker` (IMAP target with and without a master user,
// Maildir target) against one account after another (mailferry-copy, doveadm backup).
//
// For each data set (--sets, default "100x50,1000x10"), in one run, each row on fresh
// servers:
//   worker imap master    [target] = the new server's IMAP with master_user (the default
//                         of the README and the demo): no password hash per connection
//   worker imap user      the same without master_user: each target connection logs in as
//                         the user through mailferry-checkpassword (an argon2id verify)
//   worker maildir        [target] maildir: the worker writes the new server's Maildirs
//   campaign imap master  "worker imap master" with the worker running during the logins
//   loop mailferry-copy   one account after another into a Dovecot with its own passwd-file
//   loop doveadm backup   the same with `doveadm backup -R` from imapc:
// The "worker" rows let the logins queue every job first and then start the worker: their
// "copy s" is the worker's start to the last account `synced` (the store's account
// states), comparable to the loops, which pay no first-login hash. The "campaign" row is a
// campaign as users make it; its "copy s" is the first login to the last account synced.
// Worker rows also record the login burst's length, the first login to the last account
// synced, and the peak connections to the old server (all processes, and the worker's),
// sampled every 50 ms. Every row checks the message count of up to 100 accounts at the new
// server. The hash cost is mailferry's default
// (argon2id, 64 MiB, 2 passes) unless --cheap-hash. Prints a table and writes
// bench/results/campaign-<stamp>.{txt,json}.
//
// The servers' files go under $TMPDIR (else /tmp). Where that file system is ext4 without a
// journal (as the root of the CI machines), each file created scans the inode table for
// recently deleted inodes, and after the previous row deleted its servers that scan took a
// third of the machine's CPU; a journaled file system, as a mail server has, is the fair
// place: e.g. an ext4 image mounted with -o loop, then TMPDIR=/mnt/benchfs.
//
// Usage (root, after ./setup.sh deps):
//   campaign_bench [--sets 100x50,1000x10] [--size BYTES] [--rows NAME,NAME]
//                  [--copies 4] [--budget 4] [--cheap-hash] [--out DIR]
// Not a test. Must never: touch the system Dovecot, or print a password.
#include "campaign.hpp"
#include "support/migration_world.hpp"

#include <ctime>
#include <fmt/core.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace mfbench {

std::string user_name(int i) {
    return fmt::format("u{:04d}@example.com", i);
}

std::string password_of(int i) {
    return fmt::format("pw-{:04d}-campaign", i);
}

std::vector<mft::TestUser> users_of(const Set& s) {
    std::vector<mft::TestUser> u;
    for (int i = 0; i < s.accounts; ++i) {
        u.push_back({user_name(i), password_of(i)});
    }
    return u;
}

void fill(const mft::DovecotServer& srv, const Set& s, std::size_t size) {
    const int sent = s.messages / 5;
    for (int i = 0; i < s.accounts; ++i) {
        auto seed = static_cast<unsigned>(1 + 2 * i);
        wt::fill_mailbox(srv, user_name(i), "", s.messages - sent, size, seed);
        if (sent > 0) {
            wt::fill_mailbox(srv, user_name(i), "Sent", sent, size, seed + 1);
        }
    }
}

void check_counts(const mft::DovecotServer& srv, const Set& s, Row& r) {
    const int step = std::max(1, s.accounts / 100);
    for (int i = 0; i < s.accounts; i += step) {
        ++r.checked;
        r.wrong += wt::total(wt::counts(srv, user_name(i))) == s.messages ? 0 : 1;
    }
}

} // namespace mfbench

namespace {

using mfbench::Args;
using mfbench::Row;
using mfbench::Set;

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string part; std::getline(in, part, ',');) {
        if (!part.empty()) {
            out.push_back(part);
        }
    }
    return out;
}

Args parse(int argc, char** argv) {
    Args a;
    a.out = MF_SOURCE_DIR "/bench/results";
    for (int i = 1; i < argc; ++i) {
        std::string k = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) {
                throw std::runtime_error(k + " needs a value");
            }
            return argv[++i];
        };
        if (k == "--sets") {
            a.sets.clear();
            for (const auto& p : split(val())) {
                Set s;
                if (std::sscanf(p.c_str(), "%dx%d", &s.accounts, &s.messages) != 2 ||
                    s.accounts < 1 || s.messages < 1) {
                    throw std::runtime_error("--sets: \"" + p + "\" is not NxM");
                }
                a.sets.push_back(s);
            }
        } else if (k == "--size") {
            a.size = std::stoul(val());
        } else if (k == "--rows") {
            a.rows = split(val());
        } else if (k == "--copies") {
            a.copies = static_cast<unsigned>(std::stoul(val()));
        } else if (k == "--budget") {
            a.budget = static_cast<unsigned>(std::stoul(val()));
        } else if (k == "--cheap-hash") {
            a.cheap_hash = true;
        } else if (k == "--out") {
            a.out = val();
        } else {
            throw std::runtime_error("unknown option " + k + " (see the file header)");
        }
    }
    return a;
}

std::string table(const Set& s, const std::vector<Row>& rows, const Args& a) {
    double loop = 0;
    double maildir = 0;
    for (const auto& r : rows) {
        loop = r.name == "loop mailferry-copy" ? r.secs : loop;
        maildir = r.name == "worker maildir" ? r.secs : maildir;
    }
    const double msgs = double(s.accounts) * s.messages;
    std::string t = fmt::format(
        "{} accounts x {} messages of ~{} bytes; copies = {}, max_copies_per_server = {}, "
        "connections = 2; hash {}; servers' files under {}\n",
        s.accounts, s.messages, a.size, a.copies, a.budget,
        a.cheap_hash ? "argon2id 8 MiB/1 pass" : "argon2id 64 MiB/2 passes (default)",
        std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR") : "/tmp");
    const double cores = std::max(1U, std::thread::hardware_concurrency());
    t += fmt::format("{:<22} {:>7} {:>6} {:>7} {:>8} {:>8} {:>10} {:>9} {:>9} {:>7} {:>7}  {}\n",
                     "row", "copy s", "cpu s", "msg/s", "vs loop", "cpu max", "vs maildir",
                     "logins s", "1st-last", "old max", "worker", "check");
    auto secs_or_dash = [](double v) { return v > 0 ? fmt::format("{:.1f}", v) : "-"; };
    for (const auto& r : rows) {
        t += fmt::format(
            "{:<22} {:>7.1f} {:>6.1f} {:>7.0f} {:>7.2f}x {:>7.2f}x {:>9.2f}x {:>9} {:>9} {:>7} "
            "{:>7}  {}\n",
            r.name, r.secs, r.cpu_secs, msgs / r.secs, loop > 0 ? loop / r.secs : 0.0,
            loop > 0 && r.cpu_secs > 0 ? loop / (r.cpu_secs / cores) : 0.0,
            maildir > 0 ? r.secs / maildir : 0.0, secs_or_dash(r.login_secs),
            secs_or_dash(r.campaign_secs), r.peak_old_all,
            r.peak_old_worker > 0 ? std::to_string(r.peak_old_worker) : "-",
            r.ok ? fmt::format("ok ({} checked)", r.checked) : "FAILED: " + r.note);
    }
    t += "copy s = worker start (campaign row: first login; loops: first copy) to the last "
         "account done; cpu s = CPU time the whole machine spent meanwhile (all cores); vs loop = "
         "loop mailferry-copy time / this row's (higher is better); cpu max = the most vs loop "
         "could be on this machine at this row's CPU cost: loop time / (cpu s / cores); vs "
         "maildir = this row's time / worker maildir's; 1st-last = first login to the last "
         "account synced; old max = peak connections to the old server, all "
         "processes (logins' checks included); worker = the worker's own, against a budget of " +
         std::to_string(a.budget * 2) + " (max_copies_per_server x connections)\n";
    return t;
}

nlohmann::json to_json(const Set& s, const std::vector<Row>& rows) {
    nlohmann::json j{
        {"accounts", s.accounts}, {"messages", s.messages}, {"rows", nlohmann::json::array()}};
    for (const auto& r : rows) {
        j["rows"].push_back({{"name", r.name},
                             {"secs", r.secs},
                             {"login_secs", r.login_secs},
                             {"campaign_secs", r.campaign_secs},
                             {"cpu_secs", r.cpu_secs},
                             {"peak_old_all", r.peak_old_all},
                             {"peak_old_worker", r.peak_old_worker},
                             {"checked", r.checked},
                             {"wrong", r.wrong},
                             {"ok", r.ok},
                             {"note", r.note}});
    }
    return j;
}

} // namespace

int main(int argc, char** argv) try {
    Args a = parse(argc, argv);
    std::time_t now = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::gmtime(&now));
    std::string text;
    nlohmann::json j{{"date", stamp},
                     {"size", a.size},
                     {"copies", a.copies},
                     {"budget", a.budget},
                     {"cheap_hash", a.cheap_hash},
                     {"sets", nlohmann::json::array()}};
    for (const auto& s : a.sets) {
        std::vector<Row> rows;
        for (const auto& name : a.rows) {
            fmt::print(stderr, "{}x{}: {} ...\n", s.accounts, s.messages, name);
            rows.push_back(name.rfind("loop", 0) == 0 ? mfbench::loop_row(a, s, name)
                                                      : mfbench::worker_row(a, s, name));
            fmt::print(stderr, "  {:.1f} s{}\n", rows.back().secs, rows.back().ok ? "" : " FAILED");
        }
        std::string t = table(s, rows, a);
        fmt::print("{}\n", t);
        text += t + "\n";
        j["sets"].push_back(to_json(s, rows));
    }
    std::string base = a.out + "/campaign-" + stamp;
    std::ofstream(base + ".txt") << text;
    std::ofstream(base + ".json") << j.dump(2) << "\n";
    fmt::print("results: {}.{{txt,json}}\n", base);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "campaign_bench: %s\n", e.what());
    return 1;
}
