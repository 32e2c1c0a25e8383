// campaign_probe.hpp — what bench/campaign watches while a campaign runs: the connections
// to the old server (sampled every 50 ms with sock_diag; those of the worker process told
// apart by their socket inodes in /proc/PID/fd), the store's account states
// (one list_accounts per look, not one query per account), and the machine's CPU time.
//
// Header-only, used by campaign_bench.cpp alone. Must never: touch what it watches (it
// only reads /proc and the store) or let its thread outlive the object.
#pragma once

#include "mailferry/store.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <dirent.h>
#include <fstream>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <memory>
#include <netinet/in.h>
#include <set>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace mfbench {

using Clock = std::chrono::steady_clock;

// Peak ESTABLISHED client connections to 127.0.0.1 port `port`, in all processes and
// in the process `pid` (0: none yet, see watch_pid) — sampled every 50 ms until destroyed.
class ConnSampler {
  public:
    ConnSampler(std::uint16_t port, pid_t pid) : port_(port), pid_(pid) {
        thread_ = std::thread([this] {
            while (!stop_) {
                sample();
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        });
    }
    ~ConnSampler() {
        stop_ = true;
        thread_.join();
    }
    ConnSampler(const ConnSampler&) = delete;
    ConnSampler& operator=(const ConnSampler&) = delete;

    // Tells the connections of `pid` apart from now on (a process started after this).
    void watch_pid(pid_t pid) { pid_ = pid; }

    [[nodiscard]] int peak_all() const { return peak_all_; }
    [[nodiscard]] int peak_pid() const { return peak_pid_; }
    [[nodiscard]] int samples() const { return samples_; }

  private:
    // Socket inodes the process holds open.
    [[nodiscard]] std::set<unsigned long> inodes_of(pid_t pid) const {
        std::set<unsigned long> out;
        std::string dir = "/proc/" + std::to_string(pid) + "/fd";
        DIR* d = ::opendir(dir.c_str());
        if (d == nullptr) {
            return out;
        }
        while (dirent* e = ::readdir(d)) {
            char link[64] = {};
            std::string p = dir + "/" + e->d_name;
            ssize_t n = ::readlink(p.c_str(), link, sizeof link - 1);
            unsigned long ino = 0;
            if (n > 0 && std::sscanf(link, "socket:[%lu]", &ino) == 1) {
                out.insert(ino);
            }
        }
        ::closedir(d);
        return out;
    }

    // One sock_diag dump: the kernel filters ESTABLISHED itself, so a
    // sample costs far less than formatting /proc/net/tcp with all the TIME_WAIT lines a
    // campaign leaves behind (that cost showed in the machine's CPU time).
    void sample() {
        std::set<unsigned long> mine = pid_ > 0 ? inodes_of(pid_) : std::set<unsigned long>{};
        int all = 0;
        int ours = 0;
        // IPv4 only: the test servers listen on 127.0.0.1, and each dump walks the
        // kernel's whole table of established sockets once.
        for_each_established(AF_INET, [&](const inet_diag_msg& m) {
            if (ntohs(m.id.idiag_dport) == port_) {
                ++all;
                ours += mine.count(m.idiag_inode) != 0 ? 1 : 0;
            }
        });
        peak_all_ = std::max(peak_all_.load(), all);
        peak_pid_ = std::max(peak_pid_.load(), ours);
        ++samples_;
    }

    template <typename F>
    static void for_each_established(std::uint8_t family, F&& each) {
        int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (fd < 0) {
            return;
        }
        struct {
            nlmsghdr nh;
            inet_diag_req_v2 req;
        } q{};
        q.nh.nlmsg_len = sizeof q;
        q.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
        q.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
        q.req.sdiag_family = family;
        q.req.sdiag_protocol = IPPROTO_TCP;
        q.req.idiag_states = 1U << 1; // TCP_ESTABLISHED
        if (::send(fd, &q, sizeof q, 0) == static_cast<ssize_t>(sizeof q)) {
            alignas(nlmsghdr) char buf[32768];
            bool done = false;
            while (!done) {
                ssize_t n = ::recv(fd, buf, sizeof buf, 0);
                if (n <= 0) {
                    break;
                }
                for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, n);
                     h = NLMSG_NEXT(h, n)) {
                    if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
                        done = true;
                        break;
                    }
                    each(*static_cast<const inet_diag_msg*>(NLMSG_DATA(h)));
                }
            }
        }
        ::close(fd);
    }

    std::uint16_t port_;
    std::atomic<pid_t> pid_;
    std::atomic<bool> stop_{false};
    std::atomic<int> peak_all_{0};
    std::atomic<int> peak_pid_{0};
    std::atomic<int> samples_{0};
    std::thread thread_;
};

// How many of the store's accounts are in a state: one store connection for all looks,
// opened on the first (the store file exists once the world is set up).
class StateCounter {
  public:
    explicit StateCounter(std::string db) : db_(std::move(db)) {}

    // -1 when the store cannot be read now.
    long count(mf::AccountState state) {
        if (!store_) {
            auto s = mf::open_sqlite_store_readonly(db_, mf::Millis(5000));
            if (!s) {
                return -1;
            }
            store_ = std::move(*s);
        }
        auto list = store_->list_accounts();
        if (!list) {
            return -1;
        }
        long n = 0;
        for (const auto& a : *list) {
            n += a.state == state ? 1 : 0;
        }
        return n;
    }

  private:
    std::string db_;
    std::unique_ptr<mf::Store> store_;
};

// CPU time (user, system, irq, softirq, guest) all cores have spent since boot, in
// seconds, from /proc/stat: the difference across a row is what the whole machine paid.
inline double machine_cpu_secs() {
    std::ifstream in("/proc/stat");
    std::string cpu;
    unsigned long long user = 0, nice = 0, sys = 0, idle = 0, iowait = 0, irq = 0, soft = 0;
    in >> cpu >> user >> nice >> sys >> idle >> iowait >> irq >> soft;
    return double(user + nice + sys + irq + soft) / double(::sysconf(_SC_CLK_TCK));
}

} // namespace mfbench
