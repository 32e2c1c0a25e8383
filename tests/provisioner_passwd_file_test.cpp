// provisioner_passwd_file_test.cpp — the dovecot-passwd-file provisioner on real files and a
// real Dovecot.
//
// Checks the line format, in-place replacement, idempotence, that every other byte of the
// file survives, mode/owner/group, refusal of fields Dovecot cannot store (file unchanged,
// no temp file left), a read-only directory, a held lock, concurrent provisioning from 20
// processes and from 20 threads (no line lost), and finally that a Dovecot using the file
// as passdb and userdb accepts the password right after provisioning and after a rehash.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/provisioner.hpp"
#include "support/dovecot_server.hpp"
#include "support/test_env.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <chrono>
#include <crypt.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <latch>
#include <memory>
#include <netinet/in.h>
#include <pwd.h>
#include <sstream>
#include <string>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

mf::ProvisionerConfig pf_config(const std::string& path) {
    mf::ProvisionerConfig c;
    c.type = mf::ProvisionerType::dovecot_passwd_file;
    c.passwd_file = path;
    c.uid = "5000";
    c.gid = "5001";
    c.home = "/var/vmail/{domain}/{local}";
    c.extra_fields = "userdb_quota_rule=*:storage=1G";
    return c;
}

std::unique_ptr<mf::Provisioner> make(const mf::ProvisionerConfig& c) {
    auto p = mf::make_provisioner(c);
    REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.error().message()));
    return std::move(*p);
}

mf::Result<void> provision(mf::Provisioner& p, const mf::Identity& id, const std::string& hash,
                           const std::string& password = "unused here") {
    mf::Secret pw(password);
    return p.provision(mf::ProvisionRequest{id, pw, hash});
}

std::string sha512_crypt(const std::string& password) {
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    REQUIRE(crypt_gensalt_rn("$6$", 5000, nullptr, 0, salt, sizeof salt) != nullptr);
    auto data = std::make_unique<crypt_data>();
    const char* h = crypt_r(password.c_str(), salt, data.get());
    REQUIRE(h != nullptr);
    REQUIRE(h[0] == '$');
    return std::string("{SHA512-CRYPT}") + h;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) {
        out.push_back(l);
    }
    return out;
}

std::vector<std::string> dir_entries(const std::string& dir) {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir.c_str());
    REQUIRE(d != nullptr);
    while (dirent* e = ::readdir(d)) { // NOLINT(concurrency-mt-unsafe): own DIR*
        std::string n = e->d_name;
        if (n != "." && n != "..") {
            out.push_back(n);
        }
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

struct stat stat_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st;
}

constexpr const char* kOriginal = "# mail users of new.example\n"
                                  "\n"
                                  "zed@new.example:{PLAIN}x:5000:5001::/h/zed::\n"
                                  "anna@new.example:{SHA512-CRYPT}$6$old$old:5000:5001::/h/anna::\n"
                                  "   # indented comment, kept as is\n"
                                  "bert@new.example:{PLAIN}y:5000:5001::/h/bert::nologin\n"
                                  "anna@new.example.org:{PLAIN}z:5000:5001::/h/o::"; // no final \n

// Runs `fn` in a child process as mfvmail (root ignores directory permissions); returns
// the child's exit code. Without root, runs it in a child as ourselves.
template <typename Fn>
int run_unprivileged(Fn fn) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (::geteuid() == 0) {
            passwd* pw =
                ::getpwnam("mfvmail"); // NOLINT(concurrency-mt-unsafe): single-threaded here
            if (pw == nullptr || ::setgroups(0, nullptr) != 0 || ::setgid(pw->pw_gid) != 0 ||
                ::setuid(pw->pw_uid) != 0) {
                ::_exit(99);
            }
        }
        ::_exit(fn());
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
}

} // namespace

TEST_CASE("passwd-file: a missing file is created 0640 with exactly one line") {
    mft::TempDir dir("mf-pf");
    const std::string path = dir.file("users");
    auto p = make(pf_config(path));
    CHECK(std::string(p->name()) == "dovecot-passwd-file");

    auto r = provision(*p, ident("anna", "new.example"), "{SHA512-CRYPT}$6$salt$hash");
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));
    CHECK(mft::read_file(path) == "anna@new.example:{SHA512-CRYPT}$6$salt$hash:5000:5001::"
                                  "/var/vmail/new.example/anna::userdb_quota_rule=*:storage=1G\n");
    CHECK((stat_of(path).st_mode & 07777) == 0640);
    // The lock file stays (it is the lock), no temp file is left behind.
    CHECK(dir_entries(dir.path()) == std::vector<std::string>{"users", "users.lock"});
}

