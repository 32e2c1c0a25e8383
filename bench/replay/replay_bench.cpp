// replay_bench.cpp — does the old server's max_concurrent, not `mailferry replay`, set the
// pace of a replay?
//
// One old Dovecot on loopback (plain IMAP, performance login mode: service_count = 0) with
// N users (default 1,000), reached through a loopback proxy that holds each new connection
// for --delay ms (default 100) before connecting it on: a distant old server, whose logins
// take long without costing this machine CPU. (Without it a login costs ~26 ms of CPU here
// and a busy two-core machine is the limit, whatever the concurrency.) For each
// max_concurrent K in 2, 4 and 100 (100: no limit binds, replay's own --jobs 8 does), in a
// fresh state directory:
//   replay   `mailferry replay --jobs 8 FILE` (this build's program) on an N-line
//            user<TAB>password file: wall time → lines/s; every line must be ok; lines
//            that found the server's budget full and waited are counted from --json
//   raw      N IMAP LOGIN+LOGOUT through the same proxy from min(K, 8) client threads:
//            the rate the old server allows at that concurrency, without mailferry
// If the per-server limit binds, replay's rate follows the raw rate at K (ratio near 1)
// and grows with K. Password hashing is made cheap so it is not what is measured:
// argon2id with ops 1, memory 8 KiB (the config's minimum); builtin provisioner; no
// [target] (no spool or copy queue).
// Prints a table, writes bench/results/replay-<UTC timestamp>.{txt,json}.
// Usage: replay_bench [--users N] [--delay MS] [--out DIR] [--dovecot-extra FILE]
//   --dovecot-extra appends FILE to the old Dovecot's config (e.g. service imap and
//   imap-login `executable =` lines when the IMAP binaries live elsewhere).
#include "support/dovecot_server.hpp"
#include "support/migration_world.hpp"
#include "support/test_env.hpp"

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fmt/core.h>
#include <fstream>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/socket.h>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double secs_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// A loopback TCP proxy that waits `delay` before connecting each client on to `port`:
// the round trips of a distant server, without CPU. One thread per connection.
class DelayProxy {
  public:
    DelayProxy(std::uint16_t upstream, std::chrono::milliseconds delay)
        : upstream_(upstream), delay_(delay) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof sa;
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), len) != 0 || ::listen(fd_, 512) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
            throw std::runtime_error("proxy: cannot listen");
        }
        port_ = ntohs(sa.sin_port);
        acceptor_ = std::jthread([this](const std::stop_token& st) { accept_loop(st); });
    }
    ~DelayProxy() {
        acceptor_.request_stop();
        ::shutdown(fd_, SHUT_RDWR);
        acceptor_ = {};
        ::close(fd_);
        while (active_ > 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    DelayProxy(const DelayProxy&) = delete;
    DelayProxy& operator=(const DelayProxy&) = delete;
    [[nodiscard]] std::uint16_t port() const { return port_; }

  private:
    void accept_loop(const std::stop_token& st) {
        while (!st.stop_requested()) {
            int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) {
                continue;
            }
            ++active_;
            std::thread([this, c] {
                relay(c);
                --active_;
            }).detach();
        }
    }
    void relay(int c) const {
        std::this_thread::sleep_for(delay_);
        int u = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(upstream_);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(u, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
            pollfd p[2] = {{c, POLLIN, 0}, {u, POLLIN, 0}};
            char buf[16384];
            for (bool open = true; open && ::poll(p, 2, 60000) > 0;) {
                for (int i = 0; i < 2 && open; ++i) {
                    if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
                        continue;
                    }
                    ssize_t n = ::read(p[i].fd, buf, sizeof buf);
                    open = n > 0 && ::write(p[1 - i].fd, buf, static_cast<std::size_t>(n)) == n;
                }
            }
        }
        ::close(u);
        ::close(c);
    }

    std::uint16_t upstream_;
    std::chrono::milliseconds delay_;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<int> active_{0};
    std::jthread acceptor_;
};

struct Row {
    unsigned max_concurrent = 0;
    unsigned jobs = 0;
    double replay_rate = 0; // lines/s
    double replay_secs = 0;
    std::size_t ok = 0;
    std::size_t busy_waits = 0; // sum of waits over all lines
    std::size_t lines_waited = 0;
    int exit_code = -1;
    unsigned raw_threads = 0;
    double raw_rate = 0; // logins/s
    std::size_t raw_ok = 0;
};

