// admin_logins.cpp — Dovecot and Courier login lines from plain or gzip'd logs. See
// admin_logins.hpp.
#include "admin_logins.hpp"

#include "mailferry/config.hpp"
#include "mailferry/import.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/stat.h>
#include <zlib.h>

namespace mf::cli {
namespace {

constexpr std::size_t kMaxLogLine = 64u << 10;
constexpr std::size_t kMaxUser = 320;
constexpr std::size_t kGarbageExamples = 5;

bool digits(std::string_view s, std::size_t pos, std::size_t n, int* out) {
    if (pos + n > s.size()) {
        return false;
    }
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

// "HH:MM:SS" at pos into tm.
bool clock_at(std::string_view s, std::size_t pos, std::tm& tm) {
    return digits(s, pos, 2, &tm.tm_hour) && pos + 2 < s.size() && s[pos + 2] == ':' &&
           digits(s, pos + 3, 2, &tm.tm_min) && pos + 5 < s.size() && s[pos + 5] == ':' &&
           digits(s, pos + 6, 2, &tm.tm_sec) && tm.tm_hour < 24 && tm.tm_min < 60 && tm.tm_sec < 61;
}

UnixTime local_mktime(std::tm tm) {
    tm.tm_isdst = -1;
    return static_cast<UnixTime>(std::mktime(&tm));
}

// The timestamp at the start of `line`; *rest is what follows it. nullopt: none.
std::optional<UnixTime> timestamp(std::string_view line, UnixTime mtime, std::string_view* rest) {
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::tm tm{};
    // BSD syslog: "Nov 23 10:00:01" (day may be space-padded: "Nov  3").
    for (int m = 0; m < 12; ++m) {
        if (line.substr(0, 3) != kMonths[m]) {
            continue;
        }
        if (line.size() < 15 || line[3] != ' ') {
            return std::nullopt;
        }
        std::size_t p = 4;
        if (line[p] == ' ') {
            ++p;
        }
        int day = 0;
        std::size_t dlen = (p + 1 < line.size() && line[p + 1] != ' ') ? 2 : 1;
        if (!digits(line, p, dlen, &day) || day < 1 || day > 31) {
            return std::nullopt;
        }
        p += dlen;
        if (p >= line.size() || line[p] != ' ' || !clock_at(line, p + 1, tm)) {
            return std::nullopt;
        }
        p += 9;
        tm.tm_mon = m;
        tm.tm_mday = day;
        std::time_t mt = mtime;
        std::tm file_tm{};
        localtime_r(&mt, &file_tm);
        tm.tm_year = file_tm.tm_year;
        UnixTime t = local_mktime(tm);
        if (t > mtime + 86400) {
            // A date after the file was last written: it is from the year before
            // (a log running over New Year's Eve).
            --tm.tm_year;
            t = local_mktime(tm);
        }
        *rest = line.substr(p);
        return t;
    }
    // "2024-11-23T10:00:01[.frac](Z|±hh:mm)" or "2024-11-23 10:00:01".
    int y = 0;
    int mo = 0;
    int d = 0;
    if (!digits(line, 0, 4, &y) || line.size() < 19 || line[4] != '-' || !digits(line, 5, 2, &mo) ||
        line[7] != '-' || !digits(line, 8, 2, &d) || (line[10] != 'T' && line[10] != ' ') ||
        !clock_at(line, 11, tm) || mo < 1 || mo > 12 || d < 1 || d > 31) {
        return std::nullopt;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    std::size_t p = 19;
    if (line[10] == ' ') {
        *rest = line.substr(p);
        return local_mktime(tm);
    }
    if (p < line.size() && (line[p] == '.' || line[p] == ',')) {
        ++p;
        while (p < line.size() && line[p] >= '0' && line[p] <= '9') {
            ++p;
        }
    }
    UnixTime t = static_cast<UnixTime>(timegm(&tm));
    if (p < line.size() && line[p] == 'Z') {
        ++p;
    } else if (p + 6 <= line.size() && (line[p] == '+' || line[p] == '-') && line[p + 3] == ':') {
        int oh = 0;
        int om = 0;
        if (!digits(line, p + 1, 2, &oh) || !digits(line, p + 4, 2, &om)) {
            return std::nullopt;
        }
        const UnixTime off = (oh * 3600 + om * 60) * (line[p] == '+' ? 1 : -1);
        t -= off;
        p += 6;
    } else {
        t = local_mktime(tm); // no zone: local time
    }
    *rest = line.substr(p);
    return t;
}

// A login name from a log: printable UTF-8, bounded.
bool plausible_user(std::string_view u, std::string* why) {
    if (u.empty()) {
        *why = "empty user name";
        return false;
    }
    if (u.size() > kMaxUser) {
        *why = "user name longer than 320 bytes";
        return false;
    }
    for (char c : u) {
        auto b = static_cast<unsigned char>(c);
        if (b < 0x20 || b == 0x7f) {
            *why = "control character in the user name";
            return false;
        }
    }
    if (auto bad = utf8_problem(u); !bad.empty()) {
        *why = "user name: " + bad;
        return false;
    }
    return true;
}

// Dovecot: "imap-login: Login: user=<NAME>, …", "pop3-login: Info: Login: user=<NAME>".
std::optional<std::string> dovecot_user(std::string_view rest, bool* is_login, std::string* why) {
    auto p = rest.find("-login: ");
    if (p == std::string_view::npos) {
        return std::nullopt;
    }
    std::string_view t = rest.substr(p + 8);
    if (t.substr(0, 6) == "Info: ") {
        t.remove_prefix(6);
    }
    if (t.substr(0, 7) != "Login: ") {
        return std::nullopt; // "Disconnected", "Aborted login", …: not a login
    }
    *is_login = true;
    t.remove_prefix(7);
    if (t.substr(0, 6) != "user=<") {
        *why = "Dovecot login line without user=<…>";
        return std::nullopt;
    }
    t.remove_prefix(6);
    auto end = t.find('>');
    if (end == std::string_view::npos) {
        *why = "Dovecot login line cut off inside user=<…>";
        return std::nullopt;
    }
    return std::string(t.substr(0, end));
}

// Courier: "imapd: LOGIN, user=NAME, ip=[…], …" (imapd, imapd-ssl, pop3d, pop3d-ssl).
std::optional<std::string> courier_user(std::string_view rest, bool* is_login, std::string* why) {
    auto p = rest.find(": LOGIN, user=");
    if (p == std::string_view::npos) {
        return std::nullopt;
    }
    std::string_view prog = rest.substr(0, p);
    if (auto sp = prog.find_last_of(' '); sp != std::string_view::npos) {
        prog.remove_prefix(sp + 1);
    }
    if (auto br = prog.find('['); br != std::string_view::npos) {
        prog = prog.substr(0, br); // "imapd[1234]"
    }
    if (prog.find("imapd") == std::string_view::npos &&
        prog.find("pop3d") == std::string_view::npos) {
        return std::nullopt;
    }
    *is_login = true;
    std::string_view t = rest.substr(p + 14);
    auto end = t.find(',');
    if (end == std::string_view::npos) {
        *why = "Courier login line cut off after user=";
        return std::nullopt;
    }
    return std::string(t.substr(0, end));
}

void garbage(LogScan& scan, const std::string& path, std::int64_t line, const std::string& why) {
    ++scan.garbage;
    if (scan.garbage_examples.size() < kGarbageExamples) {
        scan.garbage_examples.push_back(path + ":" + std::to_string(line) + ": " + why);
    }
}

} // namespace

std::optional<LogFormat> log_format_from(std::string_view name) {
    if (name == "auto") {
        return LogFormat::auto_detect;
    }
    if (name == "dovecot") {
        return LogFormat::dovecot;
    }
    if (name == "courier") {
        return LogFormat::courier;
    }
    if (name == "syslog") {
        return LogFormat::syslog;
    }
    return std::nullopt;
}

std::optional<LoginEvent> parse_login_line(std::string_view line, LogFormat format, UnixTime mtime,
                                           std::string* why) {
    why->clear();
    if (line.find('\0') != std::string_view::npos) {
        *why = "NUL byte in the line";
        return std::nullopt;
    }
    std::string_view rest;
    auto at = timestamp(line, mtime, &rest);
    if (!at) {
        *why = "no timestamp at the start of the line";
        return std::nullopt;
    }
    bool is_login = false;
    std::optional<std::string> user;
    if (format != LogFormat::courier) {
        user = dovecot_user(rest, &is_login, why);
    }
    if (!is_login && format != LogFormat::dovecot) {
        user = courier_user(rest, &is_login, why);
    }
    if (!user) {
        return std::nullopt; // *why set: garbage; else not a login line
    }
    if (!plausible_user(*user, why)) {
        return std::nullopt;
    }
    return LoginEvent{std::move(*user), *at};
}

Result<void> scan_log(const std::string& path, LogFormat format, UnixTime since, LogScan& scan,
                      const std::function<void(std::uint64_t)>& progress) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return make_error("open(" + path + ") failed", std::strerror(errno), Scope::config);
    }
    if (!S_ISREG(st.st_mode)) {
        return make_error("read " + path, "not a regular file", Scope::config);
    }
    // gzopen reads gzip'd and plain files alike.
    gzFile gz = gzopen(path.c_str(), "rb");
    if (gz == nullptr) {
        return make_error("open(" + path + ") failed",
                          errno != 0 ? std::strerror(errno) : "out of memory", Scope::config);
    }
    struct Closer {
        gzFile f;
        ~Closer() { gzclose(f); }
    } closer{gz};
    gzbuffer(gz, 256u << 10);
    ++scan.files;
    const auto mtime = static_cast<UnixTime>(st.st_mtime);
    std::string carry;
    bool overlong = false; // dropping the rest of a line longer than kMaxLogLine
    std::int64_t number = 0;
    auto one_line = [&](std::string_view line) {
        ++number;
        ++scan.lines;
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        if (number == 1 && line.substr(0, 3) == "\xEF\xBB\xBF") {
            line.remove_prefix(3); // a UTF-8 BOM (a log copied through an editor)
        }
        if (line.find_first_not_of(" \t") == std::string_view::npos) {
            return;
        }
        std::string why;
        auto ev = parse_login_line(line, format, mtime, &why);
        if (!ev) {
            if (!why.empty()) {
                garbage(scan, path, number, why);
            }
            return;
        }
        ++scan.logins;
        LastLogin& l = scan.users[ev->user];
        if (ev->at >= since) {
            ++scan.logins_recent;
            ++l.count;
        }
        l.last = std::max(l.last, ev->at);
    };
    std::vector<char> buf(64u << 10);
    for (;;) {
        int n = gzread(gz, buf.data(), static_cast<unsigned>(buf.size()));
        if (n < 0) {
            int code = 0;
            const char* msg = gzerror(gz, &code);
            return make_error("read " + path, code == Z_ERRNO ? std::strerror(errno) : msg,
                              Scope::config);
        }
        if (n == 0) {
            int code = 0;
            const char* msg = gzerror(gz, &code);
            if (code != Z_OK && code != Z_STREAM_END) {
                // A gzip stream cut off (a rotation still being written, a broken copy).
                return make_error("read " + path, msg, Scope::config);
            }
            break;
        }
        std::string_view chunk(buf.data(), static_cast<std::size_t>(n));
        while (!chunk.empty()) {
            auto nl = chunk.find('\n');
            std::string_view piece = chunk.substr(0, nl);
            if (!overlong) {
                carry.append(piece);
                if (carry.size() > kMaxLogLine) {
                    overlong = true;
                    carry.clear();
                }
            }
            if (nl == std::string_view::npos) {
                break;
            }
            chunk.remove_prefix(nl + 1);
            if (overlong) {
                ++number;
                ++scan.lines;
                garbage(scan, path, number, "line longer than 64 KiB");
                overlong = false;
            } else {
                one_line(carry);
            }
            carry.clear();
        }
        if (progress) {
            progress(static_cast<std::uint64_t>(gzoffset(gz)));
        }
    }
    if (overlong) {
        ++number;
        ++scan.lines;
        garbage(scan, path, number, "line longer than 64 KiB");
    } else if (!carry.empty()) {
        one_line(carry); // a last line without a line end
    }
    return {};
}

Result<UnixTime> since_from_period(std::string_view period, UnixTime now) {
    auto bad = [&] {
        return make_error("--since " + std::string(period.substr(0, 40)),
                          "expected a number and a unit: 12h, 30d, 2w, 6m (months), 1y",
                          Scope::config);
    };
    std::size_t i = 0;
    while (i < period.size() && period[i] >= '0' && period[i] <= '9') {
        ++i;
    }
    if (i == 0 || i > 6 || i + 1 != period.size()) {
        return bad();
    }
    const int n = std::stoi(std::string(period.substr(0, i)));
    const char unit = period[i];
    if (unit == 'h' || unit == 'd') {
        auto d = parse_duration(period); // the config's own duration syntax
        if (!d) {
            return d.error();
        }
        return now - d->count() / 1000;
    }
    if (unit == 'w') {
        return now - static_cast<UnixTime>(n) * 7 * 86400;
    }
    if (unit != 'm' && unit != 'y') {
        return bad();
    }
    std::time_t t = now;
    std::tm tm{};
    localtime_r(&t, &tm);
    if (unit == 'm') {
        tm.tm_mon -= n;
    } else {
        tm.tm_year -= n;
    }
    return local_mktime(tm);
}

} // namespace mf::cli