TEST_CASE("passwd-file: empty uid, gid, home and extra give empty columns") {
    mft::TempDir dir("mf-pf");
    auto cfg = pf_config(dir.file("users"));
    cfg.uid.clear();
    cfg.gid.clear();
    cfg.home.clear();
    cfg.extra_fields.clear();
    auto p = make(cfg);
    REQUIRE(provision(*p, ident("anna", "new.example"), "{PLAIN}h").ok());
    CHECK(mft::read_file(dir.file("users")) == "anna@new.example:{PLAIN}h::::::\n");
}

TEST_CASE("passwd-file: replaces the user's line in place and keeps every other byte") {
    mft::TempDir dir("mf-pf");
    const std::string path = dir.file("users");
    mft::write_file(path, kOriginal, 0640);
    auto p = make(pf_config(path));

    // Rehash of an existing user: only that line changes, in its place.
    REQUIRE(provision(*p, ident("anna", "new.example"), "{ARGON2ID}$argon2id$v=19$m=8,t=1,p=1$new")
                .ok());
    std::string expected = kOriginal;
    const std::string old_line = "anna@new.example:{SHA512-CRYPT}$6$old$old:5000:5001::/h/anna::";
    expected.replace(expected.find(old_line), old_line.size(),
                     "anna@new.example:{ARGON2ID}$argon2id$v=19$m=8,t=1,p=1$new:5000:5001::"
                     "/var/vmail/new.example/anna::userdb_quota_rule=*:storage=1G");
    CHECK(mft::read_file(path) == expected);

    // A new user is appended; the missing final newline of the last line is supplied.
    REQUIRE(provision(*p, ident("carl", "new.example"), "{PLAIN}c").ok());
    expected += "\ncarl@new.example:{PLAIN}c:5000:5001::/var/vmail/new.example/carl::"
                "userdb_quota_rule=*:storage=1G\n";
    CHECK(mft::read_file(path) == expected);

    // "anna@new.example.org" is another user: its line is untouched by anna@new.example.
    CHECK(mft::read_file(path).find("anna@new.example.org:{PLAIN}z:") != std::string::npos);
    CHECK(dir_entries(dir.path()) == std::vector<std::string>{"users", "users.lock"});
}

TEST_CASE("passwd-file: provisioning twice is idempotent") {
    mft::TempDir dir("mf-pf");
    const std::string path = dir.file("users");
    mft::write_file(path, kOriginal, 0640);
    auto p = make(pf_config(path));
    auto id = ident("dora", "new.example");

    REQUIRE(provision(*p, id, "{PLAIN}d1").ok());
    const std::string once = mft::read_file(path);
    const struct stat st1 = stat_of(path);
    REQUIRE(provision(*p, id, "{PLAIN}d1").ok());
    const struct stat st2 = stat_of(path);
    CHECK(mft::read_file(path) == once);
    // Same line already there: the file is not even rewritten.
    CHECK(st2.st_ino == st1.st_ino);
    CHECK(st2.st_mtim.tv_sec == st1.st_mtim.tv_sec);
    CHECK(st2.st_mtim.tv_nsec == st1.st_mtim.tv_nsec);

    // Again with a new hash (rehash): still exactly one line for dora.
    REQUIRE(provision(*p, id, "{PLAIN}d2").ok());
    auto lines = lines_of(mft::read_file(path));
    CHECK(std::count_if(lines.begin(), lines.end(), [](const std::string& l) {
              return l.rfind("dora@new.example:", 0) == 0;
          }) == 1);
    CHECK(mft::read_file(path).find("dora@new.example:{PLAIN}d2:") != std::string::npos);
}

