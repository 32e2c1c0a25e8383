// main_copy.cpp — mailferry-copy: copy (and verify) one IMAP account to another.
//
// A thin face over mf::copy::copy_account / verify_account: parses the command line
// (CLI11), reads passwords from 0600 files only, shows progress (a bar on a TTY, JSON
// lines otherwise, nothing with --quiet) and maps the outcome to an exit status:
//   0 exact copy (and verified, with --verify)   1 something skipped or a mismatch, or
//   the login was refused   2 usage or configuration error   75 temporary failure.
// Must never: take a password from argv or the environment, or read a password file that
// group or others can read.
#include "mailferry/copier.hpp"
#include "mailferry/log.hpp"
#include "mailferry/process_harden.hpp"
#include "mailferry/secret.hpp"

#include "file_util.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace {

constexpr int kExitOk = 0;
constexpr int kExitSkipped = 1;
constexpr int kExitUsage = 2;
constexpr int kExitTemp = 75;

std::atomic<bool> g_cancel{false};

extern "C" void on_signal(int) {
    g_cancel.store(true);
}

struct UsageError {
    std::string text;
};

// imaps://user@host:port (implicit TLS), imap://… (STARTTLS, required), imap+plain://…
// (no TLS: loopback and tests only). The user may itself contain '@'; %XX is decoded.
mf::copy::Endpoint parse_url(const std::string& url, const std::string& which) {
    mf::copy::Endpoint ep;
    std::size_t sep = url.find("://");
    if (sep == std::string::npos) {
        throw UsageError{"--" + which + ": expected imaps://user@host[:port], got \"" +
                         mf::sanitize_reply(url) + "\""};
    }
    std::string scheme = url.substr(0, sep);
    std::string rest = url.substr(sep + 3);
    if (scheme == "imaps") {
        ep.tls = mf::TlsMode::implicit;
        ep.port = 993;
    } else if (scheme == "imap") {
        ep.tls = mf::TlsMode::starttls;
        ep.port = 143;
    } else if (scheme == "imap+plain") {
        ep.tls = mf::TlsMode::none;
        ep.port = 143;
    } else if (which == "from" && scheme == "pop3s") {
        ep.pop3 = true;
        ep.tls = mf::TlsMode::implicit;
        ep.port = 995;
    } else if (which == "from" && scheme == "pop3") {
        ep.pop3 = true;
        ep.tls = mf::TlsMode::starttls;
        ep.port = 110;
    } else if (which == "from" && scheme == "pop3+plain") {
        ep.pop3 = true;
        ep.tls = mf::TlsMode::none;
        ep.port = 110;
    } else {
        throw UsageError{
            "--" + which + ": unknown scheme \"" + mf::sanitize_reply(scheme) +
            "\" (imaps, imap or imap+plain; --from also pop3s, pop3, pop3+plain, maildir:, "
            "mbox:)"};
    }
    if (!rest.empty() && rest.back() == '/') {
        rest.pop_back();
    }
    std::size_t at = rest.rfind('@');
    if (at == std::string::npos || at == 0) {
        throw UsageError{"--" + which + ": the URL needs a user: " + scheme + "://user@host"};
    }
    std::string user = rest.substr(0, at);
    std::string hostport = rest.substr(at + 1);
    for (std::size_t i = 0; i < user.size(); ++i) {
        if (user[i] == '%' && i + 2 < user.size() &&
            std::isxdigit(static_cast<unsigned char>(user[i + 1])) != 0 &&
            std::isxdigit(static_cast<unsigned char>(user[i + 2])) != 0) {
            ep.user.push_back(static_cast<char>(std::stoi(user.substr(i + 1, 2), nullptr, 16)));
            i += 2;
        } else {
            ep.user.push_back(user[i]);
        }
    }
    std::string host = hostport;
    if (!hostport.empty() && hostport[0] == '[') {
        std::size_t close = hostport.find(']');
        if (close == std::string::npos) {
            throw UsageError{"--" + which + ": bad IPv6 address"};
        }
        host = hostport.substr(1, close - 1);
        if (close + 1 < hostport.size()) {
            if (hostport[close + 1] != ':') {
                throw UsageError{"--" + which + ": bad port"};
            }
            hostport = hostport.substr(close + 2);
        } else {
            hostport.clear();
        }
    } else {
        std::size_t colon = hostport.rfind(':');
        if (colon != std::string::npos) {
            host = hostport.substr(0, colon);
            hostport = hostport.substr(colon + 1);
        } else {
            hostport.clear();
        }
    }
    if (!hostport.empty()) {
        char* end = nullptr;
        long p = std::strtol(hostport.c_str(), &end, 10);
        if (*end != '\0' || p < 1 || p > 65535) {
            throw UsageError{"--" + which + ": bad port \"" + mf::sanitize_reply(hostport) + "\""};
        }
        ep.port = static_cast<std::uint16_t>(p);
    }
    if (host.empty()) {
        throw UsageError{"--" + which + ": no host in the URL"};
    }
    ep.host = host;
    return ep;
}

