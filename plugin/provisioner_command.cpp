// provisioner_command.cpp — the "command" provisioner: the admin's program creates the account.
//
// Runs cfg.command with the canonical user appended to its argv, writes the password and
// "\n" to its stdin and closes it. The child gets a clean environment (PATH and
// MAILFERRY_USER only), "/" as working directory, default signal dispositions, no
// descriptors of ours beyond 0-2, and a process group of its own, so a timeout kills it
// and everything it started. Exit 0 means the account exists now.
//
// Must never: put the password in argv or the environment (both are readable by other
// users in /proc); echo what the program wrote back if it contains the password; raise
// SIGPIPE in the host process when the program does not read its stdin (stdin is a
// socket written with MSG_NOSIGNAL); wait longer than cfg.timeout.
//
// Errors (all Retry::later): program not found or not executable, spawn failure, exit
// status other than 0 (with the first line of its stderr, sanitized), death by signal,
// timeout (the process group is killed).
#include "provisioner_impl.hpp"

#include "file_util.hpp"

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace mf::prov {
namespace {

// The child's whole PATH: the host's PATH is not ours to pass on.
constexpr const char* kChildPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr std::size_t kStderrKeep = 4096;

using Clock = std::chrono::steady_clock;

class Fd {
  public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    [[nodiscard]] int get() const { return fd_; }
    [[nodiscard]] bool open() const { return fd_ >= 0; }
    void reset() {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }

  private:
    int fd_;
};

class SpawnActions {
  public:
    SpawnActions() { ::posix_spawn_file_actions_init(&fa_); }
    ~SpawnActions() { ::posix_spawn_file_actions_destroy(&fa_); }
    SpawnActions(const SpawnActions&) = delete;
    SpawnActions& operator=(const SpawnActions&) = delete;
    posix_spawn_file_actions_t* get() { return &fa_; }

  private:
    posix_spawn_file_actions_t fa_{};
};

class SpawnAttr {
  public:
    SpawnAttr() { ::posix_spawnattr_init(&attr_); }
    ~SpawnAttr() { ::posix_spawnattr_destroy(&attr_); }
    SpawnAttr(const SpawnAttr&) = delete;
    SpawnAttr& operator=(const SpawnAttr&) = delete;
    posix_spawnattr_t* get() { return &attr_; }

  private:
    posix_spawnattr_t attr_{};
};

// Finds the program the way a shell would, but in kChildPath only. "" with *why set when
// it cannot be run.
std::string resolve_program(const std::string& name, std::string* why) {
    auto check = [why](const std::string& path) {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) {
            *why = errno_text(errno);
            return false;
        }
        if (!S_ISREG(st.st_mode)) {
            *why = "not a regular file";
            return false;
        }
        if (::access(path.c_str(), X_OK) != 0) {
            *why = "not executable: " + errno_text(errno);
            return false;
        }
        return true;
    };
    if (name.find('/') != std::string::npos) {
        return check(name) ? name : std::string{};
    }
    std::string_view dirs(kChildPath);
    std::string first_why;
    while (!dirs.empty()) {
        auto colon = dirs.find(':');
        std::string candidate = std::string(dirs.substr(0, colon)) + "/" + name;
        dirs = colon == std::string_view::npos ? std::string_view{} : dirs.substr(colon + 1);
        if (check(candidate)) {
            return candidate;
        }
        if (first_why.empty() || *why != errno_text(ENOENT)) {
            first_why = *why; // remember a more telling reason than "not found"
        }
    }
    *why = first_why + " (searched " + kChildPath + ")";
    return {};
}

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return left.count() <= 0 ? 0 : static_cast<int>(std::min<long long>(left.count(), 60000));
}

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); // close-on-exec already
#else
    (void)pid;
    return -1;
#endif
}

class CommandProvisioner final : public Provisioner {
  public:
    explicit CommandProvisioner(const ProvisionerConfig& cfg)
        : argv_(cfg.command), timeout_(cfg.timeout) {}

