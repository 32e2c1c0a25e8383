// face_skeleton.cpp — options, logging, signals and engine opening shared by the faces.
//
// Must never read a password from argv or the environment; options only name files and
// limits. Errors name the option or the config file.
#include "face_skeleton.hpp"

#include "mailferry/config.hpp"
#include "mailferry/log.hpp"

#include <csignal>
#include <cstdlib>
#include <sys/stat.h>

#ifndef MF_VERSION
#define MF_VERSION "unknown"
#endif

namespace mf::face {

Result<ParsedArgs> parse_args(int argc, char** argv, const std::vector<OptionSpec>& specs) {
    ParsedArgs out;
    int i = 1;
    for (; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--") {
            ++i;
            break;
        }
        if (arg == "-h") {
            out.help = true;
            continue;
        }
        if (arg.size() < 3 || arg.substr(0, 2) != "--") {
            break; // the first operand
        }
        std::string_view name = arg.substr(2);
        std::string_view value;
        bool inline_value = false;
        if (auto eq = name.find('='); eq != std::string_view::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
            inline_value = true;
        }
        if (name == "help") {
            out.help = true;
            continue;
        }
        if (name == "version") {
            out.version = true;
            continue;
        }
        const OptionSpec* spec = nullptr;
        for (const auto& s : specs) {
            if (s.name == name) {
                spec = &s;
                break;
            }
        }
        if (spec == nullptr) {
            return make_error("option --" + std::string(name), "unknown option (see --help)",
                              Scope::config);
        }
        if (spec->value_name.empty()) {
            if (inline_value) {
                return make_error("option --" + std::string(name), "takes no value", Scope::config);
            }
        } else if (!inline_value) {
            if (i + 1 >= argc) {
                return make_error("option --" + std::string(name),
                                  "needs a value: " + std::string(spec->value_name), Scope::config);
            }
            value = argv[++i];
        }
        if (auto r = spec->apply(value); !r) {
            return make_error("option --" + std::string(name), r.error().message(), Scope::config);
        }
    }
    out.first_operand = i;
    return out;
}

std::string usage_text(std::string_view program, std::string_view tail, std::string_view summary,
                       const std::vector<OptionSpec>& specs) {
    // Built with append(): GCC 12 warns falsely (-Wrestrict, bug 105329) on
    // "literal" + std::string temporaries at -O2.
    std::string out = "Usage: ";
    out.append(program).append(" [options]");
    if (!tail.empty()) {
        out.append(" ").append(tail);
    }
    out.append("\n").append(summary).append("\n\nOptions:\n");
    for (const auto& s : specs) {
        std::string left = "  --";
        left.append(s.name);
        if (!s.value_name.empty()) {
            left.append(" ").append(s.value_name);
        }
        if (left.size() < 28) {
            left.resize(28, ' ');
        } else {
            left.append("  ");
        }
        out.append(left).append(s.help).append("\n");
    }
    out.append("  --help                    this text\n  --version                 the release\n");
    return out;
}

void add_common_options(std::vector<OptionSpec>& specs, CommonOptions& opts) {
    specs.push_back(
        {"config", "PATH",
         "mailferry.toml (default: $MAILFERRY_CONFIG, then /etc/mailferry/mailferry.toml)",
         [&opts](std::string_view v) -> Result<void> {
             if (v.empty()) {
                 return make_error("config path", "is empty");
             }
             opts.config = v;
             return {};
         }});
    specs.push_back({"syslog", "", "log to syslog (facility mail) instead of stderr",
                     [&opts](std::string_view) -> Result<void> {
                         opts.syslog = true;
                         return {};
                     }});
}

void start(std::string_view program) {
    log::set_program(program);
    std::signal(SIGPIPE, SIG_IGN);
    ::umask(007);
}

void apply_logging(const CommonOptions& opts, const char* ident) {
    if (opts.syslog) {
        log::use_syslog(ident);
    }
}

Result<std::unique_ptr<Engine>> open_engine(const CommonOptions& opts) {
    std::string path = config_path_from(opts.config);
    auto engine = Engine::open(path);
    if (!engine) {
        const Error& e = engine.error();
        // The engine's error names file:line:key already; add the path when it does not.
        if (e.what.find(path) == std::string::npos) {
            return make_error("open engine with " + path, e.message(), e.scope, e.retry);
        }
        return e;
    }
    return engine;
}

std::string env_or_empty(const char* name) {
    const char* v = std::getenv(name); // NOLINT(concurrency-mt-unsafe): single-threaded start-up
    return v != nullptr ? std::string(v) : std::string();
}

const char* version() {
    return MF_VERSION;
}

} // namespace mf::face
