// fuzz_checkpassword_input.cpp — feeds bytes to the checkpassword face's fd 3 reader
// (external-auth/checkpassword_proto.hpp parse_input) as Dovecot (or anyone who can run
// the helper) would write them, then builds checkpassword-reply's environment from the
// parsed login and the NUL-separated "name\0value\0" pairs after the password, as if they
// were the userdb's extra fields.
//
// A bug: any sanitizer report or crash; a parsed login or password holding a NUL or longer
// than the input; an error whose text depends on the input's bytes rather than on its
// length and NULs (the fd 3 payload carries a password); an environment change whose name is empty
// or not [A-Z0-9_], or is reserved (PATH, LD_…) other than USER, HOME, EXTRA; a value that would
// corrupt the reply (TAB, CR, LF, NUL). An error Result alone is never a bug. Must never: call
// apply_env (it would change this process's environment).
#include "checkpassword_proto.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace {

void check_env(const mf::checkpassword::ReplyEnv& env) {
    for (const auto& c : env.changes) {
        if (c.name.empty()) {
            std::abort();
        }
        for (char ch : c.name) {
            if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_')) {
                std::abort();
            }
        }
        if (c.name == "PATH" || c.name.rfind("LD_", 0) == 0 || c.name == "IFS") {
            std::abort();
        }
        if (c.value.find_first_of(std::string_view("\t\r\n\0", 4)) != std::string::npos) {
            std::abort();
        }
    }
}

// "name\0value\0…" after the password's NUL: the extra fields of a userdb answer.
std::vector<std::pair<std::string, std::string>> extra_fields(std::string_view rest) {
    std::vector<std::pair<std::string, std::string>> out;
    while (!rest.empty() && out.size() < 16) {
        auto n = rest.find('\0');
        std::string name(rest.substr(0, n));
        rest = n == std::string_view::npos ? std::string_view() : rest.substr(n + 1);
        auto v = rest.find('\0');
        out.emplace_back(std::move(name), std::string(rest.substr(0, v)));
        rest = v == std::string_view::npos ? std::string_view() : rest.substr(v + 1);
    }
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto c = mf::checkpassword::parse_input(in);
    if (!c) {
        // The payload may be a password: the error may depend on its length and where its
        // NULs are, never on its bytes. The same shape filled with 'x' must read the same.
        std::string masked(in);
        for (char& ch : masked) {
            ch = ch == '\0' ? '\0' : 'x';
        }
        auto m = mf::checkpassword::parse_input(masked);
        if (m || m.error().message() != c.error().message()) {
            std::abort();
        }
        return 0;
    }
    const auto& login = c->login;
    std::string_view pw = c->password.view();
    if (login.find('\0') != std::string::npos || pw.find('\0') != std::string_view::npos ||
        login.size() + pw.size() + 2 > size) {
        std::abort();
    }
    auto extra = extra_fields(in.substr(login.size() + pw.size() + 2));
    if (auto env = mf::checkpassword::reply_env(login, extra)) {
        check_env(*env);
    }
    return 0;
}