std::string config_text(std::uint16_t port, const std::string& dir, unsigned k) {
    return "[store]\npath = \"" + dir +
           "/state/mailferry.db\"\n\n"
           "[identity]\ndefault_domain = \"example.com\"\n\n"
           "[[provider]]\nname = \"old\"\ndomains = [\"example.com\"]\nprotocol = \"imap\"\n"
           "host = \"127.0.0.1\"\nport = " +
           std::to_string(port) +
           "\ntls = \"none\"\ntimeout = \"30s\"\nmax_concurrent = " + std::to_string(k) +
           "\n\n[hash]\nscheme = \"argon2id\"\nargon2_ops = 1\nargon2_memory_kib = 8\n\n"
           "[provisioner]\ntype = \"builtin\"\n\n"
           "[guard]\nmax_failures_per_account = 1000\nmax_failures_per_ip = 100000\n\n"
           "[log]\nlevel = \"warning\"\n";
}

// N logins from `threads` threads sharing one counter; returns logins/s, counts OKs.
double raw_rate(std::uint16_t port, int users, unsigned threads, std::size_t* ok_out) {
    std::atomic<int> next{0};
    std::atomic<std::size_t> ok{0};
    auto t0 = Clock::now();
    {
        std::vector<std::jthread> pool;
        for (unsigned t = 0; t < threads; ++t) {
            pool.emplace_back([&] {
                for (int i = next++; i < users; i = next++) {
                    std::string reply =
                        wt::imap_login(port, "user" + std::to_string(i) + "@example.com",
                                       "pw-" + std::to_string(i));
                    if (reply.rfind("a1 OK", 0) == 0) {
                        ++ok;
                    }
                }
            });
        }
    }
    double s = secs_since(t0);
    *ok_out = ok.load();
    return static_cast<double>(users) / s;
}

Row run_one(std::uint16_t port, const std::string& file, int users, unsigned k, unsigned jobs) {
    Row row;
    row.max_concurrent = k;
    row.jobs = jobs;
    mft::TempDir dir("mf-replay-bench");
    ::mkdir((dir.path() + "/state").c_str(), 0770);
    std::string config = dir.file("mailferry.toml");
    mft::write_file(config, config_text(port, dir.path(), k), 0600);
    auto t0 = Clock::now();
    auto r = mft::run({wt::kMailferry, "--json", "replay", "--config", config, "--jobs",
                       std::to_string(jobs), file},
                      {}, std::chrono::minutes(30));
    row.replay_secs = secs_since(t0);
    row.replay_rate = users / row.replay_secs;
    row.exit_code = r.exit_code;
    try {
        auto doc = nlohmann::json::parse(r.out);
        for (const auto& l : doc["lines"]) {
            row.ok += l["result"] == "ok" ? 1 : 0;
            std::string d = l["detail"];
            auto pos = d.find("(waited ");
            if (pos != std::string::npos) {
                row.busy_waits += std::stoul(d.substr(pos + 8));
                ++row.lines_waited;
            }
        }
    } catch (const std::exception& e) {
        fmt::print(stderr, "replay output not JSON ({}): {}\n", e.what(), r.err);
    }
    row.raw_threads = std::min(k, jobs);
    row.raw_rate = raw_rate(port, users, row.raw_threads, &row.raw_ok);
    return row;
}

} // namespace

