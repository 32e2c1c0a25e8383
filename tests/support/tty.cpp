// tty.cpp — see tty.hpp.
#include "support/tty.hpp"

#include <csignal>
#include <poll.h>
#include <pty.h>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace mft {

TtyRun run_on_tty(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
    return run_on_tty(argv, timeout, {});
}

TtyRun run_on_tty(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                  const std::vector<std::pair<std::string, std::string>>& answers) {
    std::vector<std::string> args = argv;
    std::vector<char*> cargv;
    for (auto& a : args) {
        cargv.push_back(a.data());
    }
    cargv.push_back(nullptr);
    winsize ws{};
    ws.ws_row = 40;
    ws.ws_col = 160;
    int master = -1;
    pid_t pid = ::forkpty(&master, nullptr, nullptr, &ws);
    if (pid < 0) {
        throw std::runtime_error("forkpty failed");
    }
    if (pid == 0) {
        ::execv(cargv[0], cargv.data());
        ::_exit(127);
    }
    TtyRun r;
    std::size_t next = 0; // the answer to type next
    std::size_t from = 0; // where on the screen its prompt is looked for
    auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        pollfd p{master, POLLIN, 0};
        if (::poll(&p, 1, 200) > 0) {
            char buf[4096];
            ssize_t got = ::read(master, buf, sizeof buf);
            if (got > 0) {
                r.screen.append(buf, static_cast<std::size_t>(got));
                if (next < answers.size()) {
                    auto at = r.screen.find(answers[next].first, from);
                    if (at != std::string::npos) {
                        const std::string& text = answers[next].second;
                        (void)!::write(master, text.data(), text.size());
                        from = at + answers[next].first.size();
                        ++next;
                    }
                }
                continue;
            }
            break; // EIO: the program closed its terminal
        }
        if (std::chrono::steady_clock::now() > end) {
            ::kill(pid, SIGKILL);
            break;
        }
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    ::close(master);
    r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return r;
}

} // namespace mft
