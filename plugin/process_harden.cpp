// process_harden.cpp — no core dumps from programs that hold passwords.
//
// A core file of a face or the worker would hold users' passwords in clear text, readable
// by whoever can read the dump directory. Must never be linked into a library's code path:
// only programs' main() call it (see process_harden.hpp).
#include "mailferry/process_harden.hpp"

#include "file_util.hpp"

#include <cerrno>
#include <string>
#include <sys/prctl.h>
#include <sys/resource.h>

namespace mf {

Result<void> harden_process() {
    std::string failed;
    // Both steps are tried even if one fails: each closes a different way out.
    struct rlimit none {};
    if (::setrlimit(RLIMIT_CORE, &none) != 0) {
        failed += "setrlimit(RLIMIT_CORE, 0): " + errno_text(errno);
    }
    if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        failed += std::string(failed.empty() ? "" : "; ") +
                  "prctl(PR_SET_DUMPABLE, 0): " + errno_text(errno);
    }
    if (!failed.empty()) {
        return make_error("disable core dumps (a crash could write passwords to disk)", failed,
                          Scope::internal, Retry::never);
    }
    return {};
}

} // namespace mf