// A password from a file only the owner can read; one trailing newline is dropped.
mf::Secret read_password_file(const std::string& path, const std::string& option) {
    std::string warn = mf::secret_file_warning(path);
    if (!warn.empty()) {
        throw UsageError{option + ": " + warn};
    }
    auto content = mf::read_file(path, 4096);
    if (!content) {
        throw UsageError{option + ": " + content.error().message()};
    }
    std::string& s = *content;
    std::size_t len = s.size();
    if (len > 0 && s[len - 1] == '\n') {
        --len;
        if (len > 0 && s[len - 1] == '\r') {
            --len;
        }
    }
    mf::Secret secret(s.data(), len);
    mf::wipe(s.data(), s.size());
    if (secret.empty()) {
        throw UsageError{option + ": " + path + " is empty"};
    }
    if (secret.view().find('\0') != std::string_view::npos) {
        throw UsageError{option + ": " + path + " contains a NUL byte"};
    }
    return secret;
}

// "source<TAB>target" per line; '#' comments and blank lines ignored.
std::map<std::string, std::string> read_rename_map(const std::string& path) {
    auto content = mf::read_file(path, 4u << 20);
    if (!content) {
        throw UsageError{"--rename-map: " + content.error().message()};
    }
    std::map<std::string, std::string> out;
    std::istringstream in(*content);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (!line.empty() && line.back() == '\r') {
            line.pop_back();
        }
        if (line.empty() || line[0] == '#') {
            continue;
        }
        std::size_t tab = line.find('\t');
        if (tab == std::string::npos || tab == 0 || tab + 1 >= line.size() ||
            line.find('\t', tab + 1) != std::string::npos) {
            throw UsageError{path + ":" + std::to_string(n) +
                             ": expected \"source<TAB>target\" (one TAB)"};
        }
        std::string from = line.substr(0, tab);
        if (out.count(from) != 0) {
            throw UsageError{path + ":" + std::to_string(n) + ": \"" + mf::sanitize_reply(from) +
                             "\" is mapped twice"};
        }
        out[from] = line.substr(tab + 1);
    }
    return out;
}

