// courier_server.cpp — starts and stops real, throw-away Courier-IMAP instances (couriertcpd
// + imaplogin + imapd, authdaemond with authuserdb) for tests.
//
// Courier's login path reads compiled-in paths: authdaemond reads /etc/courier/authdaemonrc
// and authuserdb /etc/courier/userdb.dat, and imaplogin connects to
// /run/courier/authdaemon/socket. Both daemons run in private mount namespaces in which
// those two directories are our temp dir's etc/ and run/ (server_process.hpp), so each
// instance has its own users and socket. Passwords are stored as SHA-512 crypt
// (openssl passwd -6, fed on stdin). imapd runs as mfvmail (the userdb's uid/gid).
// Must never: leave a daemon of ours running after the object dies, throw from the
// destructor, or write to the real /etc/courier or /run/courier.
// Errors: std::runtime_error with the tail of the instance's log.
#include "support/courier_server.hpp"

#include "support/server_process.hpp"
#include "support/test_env.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <pwd.h>
#include <stdexcept>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace mft {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kRoot = "/opt/mailferry-test/courier-imap";
constexpr const char* kAuthdaemond = "/usr/lib/courier/courier-authlib/authdaemond";
constexpr const char* kMakeuserdb = "/usr/sbin/makeuserdb";
constexpr int kStartAttempts = 5; // a port picked at run time may be taken by a racing test

// Courier-IMAP's settings as Debian's /etc/courier/imapd sets them, less what would change
// a test's mail behind its back (IMAP_EMPTYTRASH purges old Trash messages at logout).
std::vector<std::string> imapd_environment() {
    return {"PATH=/usr/bin:/bin",
            "IMAP_CAPABILITY=IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT "
            "THREAD=REFERENCES SORT QUOTA IDLE",
            "IMAP_KEYWORDS=1",
            "IMAP_ACL=1",
            "IMAP_IDLE_TIMEOUT=60",
            "IMAP_MAILBOX_SANITY_CHECK=1",
            "IMAP_DISABLETHREADSORT=0",
            "IMAP_CHECK_ALL_FOLDERS=0",
            "IMAP_OBSOLETE_CLIENT=0",
            "IMAP_UMASK=022",
            "IMAP_ULIMITD=131072",
            "IMAP_USELOCKS=1",
            "IMAP_ENHANCEDIDLE=0",
            "IMAP_TRASHFOLDERNAME=Trash",
            "IMAP_MOVE_EXPUNGE_TO_TRASH=0",
            "MAILDIRPATH=Maildir"};
}

} // namespace

struct CourierServer::State {
    CourierOptions opts;
    std::unique_ptr<TempDir> dir;
    std::string etc, run_dir, log;
    std::uint16_t port = 0;
    pid_t authd = -1;
    pid_t tcpd = -1;
    RunAs as;
    std::mutex users_mutex;
    std::map<std::string, std::string> homes; // user → home
    std::string userdb;                       // the userdb source text

    void add(const TestUser& u);
    void start_daemons();
    void stop_daemons();
    [[nodiscard]] std::string tail(std::size_t lines) const { return file_tail(log, lines); }
};

void CourierServer::State::add(const TestUser& u) {
    if (u.name.empty() || u.name.find_first_of("\t|\r\n") != std::string::npos) {
        throw std::runtime_error("Courier test user name unusable in a userdb: " + u.name);
    }
    if (u.password.find_first_of(std::string("\r\n\0", 3)) != std::string::npos) {
        throw std::runtime_error("Courier test password for " + u.name + " holds CR, LF or NUL");
    }
    auto hash = run({"openssl", "passwd", "-6", "-stdin"}, u.password, 30s);
    if (hash.exit_code != 0 || hash.out.empty()) {
        throw std::runtime_error("openssl passwd -6 failed: " + hash.err);
    }
    hash.out.erase(hash.out.find_last_not_of("\r\n") + 1);
    const std::string home = dir->path() + "/home/u" + std::to_string(homes.size() + 1);
    for (const char* sub : {"", "/Maildir", "/Maildir/cur", "/Maildir/new", "/Maildir/tmp"}) {
        std::filesystem::create_directories(home + sub);
        ::chmod((home + sub).c_str(), 0700);
        if (::chown((home + sub).c_str(), as.uid, as.gid) != 0) {
            throw std::runtime_error("chown " + home + sub + ": " + std::strerror(errno)); // NOLINT
        }
    }
    homes[u.name] = home;
    userdb += u.name + "\thome=" + home + "|mail=" + home +
              "/Maildir|uid=" + std::to_string(as.uid) + "|gid=" + std::to_string(as.gid) +
              "|systempw=" + hash.out + "\n";
    write_file(etc + "/userdb", userdb, 0600);
    auto made = run({kMakeuserdb, "-f", etc + "/userdb"}, {}, 30s);
    if (made.exit_code != 0) {
        throw std::runtime_error("makeuserdb failed: " + made.err + made.out);
    }
}