TEST_CASE("passwd-file: Dovecot is made to see every version") {
    // Dovecot stats the file at most once per second and rereads it only when the
    // whole-second mtime or the size changed (db-passwd-file.c).
    mft::TempDir dir("mf-pf");
    const std::string path = dir.file("users");
    auto p = make(pf_config(path));
    auto id = ident("erik", "new.example");
    using std::chrono::floor;
    using std::chrono::seconds;
    using std::chrono::system_clock;

    // provision() returns only once the second of its write is over.
    auto t0 = system_clock::now();
    REQUIRE(provision(*p, id, "{PLAIN}aaaa").ok());
    auto t1 = system_clock::now();
    CHECK(floor<seconds>(t1) > floor<seconds>(t0));
    CHECK(stat_of(path).st_mtim.tv_sec < system_clock::to_time_t(t1));

    // Nothing written, nothing to wait for.
    auto t2 = system_clock::now();
    REQUIRE(provision(*p, id, "{PLAIN}aaaa").ok());
    CHECK(system_clock::now() - t2 < std::chrono::milliseconds(900));

    // The replaced file's mtime is not in the past (clock stepped back, or a burst of
    // writes ran ahead): the new one still gets a later second, at equal size.
    const struct stat st1 = stat_of(path);
    std::array<timespec, 2> ahead{};
    ahead[0].tv_nsec = UTIME_OMIT;
    ahead[1].tv_sec = st1.st_mtim.tv_sec + 100;
    REQUIRE(::utimensat(AT_FDCWD, path.c_str(), ahead.data(), 0) == 0);
    REQUIRE(provision(*p, id, "{PLAIN}bbbb").ok());
    const struct stat st2 = stat_of(path);
    REQUIRE(st1.st_size == st2.st_size);
    CHECK(st2.st_mtim.tv_sec == st1.st_mtim.tv_sec + 101);
}

TEST_CASE("passwd-file: the original file's mode, owner and group are kept") {
    if (::geteuid() != 0) {
        MESSAGE("not root: cannot give the file another owner; skipped");
        return;
    }
    passwd* vm = ::getpwnam("mfvmail"); // NOLINT(concurrency-mt-unsafe): single-threaded here
    REQUIRE(vm != nullptr);
    mft::TempDir dir("mf-pf");
    const std::string path = dir.file("users");
    mft::write_file(path, kOriginal, 0640);
    REQUIRE(::chown(path.c_str(), vm->pw_uid, vm->pw_gid) == 0);
    REQUIRE(::chmod(path.c_str(), 0604) == 0);

    auto p = make(pf_config(path));
    REQUIRE(provision(*p, ident("anna", "new.example"), "{PLAIN}new").ok());
    auto st = stat_of(path);
    CHECK((st.st_mode & 07777) == 0604);
    CHECK(st.st_uid == vm->pw_uid);
    CHECK(st.st_gid == vm->pw_gid);
}

TEST_CASE("passwd-file: a symlinked file is updated through the link") {
    mft::TempDir dir("mf-pf");
    const std::string real = dir.file("real-users");
    const std::string link = dir.file("users");
    mft::write_file(real, kOriginal, 0640);
    REQUIRE(::symlink(real.c_str(), link.c_str()) == 0);
    auto p = make(pf_config(link));
    REQUIRE(provision(*p, ident("fred", "new.example"), "{PLAIN}f").ok());
    struct stat lst {};
    REQUIRE(::lstat(link.c_str(), &lst) == 0);
    CHECK(S_ISLNK(lst.st_mode));
    CHECK(mft::read_file(real).find("\nfred@new.example:{PLAIN}f:") != std::string::npos);
}

