// cyrus_server.cpp — starts and stops real, throw-away Cyrus IMAP instances for tests.
//
// The binaries come from Debian's packages unpacked under /opt/mailferry-test/cyrus-imapd
// (see setup.sh), so their libraries are found through LD_LIBRARY_PATH and every command in
// cyrus.conf is an absolute path with its own -C (Debian's master looks for services in
// /usr/lib/cyrus/bin and does not hand -C down). Cyrus logs only through syslog: the master
// runs in a private mount namespace whose /dev/log is our SyslogSink, so a failed start
// throws with Cyrus' own words. Users live in a sasldb (realm = servername = localhost).
// Must never: leave a master or imapd running after the object dies, throw from the
// destructor, or use the system's /etc/imapd.conf, /var/lib/cyrus or /run/cyrus.
// Errors: std::runtime_error with the tail of the syslog and master output.
#include "support/cyrus_server.hpp"

#include "support/server_process.hpp"
#include "support/test_env.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <pwd.h>
#include <stdexcept>
#include <thread>
#include <unistd.h>

namespace mft {
namespace {

using namespace std::chrono_literals;

constexpr const char* kRoot = "/opt/mailferry-test/cyrus-imapd";
constexpr const char* kRunUser = "mfvmail";
constexpr const char* kRealm = "localhost";
constexpr int kStartAttempts = 5; // a port picked at run time may be taken by a racing test

std::string bin(const std::string& name) {
    return std::string(kRoot) + "/usr/lib/cyrus/bin/" + name;
}

void chown_run_user(const std::string& path) {
    const RunAs as = run_user();
    if (::chown(path.c_str(), as.uid, as.gid) != 0) {
        throw std::runtime_error("chown(" + path + "): " + std::strerror(errno)); // NOLINT
    }
}

} // namespace

struct CyrusServer::State {
    CyrusOptions opts;
    std::unique_ptr<TempDir> dir;
    std::unique_ptr<SyslogSink> syslog;
    std::string conf, services, sasldb, master_log, syslog_log;
    std::string admin = "cyrusadmin";
    std::string admin_pw = "cyrus-admin-pw";
    std::uint16_t port = 0;
    pid_t master = -1;

