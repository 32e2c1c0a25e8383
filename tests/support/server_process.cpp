// server_process.cpp — spawns a test server's daemon in its own session and private mount
// namespace, stops its process group, and collects its syslog lines.
//
// Must never: touch a mount outside the child's namespace (the namespace's / is made
// private recursively before any bind), call anything but system calls between fork and
// exec (the test process has threads), or leave a zombie of ours behind.
// Errors: spawn_isolated() throws std::runtime_error with the step and errno the child
// reports through a close-on-exec pipe; SyslogSink throws if its socket cannot be made.
#include "support/server_process.hpp"

#include "support/test_env.hpp"

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <poll.h>
#include <sched.h>
#include <stdexcept>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

namespace mft {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<char*> c_strings(std::vector<std::string>& v) {
    std::vector<char*> out;
    out.reserve(v.size() + 1);
    for (auto& s : v) {
        out.push_back(s.data());
    }
    out.push_back(nullptr);
    return out;
}

// A bind mount needs an existing target of the same kind. Missing ones are created
// empty: /etc/courier and /run/courier/authdaemon exist only where Courier is installed,
// and /dev/log is missing on machines without a syslog daemon. An empty directory or file
// there changes nothing for anyone else (nothing of ours is mounted outside the namespace).
void make_mount_point(const BindMount& b) {
    namespace fs = std::filesystem;
    if (fs::exists(fs::symlink_status(b.onto))) {
        return;
    }
    if (fs::is_directory(b.from)) {
        fs::create_directories(b.onto);
        return;
    }
    fs::create_directories(fs::path(b.onto).parent_path());
    write_file(b.onto, "", 0644);
}

// Child side, after fork: system calls only. Reports "step errno" on `err` and exits.
[[noreturn]] void child_fail(int err, const char* step) {
    int e = errno;
    std::array<char, 64> msg{};
    int n = 0;
    for (const char* p = step; *p != '\0' && n < 40; ++p) {
        msg[static_cast<std::size_t>(n++)] = *p;
    }
    msg[static_cast<std::size_t>(n++)] = ' ';
    std::array<char, 12> digits{};
    int d = 0;
    do {
        digits[static_cast<std::size_t>(d++)] = static_cast<char>('0' + e % 10);
        e /= 10;
    } while (e > 0 && d < 11);
    while (d > 0) {
        msg[static_cast<std::size_t>(n++)] = digits[static_cast<std::size_t>(--d)];
    }
    (void)!::write(err, msg.data(), static_cast<std::size_t>(n));
    ::_exit(127);
}

[[noreturn]] void child_run(const SpawnSpec& spec, char* const* argv, char* const* envp, int err) {
    if (::setsid() < 0) {
        child_fail(err, "setsid");
    }
    if (::unshare(CLONE_NEWNS) != 0) {
        child_fail(err, "unshare(CLONE_NEWNS)");
    }
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        child_fail(err, "mount --make-rprivate /");
    }
    for (const auto& b : spec.binds) {
        if (::mount(b.from.c_str(), b.onto.c_str(), nullptr, MS_BIND, nullptr) != 0) {
            child_fail(err, "mount --bind");
        }
    }
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    int log = ::open(spec.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (null < 0 || log < 0) {
        child_fail(err, "open log");
    }
    if (::dup2(null, 0) < 0 || ::dup2(log, 1) < 0 || ::dup2(log, 2) < 0) {
        child_fail(err, "dup2");
    }
    if (::chdir(spec.cwd.c_str()) != 0) {
        child_fail(err, "chdir");
    }
    ::execve(argv[0], argv, envp);
    child_fail(err, "execve");
}

} // namespace

pid_t spawn_isolated(const SpawnSpec& spec) {
    for (const auto& b : spec.binds) {
        make_mount_point(b);
    }
    auto args = spec.argv;
    auto env = spec.env;
    auto argv = c_strings(args);
    auto envp = c_strings(env);
    std::array<int, 2> pipe_fds{};
    if (::pipe2(pipe_fds.data(), O_CLOEXEC) != 0) {
        throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno)); // NOLINT
    }
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(pipe_fds[0]);
        child_run(spec, argv.data(), envp.data(), pipe_fds[1]);
    }
    ::close(pipe_fds[1]);
    if (pid < 0) {
        ::close(pipe_fds[0]);
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno)); // NOLINT
    }
    std::array<char, 128> buf{};
    ssize_t n = 0;
    do {
        n = ::read(pipe_fds[0], buf.data(), buf.size() - 1);
    } while (n < 0 && errno == EINTR);
    ::close(pipe_fds[0]);
    if (n > 0) { // exec never happened: the child wrote why
        int st = 0;
        ::waitpid(pid, &st, 0);
        std::string what(buf.data(), static_cast<std::size_t>(n));
        auto sp = what.rfind(' ');
        int e = std::stoi(what.substr(sp + 1));
        throw std::runtime_error("starting " + spec.argv[0] + ": " + what.substr(0, sp) +
                                 " failed: " + std::strerror(e)); // NOLINT
    }
    return pid;
}

void stop_group(pid_t leader, std::chrono::milliseconds grace) {
    if (leader <= 0) {
        return;
    }
    int st = 0;
    bool reaped = ::waitpid(leader, &st, WNOHANG) == leader;
    if (!reaped) {
        ::kill(-leader, SIGTERM);
        auto deadline = Clock::now() + grace;
        while (!reaped && Clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            reaped = ::waitpid(leader, &st, WNOHANG) == leader;
        }
    }
    ::kill(-leader, SIGKILL); // what is left of the group: children, a daemonized master
    if (!reaped) {
        ::waitpid(leader, &st, 0);
    }
}

SyslogSink::SyslogSink(const std::string& socket_path, std::string log_path)
    : log_(std::move(log_path)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof addr.sun_path) {
        throw std::runtime_error("syslog socket path too long: " + socket_path);
    }
    std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ::unlink(socket_path.c_str());
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) { // NOLINT
        int e = errno;
        if (fd_ >= 0) {
            ::close(fd_);
        }
        throw std::runtime_error("syslog socket " + socket_path + ": " +
                                 std::strerror(e)); // NOLINT
    }
    ::chmod(socket_path.c_str(), 0666); // the server logs after dropping root
    write_file(log_, "", 0644);
    thread_ = std::jthread([this](const std::stop_token& stop) { drain(stop); });
}

SyslogSink::~SyslogSink() {
    thread_.request_stop();
    if (thread_.joinable()) {
        thread_.join();
    }
    ::close(fd_);
}

void SyslogSink::drain(const std::stop_token& stop) const {
    int out = ::open(log_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    std::array<char, 8192> buf{};
    // Polled with a short timeout so the destructor's stop request ends the loop.
    while (!stop.stop_requested()) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) != 1) {
            continue;
        }
        ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
        if (n <= 0) {
            continue;
        }
        std::string line(buf.data(), static_cast<std::size_t>(n));
        if (!line.empty() && line[0] == '<') { // "<priority>"
            line.erase(0, line.find('>') + 1);
        }
        while (!line.empty() && (line.back() == '\n' || line.back() == '\0')) {
            line.pop_back();
        }
        line += '\n';
        (void)!::write(out, line.data(), line.size());
    }
    ::close(out);
}

} // namespace mft
