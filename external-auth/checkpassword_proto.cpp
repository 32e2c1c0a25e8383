// checkpassword_proto.cpp — parse fd 3 and build checkpassword-reply's environment.
//
// Must never copy the password anywhere but into its Secret, and never export a variable
// that could change what the exec'd reply program does.
#include "checkpassword_proto.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>

namespace mf::checkpassword {

namespace {

bool bad_value_byte(char c) {
    return c == '\t' || c == '\r' || c == '\n' || c == '\0';
}

// Variables a reply program (or the dynamic linker running it) acts on, and those the
// reply protocol itself uses: an extra field may not set them.
bool reserved_name(std::string_view upper) {
    static constexpr std::array<std::string_view, 12> names = {
        "USER",  "HOME", "EXTRA",    "AUTHORIZED",      "PATH",     "IFS",
        "SHELL", "ENV",  "BASH_ENV", "INSECURE_SETUID", "ORIG_UID", "TMPDIR"};
    if (std::find(names.begin(), names.end(), upper) != names.end()) {
        return true;
    }
    return upper.substr(0, 3) == "LD_" || upper.substr(0, 5) == "GLIBC" ||
           upper.substr(0, 6) == "MALLOC" || upper.substr(0, 5) == "ASAN_" ||
           upper.substr(0, 6) == "UBSAN_";
}

} // namespace

Result<Credentials> parse_input(std::string_view data) {
    if (data.empty()) {
        return make_error("read credentials from fd 3", "no data before end of file",
                          Scope::account);
    }
    auto login_end = data.find('\0');
    if (login_end == std::string_view::npos) {
        return make_error("read credentials from fd 3",
                          "no NUL after the login name (" + std::to_string(data.size()) +
                              " bytes, expected login\\0password\\0timestamp\\0)",
                          Scope::account);
    }
    auto pass_end = data.find('\0', login_end + 1);
    if (pass_end == std::string_view::npos) {
        return make_error("read credentials from fd 3",
                          "no NUL after the password (input truncated after " +
                              std::to_string(data.size()) + " bytes)",
                          Scope::account);
    }
    Credentials c;
    c.login = std::string(data.substr(0, login_end));
    c.password = Secret(data.substr(login_end + 1, pass_end - login_end - 1));
    return c;
}

Result<ReplyEnv> reply_env(std::string_view user,
                           const std::vector<std::pair<std::string, std::string>>& extra) {
    if (user.empty() || std::any_of(user.begin(), user.end(), bad_value_byte)) {
        return make_error("build checkpassword reply",
                          "the canonical user name is empty or holds TAB, CR, LF or NUL",
                          Scope::account);
    }
    ReplyEnv env;
    env.changes.push_back({"USER", std::string(user), false});
    bool have_home = false;
    std::string extra_names;
    for (const auto& [name, value] : extra) {
        if (std::any_of(value.begin(), value.end(), bad_value_byte)) {
            env.skipped.push_back(name + ": value holds TAB, CR, LF or NUL");
            continue;
        }
        if (name == "userdb_home" || name == "home") {
            env.changes.push_back({"HOME", value, false});
            have_home = true;
            continue;
        }
        bool ok_chars = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
        });
        if (!ok_chars) {
            env.skipped.push_back(name + ": name must be lower-case letters, digits and _");
            continue;
        }
        std::string upper = name;
        std::transform(upper.begin(), upper.end(), upper.begin(), [](char c) {
            return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
        });
        if (reserved_name(upper)) {
            env.skipped.push_back(name + ": reserved environment name");
            continue;
        }
        env.changes.push_back({upper, value, false});
        if (!extra_names.empty()) {
            extra_names += ' ';
        }
        extra_names += upper;
    }
    if (!have_home) {
        // An inherited HOME would become userdb_home: say nothing rather than that.
        env.changes.push_back({"HOME", "", true});
    }
    if (extra_names.empty()) {
        env.changes.push_back({"EXTRA", "", true});
    } else {
        env.changes.push_back({"EXTRA", extra_names, false});
    }
    return env;
}

bool apply_env(const ReplyEnv& env) {
    for (const auto& c : env.changes) {
        // NOLINTNEXTLINE(concurrency-mt-unsafe): single-threaded just before exec
        int rc =
            c.unset ? ::unsetenv(c.name.c_str()) : ::setenv(c.name.c_str(), c.value.c_str(), 1);
        if (rc != 0) {
            return false;
        }
    }
    return true;
}

} // namespace mf::checkpassword