// YYYY-MM-DD (UTC midnight) → seconds since the epoch.
std::int64_t parse_day(const std::string& s, const std::string& option) {
    int y = 0;
    int m = 0;
    int d = 0;
    char tail = 0;
    if (std::sscanf(s.c_str(), "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || m < 1 || m > 12 ||
        d < 1 || d > 31 || y < 1970) {
        throw UsageError{option + ": expected YYYY-MM-DD, got \"" + mf::sanitize_reply(s) + "\""};
    }
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    return static_cast<std::int64_t>(timegm(&tm));
}

std::string human_bytes(double b) {
    const char* units[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
    return buf;
}

class ProgressView {
  public:
    ProgressView(bool quiet, bool tty) : quiet_(quiet), tty_(tty), start_(clock::now()) {}

    void operator()(const mf::copy::Progress& p) {
        if (quiet_) {
            return;
        }
        auto now = clock::now();
        auto gap = tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(1000);
        if (now - last_ < gap) {
            return;
        }
        last_ = now;
        double secs = std::chrono::duration<double>(now - start_).count();
        double rate = secs > 0 ? static_cast<double>(p.bytes_done) / secs : 0;
        if (tty_) {
            double left =
                rate > 0
                    ? static_cast<double>(p.bytes_total - std::min(p.bytes_total, p.bytes_done)) /
                          rate
                    : 0;
            std::fprintf(
                stderr, "\r\033[K[%zu/%zu folders] %llu/%llu msgs  %s/%s  %s/s  ETA %.0fs  %s",
                p.folders_done, p.folders_total, static_cast<unsigned long long>(p.messages_done),
                static_cast<unsigned long long>(p.messages_total),
                human_bytes(static_cast<double>(p.bytes_done)).c_str(),
                human_bytes(static_cast<double>(p.bytes_total)).c_str(), human_bytes(rate).c_str(),
                left, mf::sanitize_reply(p.folder, 40).c_str());
            std::fflush(stderr);
            drawn_ = true;
        } else {
            nlohmann::json j = {{"event", "progress"},
                                {"folders_done", p.folders_done},
                                {"folders_total", p.folders_total},
                                {"messages_done", p.messages_done},
                                {"messages_total", p.messages_total},
                                {"bytes_done", p.bytes_done},
                                {"bytes_total", p.bytes_total},
                                {"bytes_per_second", static_cast<std::uint64_t>(rate)},
                                {"folder", p.folder}};
            std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                      << std::endl;
        }
    }
    void finish() {
        if (drawn_) {
            std::fprintf(stderr, "\n");
        }
    }

  private:
    using clock = std::chrono::steady_clock;
    bool quiet_;
    bool tty_;
    bool drawn_ = false;
    clock::time_point start_;
    clock::time_point last_{};
};

int exit_for(const mf::Error& e) {
    if (e.retry == mf::Retry::later) {
        return kExitTemp;
    }
    switch (e.scope) {
    case mf::Scope::config:
        return kExitUsage;
    case mf::Scope::account:
        return kExitSkipped; // a definite no: the login was refused
    case mf::Scope::server:
        // Not temporary: the server's answers cannot be used (or its certificate is
        // refused); running again changes nothing until someone looks.
        return kExitSkipped;
    case mf::Scope::message:
    case mf::Scope::folder:
    case mf::Scope::internal:
        return kExitTemp;
    }
    return kExitTemp;
}

} // namespace

int main(int argc, char** argv) {
    // Before a password file is read: a core dump would hold both accounts' passwords.
    if (auto hardened = mf::harden_process(); !hardened) {
        std::cerr << "mailferry-copy: warning: " << hardened.error().message() << "\n";
    }
    CLI::App app{"mailferry-copy — copy a mail account from one IMAP server to another, exactly "
                 "and incrementally"};
    app.footer(R"(URLs:
  imaps://user@host[:port]       implicit TLS (default port 993)
  imap://user@host[:port]        STARTTLS, required (default port 143)
  imap+plain://user@host[:port]  no TLS at all (loopback tests only)
  A user containing '@' is fine (the last '@' separates the host); %40 also works.
  pop3s://user@host[:port]       (--from only) POP3 over implicit TLS (995); pop3:// is
                                 STLS (110), pop3+plain:// no TLS; INBOX only, by UIDL
  maildir:/path                  (--from only) a local Maildir, read-only: Maildir++
                                 (.Sub.Folder) or subdirectories; flags, keywords, UIDs
                                 and subscriptions from Dovecot's or Courier's files;
                                 no --from-password-file
  mbox:/path[:INBOX=/file]       (--from only) a local mbox, read-only, as Dovecot shows it:
                                 one file (INBOX) or a directory of mbox files (folders);
                                 INBOX= as in Dovecot's mail_location, else path/inbox;
                                 ">From " lines kept as Dovecot shows them; mboxrd:/path
                                 or mboxo:/path unquote them instead
  --to maildir:/path             a Maildir++ tree a Dovecot of ours serves, written as
                                 Dovecot writes it (dovecot-uidlist, dovecot-keywords,
                                 subscriptions): messages keep the old server's UIDs and
                                 UIDVALIDITY where the folder allows; run as the mail user
                                 or root (files get the tree's owner); no
                                 --to-password-file

Passwords are read only from files that just their owner can read (chmod 600); never
from the command line or the environment.

Examples:
  mailferry-copy --from imaps://anna@example.com@old.example.com \
      --from-password-file ~/.anna-old --to imaps://anna@example.com@new.example.com \
      --to-password-file ~/.anna-new --state anna.db
  mailferry-copy --from imaps://anna@old.example.com --from-password-file anna.pw \
      --to imaps://anna@new.example.com --to-master-user admin*master \
      --to-password-file master.pw --state anna.db --verify --report anna-verify.json
  mailferry-copy --from maildir:/srv/rsync/anna/Maildir --to imaps://anna@new.example.com \
      --to-password-file ~/.anna-new --state anna.db
  mailferry-copy --from imaps://anna@old.example.com --from-password-file anna.pw \
      --to maildir:/var/vmail/example.com/anna/Maildir --state anna.db
  mailferry-copy ... --skip 'Trash' --skip 'Archive/*' --after 2020-01-01 --rename-map map.tsv

Exit status: 0 exact copy, 1 messages or folders skipped (listed, each with its reason and
how many runs in a row skipped it) / verify mismatch / login refused / unusable answers,
2 usage or configuration error, 75 temporary failure (run again later).)");

    std::string from_url;
    std::string to_url;
    std::string from_pw_file;
    std::string to_pw_file;
    std::string from_master;
    std::string to_master;
    std::string state_path;
    std::string ca_file;
    std::string from_ca;
    std::string to_ca;
    bool no_verify_from = false;
    bool no_verify_to = false;
    bool verify = false;
    bool verify_only = false;
    std::string report_path;
    bool quiet = false;
    std::vector<std::string> skip;
    std::string rename_file;
    bool subscribed_only = false;
    bool pop3_delete = false;
    bool follow_symlinks = false;
    std::string before;
    std::string after;
    bool no_sanitize = false;
    bool no_special_use = false;
    std::size_t window = 64;
    std::size_t connections = 4;
    std::size_t group = 32;
    std::size_t max_per_server = 8;
    std::size_t batch = 100;
    std::uint64_t max_size = 1ull << 30;
    unsigned timeout = 60;
    bool debug = false;

    app.add_option("--from", from_url, "source account URL")->required();
    app.add_option("--to", to_url, "target account URL")->required();
    app.add_option("--from-password-file", from_pw_file, "file (0600) with the source password");
    app.add_option(
        "--to-password-file", to_pw_file,
        "file (0600) with the target password (the master user's with --to-master-user)");
    app.add_option("--from-master-user", from_master,
                   "log in at the source as this master user (AUTHENTICATE PLAIN authzid)");
    app.add_option("--to-master-user", to_master,
                   "log in at the target as this master user (AUTHENTICATE PLAIN authzid)");
    app.add_option("--state", state_path, "SQLite state file (created 0600)")->required();
    app.add_option("--ca-file", ca_file, "PEM CA bundle for both servers");
    app.add_option("--from-ca-file", from_ca, "PEM CA bundle for the source");
    app.add_option("--to-ca-file", to_ca, "PEM CA bundle for the target");
    app.add_flag("--insecure-from", no_verify_from, "do not verify the source certificate");
    app.add_flag("--insecure-to", no_verify_to, "do not verify the target certificate");
    app.add_flag("--verify", verify,
                 "after copying, compare every message (size, SHA-256, flags, date)");
    app.add_flag("--verify-only", verify_only, "only compare, copy nothing");
    app.add_option("--report", report_path, "write the verification report (JSON) here");
    app.add_flag("-q,--quiet", quiet, "no progress output");
    app.add_option("--skip", skip, "skip folders matching this pattern (fnmatch, '/' levels)");
    app.add_option("--rename-map", rename_file, "file of \"source<TAB>target\" folder names");
    app.add_flag("--subscribed-only", subscribed_only, "copy only subscribed folders");
    app.add_flag("--pop3-delete", pop3_delete,
                 "(POP3 source) delete each message from the server once the target has it");
    app.add_flag("--follow-symlinks", follow_symlinks,
                 "(maildir:/mbox: source) read through symbolic links in the tree, each "
                 "directory once; without it linked folders and files are skipped and listed");
    app.add_option("--before", before, "only messages received before YYYY-MM-DD (UTC)");
    app.add_option("--after", after, "only messages received on or after YYYY-MM-DD (UTC)");
    app.add_flag("--no-sanitize", no_sanitize, "keep folder names exactly, even if refused");
    app.add_flag("--no-special-use", no_special_use,
                 "do not map \\Sent, \\Trash … onto the target's folders with that use");
    app.add_option("--window", window, "APPENDs in flight")->check(CLI::Range(1, 1024));
    app.add_option("--multiappend", group,
                   "messages per APPEND when the target offers MULTIAPPEND (1: never group)")
        ->check(CLI::Range(1, 1000));
    app.add_option("--connections", connections,
                   "folders copied in parallel (each on its own pair of connections)")
        ->check(CLI::Range(1, 64));
    app.add_option("--max-connections-per-server", max_per_server,
                   "never more connections than this to one server")
        ->check(CLI::Range(1, 256));
    app.add_option("--batch", batch, "messages per FETCH")->check(CLI::Range(1, 10000));
    app.add_option("--max-message-size", max_size, "skip larger messages (bytes)")
        ->check(CLI::Range(static_cast<std::uint64_t>(1), static_cast<std::uint64_t>(1) << 40));
    app.add_option("--timeout", timeout, "seconds per network operation")
        ->check(CLI::Range(1, 3600));
    app.add_flag("--debug", debug, "verbose log on stderr");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : kExitUsage;
    }
    mf::log::set_program("mailferry-copy");
    mf::log::set_level(debug ? mf::LogLevel::debug
                             : (quiet ? mf::LogLevel::error : mf::LogLevel::warning));

    mf::copy::Endpoint from;
    mf::copy::Endpoint to;
    mf::copy::Options opts;
    try {
        std::string local_scheme;
        for (const char* s : {"maildir:", "mbox:", "mboxrd:", "mboxo:"}) {
            if (from_url.rfind(s, 0) == 0) {
                local_scheme = s;
            }
        }
        const bool local = !local_scheme.empty();
        if (local) {
            if (from_url.size() <= local_scheme.size()) {
                throw UsageError{"--from " + local_scheme + "/path needs a path"};
            }
            from.local = from_url;
        } else {
            from = parse_url(from_url, "from");
        }
        const bool to_maildir = to_url.rfind("maildir:", 0) == 0;
        if (to_maildir) {
            if (to_url.size() <= 8) {
                throw UsageError{"--to maildir:/path needs a path"};
            }
            to.local = to_url;
        } else {
            to = parse_url(to_url, "to");
        }
        if (!local && from_pw_file.empty()) {
            throw UsageError{"--from-password-file is required"};
        }
        if (!to_maildir && to_pw_file.empty()) {
            throw UsageError{"--to-password-file is required"};
        }
        if (!local) {
            from.password = read_password_file(from_pw_file, "--from-password-file");
        }
        if (!to_maildir) {
            to.password = read_password_file(to_pw_file, "--to-password-file");
        }
        from.auth_user = from_master;
        to.auth_user = to_master;
        from.ca_file = !from_ca.empty() ? from_ca : ca_file;
        to.ca_file = !to_ca.empty() ? to_ca : ca_file;
        for (const auto* f : {&from.ca_file, &to.ca_file}) {
            if (!f->empty() && ::access(f->c_str(), R_OK) != 0) {
                throw UsageError{"CA file " + *f + ": " + mf::errno_text(errno)};
            }
        }
        from.verify_cert = !no_verify_from;
        to.verify_cert = !no_verify_to;
        from.timeout = to.timeout = std::chrono::seconds(timeout);
        opts.state_path = state_path;
        opts.filters.skip = skip;
        if (!rename_file.empty()) {
            opts.filters.rename = read_rename_map(rename_file);
        }
        opts.filters.subscribed_only = subscribed_only;
        if (pop3_delete && !from.pop3) {
            throw UsageError{"--pop3-delete needs a pop3s://, pop3:// or pop3+plain:// source"};
        }
        opts.pop3_delete = pop3_delete;
        if (follow_symlinks && from.local.empty()) {
            throw UsageError{"--follow-symlinks needs a maildir:, mbox:, mboxrd: or mboxo: source"};
        }
        opts.follow_symlinks = follow_symlinks;
        if (!before.empty()) {
            opts.filters.before = parse_day(before, "--before");
        }
        if (!after.empty()) {
            opts.filters.after = parse_day(after, "--after");
        }
        if (opts.filters.before && opts.filters.after &&
            *opts.filters.after >= *opts.filters.before) {
            throw UsageError{"--after must be earlier than --before"};
        }
        opts.sanitize_names = !no_sanitize;
        opts.map_special_use = !no_special_use;
        opts.window = window;
        opts.connections = connections;
        opts.group = group;
        opts.max_connections_per_server = max_per_server;
        opts.batch = batch;
        opts.max_message_size = max_size;
    } catch (const UsageError& e) {
        std::fprintf(stderr, "mailferry-copy: %s\n", e.text.c_str());
        return kExitUsage;
    }

    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    const bool tty = ::isatty(STDERR_FILENO) != 0 && ::isatty(STDOUT_FILENO) != 0;
    const bool json = !tty;
    int rc = kExitOk;

    if (!verify_only) {
        ProgressView view(quiet, tty);
        auto t0 = std::chrono::steady_clock::now();
        auto sum = mf::copy::copy_account(from, to, opts, std::ref(view), &g_cancel);
        view.finish();
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!sum) {
            std::fprintf(stderr, "mailferry-copy: %s\n", sum.error().message().c_str());
            return exit_for(sum.error());
        }
        if (json) {
            nlohmann::json j = {{"event", "summary"},
                                {"exact", sum->exact()},
                                {"seconds", secs},
                                {"folders", sum->folders},
                                {"folders_created", sum->folders_created},
                                {"folders_unchanged", sum->folders_unchanged},
                                {"subscriptions_added", sum->subscriptions_added},
                                {"messages_copied", sum->messages_copied},
                                {"bytes_copied", sum->bytes_copied},
                                {"flag_updates", sum->messages_flag_updates},
                                {"messages_filtered", sum->messages_filtered},
                                {"messages_recovered", sum->messages_recovered},
                                {"messages_deleted_at_source", sum->messages_deleted_at_source},
                                {"notes", sum->notes}};
            j["skipped"] = nlohmann::json::array();
            for (const auto& s : sum->skipped) {
                j["skipped"].push_back({{"folder", s.folder},
                                        {"uid", s.uid},
                                        {"size", s.size},
                                        {"reason", s.reason},
                                        {"runs_in_a_row", s.streak}});
            }
            std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                      << std::endl;
        } else if (!quiet) {
            std::fprintf(stderr,
                         "copied %llu messages (%s) in %.1fs; %zu folders (%zu created, %zu "
                         "unchanged), %llu flag updates, %llu recovered, %llu filtered\n",
                         static_cast<unsigned long long>(sum->messages_copied),
                         human_bytes(static_cast<double>(sum->bytes_copied)).c_str(), secs,
                         sum->folders, sum->folders_created, sum->folders_unchanged,
                         static_cast<unsigned long long>(sum->messages_flag_updates),
                         static_cast<unsigned long long>(sum->messages_recovered),
                         static_cast<unsigned long long>(sum->messages_filtered));
            if (sum->messages_deleted_at_source > 0) {
                std::fprintf(stderr, "deleted %llu copied messages from the POP3 server\n",
                             static_cast<unsigned long long>(sum->messages_deleted_at_source));
            }
            for (const auto& n : sum->notes) {
                std::fprintf(stderr, "note: %s\n", n.c_str());
            }
        }
        if (!sum->exact()) {
            for (const auto& s : sum->skipped) {
                const std::string what = s.uid == 0 ? "folder"
                                                    : "UID " + std::to_string(s.uid) + " (" +
                                                          std::to_string(s.size) + " bytes)";
                std::fprintf(stderr, "skipped: %s %s: %s (%u run%s in a row)\n",
                             mf::sanitize_reply(s.folder).c_str(), what.c_str(), s.reason.c_str(),
                             s.streak, s.streak == 1 ? "" : "s");
            }
            rc = kExitSkipped;
        }
    }

    if (verify || verify_only) {
        auto rep = mf::copy::verify_account(from, to, opts, {}, &g_cancel);
        if (!rep) {
            std::fprintf(stderr, "mailferry-copy: verify: %s\n", rep.error().message().c_str());
            return exit_for(rep.error());
        }
        std::string text = rep->to_json();
        if (!report_path.empty()) {
            auto w = mf::write_file_atomic(report_path, text + "\n", 0644);
            if (!w) {
                std::fprintf(stderr, "mailferry-copy: %s\n", w.error().message().c_str());
                return kExitTemp;
            }
        } else if (json) {
            nlohmann::json j = nlohmann::json::parse(text);
            j["event"] = "verify";
            std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                      << std::endl;
        }
        std::size_t bad = 0;
        for (const auto& m : rep->mismatches) {
            bad += m.what != "extra" ? 1 : 0;
        }
        if (!quiet || !rep->ok()) {
            std::fprintf(stderr,
                         "verify: %zu folders, %llu messages (%s) compared, %zu mismatches, "
                         "%llu extra on the target\n",
                         rep->folders, static_cast<unsigned long long>(rep->messages_compared),
                         human_bytes(static_cast<double>(rep->bytes_compared)).c_str(), bad,
                         static_cast<unsigned long long>(rep->extra_on_target));
        }
        if (!rep->ok()) {
            rc = kExitSkipped;
        }
    }
    return rc;
}
