// postfix_server.cpp — starts and stops real, throw-away Postfix instances for tests.
//
// `postfix -c DIR start` runs postfix-script, which creates the queue's directories with
// the right owners (postfix, postdrop) under our queue_directory; the master daemonizes
// and writes queue_directory/pid/master.pid. Postfix logs its own fatal start-up errors
// only to syslog, which a test machine may lack; the mail log (maillog_file, through
// postlogd) holds everything after that.
// Must never: touch /etc/postfix or /var/spool/postfix, leave a master running after the
// object dies, or throw from the destructor.
// Errors: std::runtime_error with the command's output and the tail of the mail log.
#include "support/postfix_server.hpp"

#include "support/test_env.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <memory>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <pwd.h>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/time.h>
#include <thread>
#include <unistd.h>

namespace mft {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kPostfix = "/usr/sbin/postfix";
constexpr const char* kPostqueue = "/usr/sbin/postqueue";

// The services a queue needs to take mail in and hand it on; nothing chrooted, no local
// delivery (mydestination is empty), smtpd only on loopback.
std::string base_master_cf(std::uint16_t port) {
    std::string m = "# written by tests/support/postfix_server.cpp\n";
    m += "127.0.0.1:" + std::to_string(port) + " inet n - n - - smtpd\n";
    m += R"(pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000    0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
)";
    return m;
}

std::string base_main_cf(const std::string& d) {
    std::string c = "# written by tests/support/postfix_server.cpp\n";
    c += "compatibility_level = 3.6\n";
    c += "queue_directory = " + d + "/queue\ndata_directory = " + d + "/data\n";
    c += "mail_owner = postfix\nsetgid_group = postdrop\n";
    c += "inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n";
    c += "myhostname = mx.mailferry.test\nmydomain = mailferry.test\nmydestination =\n";
    c += "mynetworks = 127.0.0.0/8\nalias_maps =\nalias_database =\nbiff = no\n";
    c += "maillog_file = " + d + "/maillog\nmaillog_file_prefixes = " + d + "\n";
    c += "smtputf8_enable = no\nsmtpd_banner = $myhostname ESMTP\n";
    // Tests wait for deliveries: retry deferred mail within seconds, not minutes.
    c += "queue_run_delay = 1s\nminimal_backoff_time = 1s\nmaximal_backoff_time = 2s\n";
    c += "lmtp_connect_timeout = 5s\nsmtp_connect_timeout = 5s\n";
    return c;
}

void must_chown(const std::string& path, const char* user) {
    const passwd* pw = ::getpwnam(user); // NOLINT(concurrency-mt-unsafe): tests, setup only
    if (pw == nullptr) {
        throw std::runtime_error(std::string("no user ") + user + ": is postfix installed?");
    }
    if (::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        throw std::runtime_error("chown(" + path + ") failed: " + std::strerror(errno)); // NOLINT
    }
}

} // namespace

struct PostfixServer::State {
    PostfixOptions opts;
    std::unique_ptr<TempDir> dir;
    std::string etc, queue, log;
    std::uint16_t port = 0;
    pid_t master = -1;

    void stop_master();
};

PostfixServer::PostfixServer(PostfixOptions opts) : state_(nullptr) {
    if (::geteuid() != 0) {
        throw std::runtime_error("PostfixServer needs root (postfix start, postsuper)");
    }
    auto owned = std::make_unique<State>();
    State& s = *owned;
    s.opts = std::move(opts);
    s.dir = std::make_unique<TempDir>("mailferry-" + s.opts.label);
    const std::string d = s.dir->path();
    s.etc = d + "/etc";
    s.queue = d + "/queue";
    s.log = d + "/maillog";
    std::filesystem::create_directories(s.etc);
    std::filesystem::create_directories(s.queue);
    std::filesystem::create_directories(d + "/data");
    must_chown(d + "/data", "postfix");
    s.port = free_port();
    write_file(s.etc + "/main.cf", base_main_cf(d) + s.opts.main_cf_extra + "\n");
    write_file(s.etc + "/master.cf", base_master_cf(s.port) + s.opts.master_cf_extra + "\n");
    state_ = owned.release(); // NOLINT(cppcoreguidelines-owning-memory): see the header
    try {
        start();
    } catch (...) {
        std::unique_ptr<State> cleanup(std::exchange(state_, nullptr));
        cleanup->stop_master();
        throw;
    }
}

