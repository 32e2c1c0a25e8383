// server_process.hpp — daemons of test servers (Cyrus, Courier) run in their own session and
// a private mount namespace, and a /dev/log stand-in that keeps their syslog lines.
//
// Both servers read some paths compiled into them (Courier: /etc/courier/authdaemonrc,
// userdb.dat and /run/courier/authdaemon/socket; Cyrus: syslog through /dev/log). A bind
// mount that only the server's processes see points those paths into the test's own temp
// dir, so parallel tests and a system install never meet. Needs root (CAP_SYS_ADMIN).
// Must never: change a mount outside the child's namespace; leave a spawned group running
// after stop_group(); throw from a destructor.
#pragma once

#include <chrono>
#include <stop_token>
#include <string>
#include <sys/types.h>
#include <thread>
#include <vector>

namespace mft {

struct BindMount {
    std::string from; // our file or directory
    std::string onto; // the path the server reads; created empty if missing (see .cpp)
};

struct SpawnSpec {
    std::vector<std::string> argv; // argv[0] is the absolute path executed
    std::vector<std::string> env;  // the whole environment, "NAME=value"
    std::vector<BindMount> binds;  // made in the child's private mount namespace
    std::string log;               // stdout and stderr are appended here
    std::string cwd = "/";
};

// Forks, starts a new session (the child leads its process group), makes a private mount
// namespace with `binds`, and execs. Throws std::runtime_error naming the failed step.
pid_t spawn_isolated(const SpawnSpec& spec);

// SIGTERM to the group led by `leader` (our child), up to `grace` for it to exit, then
// SIGKILL to the whole group; reaps the leader. Safe to call on an already dead leader.
void stop_group(pid_t leader, std::chrono::milliseconds grace);

// A datagram socket at `socket_path` (bind it onto /dev/log) whose messages a thread
// appends, one per line and without the <priority> prefix, to `log_path`.
class SyslogSink {
  public:
    SyslogSink(const std::string& socket_path, std::string log_path);
    ~SyslogSink();
    SyslogSink(const SyslogSink&) = delete;
    SyslogSink& operator=(const SyslogSink&) = delete;

  private:
    void drain(const std::stop_token& stop) const;
    int fd_ = -1;
    std::string log_;
    std::jthread thread_;
};

} // namespace mft