TEST_CASE("passwd-file: fields Dovecot cannot store are refused and nothing is written") {
    mft::TempDir dir("mf-pf");
    const std::string path = dir.file("users");
    mft::write_file(path, kOriginal, 0640);
    auto p = make(pf_config(path));

    struct Case {
        std::string label;
        mf::Identity id;
        std::string hash;
        const char* expect; // in the error text
    };
    mf::Identity colon_user = ident("an:na", "new.example");
    mf::Identity nl_user = ident("anna\nroot", "new.example");
    mf::Identity hash_user = ident("anna", "new.example");
    mf::Identity comment_user = ident("#anna", "new.example");
    // canonical is fine, but the local part used by the home template is not
    mf::Identity bad_home = ident("anna", "new.example");
    bad_home.local = "anna:0:0";
    std::vector<Case> cases = {
        {"':' in user", colon_user, "{PLAIN}x", "user name"},
        {"newline in user", nl_user, "{PLAIN}x", "user name"},
        {"'#' first in user", comment_user, "{PLAIN}x", "user name"},
        {"':' in hash", hash_user, "{PLAIN}a:b", "password hash"},
        {"newline in hash", hash_user, "{PLAIN}a\nb", "password hash"},
        {"empty hash", hash_user, "", "password hash"},
        {"':' in home", bad_home, "{PLAIN}x", "home"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto r = provision(*p, c.id, c.hash);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().temporary());
        CHECK(r.error().scope == mf::Scope::account);
        CHECK(r.error().message().find(c.expect) != std::string::npos);
        CHECK(r.error().message().find(path) != std::string::npos);
        CHECK(mft::read_file(path) == kOriginal);
    }
    CHECK(dir_entries(dir.path()) == std::vector<std::string>{"users"});

    // Extra fields may hold ':' (Dovecot rejoins the last column) but no control
    // character, and must not start with ':'.
    auto cfg = pf_config(path);
    cfg.home = "/var/vmail/{domain}";
    cfg.extra_fields = "{local}";
    auto p2 = make(cfg);
    for (const std::string local : {":mail=x", "quota=1\tx", "quota=1\nroot:x:0:0::/:"}) {
        CAPTURE(local);
        mf::Identity id = ident("anna", "new.example");
        id.local = local;
        auto r = provision(*p2, id, "{PLAIN}x");
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message().find("extra_fields") != std::string::npos);
        CHECK(mft::read_file(path) == kOriginal);
    }
    mf::Identity inner_colon = ident("anna", "new.example");
    inner_colon.local = "userdb_quota_rule=*:storage=2G";
    REQUIRE(provision(*p2, inner_colon, "{PLAIN}x").ok());
    CHECK(mft::read_file(path).find(":/var/vmail/new.example::userdb_quota_rule=*:storage=2G\n") !=
          std::string::npos);
}

TEST_CASE("passwd-file: config mistakes are refused by make_provisioner") {
    auto expect_config_error = [](const mf::ProvisionerConfig& c, const std::string& key) {
        auto p = mf::make_provisioner(c);
        REQUIRE_FALSE(p.ok());
        CHECK(p.error().scope == mf::Scope::config);
        CHECK_FALSE(p.error().temporary());
        CHECK(p.error().message().find(key) != std::string::npos);
    };
    auto base = pf_config("/nonexistent/users");
    auto c = base;
    c.passwd_file.clear();
    expect_config_error(c, "passwd_file");
    c = base;
    c.uid = "vmail";
    expect_config_error(c, "provisioner.uid");
    c = base;
    c.gid = "-1";
    expect_config_error(c, "provisioner.gid");
    c = base;
    c.home = "/var/vmail/{domain}:{local}";
    expect_config_error(c, "provisioner.home");
    c = base;
    c.extra_fields = "quota=1\nroot::0:0";
    expect_config_error(c, "provisioner.extra_fields");
    c = base;
    c.timeout = mf::Millis(0);
    expect_config_error(c, "provisioner.timeout");
}

TEST_CASE("passwd-file: a missing directory or a directory as file is an error") {
    mft::TempDir dir("mf-pf");
    auto p = make(pf_config(dir.file("no/such/dir/users")));
    auto r = provision(*p, ident("anna", "new.example"), "{PLAIN}x");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().temporary());
    CHECK(r.error().message().find("no/such/dir/users") != std::string::npos);

    REQUIRE(::mkdir(dir.file("adir").c_str(), 0755) == 0);
    auto p2 = make(pf_config(dir.file("adir")));
    auto r2 = provision(*p2, ident("anna", "new.example"), "{PLAIN}x");
    REQUIRE_FALSE(r2.ok());
    CHECK(r2.error().message().find("not a regular file") != std::string::npos);
}

TEST_CASE("passwd-file: a read-only directory is an error and the file stays as it was") {
    mft::TempDir dir("mf-pf");
    const std::string sub = dir.file("ro");
    REQUIRE(::mkdir(sub.c_str(), 0755) == 0); // owned by us (root): others may not write
    const std::string path = sub + "/users";
    mft::write_file(path, kOriginal, 0666); // the file itself is writable: irrelevant
    if (::geteuid() != 0) {
        REQUIRE(::chmod(sub.c_str(), 0555) == 0);
    }
    auto cfg = pf_config(path);

    auto attempt = [&] {
        auto p = mf::make_provisioner(cfg);
        if (!p.ok()) {
            return 10;
        }
        mf::Secret pw("x");
        mf::Identity id = ident("anna", "new.example");
        std::string hash = "{PLAIN}new";
        auto r = (*p)->provision(mf::ProvisionRequest{id, pw, hash});
        if (r.ok()) {
            return 11;
        }
        if (!r.error().temporary() || r.error().message().find(path) == std::string::npos) {
            return 12;
        }
        return 0;
    };

    SUBCASE("no lock file yet: taking the lock fails") {
        CHECK(run_unprivileged(attempt) == 0);
    }
    SUBCASE("a writable lock file exists: writing the temp file fails") {
        mft::write_file(path + ".lock", "", 0666);
        CHECK(run_unprivileged(attempt) == 0);
    }
    CHECK(mft::read_file(path) == kOriginal);
    auto entries = dir_entries(sub);
    CHECK(std::none_of(entries.begin(), entries.end(),
                       [](const std::string& n) { return n.find(".mf-") != std::string::npos; }));
    ::chmod(sub.c_str(), 0755);
}

