// faces_harden_test.cpp — every program that holds a password runs with core dumps off.
//
// Runs the real binaries (mailferry-checkpassword, mailferry-cgpauth, mailferry,
// mailferry-copy) as the user nobody, each blocked on its input (a FIFO as the config or
// password file, a held pipe as fd 3 / stdin), and looks at them from outside:
//   - /proc/PID/limits: "Max core file size" must be 0;
//   - /proc/PID/status: the kernel hands a non-dumpable process's /proc files to root, so
//     a process running as nobody whose status file is still nobody's is dumpable.
// Must never leave a child behind: every one is killed and reaped.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "support/test_env.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <grp.h>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using namespace std::chrono_literals;

constexpr uid_t kNobody = 65534;

// A scratch directory nobody can enter, holding a FIFO nobody may open. Opening a FIFO
// blocks until a writer comes, which never does: the program waits there for us.
struct Fifo {
    std::string dir;
    std::string path;
    Fifo() {
        char tmpl[] = "/tmp/mf-harden-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        REQUIRE(::chmod(dir.c_str(), 0755) == 0);
        path = dir + "/input";
        REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
        REQUIRE(::chown(path.c_str(), kNobody, kNobody) == 0);
    }
    ~Fifo() {
        ::unlink(path.c_str());
        ::rmdir(dir.c_str());
    }
    Fifo(const Fifo&) = delete;
    Fifo& operator=(const Fifo&) = delete;
};

// The child: as nobody, with a pipe we hold as stdin and fd 3 (never any EOF).
pid_t start_as_nobody(const std::vector<std::string>& args, int hold_fd) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // Only async-signal-safe calls from here to execve: the test may have threads.
        // A core size the program must lower itself (a shell's default may be 0 already).
        struct rlimit core {};
        if (::getrlimit(RLIMIT_CORE, &core) == 0 && core.rlim_max != 0) {
            core.rlim_cur = core.rlim_max;
            ::setrlimit(RLIMIT_CORE, &core);
        }
        ::dup2(hold_fd, 0);
        ::dup2(hold_fd, 3);
        int devnull = ::open("/dev/null", O_WRONLY);
        ::dup2(devnull, 1);
        ::dup2(devnull, 2);
        if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) {
            ::_exit(126);
        }
        std::vector<char*> argv;
        for (const auto& a : args) {
            argv.push_back(const_cast<char*>(a.c_str()));
        }
        argv.push_back(nullptr);
        char* envp[] = {nullptr};
        ::execve(argv[0], argv.data(), envp);
        ::_exit(127);
    }
    return pid;
}

std::string core_limit_line(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("Max core file size", 0) == 0) {
            return line;
        }
    }
    return "";
}

bool core_limit_zero(const std::string& line) {
    if (line.empty()) {
        return false;
    }
    std::istringstream words(line.substr(std::string("Max core file size").size()));
    std::string soft;
    std::string hard;
    words >> soft >> hard;
    return soft == "0";
}

// Waits (at most 5 s) for the program to have hardened itself, then reports what it saw.
void check_hardened(const std::vector<std::string>& args) {
    int hold[2];
    REQUIRE(::pipe(hold) == 0);
    pid_t pid = start_as_nobody(args, hold[0]);
    ::close(hold[0]);
    std::string proc = "/proc/" + std::to_string(pid);
    std::string limit;
    uid_t owner = kNobody;
    bool exited = false;
    for (auto until = std::chrono::steady_clock::now() + 5s;
         std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(20ms)) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            exited = true;
            break;
        }
        struct stat st {};
        std::string exe(256, '\0');
        ssize_t n = ::readlink((proc + "/exe").c_str(), exe.data(), exe.size());
        if (n <= 0 || exe.substr(0, static_cast<std::size_t>(n)) != args[0] ||
            ::stat((proc + "/status").c_str(), &st) != 0) {
            continue; // still the forked test, not yet the program
        }
        owner = st.st_uid;
        limit = core_limit_line(pid);
        if (owner == 0 && core_limit_zero(limit)) {
            break;
        }
    }
    if (!exited) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
    ::close(hold[1]);
    INFO("program: " << args[0]);
    CHECK_FALSE(exited); // it must still be waiting for its input, else we saw nothing
    CHECK_MESSAGE(core_limit_zero(limit), "core limit: " << limit);
    CHECK_MESSAGE(owner == 0, "/proc/PID owned by uid " << owner << ": still dumpable");
}

bool can_become_nobody() {
    return ::geteuid() == 0;
}

} // namespace

TEST_CASE("mailferry-checkpassword runs non-dumpable with no core size") {
    if (!can_become_nobody()) {
        MESSAGE("skipped: needs root to run the program as nobody");
        return;
    }
    Fifo fifo;
    check_hardened({mft::program_path("external-auth", "mailferry-checkpassword"), "--config",
                    fifo.path, "/bin/true"});
}

TEST_CASE("mailferry-cgpauth runs non-dumpable with no core size") {
    if (!can_become_nobody()) {
        MESSAGE("skipped: needs root to run the program as nobody");
        return;
    }
    Fifo fifo;
    check_hardened(
        {mft::program_path("external-auth", "mailferry-cgpauth"), "--config", fifo.path});
}

TEST_CASE("mailferry (admin CLI, worker) runs non-dumpable with no core size") {
    if (!can_become_nobody()) {
        MESSAGE("skipped: needs root to run the program as nobody");
        return;
    }
    Fifo fifo;
    check_hardened({mft::program_path("external-auth", "mailferry"), "--config", fifo.path,
                    "worker", "--once"});
}

TEST_CASE("mailferry-copy runs non-dumpable with no core size") {
    if (!can_become_nobody()) {
        MESSAGE("skipped: needs root to run the program as nobody");
        return;
    }
    Fifo fifo;
    check_hardened({mft::program_path("copier", "mailferry-copy"), "--from",
                    "imap+plain://anna@127.0.0.1:9", "--from-password-file", fifo.path, "--to",
                    "imap+plain://anna@127.0.0.1:9", "--to-password-file", fifo.path, "--state",
                    fifo.dir + "/state.db"});
}