void CourierServer::State::start_daemons() {
    const std::vector<BindMount> binds = {{etc, "/etc/courier"},
                                          {run_dir, "/run/courier/authdaemon"}};
    std::filesystem::remove(run_dir + "/socket");
    SpawnSpec authd_spec;
    authd_spec.argv = {kAuthdaemond};
    authd_spec.env = {"PATH=/usr/bin:/bin"};
    authd_spec.binds = binds;
    authd_spec.log = log;
    authd = spawn_isolated(authd_spec);
    auto until = Clock::now() + 10s;
    while (!std::filesystem::exists(run_dir + "/socket")) {
        if (!process_alive(authd) || Clock::now() > until) {
            throw std::runtime_error("authdaemond did not open its socket\n" + tail(30));
        }
        std::this_thread::sleep_for(5ms);
    }
    SpawnSpec tcpd_spec;
    tcpd_spec.argv = {std::string(kRoot) + "/usr/sbin/couriertcpd",
                      "-address=127.0.0.1",
                      "-nodnslookup",
                      "-noidentlookup",
                      "-maxprocs=100",
                      "-maxperip=100",
                      "-stderr=" + log,
                      std::to_string(port),
                      std::string(kRoot) + "/usr/lib/courier/courier/imaplogin",
                      std::string(kRoot) + "/usr/bin/imapd",
                      "Maildir"};
    tcpd_spec.env = imapd_environment();
    tcpd_spec.binds = binds;
    tcpd_spec.log = log;
    tcpd = spawn_isolated(tcpd_spec);
}

void CourierServer::State::stop_daemons() {
    stop_group(tcpd, 2s);
    stop_group(authd, 2s);
    tcpd = authd = -1;
    auto until = Clock::now() + 5s;
    while (port != 0 && wait_for_port(port, 0ms) && Clock::now() < until) {
        std::this_thread::sleep_for(5ms);
    }
}

CourierServer::CourierServer(CourierOptions opts) : state_(std::make_unique<State>()) {
    State& s = *state_;
    s.opts = std::move(opts);
    if (::access((std::string(kRoot) + "/usr/sbin/couriertcpd").c_str(), X_OK) != 0 ||
        ::access(kAuthdaemond, X_OK) != 0) {
        throw std::runtime_error("Courier-IMAP is missing: run ./setup.sh deps (as root)");
    }
    s.as = run_user();
    s.dir = std::make_unique<TempDir>("mailferry-" + s.opts.label);
    const std::string d = s.dir->path();
    s.etc = d + "/etc";
    s.run_dir = d + "/run";
    s.log = d + "/courier.log";
    std::filesystem::create_directories(s.etc);
    std::filesystem::create_directories(s.run_dir);
    write_file(s.etc + "/authdaemonrc",
               "# written by tests/support/courier_server.cpp\n"
               "authmodulelist=\"authuserdb\"\ndaemons=2\n"
               "authdaemonvar=/run/courier/authdaemon\nDEBUG_LOGIN=0\nDEFAULTOPTIONS=\"\"\n",
               0644);
    for (const auto& u : s.opts.users) {
        s.add(u);
    }
    for (int attempt = 1;; ++attempt) {
        s.port = free_port();
        try {
            start();
            return;
        } catch (const std::exception& e) {
            s.stop_daemons();
            if (std::string(e.what()).find("in use") == std::string::npos ||
                attempt == kStartAttempts) {
                throw;
            }
        }
    }
}

CourierServer::~CourierServer() {
    try {
        stop();
    } catch (...) { // NOLINT(bugprone-empty-catch): never throw from a destructor
    }
}

void CourierServer::start() {
    State& s = *state_;
    if (running()) {
        return;
    }
    s.start_daemons();
    auto until = Clock::now() + 15s;
    while (!wait_for_port(s.port, 20ms)) {
        if (!process_alive(s.tcpd) || Clock::now() > until) {
            throw std::runtime_error("couriertcpd did not open port " + std::to_string(s.port) +
                                     "\n" + s.tail(30));
        }
    }
}

void CourierServer::stop() {
    state_->stop_daemons();
}

bool CourierServer::running() const {
    return process_alive(state_->tcpd) && process_alive(state_->authd);
}
std::uint16_t CourierServer::imap_port() const {
    return state_->port;
}
const std::string& CourierServer::dir() const {
    return state_->dir->path();
}
std::string CourierServer::maildir(const std::string& user) const {
    std::lock_guard lock(state_->users_mutex);
    auto it = state_->homes.find(user);
    if (it == state_->homes.end()) {
        throw std::runtime_error("no Courier test user " + user);
    }
    return it->second + "/Maildir";
}
std::string CourierServer::log_tail(std::size_t lines) const {
    return state_->tail(lines);
}

void CourierServer::add_user(const TestUser& user) {
    std::lock_guard lock(state_->users_mutex);
    state_->add(user);
}

} // namespace mft
