// provisioner_command_test.cpp — the command provisioner running real shell scripts.
//
// The scripts written here record what the provisioner gave them (argv, the exec-time
// environment from /proc, the working directory, a SHA-256 of the stdin password — never
// the password itself) so the tests can check the password went only through stdin, and
// they misbehave on purpose: fail with a message, echo the password, die by a signal,
// never read stdin, hang with a child of their own.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/provisioner.hpp"
#include "support/test_env.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <memory>
#include <sodium.h>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

mf::Identity ident(const std::string& local, const std::string& domain) {
    mf::Identity id;
    id.local = local;
    id.domain = domain;
    id.canonical = local + "@" + domain;
    id.old_address = id.canonical;
    id.old_login = id.canonical;
    return id;
}

mf::ProvisionerConfig cmd_config(std::vector<std::string> argv,
                                 mf::Millis timeout = mf::Millis(10000)) {
    mf::ProvisionerConfig c;
    c.type = mf::ProvisionerType::command;
    c.command = std::move(argv);
    c.timeout = timeout;
    return c;
}

std::unique_ptr<mf::Provisioner> make(const mf::ProvisionerConfig& c) {
    auto p = mf::make_provisioner(c);
    REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.error().message()));
    return std::move(*p);
}

mf::Result<void> provision(mf::Provisioner& p, const std::string& local,
                           const std::string& password) {
    auto id = ident(local, "new.example");
    mf::Secret pw(password);
    std::string hash = "{PLAIN}unused";
    return p.provision(mf::ProvisionRequest{id, pw, hash});
}

std::string sha256_hex(const std::string& s) {
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, reinterpret_cast<const unsigned char*>(s.data()), s.size());
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned char c : d) {
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    return out;
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) {
        out.push_back(l);
    }
    return out;
}

std::string script(mft::TempDir& dir, const std::string& name, const std::string& body) {
    std::string path = dir.file(name);
    mft::write_file(path, "#!/bin/sh\n" + body, 0755);
    return path;
}

// Records everything it was given into files beside itself, then exits 0.
const char* kRecorder = R"(d=$(dirname "$0")
tr '\0' '\n' < /proc/$$/cmdline > "$d/cmdline"
tr '\0' '\n' < /proc/$$/environ > "$d/environ"
pwd > "$d/cwd"
IFS= read -r pw
printf '%s' "$pw" | sha256sum | cut -d' ' -f1 > "$d/pwhash"
rest=$(cat)
printf '%s' "${#rest}" > "$d/after"
ls /proc/$$/fd > "$d/fds"
exit 0
)";

constexpr const char* kPassword = "Pa ss\\w\xc3\xb6rd'$(id)`x`";

} // namespace

TEST_CASE("command: exit 0 is created; the password arrives on stdin only") {
    mft::TempDir dir("mf-cmd");
    std::string prog = script(dir, "create-account", kRecorder);
    auto p = make(cmd_config({prog, "--domain-arg", "x y"}));
    CHECK(std::string(p->name()) == "command");

    // A descriptor the host opened without O_CLOEXEC must not reach the program.
    int devnull = ::open("/dev/null", O_RDONLY);
    REQUIRE(devnull >= 0);
    REQUIRE(::dup2(devnull, 57) == 57);
    auto r = provision(*p, "anna", kPassword);
    ::close(57);
    ::close(devnull);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));

    // argv: the configured words, then the canonical user. /bin/sh puts itself first.
    auto argv = split_lines(mft::read_file(dir.file("cmdline")));
    REQUIRE(argv.size() >= 4);
    CHECK(std::vector<std::string>(argv.end() - 4, argv.end()) ==
          std::vector<std::string>{prog, "--domain-arg", "x y", "anna@new.example"});
    // The exec-time environment is exactly these two variables.
    CHECK(split_lines(mft::read_file(dir.file("environ"))) ==
          std::vector<std::string>{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                                   "/sbin:/bin",
                                   "MAILFERRY_USER=anna@new.example"});
    CHECK(mft::read_file(dir.file("cwd")) == "/\n");
    // The password and a newline, then end of input.
    CHECK(mft::read_file(dir.file("pwhash")) == sha256_hex(kPassword) + "\n");
    CHECK(mft::read_file(dir.file("after")) == "0");
    auto fds = split_lines(mft::read_file(dir.file("fds")));
    CHECK(std::find(fds.begin(), fds.end(), "0") != fds.end());
    CHECK(std::find(fds.begin(), fds.end(), "57") == fds.end());
    for (const auto& f : {"cmdline", "environ"}) {
        CHECK(mft::read_file(dir.file(f)).find("Pa ss") == std::string::npos);
    }
}