TEST_CASE("passwd-file: a lock held elsewhere makes it wait, then give up after the timeout") {
    mft::TempDir dir("mf-pf");
    const std::string path = dir.file("users");
    mft::write_file(path, kOriginal, 0640);
    auto cfg = pf_config(path);
    cfg.timeout = mf::Millis(300);
    auto p = make(cfg);

    int fd = ::open((path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0660);
    REQUIRE(fd >= 0);
    REQUIRE(::flock(fd, LOCK_EX) == 0);
    auto t0 = std::chrono::steady_clock::now();
    auto r = provision(*p, ident("anna", "new.example"), "{PLAIN}new");
    auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().temporary());
    CHECK(r.error().message().find("still locked") != std::string::npos);
    CHECK(took >= std::chrono::milliseconds(300));
    CHECK(took < std::chrono::seconds(3));
    CHECK(mft::read_file(path) == kOriginal);

    // Released while it waits: it goes ahead.
    cfg.timeout = mf::Millis(5000);
    auto p2 = make(cfg);
    std::thread releaser([fd] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        ::close(fd);
    });
    auto r2 = provision(*p2, ident("anna", "new.example"), "{PLAIN}new");
    releaser.join();
    CHECK(r2.ok());
    CHECK(mft::read_file(path).find("anna@new.example:{PLAIN}new:") != std::string::npos);
}

namespace {

void check_all_there(const std::string& path, int n) {
    auto lines = lines_of(mft::read_file(path));
    auto orig = lines_of(kOriginal);
    REQUIRE(lines.size() == orig.size() + static_cast<std::size_t>(n));
    // The original lines first, unchanged and in order.
    CHECK(std::equal(orig.begin(), orig.end(), lines.begin()));
    for (int i = 0; i < n; ++i) {
        std::string prefix =
            "user" + std::to_string(i) + "@new.example:{PLAIN}p" + std::to_string(i) + ":";
        CAPTURE(prefix);
        CHECK(std::count_if(lines.begin(), lines.end(),
                            [&](const std::string& l) { return l.rfind(prefix, 0) == 0; }) == 1);
    }
}

} // namespace

TEST_CASE("passwd-file: 20 processes adding users at once lose no line") {
    constexpr int kN = 20;
    mft::TempDir dir("mf-pf");
    const std::string path = dir.file("users");
    mft::write_file(path, kOriginal, 0640);
    auto p = make(pf_config(path));

    int gate[2];
    REQUIRE(::pipe(gate) == 0);
    std::vector<pid_t> kids;
    for (int i = 0; i < kN; ++i) {
        pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::close(gate[1]);
            char c;
            (void)!::read(gate[0], &c, 1); // returns 0 when the parent opens the gate
            auto r = provision(*p, ident("user" + std::to_string(i), "new.example"),
                               "{PLAIN}p" + std::to_string(i));
            ::_exit(r.ok() ? 0 : 1);
        }
        kids.push_back(pid);
    }
    ::close(gate[0]);
    ::close(gate[1]); // all start now
    for (pid_t pid : kids) {
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
    check_all_there(path, kN);
    CHECK(dir_entries(dir.path()) == std::vector<std::string>{"users", "users.lock"});
}