    void write_config() const;
    void sasl_user(const std::string& name, const std::string& password) const;
    void start_master();
    void stop_master();
    [[nodiscard]] std::string tail(std::size_t lines) const {
        return "--- syslog:\n" + file_tail(syslog_log, lines) + "\n--- master output:\n" +
               file_tail(master_log, 10);
    }
};

void CyrusServer::State::write_config() const {
    const std::string d = dir->path();
    std::string c = "# written by tests/support/cyrus_server.cpp\n";
    c += "configdirectory: " + d + "/config\n";
    c += "defaultpartition: default\npartition-default: " + d + "/spool\n";
    c += "mboxname_lockpath: " + d + "/lock\nproc_path: " + d + "/proc\n";
    c += "lmtpsocket: " + d + "/socket/lmtp\nidlesocket: " + d + "/socket/idle\n";
    c += "notifysocket: " + d + "/socket/notify\nsievedir: " + d + "/sieve\n";
    c += "servername: " + std::string(kRealm) + "\n";
    c += "cyrus_user: " + std::string(kRunUser) + "\ncyrus_group: " + kRunUser + "\n";
    c += "admins: " + admin + "\n";
    c += "allowplaintext: yes\nsasl_pwcheck_method: auxprop\nsasl_auxprop_plugin: sasldb\n";
    c += "sasl_sasldb_path: " + sasldb + "\nsasl_mech_list: PLAIN LOGIN\n";
    c += std::string("unixhierarchysep: ") + (opts.unix_hierarchy_sep ? "yes" : "no") + "\n";
    c += std::string("altnamespace: ") + (opts.alt_namespace ? "yes" : "no") + "\n";
    c += "autocreate_quota: 0\nhashimapspool: true\numask: 077\n";
    c += opts.extra_config + "\n";
    write_file(conf, c, 0644);

    const std::string with_conf = " -C " + conf;
    std::string s = "# written by tests/support/cyrus_server.cpp\n";
    s += "START {\n  recover cmd=\"" + bin("ctl_cyrusdb") + with_conf + " -r\"\n}\n";
    s += "SERVICES {\n  imap cmd=\"" + bin("imapd") + with_conf +
         "\" listen=\"127.0.0.1:" + std::to_string(port) + "\" prefork=0 maxchild=100\n}\n";
    s += "EVENTS {\n}\n";
    write_file(services, s, 0644);
}

void CyrusServer::State::sasl_user(const std::string& name, const std::string& password) const {
    if (name.empty() || name.find_first_of("@ \t\r\n") != std::string::npos) {
        throw std::runtime_error("Cyrus test user name unusable: " + name);
    }
    if (password.find_first_of(std::string("\n\0", 2)) != std::string::npos) {
        throw std::runtime_error("Cyrus test password for " + name + " holds LF or NUL");
    }
    // -p: the password on stdin, never in argv.
    auto r =
        run({"/usr/sbin/saslpasswd2", "-p", "-c", "-f", sasldb, "-u", kRealm, name}, password, 30s);
    if (r.exit_code != 0) {
        throw std::runtime_error("saslpasswd2 " + name + " failed: " + r.err);
    }
    chown_run_user(sasldb);
}

void CyrusServer::State::start_master() {
    const std::string d = dir->path();
    SpawnSpec spec;
    spec.argv = {bin("master"), "-C", conf, "-M", services, "-p", d + "/proc/master.pid"};
    spec.env = {"PATH=/usr/bin:/bin",
                "LD_LIBRARY_PATH=" + std::string(kRoot) + "/usr/lib/x86_64-linux-gnu"};
    spec.binds = {{d + "/syslog.sock", "/dev/log"}};
    spec.log = master_log;
    spec.cwd = d;
    master = spawn_isolated(spec);
}

void CyrusServer::State::stop_master() {
    stop_group(master, 3s);
    master = -1;
    auto until = std::chrono::steady_clock::now() + 5s;
    while (wait_for_port(port, 0ms) && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(5ms);
    }
}

CyrusServer::CyrusServer(CyrusOptions opts) : state_(std::make_unique<State>()) {
    State& s = *state_;
    s.opts = std::move(opts);
    if (::access(bin("master").c_str(), X_OK) != 0) {
        throw std::runtime_error(bin("master") + " is missing: run ./setup.sh deps (as root)");
    }
    s.dir = std::make_unique<TempDir>("mailferry-" + s.opts.label);
    const std::string d = s.dir->path();
    for (const char* sub : {"config", "config/db", "config/socket", "config/proc", "config/log",
                            "spool", "lock", "proc", "socket", "sieve"}) {
        std::filesystem::create_directories(d + "/" + sub);
        chown_run_user(d + "/" + sub);
    }
    s.conf = d + "/imapd.conf";
    s.services = d + "/cyrus.conf";
    s.sasldb = d + "/sasldb2";
    s.master_log = d + "/master.log";
    s.syslog_log = d + "/syslog.log";
    s.syslog = std::make_unique<SyslogSink>(d + "/syslog.sock", s.syslog_log);
    s.sasl_user(s.admin, s.admin_pw);
    for (const auto& u : s.opts.users) {
        s.sasl_user(u.name, u.password);
    }
    for (int attempt = 1;; ++attempt) {
        s.port = free_port();
        s.write_config();
        try {
            start();
            return;
        } catch (const std::exception& e) {
            s.stop_master();
            const bool port_race =
                std::string(e.what()).find("Address already in use") != std::string::npos;
            if (!port_race || attempt == kStartAttempts) {
                throw;
            }
        }
    }
}

CyrusServer::~CyrusServer() {
    try {
        stop();
    } catch (...) { // NOLINT(bugprone-empty-catch): never throw from a destructor
    }
}

void CyrusServer::start() {
    State& s = *state_;
    if (running()) {
        return;
    }
    s.start_master();
    // The master runs ctl_cyrusdb -r first and listens after it; a master that exits
    // (bad config, taken port) ends the wait at once.
    auto until = std::chrono::steady_clock::now() + 15s;
    while (!wait_for_port(s.port, 20ms)) {
        if (!process_alive(s.master) || std::chrono::steady_clock::now() > until) {
            throw std::runtime_error("Cyrus master did not open port " + std::to_string(s.port) +
                                     "\n" + s.tail(40));
        }
    }
}

void CyrusServer::stop() {
    state_->stop_master();
}

bool CyrusServer::running() const {
    return process_alive(state_->master);
}
std::uint16_t CyrusServer::imap_port() const {
    return state_->port;
}
const std::string& CyrusServer::dir() const {
    return state_->dir->path();
}
const std::string& CyrusServer::admin_user() const {
    return state_->admin;
}
const std::string& CyrusServer::admin_password() const {
    return state_->admin_pw;
}
char CyrusServer::separator() const {
    return state_->opts.unix_hierarchy_sep ? '/' : '.';
}
std::string CyrusServer::log_tail(std::size_t lines) const {
    return state_->tail(lines);
}

void CyrusServer::add_user(const TestUser& user) {
    state_->sasl_user(user.name, user.password);
}

} // namespace mft