TEST_CASE("command: a bare program name is looked up in the child's PATH") {
    auto p = make(cmd_config({"true"}));
    CHECK(provision(*p, "anna", "pw").ok());

    auto q = make(cmd_config({"mailferry-no-such-program"}));
    auto r = provision(*q, "anna", "pw");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().temporary());
    CHECK(r.error().message().find("mailferry-no-such-program") != std::string::npos);
    CHECK(r.error().message().find("searched") != std::string::npos);
}

TEST_CASE("command: a non-zero exit is an error with the first line of stderr") {
    mft::TempDir dir("mf-cmd");
    std::string prog = script(dir, "refuse", R"(cat > /dev/null
echo "" >&2
echo "domain new.example is not hosted here" >&2
echo "second line, not shown" >&2
exit 1
)");
    auto p = make(cmd_config({prog}));
    auto r = provision(*p, "anna", kPassword);
    REQUIRE_FALSE(r.ok());
    const auto& e = r.error();
    CHECK(e.temporary());
    CHECK(e.message().find(prog) != std::string::npos);
    CHECK(e.message().find("anna@new.example") != std::string::npos);
    CHECK(e.message().find("status 1") != std::string::npos);
    CHECK(e.message().find("domain new.example is not hosted here") != std::string::npos);
    CHECK(e.message().find("second line") == std::string::npos);
}

TEST_CASE("command: a program that echoes the password does not get it into the error") {
    mft::TempDir dir("mf-cmd");
    std::string prog = script(dir, "echo-pw", R"(IFS= read -r pw
printf 'bad password %s for %s\n' "$pw" "$1" >&2
exit 3
)");
    auto p = make(cmd_config({prog}));
    auto r = provision(*p, "anna", "Sekr1t-Echo");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("Sekr1t-Echo") == std::string::npos);
    CHECK(r.error().message().find("bad password *** for anna@new.example") != std::string::npos);
    CHECK(r.error().message().find("status 3") != std::string::npos);
}

TEST_CASE("command: control characters in stderr are sanitized") {
    mft::TempDir dir("mf-cmd");
    std::string prog = script(dir, "noisy", "printf 'bad\\033[31m red\\r\\n' >&2\nexit 4\n");
    auto p = make(cmd_config({prog}));
    auto r = provision(*p, "anna", "pw");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find('\033') == std::string::npos);
    CHECK(r.error().message().find("bad?[31m red") != std::string::npos);
}

TEST_CASE("command: death by a signal is an error naming the signal") {
    mft::TempDir dir("mf-cmd");
    std::string prog = script(dir, "die", "kill -TERM $$\n");
    auto p = make(cmd_config({prog}));
    auto r = provision(*p, "anna", "pw");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("signal 15") != std::string::npos);
}

TEST_CASE("command: a program that never reads stdin neither blocks nor raises SIGPIPE") {
    mft::TempDir dir("mf-cmd");
    std::string prog = script(dir, "ignore-stdin", "exit 0\n");
    auto p = make(cmd_config({prog}));
    // Far more than a socket buffer holds: the writer meets EPIPE, not SIGPIPE.
    std::string big(4u << 20, 'p');
    auto r = provision(*p, "anna", big);
    CHECK_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));

    std::string fail_prog = script(dir, "ignore-stdin-fail", "echo no >&2\nexit 7\n");
    auto q = make(cmd_config({fail_prog}));
    auto r2 = provision(*q, "anna", big);
    REQUIRE_FALSE(r2.ok());
    CHECK(r2.error().message().find("status 7: no") != std::string::npos);
}