int main(int argc, char** argv) {
    int users = 1000;
    int delay_ms = 100;
    std::string dovecot_extra;
    std::string out_dir = MF_SOURCE_DIR "/bench/results";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--users") == 0) {
            users = std::max(10, std::atoi(argv[i + 1]));
        } else if (std::strcmp(argv[i], "--delay") == 0) {
            delay_ms = std::max(0, std::atoi(argv[i + 1]));
        } else if (std::strcmp(argv[i], "--dovecot-extra") == 0) {
            dovecot_extra = mft::read_file(argv[i + 1]);
        } else if (std::strcmp(argv[i], "--out") == 0) {
            out_dir = argv[i + 1];
        }
    }
    mft::DovecotOptions o;
    o.label = "bench-replay";
    o.performance_login = true;
    o.tls = false;
    o.imaps = o.pop3 = o.pop3s = o.submission = false;
    for (int i = 0; i < users; ++i) {
        o.users.push_back({"user" + std::to_string(i) + "@example.com", "pw-" + std::to_string(i)});
    }
    o.extra_config = dovecot_extra;
    mft::DovecotServer old(o);
    DelayProxy proxy(old.imap_port(), std::chrono::milliseconds(delay_ms));
    mft::TempDir files("mf-replay-bench-file");
    std::string text;
    for (int i = 0; i < users; ++i) {
        text += "user" + std::to_string(i) + "\tpw-" + std::to_string(i) + "\n";
    }
    std::string file = files.file("accounts.txt");
    mft::write_file(file, text, 0600);

    // Warm-up: Dovecot's login and auth processes started, caches filled.
    std::size_t warm_ok = 0;
    raw_rate(proxy.port(), std::min(users, 100), 8, &warm_ok);

    const unsigned jobs = 8;
    std::vector<Row> rows;
    for (unsigned k : {2u, 4u, 100u}) {
        rows.push_back(run_one(proxy.port(), file, users, k, jobs));
        const Row& r = rows.back();
        fmt::print(stderr, "max_concurrent {}: replay {:.1f} lines/s, raw {:.1f} logins/s\n", k,
                   r.replay_rate, r.raw_rate);
    }

    std::string txt = fmt::format(
        "replay rate vs the old server's max_concurrent: {} lines, mailferry replay --jobs {},\n"
        "old Dovecot (plain IMAP, performance login mode) on loopback behind a proxy adding\n"
        "{} ms per connection; argon2id ops 1 / 8 KiB, builtin provisioner, no copy queue.\n"
        "raw = IMAP LOGIN+LOGOUT through the same proxy from min(K, {}) threads.\n",
        users, jobs, delay_ms, jobs);
    txt += fmt::format("{:>14}  {:>10}  {:>8}  {:>12}  {:>12}  {:>9}  {:>11}  {:>10}\n",
                       "max_concurrent", "replay/s", "ok", "lines waited", "raw threads", "raw/s",
                       "replay/raw", "exit");
    for (const auto& r : rows) {
        txt += fmt::format(
            "{:>14}  {:>10.1f}  {:>8}  {:>12}  {:>12}  {:>9.1f}  {:>11.2f}  {:>10}\n",
            r.max_concurrent == 100 ? std::string("100 (none)") : std::to_string(r.max_concurrent),
            r.replay_rate, r.ok, r.lines_waited, r.raw_threads, r.raw_rate,
            r.raw_rate > 0 ? r.replay_rate / r.raw_rate : 0, r.exit_code);
    }
    fmt::print("{}", txt);

    nlohmann::json j;
    j["users"] = users;
    j["jobs"] = jobs;
    j["hash"] = "argon2id ops 1, memory 8 KiB";
    j["old_server"] = "Dovecot, plain IMAP on 127.0.0.1, service_count = 0, behind a proxy "
                      "adding " +
                      std::to_string(delay_ms) + " ms per connection";
    j["delay_ms"] = delay_ms;
    j["rows"] = nlohmann::json::array();
    bool all_ok = true;
    for (const auto& r : rows) {
        all_ok = all_ok && r.exit_code == 0 && r.ok == static_cast<std::size_t>(users) &&
                 r.raw_ok == static_cast<std::size_t>(users);
        j["rows"].push_back({{"max_concurrent", r.max_concurrent},
                             {"jobs", r.jobs},
                             {"replay_lines_per_s", r.replay_rate},
                             {"replay_seconds", r.replay_secs},
                             {"replay_ok", r.ok},
                             {"replay_exit", r.exit_code},
                             {"lines_that_waited_for_a_slot", r.lines_waited},
                             {"busy_waits", r.busy_waits},
                             {"raw_threads", r.raw_threads},
                             {"raw_logins_per_s", r.raw_rate},
                             {"raw_ok", r.raw_ok}});
    }
    char date[32];
    std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y%m%d-%H%M%S", std::gmtime(&now));
    std::string base = out_dir + "/replay-" + date;
    std::ofstream(base + ".json") << j.dump(2) << "\n";
    std::ofstream(base + ".txt") << txt << "results: " << base << ".{txt,json}\n"
                                 << "exit " << (all_ok ? 0 : 1) << "\n";
    fmt::print("results: {}.{{txt,json}}\n", base);
    return all_ok ? 0 : 1;
}
