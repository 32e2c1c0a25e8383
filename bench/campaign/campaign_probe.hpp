// campaign_probe.hpp — what bench/campaign watches while a campaign runs: the connections
// to the old server (sampled every 50 ms from /proc/net/tcp{,6}; those of the worker
// process told apart by their socket inodes in /proc/PID/fd), and the store's account
// states (one list_accounts per look, not one query per account).
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
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>

namespace mfbench {

using Clock = std::chrono::steady_clock;

// Peak ESTABLISHED client connections to 127.0.0.1/::1 port `port`, in all processes and
// in the process `pid` (0: none) — sampled every 50 ms until destroyed.
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

    void sample() {
        std::set<unsigned long> mine = pid_ > 0 ? inodes_of(pid_) : std::set<unsigned long>{};
        int all = 0;
        int ours = 0;
        for (const char* f : {"/proc/net/tcp", "/proc/net/tcp6"}) {
            std::ifstream in(f);
            std::string line;
            std::getline(in, line); // header
            while (std::getline(in, line)) {
                std::istringstream ls(line);
                std::string sl, local, remote, st, q, tr, rt, uid, to;
                unsigned long ino = 0;
                ls >> sl >> local >> remote >> st >> q >> tr >> rt >> uid >> to >> ino;
                auto colon = remote.rfind(':');
                if (st != "01" || colon == std::string::npos) {
                    continue; // 01 = ESTABLISHED
                }
                if (std::stoul(remote.substr(colon + 1), nullptr, 16) != port_) {
                    continue;
                }
                ++all;
                ours += mine.count(ino) != 0 ? 1 : 0;
            }
        }
        peak_all_ = std::max(peak_all_.load(), all);
        peak_pid_ = std::max(peak_pid_.load(), ours);
        ++samples_;
    }

    std::uint16_t port_;
    pid_t pid_;
    std::atomic<bool> stop_{false};
    std::atomic<int> peak_all_{0};
    std::atomic<int> peak_pid_{0};
    std::atomic<int> samples_{0};
    std::thread thread_;
};

// How many of the store's accounts are in `state`; -1 when the store cannot be read now.
inline long count_in_state(const std::string& db, mf::AccountState state) {
    auto s = mf::open_sqlite_store(db, mf::Millis(5000));
    if (!s) {
        return -1;
    }
    auto list = (*s)->list_accounts();
    if (!list) {
        return -1;
    }
    long n = 0;
    for (const auto& a : *list) {
        n += a.state == state ? 1 : 0;
    }
    return n;
}

} // namespace mfbench