    Result<void> provision(const ProvisionRequest& req) override {
        const std::string& user = req.identity.canonical;
        const std::string what =
            "provision " + sanitize_reply(user, 64) + ": command " + sanitize_reply(argv_[0], 200);
        std::string why;
        std::string program = resolve_program(argv_[0], &why);
        if (program.empty()) {
            return fail(what, "cannot run it: " + why, Scope::config);
        }

        // stdin: a socket, so that writing to a program that never reads it gives EPIPE
        // with MSG_NOSIGNAL instead of a SIGPIPE in the host (a mail server).
        std::array<int, 2> sv{-1, -1};
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv.data()) != 0) {
            return fail(what, "socketpair failed: " + errno_text(errno));
        }
        Fd in_parent(sv[0]);
        Fd in_child(sv[1]);
        std::array<int, 2> ep{-1, -1};
        if (::pipe2(ep.data(), O_CLOEXEC) != 0) {
            return fail(what, "pipe2 failed: " + errno_text(errno));
        }
        Fd err_parent(ep[0]);
        Fd err_child(ep[1]);

        SpawnActions fa;
        SpawnAttr attr;
        if (int rc = setup_spawn(fa, attr, in_child.get(), err_child.get()); rc != 0) {
            return fail(what, "posix_spawn setup failed: " + errno_text(rc));
        }

        std::vector<std::string> args = argv_;
        args.push_back(user);
        std::vector<char*> cargv;
        cargv.reserve(args.size() + 1);
        for (auto& a : args) {
            cargv.push_back(a.data());
        }
        cargv.push_back(nullptr);
        std::string env_path = std::string("PATH=") + kChildPath;
        std::string env_user = "MAILFERRY_USER=" + user;
        std::array<char*, 3> cenv{env_path.data(), env_user.data(), nullptr};

        pid_t pid = -1;
        if (int rc = ::posix_spawn(&pid, program.c_str(), fa.get(), attr.get(), cargv.data(),
                                   cenv.data());
            rc != 0) {
            return fail(what, "cannot run " + program + ": " + errno_text(rc), Scope::config);
        }
        in_child.reset();
        err_child.reset();
        return supervise(pid, in_parent, err_parent, req.password, what);
    }

    [[nodiscard]] const char* name() const override { return "command"; }

  private:
    static int setup_spawn(SpawnActions& fa, SpawnAttr& attr, int in_fd, int err_fd) {
        int rc = 0;
        if ((rc = ::posix_spawn_file_actions_adddup2(fa.get(), in_fd, 0)) != 0 ||
            (rc = ::posix_spawn_file_actions_addopen(fa.get(), 1, "/dev/null", O_WRONLY, 0)) != 0 ||
            (rc = ::posix_spawn_file_actions_adddup2(fa.get(), err_fd, 2)) != 0 ||
            // Descriptors the host opened without O_CLOEXEC stay with the host.
            (rc = ::posix_spawn_file_actions_addclosefrom_np(fa.get(), 3)) != 0 ||
            (rc = ::posix_spawn_file_actions_addchdir_np(fa.get(), "/")) != 0) {
            return rc;
        }
        sigset_t none;
        sigset_t all;
        sigemptyset(&none);
        sigfillset(&all);
        // Own process group (to kill it whole), no blocked signals, default dispositions
        // (a mail server may ignore SIGPIPE or SIGCHLD; the admin's script should not).
        if ((rc = ::posix_spawnattr_setflags(attr.get(), POSIX_SPAWN_SETPGROUP |
                                                             POSIX_SPAWN_SETSIGMASK |
                                                             POSIX_SPAWN_SETSIGDEF)) != 0 ||
            (rc = ::posix_spawnattr_setpgroup(attr.get(), 0)) != 0 ||
            (rc = ::posix_spawnattr_setsigmask(attr.get(), &none)) != 0 ||
            (rc = ::posix_spawnattr_setsigdefault(attr.get(), &all)) != 0) {
            return rc;
        }
        return 0;
    }

    // Feeds stdin, collects stderr, waits for the exit, enforces the deadline.
    Result<void> supervise(pid_t pid, Fd& in, Fd& err, const Secret& password,
                           const std::string& what) const {
        const auto deadline = Clock::now() + timeout_;
        Fd pidfd(open_pidfd(pid));
        ::fcntl(in.get(), F_SETFL, O_NONBLOCK);
        ::fcntl(err.get(), F_SETFL, O_NONBLOCK);

        const std::size_t total = password.size() + 1; // the password, then "\n"
        std::size_t sent = 0;
        std::string errbuf;
        bool exited = false;
        int status = 0;

        auto reap = [&](int flags) {
            pid_t r;
            do {
                r = ::waitpid(pid, &status, flags);
            } while (r < 0 && errno == EINTR);
            return r;
        };

        while (!exited) {
            std::array<pollfd, 3> pfd{};
            nfds_t n = 0;
            if (in.open()) {
                pfd[n++] = {in.get(), POLLOUT, 0};
            }
            int err_slot = -1;
            if (err.open()) {
                err_slot = static_cast<int>(n);
                pfd[n++] = {err.get(), POLLIN, 0};
            }
            if (pidfd.open()) {
                pfd[n++] = {pidfd.get(), POLLIN, 0};
            }
            int wait_ms = remaining_ms(deadline);
            if (!pidfd.open()) {
                wait_ms = std::min(wait_ms, 10); // no pidfd: look at the child now and then
            }
            int pr = ::poll(pfd.data(), n, wait_ms);
            if (pr < 0 && errno != EINTR) {
                int e = errno;
                kill_and_reap(pid);
                return fail(what, "poll failed: " + errno_text(e));
            }
            if (in.open() && pr > 0 && pfd[0].revents != 0) {
                send_password(in, password, sent, total);
            }
            if (err_slot >= 0 && pr > 0 && pfd[static_cast<std::size_t>(err_slot)].revents != 0) {
                drain(err, errbuf);
            }
            pid_t r = reap(WNOHANG);
            if (r == pid) {
                exited = true;
            } else if (r < 0) {
                // Someone else reaped it (SIGCHLD ignored or a host's waitpid(-1)).
                return fail(what, "lost track of process " + std::to_string(pid) + ": " +
                                      errno_text(errno));
            } else if (Clock::now() >= deadline) {
                kill_and_reap(pid);
                wipe(errbuf.data(), errbuf.size());
                return fail(what, "timed out after " + std::to_string(timeout_.count()) +
                                      " ms; process group " + std::to_string(pid) + " killed");
            }
        }
        if (err.open()) {
            drain(err, errbuf); // what it wrote just before exiting; never wait for more
        }
        std::string line = first_line_for_error(errbuf, password.view());
        wipe(errbuf.data(), errbuf.size());

        if (WIFEXITED(status)) {
            int code = WEXITSTATUS(status);
            if (code == 0) {
                return {};
            }
            return fail(what, "exited with status " + std::to_string(code) +
                                  (line.empty() ? std::string{} : ": " + line));
        }
        if (WIFSIGNALED(status)) {
            return fail(what, "killed by signal " + std::to_string(WTERMSIG(status)) +
                                  (line.empty() ? std::string{} : ": " + line));
        }
        return fail(what, "ended with wait status " + std::to_string(status));
    }

    // One non-blocking step of writing password + "\n"; closes stdin when done or when the
    // program has closed its end (then its exit status decides).
    static void send_password(Fd& in, const Secret& password, std::size_t& sent,
                              std::size_t total) {
        static constexpr char kNewline = '\n';
        while (sent < total) {
            std::array<iovec, 2> iov{};
            std::size_t cnt = 0;
            if (sent < password.size()) {
                iov[cnt++] = {const_cast<char*>(password.data() + sent), // NOLINT: sendmsg API
                              password.size() - sent};
            }
            iov[cnt++] = {const_cast<char*>(&kNewline), 1}; // NOLINT: sendmsg API
            msghdr msg{};
            msg.msg_iov = iov.data();
            msg.msg_iovlen = cnt;
            ssize_t w = ::sendmsg(in.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0) {
                if (errno == EINTR) {
                    continue;
                }
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    return;
                }
                in.reset(); // EPIPE, ECONNRESET: it does not want more
                return;
            }
            sent += static_cast<std::size_t>(w);
        }
        ::shutdown(in.get(), SHUT_WR);
        in.reset();
    }

    // Reads what is there; keeps the first kStderrKeep bytes; closes at EOF.
    static void drain(Fd& err, std::string& keep) {
        char buf[4096];
        for (;;) {
            ssize_t r = ::read(err.get(), buf, sizeof buf);
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r == 0) {
                err.reset();
                break;
            }
            if (r < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK) {
                    err.reset();
                }
                break;
            }
            std::size_t room = kStderrKeep - std::min(keep.size(), kStderrKeep);
            keep.append(buf, std::min(room, static_cast<std::size_t>(r)));
        }
        wipe(buf, sizeof buf); // it may have echoed the password
    }

    static void kill_and_reap(pid_t pid) {
        // Still our unreaped child, so the group id cannot have been reused yet.
        ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }

    std::vector<std::string> argv_;
    Millis timeout_;
};

} // namespace

Result<std::unique_ptr<Provisioner>> make_command(const ProvisionerConfig& cfg) {
    if (cfg.command.empty() || cfg.command.front().empty()) {
        return config_error("provisioner.command",
                            "required for the command provisioner: the program and its "
                            "arguments (the user is appended, the password comes on stdin)");
    }
    if (cfg.timeout.count() <= 0) {
        return config_error("provisioner.timeout", "must be positive");
    }
    return std::unique_ptr<Provisioner>(std::make_unique<CommandProvisioner>(cfg));
}

} // namespace mf::prov
