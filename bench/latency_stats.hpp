// latency_stats.hpp — percentiles of a set of latencies, for the benchmark programs.
// Header-only: each bench program stays one file.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <vector>

namespace mfbench {

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct Stats {
    double p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;
    std::size_t n = 0;
};

// Nearest-rank percentiles of `v` (taken by value: it is sorted here).
inline Stats stats(std::vector<double> v) {
    Stats s;
    if (v.empty()) {
        return s;
    }
    std::sort(v.begin(), v.end());
    s.n = v.size();
    auto at = [&](std::size_t percent) {
        return v[std::min(v.size() - 1, v.size() * percent / 100)];
    };
    s.p50 = v[v.size() / 2];
    s.p90 = at(90);
    s.p99 = at(99);
    s.max = v.back();
    double sum = 0;
    for (double x : v) {
        sum += x;
    }
    s.mean = sum / static_cast<double>(v.size());
    return s;
}

} // namespace mfbench
