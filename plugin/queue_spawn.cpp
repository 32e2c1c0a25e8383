// queue_spawn.cpp — ensure_worker(): start a detached `mailferry worker` from the login side.
//
// We may be running inside a mail server (libmailferry.so in a multi-threaded auth
// process), so the child is made with a double fork: the first child calls setsid() and
// forks the worker, then exits at once and is reaped here, so the server never sees a
// zombie or a SIGCHLD for a long-lived process. Between fork and exec only
// async-signal-safe calls run; everything they need (argv, envp) is built before fork.
// The worker gets /dev/null on fds 0–2, no other descriptor, and an environment of PATH
// only: nothing of the server's environment, and never a password (it reads its own
// config and the spool).
// Errors: fork/exec trouble is an Error (Retry::later); the caller only logs it.
#include "mailferry/queue.hpp"

#include "file_util.hpp"

#include <cerrno>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace mf::queue {
namespace {

// Async-signal-safe: closes every descriptor from `from` up.
void close_from(int from) {
#ifdef SYS_close_range
    if (::syscall(SYS_close_range, static_cast<unsigned>(from), ~0U, 0U) == 0) {
        return;
    }
#endif
    for (int fd = from; fd < 65536; ++fd) {
        ::close(fd);
    }
}

} // namespace

Result<bool> ensure_worker(const Config& cfg) {
    auto running = worker_running(cfg);
    if (!running) {
        return running.error();
    }
    if (*running) {
        return false;
    }
    const std::string& program = cfg.worker.program;
    if (::access(program.c_str(), X_OK) != 0) {
        return make_error("start a worker: " + program, errno_text(errno) + " (worker.program)",
                          Scope::config);
    }
    // The worker runs in /: a relative config path must be made absolute here.
    std::string config = cfg.source_path;
    if (!config.empty() && config.front() != '/') {
        char cwd[4096];
        if (::getcwd(cwd, sizeof cwd) == nullptr) {
            return make_error("start a worker: getcwd() failed", errno_text(errno), Scope::server,
                              Retry::later);
        }
        config = std::string(cwd) + "/" + config;
    }
    // Everything the children need, built before fork.
    std::vector<std::string> args = {program,       "worker",
                                     "--config",    config,
                                     "--idle-exit", format_duration(cfg.worker.idle_exit),
                                     "--syslog"};
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    std::string path_env = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    char* envp[] = {path_env.data(), nullptr};

    pid_t first = ::fork();
    if (first < 0) {
        return make_error("start a worker: fork() failed", errno_text(errno), Scope::server,
                          Retry::later);
    }
    if (first == 0) {
        ::setsid();
        pid_t second = ::fork();
        if (second != 0) {
            ::_exit(second < 0 ? 1 : 0);
        }
        // The worker. Default signal dispositions and an empty mask: the server's
        // choices (SIGTERM ignored, SIGCHLD handlers) must not leak into it.
        sigset_t none;
        ::sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD}) {
            ::signal(sig, SIG_DFL);
        }
        int null = ::open("/dev/null", O_RDWR);
        if (null < 0) {
            ::_exit(127);
        }
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::dup2(null, 2);
        close_from(3);
        if (::chdir("/") != 0) {
            ::_exit(127);
        }
        ::execve(argv[0], argv.data(), envp);
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(first, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        return make_error("start a worker: fork() failed in the child", {}, Scope::server,
                          Retry::later);
    }
    return true;
}

} // namespace mf::queue