TEST_CASE("command: a hanging program is killed with its children after the timeout") {
    mft::TempDir dir("mf-cmd");
    std::string prog = script(dir, "hang", R"(d=$(dirname "$0")
sleep 1000 &
echo $! > "$d/child.pid"
wait
)");
    auto p = make(cmd_config({prog}, mf::Millis(500)));
    auto t0 = std::chrono::steady_clock::now();
    auto r = provision(*p, "anna", "pw");
    auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().temporary());
    CHECK(r.error().message().find("timed out after 500 ms") != std::string::npos);
    CHECK(took >= std::chrono::milliseconds(500));
    CHECK(took < std::chrono::seconds(3));

    // The background `sleep` was in the process group: it is gone (or a zombie awaiting
    // its new parent), not left running.
    pid_t child = std::stoi(mft::read_file(dir.file("child.pid")));
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
        std::ifstream st("/proc/" + std::to_string(child) + "/stat");
        std::string pid, comm, state;
        if (!(st >> pid >> comm >> state) || state == "Z") {
            gone = true;
        } else {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    CHECK(gone);
}

TEST_CASE("command: a program that hangs without reading stdin also times out") {
    mft::TempDir dir("mf-cmd");
    std::string prog = script(dir, "hang-no-read", "exec sleep 1000\n");
    auto p = make(cmd_config({prog}, mf::Millis(300)));
    auto r = provision(*p, "anna", std::string(1u << 20, 'x'));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("timed out") != std::string::npos);
}

TEST_CASE("command: a missing or non-executable program is an error naming it") {
    mft::TempDir dir("mf-cmd");
    auto p = make(cmd_config({dir.file("nowhere")}));
    auto r = provision(*p, "anna", "pw");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().temporary());
    CHECK(r.error().message().find(dir.file("nowhere")) != std::string::npos);
    CHECK(r.error().message().find("No such file") != std::string::npos);

    mft::write_file(dir.file("plain"), "#!/bin/sh\nexit 0\n", 0644);
    auto q = make(cmd_config({dir.file("plain")}));
    auto r2 = provision(*q, "anna", "pw");
    REQUIRE_FALSE(r2.ok());
    CHECK(r2.error().message().find(dir.file("plain")) != std::string::npos);
    CHECK(r2.error().message().find("not executable") != std::string::npos);

    auto d = make(cmd_config({dir.path()}));
    auto r3 = provision(*d, "anna", "pw");
    REQUIRE_FALSE(r3.ok());
    CHECK(r3.error().message().find("not a regular file") != std::string::npos);
}

TEST_CASE("command: config mistakes are refused by make_provisioner") {
    auto c = cmd_config({});
    auto r = mf::make_provisioner(c);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().scope == mf::Scope::config);
    CHECK(r.error().message().find("provisioner.command") != std::string::npos);

    c = cmd_config({"true"}, mf::Millis(0));
    auto r2 = mf::make_provisioner(c);
    REQUIRE_FALSE(r2.ok());
    CHECK(r2.error().message().find("provisioner.timeout") != std::string::npos);
}

TEST_CASE("command: several threads provisioning at once each get their own answer") {
    mft::TempDir dir("mf-cmd");
    // Succeeds for users whose local part starts with "ok", fails for the rest.
    std::string prog = script(dir, "half", R"(IFS= read -r pw
case "$1" in ok*) exit 0 ;; *) echo "refused $1" >&2; exit 1 ;; esac
)");
    auto p = make(cmd_config({prog}));
    constexpr int kN = 8;
    std::vector<std::string> results(kN);
    std::vector<std::thread> threads;
    threads.reserve(kN);
    for (int i = 0; i < kN; ++i) {
        threads.emplace_back([&, i] {
            std::string local = (i % 2 == 0 ? "ok" : "no") + std::to_string(i);
            auto r = provision(*p, local, "pw" + std::to_string(i));
            results[static_cast<std::size_t>(i)] = r.ok() ? "ok" : r.error().message();
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    for (int i = 0; i < kN; ++i) {
        CAPTURE(i);
        if (i % 2 == 0) {
            CHECK(results[static_cast<std::size_t>(i)] == "ok");
        } else {
            CHECK(results[static_cast<std::size_t>(i)].find("refused no" + std::to_string(i) +
                                                            "@new.example") != std::string::npos);
        }
    }
}
