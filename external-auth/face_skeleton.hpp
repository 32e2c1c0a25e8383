// face_skeleton.hpp — what every login face does before and around its protocol.
//
// A face (checkpassword, cgpauth, …) is a thin program: parse its own wire format,
// call mf::Engine, format the answer. Everything else lives here once (Postfix's
// single_server habit): the option table (config path, syslog), the log set-up, the
// signal dispositions, the umask, and opening the engine from --config,
// $MAILFERRY_CONFIG or /etc/mailferry/mailferry.toml.
//
// Must never: print a password, take one from argv or the environment, or decide a login.
// Errors: option and config problems come back as Error values whose message names the
// option or the config file; the face turns them into its protocol's "misuse" answer.
#pragma once

#include "mailferry/engine.hpp"
#include "mailferry/error.hpp"

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mf::face {

// One command-line option. `apply` gets the value ("" for a flag) and says why it is bad.
struct OptionSpec {
    std::string_view name;       // without the leading "--"
    std::string_view value_name; // empty: a flag without value
    std::string_view help;
    std::function<Result<void>(std::string_view value)> apply;
};

struct ParsedArgs {
    int first_operand = 0; // index of the first argument that is not an option
    bool help = false;     // --help or -h was given
    bool version = false;  // --version was given
};

// Parses leading "--name value" / "--name=value" options. Stops at the first argument
// that does not start with "--" (or after "--"), so a checkpassword program's trailing
// command line is left alone. Unknown options and missing values are errors.
Result<ParsedArgs> parse_args(int argc, char** argv, const std::vector<OptionSpec>& specs);

// "Usage: prog [options] tail" plus one line per option.
std::string usage_text(std::string_view program, std::string_view tail, std::string_view summary,
                       const std::vector<OptionSpec>& specs);

// The options every face has: --config PATH and --syslog.
struct CommonOptions {
    std::string config; // empty: $MAILFERRY_CONFIG, then the default path
    bool syslog = false;
};
void add_common_options(std::vector<OptionSpec>& specs, CommonOptions& opts);

// Names the program in log lines, ignores SIGPIPE (a vanished caller is an error from
// write(), not a silent death), and sets umask 007 (nothing we create is for others).
void start(std::string_view program);

// Sends log lines to syslog (facility mail) instead of stderr when asked to.
void apply_logging(const CommonOptions& opts, const char* ident);

// Resolves the config path and opens the engine. The error names the config file.
Result<std::unique_ptr<Engine>> open_engine(const CommonOptions& opts);

// getenv() as a string ("" when unset).
std::string env_or_empty(const char* name);

// The release, for --version.
const char* version();

} // namespace mf::face
