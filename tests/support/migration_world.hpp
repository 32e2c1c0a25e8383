// migration_world.hpp — a whole migration on loopback for the worker tests, the demo and
// bench/login: an OLD Dovecot with users and mail, a NEW Dovecot whose passdb is
// mailferry-checkpassword (running as Dovecot's auth user, mfvmail, in the `mailferry` group) plus
// a master passdb for the copier, mailferry's state directory as in production (root:mailferry
// 2770), the spool keys made by `mailferry keys init` (secret key owned by `mailferry`), and
// workers started as the `mailferry` user with their stderr in a log file.
//
// Header-only: each program that uses it stays one file. Must never: put a password in
// a child's argv or environment (passwords go over IMAP only), or kill a process it did
// not start (only PIDs it forked).
#pragma once

#include "mailferry/copier.hpp"
#include "mailferry/store.hpp"
#include "support/dovecot_server.hpp"
#include "support/test_env.hpp"

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <grp.h>
#include <map>
#include <netinet/in.h>
#include <pwd.h>
#include <random>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace wt {

using namespace std::chrono_literals;

inline const std::string kMailferry = mft::program_path("external-auth", "mailferry");
inline const std::string kCheckpassword =
    mft::program_path("external-auth", "mailferry-checkpassword");
inline const std::string kMasterUser = "mfmaster";

struct Ids {
    uid_t uid;
    gid_t gid;
};

inline Ids ids_of(const std::string& user) {
    const passwd* pw = ::getpwnam(user.c_str()); // NOLINT(concurrency-mt-unsafe): set-up
    if (pw == nullptr) {
        throw std::runtime_error("user " + user + " missing: run ./setup.sh deps");
    }
    return {pw->pw_uid, pw->pw_gid};
}

inline gid_t group_id(const std::string& name) {
    const group* g = ::getgrnam(name.c_str()); // NOLINT(concurrency-mt-unsafe)
    if (g == nullptr) {
        throw std::runtime_error("group " + name + " missing: run ./setup.sh deps");
    }
    return g->gr_gid;
}

inline void chown_path(const std::string& path, uid_t uid, gid_t gid) {
    if (::chown(path.c_str(), uid, gid) != 0) {
        throw std::runtime_error("chown " + path + " failed");
    }
}

inline std::string replace_all(std::string text, const std::string& from, const std::string& to) {
    for (auto p = text.find(from); p != std::string::npos; p = text.find(from, p + to.size())) {
        text.replace(p, from.size(), to);
    }
    return text;
}

// ---- mail on the old server, written straight into its Maildirs ----

inline void mkdir_vmail(const std::string& path) {
    Ids v = ids_of("mfvmail");
    std::filesystem::path p(path);
    std::vector<std::filesystem::path> todo;
    for (auto q = p; !q.empty() && !std::filesystem::exists(q); q = q.parent_path()) {
        todo.push_back(q);
    }
    for (auto it = todo.rbegin(); it != todo.rend(); ++it) {
        std::filesystem::create_directory(*it);
        ::chmod(it->c_str(), 0700);
        chown_path(it->string(), v.uid, v.gid);
    }
}

// `count` messages of about `size` bytes into `folder` ("" = INBOX) of `user`.
inline void fill_mailbox(const mft::DovecotServer& srv, const std::string& user,
                         const std::string& folder, int count, std::size_t size,
                         unsigned seed = 1) {
    Ids v = ids_of("mfvmail");
    std::string dir = srv.mail_dir(user) + (folder.empty() ? "" : "/." + folder);
    for (const char* sub : {"/cur", "/new", "/tmp"}) {
        mkdir_vmail(dir + sub);
    }
    std::mt19937 rng(seed);
    const char* words[] = {"copy",  "mail",   "ferry",  "login", "server", "quota", "spool",
                           "lease", "budget", "sealed", "inbox", "folder", "resync"};
    for (int i = 0; i < count; ++i) {
        std::string msg = "From: sender" + std::to_string(i % 7) + "@example.org\r\nTo: " + user +
                          "\r\nSubject: message " + std::to_string(i) + " of " + folder +
                          "\r\nMessage-ID: <" + std::to_string(seed) + "." + std::to_string(i) +
                          "." + user + ">\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n";
        while (msg.size() < size) {
            std::string line;
            while (line.size() < 70) {
                line += words[rng() % (sizeof words / sizeof *words)];
                line += ' ';
            }
            msg += line + "\r\n";
        }
        std::string name = dir + "/cur/" + std::to_string(1700000000 + i) + ".M" +
                           std::to_string(seed) + "_" + std::to_string(i) + ".mftest:2," +
                           (i % 3 == 0 ? "" : "S");
        mft::write_file(name, msg, 0600);
        chown_path(name, v.uid, v.gid);
        // INTERNALDATE is the file's mtime.
        timeval tv[2] = {{1700000000 + i * 60, 0}, {1700000000 + i * 60, 0}};
        ::utimes(name.c_str(), tv);
    }
}

