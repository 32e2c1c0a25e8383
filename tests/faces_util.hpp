// faces_util.hpp — what the faces' tests share: run a face program with exactly the
// descriptors its caller gives it (fd 3 / fd 4 for checkpassword, pipes for the CGP
// helper), write an engine config, look into the store, speak IMAP LOGIN as a client.
//
// Header-only on purpose: each faces_*_test.cpp is its own program. No mocks: the
// programs under test are the real binaries, the servers real Dovecots.
#pragma once

#include "mailferry/store.hpp"
#include "support/test_env.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <pwd.h>
#include <sodium.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace ft {

using namespace std::chrono_literals;

// Closes a descriptor once.
inline void close_fd(int& fd) {
    if (fd >= 0) {
        ::close(fd);
        fd = -1;
    }
}

struct SpawnSpec {
    std::vector<std::string> argv;
    std::map<std::string, std::string> env; // the child's whole environment
    std::optional<std::string> fd3;         // nullopt: fd 3 is not open in the child
    bool fd3_hold_open = false;             // we never close our end: no EOF on fd 3
    bool fd4 = false;                       // give the child a pipe on fd 4, collect it
    std::string stdin_data;
    std::chrono::milliseconds timeout = 60s;
};

struct Spawned {
    int exit_code = -1; // 128+signal when killed
    std::string out;
    std::string err;
    std::string fd4;
    std::chrono::milliseconds took{0};
};

// The sanitizer settings a child should inherit (ctest sets them for the test itself).
inline void add_sanitizer_env(std::map<std::string, std::string>& env) {
    for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}) {
        if (const char* v = std::getenv(name); v != nullptr) { // NOLINT(concurrency-mt-unsafe)
            env.emplace(name, v);
        }
    }
}

