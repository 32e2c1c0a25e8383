// log.cpp — the log sink shared by the engine and the faces.
#include "mailferry/log.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <syslog.h>
#include <unistd.h>

namespace mf::log {
namespace {

std::mutex g_mutex;
Sink g_sink;                         // guarded by g_mutex
std::string g_program = "mailferry"; // guarded by g_mutex
std::atomic<int> g_level{static_cast<int>(LogLevel::info)};

const char* level_name(LogLevel l) {
    switch (l) {
    case LogLevel::debug:
        return "debug";
    case LogLevel::info:
        return "info";
    case LogLevel::warning:
        return "warning";
    case LogLevel::error:
        return "error";
    }
    return "?";
}

int syslog_priority(LogLevel l) {
    switch (l) {
    case LogLevel::debug:
        return LOG_DEBUG;
    case LogLevel::info:
        return LOG_INFO;
    case LogLevel::warning:
        return LOG_WARNING;
    case LogLevel::error:
        return LOG_ERR;
    }
    return LOG_INFO;
}

} // namespace

void set_sink(Sink sink) {
    std::lock_guard lock(g_mutex);
    g_sink = std::move(sink);
}

void use_syslog(const char* ident) {
    openlog(ident, LOG_PID, LOG_MAIL);
    set_sink([](LogLevel l, std::string_view line) {
        syslog(syslog_priority(l), "%.*s", static_cast<int>(line.size()), line.data());
    });
}

void set_level(LogLevel level) {
    g_level = static_cast<int>(level);
}

void set_program(std::string_view name) {
    std::lock_guard lock(g_mutex);
    g_program = name;
}

void write(LogLevel level, std::string_view line) {
    if (static_cast<int>(level) < g_level.load()) {
        return;
    }
    std::lock_guard lock(g_mutex);
    if (g_sink) {
        g_sink(level, line);
        return;
    }
    // One write() per line so lines of concurrent processes do not interleave.
    std::string out = g_program + "[" + std::to_string(::getpid()) + "]: " + level_name(level) +
                      ": " + std::string(line) + "\n";
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, out.data(), out.size());
}

void debug(std::string_view line) {
    write(LogLevel::debug, line);
}
void info(std::string_view line) {
    write(LogLevel::info, line);
}
void warning(std::string_view line) {
    write(LogLevel::warning, line);
}
void error(std::string_view line) {
    write(LogLevel::error, line);
}

std::string prefix(std::string_view face, std::string_view user, std::string_view ip) {
    std::string u;
    for (char c : user.substr(0, 64)) {
        auto b = static_cast<unsigned char>(c);
        u += (b < 0x20 || b == 0x7f || c == ',' || c == ')') ? '?' : c;
    }
    if (user.size() > 64) {
        u += "...";
    }
    std::string out(face);
    out += "(" + u;
    if (!ip.empty()) {
        out += ",";
        out += ip;
    }
    out += ")";
    return out;
}

} // namespace mf::log