// folder → messages, by doveadm on that server.
inline std::map<std::string, long> counts(const mft::DovecotServer& srv, const std::string& user) {
    std::string out;
    int rc = srv.doveadm({"-f", "tab", "mailbox", "status", "-u", user, "messages", "*"}, &out);
    if (rc != 0) {
        throw std::runtime_error("doveadm mailbox status -u " + user + " failed: " + out);
    }
    std::map<std::string, long> m;
    std::size_t pos = 0;
    bool header = true;
    while (pos < out.size()) {
        auto nl = out.find('\n', pos);
        std::string line = out.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        pos = nl == std::string::npos ? out.size() : nl + 1;
        if (line.empty()) {
            continue;
        }
        if (header) {
            header = false;
            continue;
        }
        auto tab = line.rfind('\t');
        if (tab == std::string::npos) {
            continue;
        }
        m[line.substr(0, tab)] = std::stol(line.substr(tab + 1));
    }
    return m;
}

inline long total(const std::map<std::string, long>& m) {
    long t = 0;
    for (const auto& [k, v] : m) {
        t += v;
    }
    return t;
}

// ---- a plain IMAP client for logins at the new server ----

inline std::string imap_quote(const std::string& s) {
    std::string q = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            q += '\\';
        }
        q += c;
    }
    return q + "\"";
}

// LOGIN at 127.0.0.1:port; returns the tagged reply line ("a1 OK …", "a1 NO …").
inline std::string imap_login(std::uint16_t port, const std::string& user, const std::string& pw) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{60, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        ::close(fd);
        return "connect failed";
    }
    std::string buf;
    auto read_line = [&]() {
        for (;;) {
            auto nl = buf.find("\r\n");
            if (nl != std::string::npos) {
                std::string line = buf.substr(0, nl);
                buf.erase(0, nl + 2);
                return line;
            }
            char tmp[4096];
            ssize_t n = ::read(fd, tmp, sizeof tmp);
            if (n <= 0) {
                return std::string("(connection closed)");
            }
            buf.append(tmp, static_cast<std::size_t>(n));
        }
    };
    auto send = [&](const std::string& s) {
        [[maybe_unused]] auto n = ::write(fd, s.data(), s.size());
    };
    std::string reply = read_line(); // greeting
    send("a1 LOGIN " + imap_quote(user) + " " + imap_quote(pw) + "\r\n");
    for (;;) {
        reply = read_line();
        if (reply.rfind("a1 ", 0) == 0 || reply == "(connection closed)") {
            break;
        }
    }
    send("a2 LOGOUT\r\n");
    ::close(fd);
    return reply;
}

// ---- processes we start (and only those) ----

struct Proc {
    pid_t pid = -1;
    std::string log;
    int status = -1;

    [[nodiscard]] bool alive() {
        if (pid <= 0 || status >= 0) {
            return false;
        }
        int st = 0;
        pid_t r = ::waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return false;
        }
        return true;
    }
    void signal(int sig) const {
        if (pid > 0 && status < 0) {
            ::kill(pid, sig);
        }
    }
    // Exit code (128+signal), or -1 if it is still running after `timeout`.
    int wait(std::chrono::milliseconds timeout) {
        auto end = std::chrono::steady_clock::now() + timeout;
        while (alive()) {
            if (std::chrono::steady_clock::now() > end) {
                return -1;
            }
            std::this_thread::sleep_for(20ms);
        }
        return status;
    }
    Proc() = default;
    Proc(const Proc&) = delete;
    Proc& operator=(const Proc&) = delete;
    Proc(Proc&& o) noexcept : pid(o.pid), log(std::move(o.log)), status(o.status) { o.pid = -1; }
    ~Proc() {
        if (alive()) {
            ::kill(pid, SIGKILL);
            int st = 0;
            ::waitpid(pid, &st, 0);
        }
    }
};

