// admin_output.cpp — tables, progress bar, times, and opening what the commands share.
// See admin_output.hpp.
#include "admin_output.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <unistd.h>

namespace mf::cli {
namespace {

std::size_t width(std::string_view s) {
    std::size_t n = 0;
    for (char c : s) {
        n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
    }
    return n;
}

} // namespace

bool stdout_is_tty() {
    return ::isatty(STDOUT_FILENO) == 1;
}

bool stderr_is_tty() {
    return ::isatty(STDERR_FILENO) == 1;
}

void Table::print(std::ostream& out) const {
    std::vector<std::size_t> w(headers_.size(), 0);
    for (std::size_t c = 0; c < headers_.size(); ++c) {
        w[c] = width(headers_[c]);
    }
    for (const auto& r : rows_) {
        for (std::size_t c = 0; c < r.size() && c < w.size(); ++c) {
            w[c] = std::max(w[c], width(r[c]));
        }
    }
    auto line = [&](const std::vector<std::string>& cells) {
        std::string text;
        for (std::size_t c = 0; c < w.size(); ++c) {
            const std::string cell = c < cells.size() ? cells[c] : std::string();
            text += cell;
            if (c + 1 < w.size()) {
                text += std::string(w[c] - width(cell) + 2, ' ');
            }
        }
        while (!text.empty() && text.back() == ' ') {
            text.pop_back();
        }
        out << text << "\n";
    };
    line(headers_);
    for (const auto& r : rows_) {
        line(r);
    }
}

Progress::Progress(std::string label, std::size_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled && total > 0),
      start_(std::chrono::steady_clock::now()), last_draw_() {}

Progress::~Progress() {
    finish();
}

void Progress::tick(std::size_t n) {
    done_ += n;
    if (!enabled_) {
        return;
    }
    std::lock_guard lk(mu_);
    auto now = std::chrono::steady_clock::now();
    if (!finished_ && now - last_draw_ >= std::chrono::milliseconds(100)) {
        last_draw_ = now;
        draw(false);
    }
}

void Progress::finish() {
    if (!enabled_) {
        return;
    }
    std::lock_guard lk(mu_);
    if (finished_) {
        return;
    }
    finished_ = true;
    draw(true);
}

void Progress::draw(bool final) {
    const std::size_t done = std::min(done_.load(), total_);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    constexpr std::size_t kBar = 30;
    const std::size_t fill = total_ == 0 ? kBar : done * kBar / total_;
    char tail[96];
    if (final) {
        std::snprintf(tail, sizeof tail, "  %zu/%zu  %.1f/s  %.1fs", done, total_, rate, secs);
    } else {
        const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0;
        std::snprintf(tail, sizeof tail, "  %zu/%zu  %3zu%%  %.1f/s  eta %.0fs", done, total_,
                      total_ == 0 ? 100 : done * 100 / total_, rate, eta);
    }
    std::cerr << "\r" << label_ << " [" << std::string(fill, '#') << std::string(kBar - fill, '.')
              << "]" << tail << "\x1b[K" << (final ? "\n" : "") << std::flush;
}

std::string local_time(UnixTime t) {
    if (t == 0) {
        return "never";
    }
    std::time_t tt = t;
    std::tm tm{};
    localtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

std::string iso_utc(UnixTime t) {
    if (t == 0) {
        return {};
    }
    std::time_t tt = t;
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string ago(UnixTime then, UnixTime now) {
    if (then == 0) {
        return "never";
    }
    UnixTime d = now - then;
    if (d < 60) {
        return "just now";
    }
    if (d < 3600) {
        return std::to_string(d / 60) + "m ago";
    }
    if (d < 86400) {
        return std::to_string(d / 3600) + "h " + std::to_string((d % 3600) / 60) + "m ago";
    }
    return std::to_string(d / 86400) + "d " + std::to_string((d % 86400) / 3600) + "h ago";
}

std::string printable(std::string_view s, std::size_t max) {
    std::string out;
    for (char c : s.substr(0, max)) {
        auto u = static_cast<unsigned char>(c);
        out += (u < 0x20 || u == 0x7f) ? '?' : c;
    }
    if (s.size() > max) {
        out += "…";
    }
    return out;
}

Result<std::unique_ptr<Loaded>> load_config_and_identity(const std::string& config_path) {
    auto cfg = load_config(config_path);
    if (!cfg) {
        return cfg.error();
    }
    auto loaded = std::make_unique<Loaded>();
    loaded->cfg = std::move(*cfg);
    auto ids = IdentityMap::create(loaded->cfg); // points into loaded->cfg, which stays put
    if (!ids) {
        return ids.error();
    }
    loaded->ids.emplace(std::move(*ids));
    return loaded;
}

Result<std::unique_ptr<Store>> open_store_readonly(const Config& cfg, bool* missing) {
    *missing = false;
    if (::access(cfg.store.path.c_str(), F_OK) != 0) {
        *missing = true;
        return std::unique_ptr<Store>();
    }
    return open_sqlite_store_readonly(cfg.store.path, cfg.store.busy_timeout);
}

void warn(const std::string& text) {
    std::cerr << "warning: " << text << "\n";
}

} // namespace mf::cli
