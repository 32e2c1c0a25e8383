// test_env.cpp — temp dirs, free ports, child processes and a silent peer for tests.
//
// run() is fork/exec with one poll() loop over stdin, stdout and stderr, so a child that
// writes megabytes while we still feed it cannot deadlock us; it kills the child's whole
// process group at the deadline. Nothing here ever passes data through a shell.
// Must never: leave a child unreaped, leak a descriptor into a child (everything is
// O_CLOEXEC), or let SIGPIPE from a dead child kill the test.
// Errors: setup failures (mkdtemp, socket, pipe, fork) throw std::runtime_error naming the
// call and errno; a program that cannot be executed exits 127 like a shell would.
#include "support/test_env.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <utility>

#include <boost/filesystem.hpp>

extern char** environ; // NOLINT: POSIX

namespace mft {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail_errno(const std::string& what) {
    int err = errno;
    throw std::runtime_error(what +
                             " failed: " + std::strerror(err)); // NOLINT(concurrency-mt-unsafe)
}

class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    [[nodiscard]] int get() const { return fd_; }
    [[nodiscard]] bool valid() const { return fd_ >= 0; }
    void reset() {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }

  private:
    int fd_ = -1;
};

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

std::uint16_t bound_port(int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) { // NOLINT
        fail_errno("getsockname");
    }
    return ntohs(a.sin_port);
}

// A child writing into a pipe we closed must not take the test down with SIGPIPE. The
// child gets the default disposition back before exec.
void ignore_sigpipe_once() {
    static std::once_flag once;
    std::call_once(once, [] { ::signal(SIGPIPE, SIG_IGN); });
}

std::vector<std::string> child_environment(const std::map<std::string, std::string>& extra) {
    std::vector<std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        std::string entry(*e);
        std::string key = entry.substr(0, entry.find('='));
        if (extra.count(key) == 0) {
            env.push_back(std::move(entry));
        }
    }
    for (const auto& [k, v] : extra) {
        env.push_back(k + "=" + v);
    }
    return env;
}

std::vector<char*> c_array(std::vector<std::string>& strings) {
    std::vector<char*> out;
    out.reserve(strings.size() + 1);
    for (auto& s : strings) {
        out.push_back(s.data());
    }
    out.push_back(nullptr);
    return out;
}

int decode_status(int status) {
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return -1;
}

} // namespace

TempDir::TempDir(const std::string& prefix) {
    // $TMPDIR lets a benchmark put its servers on a file system of its choosing; unix
    // socket paths below it must stay short, so a relative or long value is ignored.
    const char* env = std::getenv("TMPDIR");
    std::string base = env != nullptr && env[0] == '/' && std::strlen(env) <= 32 ? env : "/tmp";
    std::string tmpl = base + "/" + prefix + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
        fail_errno("mkdtemp(" + tmpl + ")");
    }
    // mkdtemp makes it 0700; servers running as mfvmail must be able to traverse it.
    if (::chmod(tmpl.c_str(), 0755) != 0) {
        fail_errno("chmod(" + tmpl + ")");
    }
    path_ = tmpl;
}

TempDir::~TempDir() {
    boost::system::error_code ec;
    boost::filesystem::remove_all(path_, ec); // best effort: a destructor must not throw
}

std::uint16_t free_port() {
    Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s.valid()) {
        fail_errno("socket");
    }
    sockaddr_in a = loopback(0);
    if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) { // NOLINT
        fail_errno("bind(127.0.0.1:0)");
    }
    return bound_port(s.get());
}

bool wait_for_port(std::uint16_t port, std::chrono::milliseconds wait) {
    return wait_for_port("127.0.0.1", port, wait);
}

