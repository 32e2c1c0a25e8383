// dovecot_server.cpp — starts and stops real, throw-away Dovecot instances for tests.
//
// Each instance is rootless (every Dovecot service runs as mfvmail), lives in its own temp
// dir, listens on 127.0.0.1 at ports picked at run time, and authenticates users from a
// passwd-file whose passwords are stored as {PLAIN.B64}, so any byte but NUL survives.
// Failed logins are answered at once: the brute-force penalty (anvil-auth-penalty) is off,
// and a last `static deny` passdb adds `nodelay` (otherwise Dovecot batches failure
// replies every 500 ms even with auth_failure_delay = 0). Nothing else differs from a
// stock Dovecot: replies, codes and limits are the real ones.
// Must never: leave a Dovecot running after the object dies, throw from the destructor,
// or touch the system Dovecot (own instance_name, base_dir, state_dir, log).
// Errors: std::runtime_error with the command's stderr and the tail of Dovecot's log.
#include "support/dovecot_server.hpp"

#include "support/test_env.hpp"

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <pwd.h>
#include <sodium.h>
#include <stdexcept>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <utility>

namespace mft {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kRunUser = "mfvmail";
constexpr const char* kDovecot = "/usr/sbin/dovecot";
constexpr const char* kDoveadm = "/usr/bin/doveadm";
constexpr int kStartAttempts = 5; // a port picked at run time may be taken by a racing test

void chown_to(const std::string& path, const RunAs& as) {
    if (::chown(path.c_str(), as.uid, as.gid) != 0) {
        int err = errno;
        throw std::runtime_error("chown(" + path + ") failed: " + std::strerror(err)); // NOLINT
    }
}

std::string b64(const std::string& s) {
    std::string out(sodium_base64_encoded_len(s.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(out.data(), out.size(),
                      reinterpret_cast<const unsigned char*>(s.data()), // NOLINT
                      s.size(), sodium_base64_VARIANT_ORIGINAL);
    out.resize(std::strlen(out.c_str()));
    return out;
}

void must_run(const std::vector<std::string>& argv, const std::string& what) {
    auto r = run(argv, {}, 60s);
    if (r.exit_code != 0) {
        throw std::runtime_error(what + " failed (exit " + std::to_string(r.exit_code) +
                                 "): " + r.err);
    }
}

// A CA and a server certificate signed by it, made with openssl once per test process.
struct Pki {
    std::unique_ptr<TempDir> dir;
    std::string ca, cert, key;
};

Pki make_pki(const std::string& label) {
    Pki p;
    p.dir = std::make_unique<TempDir>("mailferry-pki-" + label);
    const std::string d = p.dir->path();
    p.ca = d + "/ca.pem";
    p.cert = d + "/cert.pem";
    p.key = d + "/key.pem";
    const std::string ca_key = d + "/ca.key";
    const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt",
                                         "ec_paramgen_curve:prime256v1", "-nodes"};
    std::vector<std::string> argv = {"openssl", "req", "-x509"};
    argv.insert(argv.end(), ec.begin(), ec.end());
    argv.insert(argv.end(),
                {"-keyout", ca_key, "-out", p.ca, "-days", "30", "-subj",
                 "/CN=mailferry test CA " + label, "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
    must_run(argv, "openssl req (CA)");
    argv = {"openssl", "req"};
    argv.insert(argv.end(), ec.begin(), ec.end());
    argv.insert(argv.end(),
                {"-keyout", p.key, "-out", d + "/server.csr", "-subj", "/CN=localhost"});
    must_run(argv, "openssl req (server key)");
    write_file(d + "/ext.cnf", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                               "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
    must_run({"openssl", "x509", "-req", "-in", d + "/server.csr", "-CA", p.ca, "-CAkey", ca_key,
              "-CAcreateserial", "-out", p.cert, "-days", "30", "-extfile", d + "/ext.cnf"},
             "openssl x509 (sign server certificate)");
    ::chmod(p.key.c_str(), 0600); // read by Dovecot's config process, which runs as root
    return p;
}

const Pki& pki() {
    static std::once_flag once;
    static Pki p;
    std::call_once(once, [] { p = make_pki("main"); });
    return p;
}

std::atomic<int> g_instances{0};

std::string user_line(const TestUser& u) {
    if (u.name.empty() || u.name.find_first_of(":\n\r\t") != std::string::npos) {
        throw std::runtime_error("test user name unusable in a passwd-file: " + u.name);
    }
    if (u.password.find('\0') != std::string::npos) {
        throw std::runtime_error("test password for " + u.name + " contains NUL");
    }
    return u.name + ":{PLAIN.B64}" + b64(u.password) + "::::::\n";
}

std::string listener(const char* name, std::uint16_t port, bool ssl) {
    return std::string("  inet_listener ") + name + " {\n    port = " + std::to_string(port) +
           "\n" + (ssl ? "    ssl = yes\n" : "") + "  }\n";
}

} // namespace

std::string other_ca_file() {
    static std::once_flag once;
    static Pki p;
    std::call_once(once, [] { p = make_pki("other"); });
    return p.ca;
}

struct DovecotServer::State {
    DovecotOptions opts;
    std::unique_ptr<TempDir> dir;
    std::string conf, users_file, log;
    std::uint16_t imap = 0, imaps = 0, pop3 = 0, pop3s = 0, submission = 0, lmtp = 0;
    pid_t master = -1;
    RunAs as;
    std::mutex users_mutex;

    [[nodiscard]] std::array<std::uint16_t, 6> ports() const {
        return {imap, imaps, pop3, pop3s, submission, lmtp};
    }
    void pick_ports();
    void write_config() const;
    void stop_master();
};

void DovecotServer::State::pick_ports() {
    const bool tls = opts.tls;
    imap = opts.imap ? free_port() : 0;
    imaps = opts.imaps && tls ? free_port() : 0;
    pop3 = opts.pop3 ? free_port() : 0;
    pop3s = opts.pop3s && tls ? free_port() : 0;
    submission = opts.submission ? free_port() : 0;
    lmtp = opts.lmtp ? free_port() : 0;
}

void DovecotServer::State::write_config() const {
    const std::string d = dir->path();
    const std::string user(kRunUser);
    std::string protocols = "imap";
    if (pop3 != 0 || pop3s != 0) {
        protocols += " pop3";
    }
    if (submission != 0) {
        protocols += " submission";
    }
    if (lmtp != 0) {
        protocols += " lmtp";
    }
    std::string c;
    c += "# written by tests/support/dovecot_server.cpp\n";
    c += "instance_name = mft-" + opts.label + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(g_instances++) + "\n";
    c += "base_dir = " + d + "/run\nstate_dir = " + d + "/state\n";
    c += "log_path = " + log + "\ninfo_log_path = " + log + "\n";
    c += "listen = " + opts.address + "\nprotocols = " + protocols + "\nhostname = localhost\n";
    c += "default_internal_user = " + user + "\ndefault_internal_group = " + user +
         "\ndefault_login_user = " + user + "\n";
    c += "first_valid_uid = " + std::to_string(as.uid) +
         "\nlast_valid_uid = " + std::to_string(as.uid) +
         "\nfirst_valid_gid = " + std::to_string(as.gid) +
         "\nlast_valid_gid = " + std::to_string(as.gid) + "\n";
    c += "mail_uid = " + user + "\nmail_gid = " + user + "\nmail_location = " + opts.mail_location +
         "\n";
    c += "mail_max_userip_connections = 1000\n";
    c += "disable_plaintext_auth = no\nauth_mechanisms = plain login\n";
    c += "auth_failure_delay = 0\nauth_cache_size = 0\nauth_verbose = yes\n";
    // Submission only has to answer AUTH; the relay is a closed port nobody reaches.
    c += "submission_relay_host = 127.0.0.1\nsubmission_relay_port = 9\n";
    if (opts.tls) {
        c += "ssl = yes\nssl_cert = <" + pki().cert + "\nssl_key = <" + pki().key + "\n";
    } else {
        c += "ssl = no\n";
    }
    if (opts.auth_config.empty()) {
        c += "passdb {\n  driver = passwd-file\n  args = " + users_file + "\n}\n";
        // Reached only after passwd-file failed: denies with `nodelay`, so no 0.5 s wait.
        c += "passdb {\n  driver = static\n  deny = yes\n  args = nodelay=yes\n}\n";
        c += "userdb {\n  driver = passwd-file\n  args = " + users_file +
             "\n  default_fields = uid=" + user + " gid=" + user + " home=" + d +
             "/mail/%d/%n\n}\n";
    } else {
        c += opts.auth_config + "\n";
    }
    const std::string perf =
        opts.performance_login
            ? "  service_count = 0\n  process_min_avail = 2\n  client_limit = 1000\n"
            : "";
    c += "service imap-login {\n  chroot =\n" + listener("imap", imap, false) +
         listener("imaps", imaps, true) + perf + "}\n";
    c += "service pop3-login {\n  chroot =\n" + listener("pop3", pop3, false) +
         listener("pop3s", pop3s, true) + "}\n";
    c += "service submission-login {\n  chroot =\n" + listener("submission", submission, false) +
         "}\n";
    c +=
        "service imap-urlauth-login {\n  chroot =\n}\nservice managesieve-login {\n  chroot =\n}\n";
    // Dovecot delays logins from an address after failures (auth penalty, up to 15 s);
    // tests fail passwords on purpose from 127.0.0.1, so switch it off the documented way.
    c += "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n";
    // LMTP (when asked for) delivers as mail_uid; the recipient is looked up as given.
    c +=
        "service lmtp {\n  inet_listener lmtp {\n    port = " + std::to_string(lmtp) + "\n  }\n}\n";
    c += opts.extra_config + "\n";
    write_file(conf, c, 0644);
}

DovecotServer::DovecotServer(DovecotOptions opts) : state_(nullptr) {
    auto owned = std::make_unique<State>();
    State& s = *owned;
    s.opts = std::move(opts);
    s.as = run_user();
    s.dir = std::make_unique<TempDir>("mailferry-" + s.opts.label);
    const std::string d = s.dir->path();
    chown_to(d, s.as);
    s.conf = d + "/dovecot.conf";
    s.users_file = d + "/users";
    s.log = d + "/dovecot.log";
    std::filesystem::create_directories(d + "/mail");
    chown_to(d + "/mail", s.as);
    std::string users;
    for (const auto& u : s.opts.users) {
        users += user_line(u);
    }
    write_file(s.users_file, users, 0600);
    chown_to(s.users_file, s.as);

    // state_ owns it now. The destructor does not run if we throw: the catch below frees it.
    state_ = owned.release(); // NOLINT(cppcoreguidelines-owning-memory): see the header
    for (int attempt = 1;; ++attempt) {
        s.pick_ports();
        s.write_config();
        try {
            start();
            return;
        } catch (const std::exception& e) {
            const bool port_race =
                std::string(e.what()).find("Address already in use") != std::string::npos;
            if (!port_race || attempt == kStartAttempts) {
                std::unique_ptr<State> cleanup(std::exchange(state_, nullptr));
                try {
                    cleanup->stop_master();
                } catch (...) { // NOLINT(bugprone-empty-catch): already failing
                }
                throw;
            }
            s.stop_master();
        }
    }
}

DovecotServer::~DovecotServer() {
    std::unique_ptr<State> owned(state_);
    if (owned) {
        try {
            stop();
        } catch (...) { // NOLINT(bugprone-empty-catch): never throw from a destructor
        }
    }
}

void DovecotServer::start() {
    State& s = *state_;
    if (running()) {
        return;
    }
    auto r = run({kDovecot, "-c", s.conf}, {}, 30s);
    if (r.exit_code != 0) {
        throw std::runtime_error("dovecot -c " + s.conf + " failed (exit " +
                                 std::to_string(r.exit_code) + "): " + r.err + "\n" + log_tail());
    }
    try {
        s.master = static_cast<pid_t>(std::stol(read_file(s.dir->path() + "/run/master.pid")));
    } catch (const std::exception& e) {
        throw std::runtime_error(std::string("dovecot master.pid unreadable: ") + e.what() + "\n" +
                                 log_tail());
    }
    for (std::uint16_t p : s.ports()) {
        if (p != 0 && !wait_for_port(s.opts.address, p, 15s)) {
            throw std::runtime_error("dovecot did not open port " + std::to_string(p) + "\n" +
                                     log_tail());
        }
    }
}

void DovecotServer::State::stop_master() {
    const pid_t pid = master;
    master = -1;
    if (!process_alive(pid)) {
        return;
    }
    // The daemonized master leads its own process group (setsid) holding every service.
    const bool leads_group = ::getpgid(pid) == pid;
    auto wait_gone = [pid](std::chrono::milliseconds limit) {
        auto deadline = Clock::now() + limit;
        while (process_alive(pid) && Clock::now() < deadline) {
            std::this_thread::sleep_for(5ms);
        }
    };
    ::kill(pid, SIGTERM);
    // After SIGTERM the master waits for idle login processes, which linger for seconds
    // (observed: ~6 s). Tests need no graceful exit: after a short grace, kill the group.
    wait_gone(300ms);
    if (leads_group) {
        ::kill(-pid, SIGKILL);
    } else if (process_alive(pid)) {
        ::kill(pid, SIGKILL);
    }
    wait_gone(10s);
    // A killed master leaves master.pid behind, and our init may be slow to reap it: a
    // zombie with that pid would make the next `dovecot` start refuse ("already running").
    ::unlink((dir->path() + "/run/master.pid").c_str());
    for (std::uint16_t p : ports()) {
        auto until = Clock::now() + 5s;
        while (p != 0 && wait_for_port(opts.address, p, 0ms) && Clock::now() < until) {
            std::this_thread::sleep_for(5ms);
        }
    }
}

void DovecotServer::stop() {
    state_->stop_master();
}

bool DovecotServer::running() const {
    return process_alive(state_->master);
}
const std::string& DovecotServer::address() const {
    return state_->opts.address;
}
std::uint16_t DovecotServer::imap_port() const {
    return state_->imap;
}
std::uint16_t DovecotServer::imaps_port() const {
    return state_->imaps;
}
std::uint16_t DovecotServer::pop3_port() const {
    return state_->pop3;
}
std::uint16_t DovecotServer::pop3s_port() const {
    return state_->pop3s;
}
std::uint16_t DovecotServer::submission_port() const {
    return state_->submission;
}
std::uint16_t DovecotServer::lmtp_port() const {
    return state_->lmtp;
}
const std::string& DovecotServer::ca_file() const {
    return pki().ca;
}
const std::string& DovecotServer::config_path() const {
    return state_->conf;
}
const std::string& DovecotServer::dir() const {
    return state_->dir->path();
}

std::string DovecotServer::mail_dir(const std::string& user) const {
    auto at = user.find('@');
    std::string local = user.substr(0, at);
    std::string domain = at == std::string::npos ? "" : user.substr(at + 1);
    return state_->dir->path() + "/mail/" + domain + "/" + local + "/Maildir";
}

std::string DovecotServer::log_tail(std::size_t lines) const {
    return file_tail(state_->log, lines);
}

void DovecotServer::add_user(const TestUser& user) {
    State& s = *state_;
    std::lock_guard lock(s.users_mutex);
    std::string users = read_file(s.users_file) + user_line(user);
    const std::string tmp = s.users_file + ".new";
    write_file(tmp, users, 0600);
    chown_to(tmp, s.as);
    std::filesystem::rename(tmp, s.users_file);
    // Dovecot stats the passwd-file at most once per second (per auth process), so a lookup
    // in the second of the write may still see the old file. Wait for the next second.
    auto now = std::chrono::system_clock::now();
    std::this_thread::sleep_until(std::chrono::ceil<std::chrono::seconds>(now) + 20ms);
}

int DovecotServer::doveadm(const std::vector<std::string>& args, std::string* out,
                           const std::string& stdin_data) const {
    std::vector<std::string> argv = {kDoveadm, "-c", state_->conf};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv, stdin_data, 120s);
    if (out != nullptr) {
        *out = r.out;
    }
    return r.exit_code;
}

void DovecotServer::save_message(const std::string& user, const std::string& folder,
                                 const std::string& rfc822) const {
    auto doveadm_run = [&](std::vector<std::string> args, const std::string& in = {}) {
        std::vector<std::string> argv = {kDoveadm, "-c", state_->conf};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(argv, in, 120s);
    };
    if (folder != "INBOX") {
        auto created = doveadm_run({"mailbox", "create", "-u", user, folder});
        if (created.exit_code != 0 &&
            doveadm_run({"mailbox", "status", "-u", user, "messages", folder}).exit_code != 0) {
            throw std::runtime_error("doveadm mailbox create -u " + user + " " + folder +
                                     " failed: " + created.err);
        }
    }
    auto saved = doveadm_run({"save", "-u", user, "-m", folder}, rfc822);
    if (saved.exit_code != 0) {
        throw std::runtime_error("doveadm save -u " + user + " -m " + folder + " failed (exit " +
                                 std::to_string(saved.exit_code) + "): " + saved.err);
    }
}

} // namespace mft