// Runs argv as `user` (with its groups plus `extra_groups`, as Dovecot's extra_groups
// gives them to its auth process), stdout+stderr appended to `log`.
inline Proc start_as(const std::string& user, const std::vector<std::string>& argv,
                     const std::string& log, const std::vector<gid_t>& extra_groups = {}) {
    Ids ids = ids_of(user);
    std::vector<std::string> args = argv;
    std::vector<char*> cargv;
    for (auto& a : args) {
        cargv.push_back(a.data());
    }
    cargv.push_back(nullptr);
    Proc p;
    p.log = log;
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        throw std::runtime_error("open " + log);
    }
    p.pid = ::fork();
    if (p.pid == 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        int null = ::open("/dev/null", O_RDONLY);
        ::dup2(null, 0);
        gid_t groups[64];
        int n = 0;
        if (::initgroups(user.c_str(), ids.gid) == 0) {
            n = ::getgroups(48, groups);
        }
        for (gid_t g : extra_groups) {
            if (n >= 0 && n < 64) {
                groups[n++] = g;
            }
        }
        if (n < 0 || ::setgroups(static_cast<std::size_t>(n), groups) != 0 ||
            ::setgid(ids.gid) != 0 || ::setuid(ids.uid) != 0) {
            ::_exit(126);
        }
        ::execv(cargv[0], cargv.data());
        ::_exit(127);
    }
    ::close(fd);
    if (p.pid < 0) {
        throw std::runtime_error("fork failed");
    }
    return p;
}

// ---- the world ----

struct WorldOptions {
    std::vector<mft::TestUser> users; // at the old server
    unsigned copies = 2;
    unsigned budget = 4;
    std::string lease = "3s";
    std::string resync_interval = "1h";
    std::string retry_min = "500ms";
    std::string busy_timeout = "5s";
    std::string keep_until = "cutover";
    bool master_user = true;
    bool spawn = false;
    std::string idle_exit = "5m";
    std::string extra;          // appended to mailferry.toml
    std::string worker_extra;   // appended to its [worker] section
    std::string old_extra;      // appended to the old Dovecot's config
    std::string provider_extra; // appended to the [[provider]] section
    // [target] maildir = the new server's Maildirs (written directly) instead of its IMAP
    // port; the worker then runs as root (start_worker), as it must to write users' trees.
    bool maildir_target = false;
};

struct World {
    WorldOptions o;
    mft::DovecotServer old;
    mft::TempDir dir{"mf-worker"};
    std::string state; // root:mailferry 2770
    std::string config;
    std::string master_password;
    std::unique_ptr<mft::DovecotServer> fresh;
    Ids mf = ids_of("mailferry");
    gid_t mf_group = group_id("mailferry");
    int worker_seq = 0;

    static mft::DovecotOptions old_options(const WorldOptions& o) {
        mft::DovecotOptions d;
        d.label = "wold";
        d.users = o.users;
        d.pop3 = d.pop3s = d.submission = false;
        d.extra_config = o.old_extra;
        return d;
    }

