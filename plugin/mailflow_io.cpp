// mailflow_io.cpp — recipient resolution and the read/answer loop shared by `mailferry
// transport` and `mailferry policy`.
//
// Both run one process per Postfix client connection (master.cf `spawn`), with the
// socket as stdin and stdout: requests come one after the other, each answered before
// the next is read, until Postfix closes the connection.
#include "mailflow_private.hpp"

#include "mailferry/log.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <mutex>
#include <sys/stat.h>
#include <unistd.h>

namespace mf::mailflow {
namespace {

// The log file's descriptor, closed with the last sink that writes to it.
struct LogFd {
    explicit LogFd(int f) : fd(f) {}
    ~LogFd() { ::close(fd); }
    LogFd(const LogFd&) = delete;
    LogFd& operator=(const LogFd&) = delete;
    int fd;
};

} // namespace

void use_service_log(const Config& cfg, const char* ident) {
    log::set_program(ident);
    log::set_level(cfg.log.level);
    if (!cfg.mailflow.log_file.empty()) {
        int fd =
            ::open(cfg.mailflow.log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd >= 0) {
            auto owned = std::make_shared<LogFd>(fd);
            const std::string name(ident);
            log::set_sink([owned, name](LogLevel, std::string_view line) {
                // One write() per line: O_APPEND keeps lines of several processes whole.
                std::string l =
                    name + "[" + std::to_string(::getpid()) + "]: " + std::string(line) + "\n";
                (void)!::write(owned->fd, l.data(), l.size());
            });
            return;
        }
        log::use_syslog(ident);
        log::warning("cannot open log_file " + cfg.mailflow.log_file + ": " + std::strerror(errno) +
                     "; logging to syslog");
        return;
    }
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) == 0 && S_ISSOCK(st.st_mode)) {
        log::use_syslog(ident);
    }
}

} // namespace mf::mailflow

namespace mf::mailflow::detail {

Result<Recipient> resolve_recipient(const IdentityMap& map, Store& store,
                                    std::string_view address) {
    Recipient r;
    auto id = map.resolve(address);
    if (!id) {
        return r; // not a domain of ours, or no address a login could use
    }
    r.ours = true;
    r.id = std::move(*id);
    auto found =
        find_login_account(store, r.id.canonical, r.id.provider->case_insensitive, nullptr);
    if (!found) {
        return found.error();
    }
    r.account = std::move(*found);
    return r;
}

int pump(int in_fd, int out_fd, std::size_t max_buffer, const Framer& frame) {
    std::string buf;
    bool eof = false;
    for (;;) {
        Step s = frame(buf, eof);
        if (!s.reply.empty()) {
            std::string_view rest = s.reply;
            while (!rest.empty()) {
                ssize_t w = ::write(out_fd, rest.data(), rest.size());
                if (w < 0 && errno == EINTR) {
                    continue;
                }
                if (w <= 0) {
                    log::warning("mailflow: write to the client failed: " +
                                 std::string(std::strerror(errno)));
                    return 75;
                }
                rest.remove_prefix(static_cast<std::size_t>(w));
            }
        }
        if (s.close) {
            return 1;
        }
        if (s.consumed > 0) {
            buf.erase(0, s.consumed);
            continue;
        }
        if (eof) {
            return 0;
        }
        if (buf.size() > max_buffer) {
            return 1; // the framer should have refused it; never grow without bound
        }
        char chunk[4096]; // NOLINT(modernize-avoid-c-arrays)
        ssize_t got = ::read(in_fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            log::warning("mailflow: read from the client failed: " +
                         std::string(std::strerror(errno)));
            return 75;
        }
        if (got == 0) {
            eof = true;
            continue;
        }
        buf.append(chunk, static_cast<std::size_t>(got));
    }
}

std::string loggable(std::string_view bytes) {
    return sanitize_reply(bytes, 80);
}

} // namespace mf::mailflow::detail
