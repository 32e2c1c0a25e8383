// admin_logins.hpp — the OLD server's login lines, for `mailferry never-logged-in`.
//
// Reads Dovecot and Courier login lines from log files, plain or gzip'd (rotations such as
// mail.log.2.gz), and keeps per login name the last login time and how many logins there
// were since a given time. Recognised lines (anything before the program name is free):
//   Dovecot  "… imap-login: Login: user=<anna@example.org>, method=PLAIN, rip=…"
//            "… pop3-login: Info: Login: user=<anna>, …"   (log_path files)
//   Courier  "… imapd: LOGIN, user=anna, ip=[::ffff:1.2.3.4], port=[…], protocol=IMAP"
//            "… pop3d-ssl: LOGIN, user=anna, ip=[…], …"
// Timestamps at the start of the line:
//   "Nov 23 10:00:01" (syslog, local time; the year is inferred from the file's mtime: a
//   date later than the mtime belongs to the year before),
//   "2024-11-23T10:00:01.123+01:00" / "…Z" (rsyslog ISO 8601), "2024-11-23 10:00:01"
//   (Dovecot log_timestamp with a year, local time).
// A line whose timestamp cannot be read, or whose login part is malformed (no closing '>',
// an empty or non-UTF-8 name, NUL bytes, longer than 64 KiB) is garbage: counted, a few
// kept as examples with file:line, never fatal. Other well-formed lines are ignored.
// Must never: keep more than the login name and times of a line (log lines may carry
// addresses and session ids that nobody asked for).
// Errors: a file that cannot be opened or read is an Error (Scope::config) naming it.
#pragma once

#include "mailferry/error.hpp"
#include "mailferry/store.hpp"

#include <cstdint>
#include <ctime>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mf::cli {

enum class LogFormat { auto_detect, dovecot, courier, syslog };
std::optional<LogFormat> log_format_from(std::string_view name); // "auto", "dovecot", …

struct LastLogin {
    UnixTime last = 0;
    std::int64_t count = 0; // logins at or after `since`
};

struct LogScan {
    std::map<std::string, LastLogin> users; // by login name as the log has it
    std::int64_t files = 0;
    std::int64_t lines = 0;
    std::int64_t logins = 0;        // login lines read (any time)
    std::int64_t logins_recent = 0; // at or after `since`
    std::int64_t garbage = 0;
    std::vector<std::string> garbage_examples; // "FILE:LINE: why", at most 5
};

// One line's login, if it is one. nullopt and *why empty: not a login line (ignored);
// nullopt and *why set: garbage. `mtime` (the file's) completes syslog timestamps.
struct LoginEvent {
    std::string user;
    UnixTime at = 0;
};
std::optional<LoginEvent> parse_login_line(std::string_view line, LogFormat format, UnixTime mtime,
                                           std::string* why);

// Reads one file (gzip or plain) into `scan`; `progress` gets bytes read so far.
Result<void> scan_log(const std::string& path, LogFormat format, UnixTime since, LogScan& scan,
                      const std::function<void(std::uint64_t)>& progress = {});

// "30d", "12h", "6m" (months), "1y", "2w" → the time that long before `now` (months and
// years by the calendar, in local time). Units h and d go through parse_duration().
Result<UnixTime> since_from_period(std::string_view period, UnixTime now);

} // namespace mf::cli