PostfixServer::~PostfixServer() {
    std::unique_ptr<State> owned(state_);
    if (owned) {
        try {
            owned->stop_master();
        } catch (...) { // NOLINT(bugprone-empty-catch): never throw from a destructor
        }
    }
}

void PostfixServer::start() {
    State& s = *state_;
    if (running()) {
        return;
    }
    auto r = run({kPostfix, "-c", s.etc, "start"}, {}, 60s);
    if (r.exit_code != 0) {
        throw std::runtime_error("postfix -c " + s.etc + " start failed (exit " +
                                 std::to_string(r.exit_code) + "): " + r.out + r.err +
                                 "\n(fatal start-up errors go to syslog only; run it by hand "
                                 "on a terminal to see them)\n" +
                                 log_tail());
    }
    const std::string pidfile = s.queue + "/pid/master.pid";
    auto end = Clock::now() + 15s;
    while (s.master <= 0 && Clock::now() < end) {
        try {
            s.master = static_cast<pid_t>(std::stol(read_file(pidfile)));
        } catch (const std::exception&) {
            std::this_thread::sleep_for(20ms);
        }
    }
    if (s.master <= 0 || !wait_for_port(s.port, 15s)) {
        throw std::runtime_error("postfix did not start (no master.pid or no smtpd on port " +
                                 std::to_string(s.port) + ")\n" + log_tail());
    }
}

void PostfixServer::State::stop_master() {
    const pid_t pid = std::exchange(master, -1);
    if (!process_alive(pid)) {
        return;
    }
    auto wait_gone = [pid](std::chrono::milliseconds limit) {
        auto deadline = Clock::now() + limit;
        while (process_alive(pid) && Clock::now() < deadline) {
            std::this_thread::sleep_for(10ms);
        }
    };
    // The master takes its children down on SIGTERM; only a stuck one earns SIGKILL.
    ::kill(pid, SIGTERM);
    wait_gone(5s);
    if (process_alive(pid)) {
        if (::getpgid(pid) == pid) {
            ::kill(-pid, SIGKILL);
        } else {
            ::kill(pid, SIGKILL);
        }
        wait_gone(5s);
    }
    ::unlink((queue + "/pid/master.pid").c_str());
    auto until = Clock::now() + 5s;
    while (wait_for_port(port, 0ms) && Clock::now() < until) {
        std::this_thread::sleep_for(10ms);
    }
}

void PostfixServer::stop() {
    state_->stop_master();
}
bool PostfixServer::running() const {
    return process_alive(state_->master);
}
std::uint16_t PostfixServer::smtp_port() const {
    return state_->port;
}
const std::string& PostfixServer::dir() const {
    return state_->dir->path();
}
const std::string& PostfixServer::config_dir() const {
    return state_->etc;
}
const std::string& PostfixServer::queue_dir() const {
    return state_->queue;
}
std::string PostfixServer::log_tail(std::size_t lines) const {
    return file_tail(state_->log, lines);
}
std::string PostfixServer::log() const {
    try {
        return read_file(state_->log);
    } catch (const std::exception&) {
        return {};
    }
}

void PostfixServer::pause_briefly() {
    std::this_thread::sleep_for(100ms);
}

std::vector<QueuedMessage> PostfixServer::queue() const {
    auto r = run({kPostqueue, "-c", state_->etc, "-j"}, {}, 30s);
    if (r.exit_code != 0) {
        throw std::runtime_error("postqueue -j failed (exit " + std::to_string(r.exit_code) +
                                 "): " + r.err + "\n" + log_tail());
    }
    std::vector<QueuedMessage> out;
    std::istringstream lines(r.out);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.empty()) {
            continue;
        }
        auto j = nlohmann::json::parse(line);
        QueuedMessage m;
        m.queue_id = j.value("queue_id", "");
        m.queue_name = j.value("queue_name", "");
        for (const auto& rc : j.value("recipients", nlohmann::json::array())) {
            m.recipients.push_back(rc.value("address", ""));
            m.delay_reasons.push_back(rc.value("delay_reason", ""));
        }
        out.push_back(std::move(m));
    }
    return out;
}

