// log.hpp — one line per event, prefixed face(user,ip)<req>: part: …
//
// Lines go to a sink chosen by the program: stderr (default), syslog, or a function (the
// CommuniGate helper turns them into "* " lines). Users are sanitized and capped at 64
// characters; nothing that holds a password is ever passed here. Thread-safe.
#pragma once

#include "mailferry/config.hpp"

#include <functional>
#include <string>
#include <string_view>

namespace mf::log {

using Sink = std::function<void(LogLevel, std::string_view line)>;

void set_sink(Sink sink); // replaces the sink (nullptr: stderr)
void use_syslog(const char* ident);
void set_level(LogLevel level);
void set_program(std::string_view name);

void write(LogLevel level, std::string_view line);

void debug(std::string_view line);
void info(std::string_view line);
void warning(std::string_view line);
void error(std::string_view line);

// "face(user,ip)" with the user sanitized and capped.
std::string prefix(std::string_view face, std::string_view user, std::string_view ip);

} // namespace mf::log