inline Spawned spawn_wait(const SpawnSpec& spec) {
    int in[2];
    int out[2];
    int err[2];
    int p3[2] = {-1, -1};
    int p4[2] = {-1, -1};
    REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
    if (spec.fd3) {
        REQUIRE(::pipe2(p3, O_CLOEXEC) == 0);
    }
    if (spec.fd4) {
        REQUIRE(::pipe2(p4, O_CLOEXEC) == 0);
    }
    std::vector<std::string> envs;
    for (const auto& [k, v] : spec.env) {
        envs.push_back(k + "=" + v);
    }
    std::vector<char*> argv;
    for (const auto& a : spec.argv) {
        argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : envs) {
        envp.push_back(e.data());
    }
    envp.push_back(nullptr);

    auto t0 = std::chrono::steady_clock::now();
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // Only async-signal-safe calls from here to exec.
        ::dup2(in[0], 0);
        ::dup2(out[1], 1);
        ::dup2(err[1], 2);
        if (p3[0] >= 0) {
            ::dup2(p3[0], 3);
        } else {
            ::close(3);
        }
        if (p4[1] >= 0) {
            ::dup2(p4[1], 4);
        } else {
            ::close(4);
        }
        ::syscall(SYS_close_range, 5U, ~0U, 0U);
        ::execve(argv[0], argv.data(), envp.data());
        ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    if (p3[0] >= 0) {
        ::close(p3[0]);
        std::string_view d = *spec.fd3;
        while (!d.empty()) { // ≤ 64 KiB fits the pipe; the tests send far less
            ssize_t n = ::write(p3[1], d.data(), d.size());
            if (n <= 0) {
                break;
            }
            d.remove_prefix(static_cast<std::size_t>(n));
        }
        if (!spec.fd3_hold_open) {
            close_fd(p3[1]);
        }
    }
    if (p4[1] >= 0) {
        ::close(p4[1]);
    }
    std::string_view to_write = spec.stdin_data;
    int in_w = in[1];
    if (to_write.empty()) {
        close_fd(in_w);
    }
    Spawned r;
    int fds[3] = {out[0], err[0], p4[0]};
    std::string* sinks[3] = {&r.out, &r.err, &r.fd4};
    auto deadline = t0 + spec.timeout;
    bool killed = false;
    for (;;) {
        std::vector<pollfd> pf;
        for (int fd : fds) {
            if (fd >= 0) {
                pf.push_back({fd, POLLIN, 0});
            }
        }
        if (in_w >= 0) {
            pf.push_back({in_w, POLLOUT, 0});
        }
        if (pf.empty()) {
            break;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            if (!killed) {
                ::kill(pid, SIGKILL);
                killed = true;
                deadline = std::chrono::steady_clock::now() + 5s;
                continue;
            }
            break;
        }
        int n = ::poll(pf.data(), pf.size(), static_cast<int>(left.count()));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        for (const auto& p : pf) {
            if (p.revents == 0) {
                continue;
            }
            if (p.fd == in_w) {
                ssize_t w = ::write(in_w, to_write.data(), to_write.size());
                if (w <= 0) {
                    close_fd(in_w);
                } else {
                    to_write.remove_prefix(static_cast<std::size_t>(w));
                    if (to_write.empty()) {
                        close_fd(in_w);
                    }
                }
                continue;
            }
            for (int i = 0; i < 3; ++i) {
                if (fds[i] == p.fd) {
                    char buf[4096];
                    ssize_t got = ::read(fds[i], buf, sizeof buf);
                    if (got <= 0) {
                        close_fd(fds[i]);
                    } else {
                        sinks[i]->append(buf, static_cast<std::size_t>(got));
                    }
                }
            }
        }
    }
    for (int& fd : fds) {
        close_fd(fd);
    }
    close_fd(in_w);
    close_fd(p3[1]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

// uid/gid of the unprivileged user the test Dovecots run as.
inline std::pair<uid_t, gid_t> mfvmail_ids() {
    passwd* pw = ::getpwnam("mfvmail"); // NOLINT(concurrency-mt-unsafe): test set-up
    REQUIRE_MESSAGE(pw != nullptr, "user mfvmail missing: run ./setup.sh deps");
    return {pw->pw_uid, pw->pw_gid};
}

// Hands a directory (and what is in it, one level deep) to mfvmail.
inline void give_to_mfvmail(const std::string& dir) {
    auto [uid, gid] = mfvmail_ids();
    REQUIRE(::chown(dir.c_str(), uid, gid) == 0);
    auto r = mft::run({"/bin/chown", "-R", std::to_string(uid) + ":" + std::to_string(gid), dir});
    REQUIRE(r.exit_code == 0);
}

// The account as the store has it (nullopt: no row). Fails the test on a store error.
inline std::optional<mf::Account> account_in(const std::string& db, const std::string& name) {
    auto store = mf::open_sqlite_store(db, mf::Millis(5000));
    REQUIRE_MESSAGE(store.ok(), (store.ok() ? "" : store.error().message()));
    auto a = (*store)->find_account(name);
    REQUIRE_MESSAGE(a.ok(), (a.ok() ? "" : a.error().message()));
    return *a;
}

inline std::size_t account_count(const std::string& db) {
    auto store = mf::open_sqlite_store(db, mf::Millis(5000));
    REQUIRE_MESSAGE(store.ok(), (store.ok() ? "" : store.error().message()));
    auto all = (*store)->list_accounts();
    REQUIRE(all.ok());
    return all->size();
}

// An engine config for the faces' tests: old Dovecot over IMAPS with its CA, the domain
// old.example renamed to new.example on the new server, builtin provisioner, cheap
// argon2 and a guard that does not get in the way of many parallel logins.
struct EngineConfig {
    std::string db;
    std::string imaps_host = "localhost";
    std::uint16_t imaps_port = 0;
    std::string ca_file;
    std::string timeout = "5s";
    std::string extra; // appended (e.g. [result.extra_fields])
};

inline std::string write_engine_config(const std::string& path, const EngineConfig& c) {
    std::string text =
        "[store]\npath = \"" + c.db +
        "\"\nbusy_timeout = \"10s\"\n\n"
        "[[provider]]\nname = \"old\"\ndomains = [\"old.example\"]\nprotocol = \"imap\"\n"
        "host = \"" +
        c.imaps_host + "\"\nport = " + std::to_string(c.imaps_port) +
        "\ntls = \"implicit\"\nca_file = \"" + c.ca_file + "\"\ntimeout = \"" + c.timeout +
        "\"\nmax_concurrent = 50\n\n"
        "[identity]\ndefault_domain = \"old.example\"\n\n"
        "[identity.domain_renames]\n\"old.example\" = \"new.example\"\n\n"
        "[hash]\nscheme = \"argon2id\"\nargon2_ops = 1\nargon2_memory_kib = 8192\n\n"
        "[provisioner]\ntype = \"builtin\"\n\n"
        "[guard]\nmax_failures_per_account_ip = 1000\nmax_failures_per_account = 1000\n"
        "max_failures_per_ip = 100000\n"
        "window = \"15m\"\nnegative_cache_ttl = \"5m\"\n\n" +
        c.extra;
    mft::write_file(path, text, 0644);
    return path;
}

// A line-based TCP client for IMAP: the NEW server's client in the end-to-end tests.
class ImapClient {
  public:
    explicit ImapClient(std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        greeting_ = line();
    }
    ~ImapClient() { close_fd(fd_); }
    ImapClient(const ImapClient&) = delete;
    ImapClient& operator=(const ImapClient&) = delete;

    [[nodiscard]] const std::string& greeting() const { return greeting_; }

    // Sends `tag command` and returns the tagged reply line (untagged ones are skipped).
    std::string command(const std::string& tag, const std::string& cmd) {
        std::string data = tag + " " + cmd + "\r\n";
        REQUIRE(::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(data.size()));
        for (;;) {
            std::string l = line();
            if (l.rfind(tag + " ", 0) == 0 || l.empty()) {
                return l;
            }
        }
    }

    std::string login(const std::string& user, const std::string& pass) {
        return command("a1", "LOGIN " + quote(user) + " " + quote(pass));
    }

    // AUTHENTICATE PLAIN with the credentials in the continuation line, not as SASL-IR:
    // Dovecot's imap-login reads that line into its 8 KiB SASL buffer, while a LOGIN
    // command's arguments must fit about 1 KiB. Returns the tagged reply.
    std::string authenticate_plain(const std::string& user, const std::string& pass) {
        send_line("a1 AUTHENTICATE PLAIN");
        std::string l = line();
        if (l.rfind("+", 0) != 0) {
            return l;
        }
        const std::string creds = std::string(1, '\0') + user + '\0' + pass;
        std::string b64(sodium_base64_encoded_len(creds.size(), sodium_base64_VARIANT_ORIGINAL),
                        '\0');
        sodium_bin2base64(b64.data(), b64.size(),
                          reinterpret_cast<const unsigned char*>(creds.data()), creds.size(),
                          sodium_base64_VARIANT_ORIGINAL);
        b64.resize(std::strlen(b64.c_str()));
        send_line(b64);
        for (;;) {
            l = line();
            if (l.rfind("a1 ", 0) == 0 || l.empty()) {
                return l;
            }
        }
    }

    static std::string quote(const std::string& s) {
        std::string q = "\"";
        for (char c : s) {
            if (c == '"' || c == '\\') {
                q += '\\';
            }
            q += c;
        }
        return q + "\"";
    }

  private:
    void send_line(const std::string& text) {
        std::string data = text + "\r\n";
        REQUIRE(::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(data.size()));
    }

    std::string line() {
        for (;;) {
            auto lf = buf_.find('\n');
            if (lf != std::string::npos) {
                std::string l = buf_.substr(0, lf);
                buf_.erase(0, lf + 1);
                if (!l.empty() && l.back() == '\r') {
                    l.pop_back();
                }
                return l;
            }
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 60000) <= 0) {
                return {};
            }
            char b[4096];
            ssize_t n = ::recv(fd_, b, sizeof b, 0);
            if (n <= 0) {
                return {};
            }
            buf_.append(b, static_cast<std::size_t>(n));
        }
    }

    int fd_ = -1;
    std::string buf_;
    std::string greeting_;
};

} // namespace ft