    explicit World(WorldOptions opts) : o(std::move(opts)), old(old_options(o)) {
        state = dir.file("state");
        ::mkdir(state.c_str(), 02770);
        chown_path(state, 0, mf_group);
        ::chmod(state.c_str(), 02770);
        // The lock directory as setup makes it: the login helper and the worker share it.
        std::string locks = state + "/locks";
        ::mkdir(locks.c_str(), 02770);
        chown_path(locks, 0, mf_group);
        ::chmod(locks.c_str(), 02770);
        std::string mail = dir.file("new-mail");
        ::mkdir(mail.c_str(), 0755);
        Ids v = ids_of("mfvmail");
        chown_path(mail, v.uid, v.gid);

        // The master user's password: the worker reads it, nobody else.
        master_password = "master-" + std::to_string(::getpid()) + "-Xq9";
        std::string mpw = state + "/master-password";
        mft::write_file(mpw, master_password + "\n", 0600);
        chown_path(mpw, mf.uid, mf.gid);
        // The new server's master passdb (Dovecot reads it as mfvmail).
        std::string masters = dir.file("master-users");
        mft::write_file(masters, kMasterUser + ":{PLAIN}" + master_password + "\n", 0600);
        chown_path(masters, v.uid, v.gid);

        write_config(0);
        // The new server: passdb = the shipped example config with this build's program.
        std::string auth = mft::read_file(
            std::string(MF_SOURCE_DIR) + "/examples/dovecot/auth-mailferry-checkpassword.conf.ext");
        auth = replace_all(auth, "/usr/local/bin/mailferry-checkpassword", kCheckpassword);
        auth = replace_all(auth, "/etc/mailferry/mailferry.toml", config);
        auth += "passdb {\n  driver = passwd-file\n  master = yes\n  args = " + masters + "\n}\n";
        mft::DovecotOptions n;
        n.label = "wnew";
        n.tls = false;
        n.imaps = n.pop3 = n.pop3s = n.submission = false;
        n.auth_config = auth;
        n.extra_config = "service auth {\n  extra_groups = mailferry\n  vsz_limit = 0\n}\n"
                         "service auth-worker {\n  extra_groups = mailferry\n}\n";
        fresh = std::make_unique<mft::DovecotServer>(n);
        write_config(fresh->imap_port()); // now with the target's port

        // keys init, as an admin would: root, secret key to `mailferry`.
        auto r = mft::run({kMailferry, "keys", "init", "--config", config});
        if (r.exit_code != 0) {
            throw std::runtime_error("keys init failed: " + r.out + r.err);
        }
        // The store, created as setup would (group mailferry, 0660).
        auto s = mf::open_sqlite_store(db(), mf::Millis(5000));
        if (!s) {
            throw std::runtime_error(s.error().message());
        }
    }

    void write_config(std::uint16_t target_port) {
        config = dir.file("mailferry.toml");
        std::string t =
            "[store]\npath = \"" + db() + "\"\nbusy_timeout = \"" + o.busy_timeout +
            "\"\n\n[identity]\ndefault_domain = \"example.com\"\n\n"
            "[[provider]]\nname = \"old\"\ndomains = [\"example.com\"]\nprotocol = \"imap\"\n"
            "host = \"localhost\"\nport = " +
            std::to_string(old.imaps_port()) + "\ntls = \"implicit\"\nca_file = \"" +
            old.ca_file() + "\"\ntimeout = \"10s\"\nmax_concurrent = 100\n" + o.provider_extra +
            "\n"
            "[hash]\nscheme = \"argon2id\"\nargon2_ops = 1\nargon2_memory_kib = 8192\n\n"
            "[provisioner]\ntype = \"builtin\"\n\n"
            "[guard]\nmax_failures_per_account_ip = 1000\nmax_failures_per_account = 1000\n"
            "max_failures_per_ip = 100000\n\n"
            "[result.extra_fields]\nuserdb_home = \"" +
            dir.file("new-mail") +
            "/{domain}/{local}\"\nuserdb_uid = \"mfvmail\"\nuserdb_gid = \"mfvmail\"\n\n"
            "[spool]\nkeep_until = \"" +
            o.keep_until + "\"\n\n[target]\n" +
            (o.maildir_target
                 ? "maildir = \"" + dir.file("new-mail") + "/{domain}/{local}/Maildir\"\n"
                 : "host = \"127.0.0.1\"\nport = " +
                       std::to_string(target_port == 0 ? 1 : target_port) + "\ntls = \"none\"\n") +
            "timeout = \"30s\"\n" +
            (o.master_user && !o.maildir_target
                 ? "master_user = \"" + kMasterUser + "\"\nmaster_password_file = \"" + state +
                       "/master-password\"\n"
                 : std::string()) +
            "\n[worker]\ncopies = " + std::to_string(o.copies) +
            "\nmax_copies_per_server = " + std::to_string(o.budget) +
            "\nconnections = 2\nresync_interval = \"" + o.resync_interval + "\"\nretry_min = \"" +
            o.retry_min + "\"\nretry_max = \"5s\"\nlease = \"" + o.lease +
            "\"\npoll_interval = \"1s\"\nspawn = " + (o.spawn ? "true" : "false") +
            "\nprogram = \"" + kMailferry + "\"\nidle_exit = \"" + o.idle_exit + "\"\n" +
            o.worker_extra + "\n[log]\nlevel = \"info\"\n" + o.extra;
        mft::write_file(config, t, 0640);
        chown_path(config, 0, mf_group);
    }