bool wait_for_port(const std::string& address, std::uint16_t port, std::chrono::milliseconds wait) {
    sockaddr_in a = loopback(port);
    if (::inet_pton(AF_INET, address.c_str(), &a.sin_addr) != 1) {
        throw std::invalid_argument("wait_for_port: not an IPv4 address: " + address);
    }
    auto deadline = Clock::now() + wait;
    for (;;) {
        Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!s.valid()) {
            fail_errno("socket");
        }
        if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) { // NOLINT
            return true;
        }
        if (Clock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

RunResult run(const std::vector<std::string>& argv, const std::string& stdin_data,
              std::chrono::milliseconds timeout,
              const std::map<std::string, std::string>& extra_env) {
    if (argv.empty()) {
        throw std::invalid_argument("run: empty argv");
    }
    ignore_sigpipe_once();

    std::array<int, 2> in{-1, -1};
    std::array<int, 2> out{-1, -1};
    std::array<int, 2> err{-1, -1};
    if (::pipe2(in.data(), O_CLOEXEC) != 0) {
        fail_errno("pipe2");
    }
    Fd in_r(in[0]);
    Fd in_w(in[1]);
    if (::pipe2(out.data(), O_CLOEXEC) != 0) {
        fail_errno("pipe2");
    }
    Fd out_r(out[0]);
    Fd out_w(out[1]);
    if (::pipe2(err.data(), O_CLOEXEC) != 0) {
        fail_errno("pipe2");
    }
    Fd err_r(err[0]);
    Fd err_w(err[1]);

    // Everything the child needs is prepared before fork: only async-signal-safe calls
    // happen between fork and exec.
    std::vector<std::string> args = argv;
    std::vector<char*> c_args = c_array(args);
    std::vector<std::string> env = child_environment(extra_env);
    std::vector<char*> c_env = c_array(env);

    pid_t pid = ::fork();
    if (pid < 0) {
        fail_errno("fork");
    }
    if (pid == 0) {
        ::setpgid(0, 0); // so a timeout can kill grandchildren too
        ::signal(SIGPIPE, SIG_DFL);
        if (::dup2(in_r.get(), 0) < 0 || ::dup2(out_w.get(), 1) < 0 || ::dup2(err_w.get(), 2) < 0) {
            ::_exit(127);
        }
        ::execvpe(c_args[0], c_args.data(), c_env.data());
        ::_exit(127);
    }
    in_r.reset();
    out_w.reset();
    err_w.reset();
    for (int fd : {in_w.get(), out_r.get(), err_r.get()}) {
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
    if (stdin_data.empty()) {
        in_w.reset();
    }

    RunResult result;
    std::size_t written = 0;
    auto deadline = Clock::now() + timeout;
    bool timed_out = false;
    bool reaped = false;
    int status = 0;
    // After the child exits, a daemon it started may still hold our pipes open (dovecot
    // forks into the background). Stop reading once the child is gone and the pipes have
    // been quiet for a moment.
    Clock::time_point quiet_since{};

    std::array<char, 65536> buf{};
    while (out_r.valid() || err_r.valid() || in_w.valid()) {
        std::array<pollfd, 3> pfds{};
        nfds_t n = 0;
        std::array<Fd*, 3> owners{};
        if (in_w.valid()) {
            pfds[n] = {in_w.get(), POLLOUT, 0};
            owners[n++] = &in_w;
        }
        if (out_r.valid()) {
            pfds[n] = {out_r.get(), POLLIN, 0};
            owners[n++] = &out_r;
        }
        if (err_r.valid()) {
            pfds[n] = {err_r.get(), POLLIN, 0};
            owners[n++] = &err_r;
        }
        auto now = Clock::now();
        if (now >= deadline) {
            timed_out = true;
            break;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
        int wait_ms = static_cast<int>(std::min<long long>(left, 50));
        int rc = ::poll(pfds.data(), n, wait_ms);
        if (rc < 0 && errno != EINTR) {
            fail_errno("poll");
        }
        bool activity = false;
        for (nfds_t i = 0; rc > 0 && i < n; ++i) {
            if (pfds[i].revents == 0) {
                continue;
            }
            activity = true;
            Fd& fd = *owners[i];
            if (&fd == &in_w) {
                ssize_t w =
                    ::write(fd.get(), stdin_data.data() + written, stdin_data.size() - written);
                if (w > 0) {
                    written += static_cast<std::size_t>(w);
                }
                if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == stdin_data.size()) {
                    fd.reset(); // done, or the child stopped reading (EPIPE)
                }
                continue;
            }
            ssize_t r = ::read(fd.get(), buf.data(), buf.size());
            if (r > 0) {
                (&fd == &out_r ? result.out : result.err)
                    .append(buf.data(), static_cast<std::size_t>(r));
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                fd.reset();
            }
        }
        if (!reaped) {
            pid_t w = ::waitpid(pid, &status, WNOHANG);
            if (w == pid) {
                reaped = true;
                quiet_since = Clock::now();
                in_w.reset();
            }
        } else if (activity) {
            quiet_since = Clock::now();
        } else if (Clock::now() - quiet_since > std::chrono::milliseconds(200)) {
            break;
        }
    }

    if (!reaped) {
        while (!timed_out) {
            pid_t w = ::waitpid(pid, &status, WNOHANG);
            if (w == pid) {
                reaped = true;
                break;
            }
            if (Clock::now() >= deadline) {
                timed_out = true;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        if (timed_out) {
            ::kill(-pid, SIGKILL);
            ::kill(pid, SIGKILL);
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
        }
    }
    result.exit_code = decode_status(status);
    if (timed_out) {
        result.err += "\n[mft::run: killed after timeout]\n";
    }
    return result;
}

void write_file(const std::string& path, const std::string& content, unsigned mode) {
    Fd f(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (!f.valid()) {
        fail_errno("open(" + path + ")");
    }
    if (::fchmod(f.get(), mode) != 0) { // the umask must not change what the test asked for
        fail_errno("fchmod(" + path + ")");
    }
    std::size_t done = 0;
    while (done < content.size()) {
        ssize_t w = ::write(f.get(), content.data() + done, content.size() - done);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            fail_errno("write(" + path + ")");
        }
        done += static_cast<std::size_t>(w);
    }
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot open " + path);
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string file_tail(const std::string& path, std::size_t lines) {
    std::string text;
    try {
        text = read_file(path);
    } catch (const std::exception&) {
        return "(no log at " + path + ")";
    }
    std::size_t pos = text.size();
    if (pos > 0 && text[pos - 1] == '\n') {
        --pos;
    }
    for (std::size_t n = 0; n < lines && pos > 0; ++n) {
        auto nl = text.rfind('\n', pos - 1);
        pos = nl == std::string::npos ? 0 : nl;
    }
    return text.substr(pos);
}

RunAs run_user() {
    constexpr const char* kRunUser = "mfvmail";
    passwd pw{};
    passwd* found = nullptr;
    std::array<char, 4096> buf{};
    if (::getpwnam_r(kRunUser, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
        throw std::runtime_error(std::string("user ") + kRunUser +
                                 " is missing: run ./setup.sh deps (as root) first");
    }
    return {pw.pw_uid, pw.pw_gid};
}

bool process_alive(int pid) {
    if (pid <= 0 || (::kill(pid, 0) != 0 && errno != EPERM)) {
        return false;
    }
    std::string stat;
    try {
        stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    } catch (const std::exception&) {
        return false;
    }
    auto paren = stat.rfind(')');
    return paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'Z';
}

SilentServer::SilentServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
        fail_errno("socket");
    }
    sockaddr_in a = loopback(0);
    // The kernel completes handshakes into the backlog without accept(): a client sees an
    // open port that never says a word.
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || // NOLINT
        ::listen(fd_, 128) != 0) {
        int e = errno;
        ::close(fd_);
        errno = e;
        fail_errno("bind/listen(127.0.0.1:0)");
    }
    port_ = bound_port(fd_);
}

SilentServer::~SilentServer() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

std::string program_path(const std::string& subdir, const std::string& name) {
    return std::string(MF_BINARY_DIR) + "/" + subdir + "/" + name;
}

} // namespace mft