// ---- a small SMTP client ----

namespace {

class SmtpConn {
  public:
    SmtpConn(std::uint16_t port, std::chrono::milliseconds timeout) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        timeval tv{};
        tv.tv_sec = static_cast<long>(timeout.count() / 1000);
        tv.tv_usec = static_cast<long>((timeout.count() % 1000) * 1000);
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0; // NOLINT
    }
    ~SmtpConn() { ::close(fd_); }
    SmtpConn(const SmtpConn&) = delete;
    SmtpConn& operator=(const SmtpConn&) = delete;

    [[nodiscard]] bool connected() const { return ok_; }

    bool send(const std::string& data) {
        std::size_t done = 0;
        while (done < data.size()) {
            ssize_t w = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
            if (w <= 0) {
                return false;
            }
            done += static_cast<std::size_t>(w);
        }
        return true;
    }

    // One reply (all continuation lines); code 0 when the connection failed.
    std::pair<int, std::string> reply() {
        std::string text;
        for (;;) {
            auto lf = buf_.find('\n');
            while (lf == std::string::npos) {
                char chunk[4096]; // NOLINT(modernize-avoid-c-arrays)
                ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
                if (got <= 0) {
                    return {0, text + buf_};
                }
                buf_.append(chunk, static_cast<std::size_t>(got));
                lf = buf_.find('\n');
            }
            std::string line = buf_.substr(0, lf);
            buf_.erase(0, lf + 1);
            if (!line.empty() && line.back() == '\r') {
                line.pop_back();
            }
            text += (text.empty() ? "" : "\n") + line;
            if (line.size() < 4 || line[3] != '-') {
                int code = 0;
                try {
                    code = std::stoi(line.substr(0, 3));
                } catch (const std::exception&) {
                    code = 0;
                }
                return {code, text};
            }
        }
    }

  private:
    int fd_ = -1;
    bool ok_ = false;
    std::string buf_;
};

std::string dot_stuffed(const std::string& body) {
    std::string out;
    std::istringstream in(body);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') {
            line.pop_back();
        }
        if (!line.empty() && line.front() == '.') {
            out += '.';
        }
        out += line + "\r\n";
    }
    return out;
}

} // namespace

SmtpOutcome send_mail(std::uint16_t port, const std::string& from,
                      const std::vector<std::string>& recipients, const std::string& body,
                      std::chrono::milliseconds timeout, const std::function<void()>& before_data) {
    SmtpConn c(port, timeout);
    SmtpOutcome o;
    if (!c.connected()) {
        o.stage = "connect";
        return o;
    }
    auto step = [&](const std::string& stage, const std::string& cmd, int want) {
        if (!cmd.empty() && !c.send(cmd + "\r\n")) {
            o.stage = stage;
            o.code = 0;
            o.reply = "send failed";
            return false;
        }
        auto [code, text] = c.reply();
        o.stage = stage;
        o.code = code;
        o.reply = text;
        return code / 100 == want;
    };
    if (!step("greeting", "", 2) || !step("EHLO", "EHLO client.mailferry.test", 2) ||
        !step("MAIL", "MAIL FROM:<" + from + ">", 2)) {
        return o;
    }
    for (const auto& r : recipients) {
        if (!step("RCPT", "RCPT TO:<" + r + ">", 2)) {
            c.send("QUIT\r\n");
            return o;
        }
    }
    if (before_data) {
        before_data();
    }
    if (!step("DATA", "DATA", 3)) {
        return o;
    }
    if (!step("end", dot_stuffed(body) + ".", 2)) {
        return o;
    }
    o.accepted = true;
    c.send("QUIT\r\n");
    return o;
}

} // namespace mft
