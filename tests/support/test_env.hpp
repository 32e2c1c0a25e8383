// test_env.hpp — what every test needs around real servers: temp dirs, free ports,
// child processes, loopback peers that misbehave on purpose.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mft {

// A directory under $TMPDIR when that is a short absolute path, else under /tmp (mode
// 0755, so servers running as mfvmail can traverse it),
// removed with everything in it when the object dies.
class TempDir {
  public:
    explicit TempDir(const std::string& prefix = "mailferry-test");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }

  private:
    std::string path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read, close).
std::uint16_t free_port();

// True once 127.0.0.1:port accepts a connection, polling up to `wait`.
bool wait_for_port(std::uint16_t port, std::chrono::milliseconds wait);
// The same for another loopback address (an IPv4 literal such as "127.0.0.2").
bool wait_for_port(const std::string& address, std::uint16_t port, std::chrono::milliseconds wait);

struct RunResult {
    int exit_code = -1; // 128+signal when killed by a signal
    std::string out;
    std::string err;
};

// Runs a program (no shell), feeds stdin_data, collects output; kills it after `timeout`.
RunResult run(const std::vector<std::string>& argv, const std::string& stdin_data = {},
              std::chrono::milliseconds timeout = std::chrono::seconds(60),
              const std::map<std::string, std::string>& extra_env = {});

void write_file(const std::string& path, const std::string& content, unsigned mode = 0644);
std::string read_file(const std::string& path);
// The last `lines` lines of a log file, or a note that there is none (for error messages).
std::string file_tail(const std::string& path, std::size_t lines);

// The unprivileged user every test server runs as (`mfvmail`, made by ./setup.sh deps).
struct RunAs {
    unsigned uid = 0;
    unsigned gid = 0;
};
// Throws, telling how to create it, when the user is missing.
RunAs run_user();

// Alive and not a zombie: a daemonized master is not our child, and a container's init may
// be slow to reap it.
bool process_alive(int pid);

// A loopback TCP server that accepts connections and never says a word (timeout tests).
class SilentServer {
  public:
    SilentServer();
    ~SilentServer();
    SilentServer(const SilentServer&) = delete;
    SilentServer& operator=(const SilentServer&) = delete;
    [[nodiscard]] std::uint16_t port() const { return port_; }

  private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

// A built program of this project: MF_BINARY_DIR/<subdir>/<name>.
std::string program_path(const std::string& subdir, const std::string& name);

} // namespace mft