TEST_CASE("passwd-file: 20 threads adding users at once lose no line") {
    constexpr int kN = 20;
    mft::TempDir dir("mf-pf");
    const std::string path = dir.file("users");
    mft::write_file(path, kOriginal, 0640);
    auto p = make(pf_config(path));

    std::latch start(kN);
    std::vector<int> ok(kN, 0);
    std::vector<std::thread> threads;
    threads.reserve(kN);
    for (int i = 0; i < kN; ++i) {
        threads.emplace_back([&, i] {
            start.arrive_and_wait();
            auto r = provision(*p, ident("user" + std::to_string(i), "new.example"),
                               "{PLAIN}p" + std::to_string(i));
            ok[static_cast<std::size_t>(i)] = r.ok() ? 1 : 0;
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    CHECK(std::count(ok.begin(), ok.end(), 1) == kN);
    check_all_there(path, kN);
}

namespace {

// One IMAP LOGIN on a fresh connection; returns the tagged reply line.
std::string imap_login(std::uint16_t port, const std::string& user, const std::string& pass) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    std::string buf;
    auto read_line_starting = [&](const std::string& start) {
        for (;;) {
            auto nl = buf.find("\r\n");
            while (nl != std::string::npos) {
                std::string line = buf.substr(0, nl);
                buf.erase(0, nl + 2);
                if (line.rfind(start, 0) == 0) {
                    return line;
                }
                nl = buf.find("\r\n");
            }
            char chunk[1024];
            ssize_t n = ::read(fd, chunk, sizeof chunk);
            if (n <= 0) {
                return std::string("(connection closed)");
            }
            buf.append(chunk, static_cast<std::size_t>(n));
        }
    };
    std::string greeting = read_line_starting("* ");
    CHECK(greeting.rfind("* OK", 0) == 0);
    std::string cmd = "a1 LOGIN \"" + user + "\" \"" + pass + "\"\r\n";
    REQUIRE(::write(fd, cmd.data(), cmd.size()) == static_cast<ssize_t>(cmd.size()));
    std::string reply = read_line_starting("a1 ");
    const std::string logout = "a2 LOGOUT\r\n";
    (void)!::write(fd, logout.data(), logout.size());
    ::close(fd);
    return reply;
}

} // namespace

TEST_CASE("passwd-file: a real Dovecot accepts the password right after provisioning") {
    passwd* vm = ::getpwnam("mfvmail"); // NOLINT(concurrency-mt-unsafe): single-threaded here
    REQUIRE(vm != nullptr);
    mft::TempDir files("mf-pf-dovecot");
    const std::string path = files.file("users");
    // Dovecot's auth runs as mfvmail: the file must be readable by it, and a rewrite must
    // keep it so (mode, owner and group are carried over).
    mft::write_file(path, "# provisioned by mailferry\n", 0640);
    if (::geteuid() == 0) {
        REQUIRE(::chown(path.c_str(), 0, vm->pw_gid) == 0);
    }

    mft::DovecotOptions opts;
    opts.label = "pf";
    opts.imaps = opts.pop3 = opts.pop3s = opts.submission = false;
    opts.tls = false;
    opts.auth_config =
        "passdb {\n  driver = passwd-file\n  args = scheme=CRYPT username_format=%u " + path +
        "\n}\nuserdb {\n  driver = passwd-file\n  args = username_format=%u " + path + "\n}\n";
    mft::DovecotServer dovecot(opts);

    auto cfg = pf_config(path);
    cfg.uid = std::to_string(vm->pw_uid);
    cfg.gid = std::to_string(vm->pw_gid);
    cfg.home = dovecot.dir() + "/home/{domain}/{local}";
    auto p = make(cfg);

    auto anna = ident("anna", "new.example");
    CHECK(imap_login(dovecot.imap_port(), "anna@new.example", "S3cret-pw").find("a1 NO") == 0);
    REQUIRE(provision(*p, anna, sha512_crypt("S3cret-pw")).ok());
    CHECK(imap_login(dovecot.imap_port(), "anna@new.example", "S3cret-pw").find("a1 OK") == 0);
    CHECK(imap_login(dovecot.imap_port(), "anna@new.example", "wrong").find("a1 NO") == 0);

    // The userdb fields reach Dovecot, the ':' inside the extra fields included.
    std::string out;
    CHECK(dovecot.doveadm({"user", "anna@new.example"}, &out) == 0);
    CHECK(out.find("quota_rule") != std::string::npos);
    CHECK(out.find("*:storage=1G") != std::string::npos);
    CHECK(out.find(dovecot.dir() + "/home/new.example/anna") != std::string::npos);

    // Rehash to another password at once (same second, same size): Dovecot sees it.
    REQUIRE(provision(*p, anna, sha512_crypt("N3w-secret")).ok());
    CHECK(imap_login(dovecot.imap_port(), "anna@new.example", "N3w-secret").find("a1 OK") == 0);
    CHECK(imap_login(dovecot.imap_port(), "anna@new.example", "S3cret-pw").find("a1 NO") == 0);
}
