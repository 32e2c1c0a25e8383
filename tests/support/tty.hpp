// tty.hpp — running a program on a real pseudo-terminal, for tests of what programs show
// only on a terminal (progress bars).
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace mft {

struct TtyRun {
    std::string screen; // everything the program wrote to its terminal (stdout and stderr)
    int exit_code = -1; // 128+signal when killed
};

// Runs argv (no shell) with stdin, stdout and stderr on a new pseudo-terminal of 160x40;
// kills it after `timeout`.
TtyRun run_on_tty(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

// The same, typing answers[i].second once answers[i].first has appeared on the screen
// after the previous answer (a prompt, then what a person would type, "\n" included).
TtyRun run_on_tty(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                  const std::vector<std::pair<std::string, std::string>>& answers);

} // namespace mft