    [[nodiscard]] std::string db() const { return state + "/mailferry.db"; }
    [[nodiscard]] std::string spool_dir() const { return state + "/spool"; }
    [[nodiscard]] std::string secret_key() const { return state + "/spool.key"; }
    [[nodiscard]] std::string public_key() const { return state + "/spool.pub"; }
    [[nodiscard]] std::string state_dir() const { return state + "/copy-state"; }

    // A worker as the `mailferry` user; its log in the test dir.
    Proc start_worker(const std::vector<std::string>& extra = {}) {
        std::vector<std::string> argv = {kMailferry, "worker", "--config", config};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return start_as(o.maildir_target ? "root" : "mailferry", argv,
                        dir.file("worker-" + std::to_string(++worker_seq) + ".log"));
    }

    [[nodiscard]] std::optional<mf::Account> account(const std::string& name) const {
        auto s = mf::open_sqlite_store(db(), mf::Millis(5000));
        if (!s) {
            throw std::runtime_error(s.error().message());
        }
        auto a = (*s)->find_account(name);
        if (!a) {
            throw std::runtime_error(a.error().message());
        }
        return *a;
    }

    std::vector<mf::Job> jobs() const {
        auto s = mf::open_sqlite_store(db(), mf::Millis(5000));
        if (!s) {
            throw std::runtime_error(s.error().message());
        }
        auto j = (*s)->list_jobs(false);
        if (!j) {
            throw std::runtime_error(j.error().message());
        }
        return *j;
    }

    // Waits until every name is in `want`; false on timeout.
    bool wait_state(const std::vector<std::string>& names, mf::AccountState want,
                    std::chrono::milliseconds timeout) const {
        auto end = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            bool all = true;
            for (const auto& n : names) {
                auto a = account(n);
                all = all && a && a->state == want;
            }
            if (all) {
                return true;
            }
            if (std::chrono::steady_clock::now() > end) {
                return false;
            }
            std::this_thread::sleep_for(100ms);
        }
    }

    // Message-by-message comparison with the copier's own verifier, on a copy of the
    // worker's state file (taken after the workers stopped, so nothing is in its WAL).
    // Test users have plain names, which the state file is named after unchanged.
    mf::Result<mf::copy::VerifyReport> verify(const std::string& user, const std::string& pw) {
        std::string src_state = state_dir() + "/" + user + ".db";
        std::string copy = dir.file("verify-" + user + ".db");
        std::filesystem::copy_file(src_state, copy,
                                   std::filesystem::copy_options::overwrite_existing);
        mf::copy::Endpoint from;
        from.host = "localhost";
        from.port = old.imaps_port();
        from.tls = mf::TlsMode::implicit;
        from.ca_file = old.ca_file();
        from.user = user;
        from.password = mf::Secret(pw);
        mf::copy::Endpoint to;
        to.host = "127.0.0.1";
        to.port = fresh->imap_port();
        to.tls = mf::TlsMode::none;
        to.user = user;
        to.auth_user = kMasterUser;
        to.password = mf::Secret(master_password);
        mf::copy::Options opts;
        opts.state_path = copy;
        return mf::copy::verify_account(from, to, opts);
    }
};

// Every occurrence of any of `needles` in the file (binary-safe); "" when none.
inline std::string find_secrets(const std::string& path, const std::vector<std::string>& needles) {
    std::string text;
    try {
        text = mft::read_file(path);
    } catch (...) { // NOLINT(bugprone-empty-catch): unreadable → nothing to find
        return {};
    }
    for (const auto& n : needles) {
        if (!n.empty() && text.find(n) != std::string::npos) {
            return path + " holds the password of length " + std::to_string(n.size());
        }
    }
    return {};
}

inline std::vector<std::string> files_under(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::recursive_directory_iterator(
             dir, std::filesystem::directory_options::skip_permission_denied)) {
        if (e.is_regular_file()) {
            out.push_back(e.path().string());
        }
    }
    return out;
}

} // namespace wt
