// faces_pam_test.cpp — pam_mailferry.so in a real PAM stack: a service file installed as
// /etc/pam.d/mailferry-test-<pid> (removed afterwards), driven by pamtester (an
// unmodified PAM application), by libpam in this process (for PAM_USER and a
// conversation that fails on purpose), and end to end by a NEW Dovecot whose passdb is
// examples/dovecot/auth-mailferry-pam.conf.ext — always with a real old Dovecot behind
// the engine.
//
// Sanitizers: with MAILFERRY_SANITIZE the module is built with ASan, and an ASan-built
// shared object cannot be loaded into an uninstrumented program. pamtester therefore
// runs with the ASan runtime preloaded (LD_PRELOAD=$(gcc -print-file-name=libasan.so),
// passed in as MF_ASAN_RUNTIME by tests/faces.cmake) and detect_leaks=0 — pamtester's
// and libpam's own allocations are not ours to judge. The NEW Dovecot gets the same
// through import_environment (plus default_vsz_limit = 0: ASan's shadow memory does not
// fit Dovecot's 256 MB address-space limit). In this process the runtime is loaded.
//
// Module log lines go to syslog; when this machine has no /dev/log the test binds one for
// its duration to read them (else those checks are skipped with a message).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "faces_util.hpp"
#include "support/dovecot_server.hpp"
#include "support/test_env.hpp"

#include <mutex>
#include <security/pam_appl.h>
#include <sys/un.h>
#include <thread>

using namespace std::string_literals;
using namespace std::chrono_literals;

namespace {

const std::string kAnnaPw = "anna's old p\xc3\xa4ss";

std::string module_path() {
    return mft::program_path("plugin", "pam_mailferry.so");
}

// /etc/pam.d/<name> for the length of a test.
class PamService {
  public:
    explicit PamService(const std::string& module_args)
        : PamService("# written by faces_pam_test, removed when it ends\n"
                     "auth     required  " +
                         module_path() + " " + module_args + "\n" + "account  required  " +
                         module_path() + "\n",
                     true) {}
    PamService(const std::string& content, bool /*whole_file*/)
        : name_("mailferry-test-" + std::to_string(::getpid())), path_("/etc/pam.d/" + name_) {
        mft::write_file(path_, content, 0644);
    }
    ~PamService() { ::unlink(path_.c_str()); }
    PamService(const PamService&) = delete;
    PamService& operator=(const PamService&) = delete;
    [[nodiscard]] const std::string& name() const { return name_; }

  private:
    std::string name_;
    std::string path_;
};

// Collects syslog datagrams sent to /dev/log, when we could claim it.
class SyslogCapture {
  public:
    SyslogCapture() {
        struct stat st {};
        if (::stat("/dev/log", &st) == 0) {
            return; // a real syslog daemon owns it: leave it alone
        }
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strcpy(a.sun_path, "/dev/log");
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            ft::close_fd(fd_);
            return;
        }
        ::chmod("/dev/log", 0666);
        owned_ = true;
        reader_ = std::thread([this] {
            char buf[8192];
            for (;;) {
                ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
                if (n <= 0) {
                    break;
                }
                std::lock_guard l(mu_);
                text_.append(buf, static_cast<std::size_t>(n));
                text_ += '\n';
            }
        });
    }
    ~SyslogCapture() {
        if (owned_) {
            ::unlink("/dev/log");
            ::shutdown(fd_, SHUT_RDWR);
            if (reader_.joinable()) {
                reader_.join();
            }
        }
        ft::close_fd(fd_);
    }
    SyslogCapture(const SyslogCapture&) = delete;
    SyslogCapture& operator=(const SyslogCapture&) = delete;

    [[nodiscard]] bool active() const { return owned_; }

    // Waits briefly for `needle` to show up.
    bool saw(const std::string& needle) {
        for (int i = 0; i < 100; ++i) {
            {
                std::lock_guard l(mu_);
                if (text_.find(needle) != std::string::npos) {
                    return true;
                }
            }
            std::this_thread::sleep_for(20ms);
        }
        return false;
    }
    std::string text() {
        std::lock_guard l(mu_);
        return text_;
    }

  private:
    int fd_ = -1;
    bool owned_ = false;
    std::thread reader_;
    std::mutex mu_;
    std::string text_;
};

mft::DovecotOptions old_options() {
    mft::DovecotOptions o;
    o.label = "old";
    o.users = {{"anna@old.example", kAnnaPw},
               {"bob@old.example", "bob-pw"},
               {"carl@old.example", "carl-pw"}};
    o.pop3 = o.pop3s = o.submission = false;
    o.extra_config = "auth_failure_delay = 0\n";
    return o;
}

struct World {
    mft::TempDir dir{"mf-faces-pam"};
    std::string db = dir.file("mf.db");
    std::string config = dir.file("mailferry.toml");
    mft::DovecotServer old{old_options()};

    World() {
        ft::EngineConfig c;
        c.db = db;
        c.imaps_port = old.imaps_port();
        c.ca_file = old.ca_file();
        ft::write_engine_config(config, c);
    }
};

// pamtester SERVICE USER ops… with the password (or nothing) on stdin.
ft::Spawned pamtester(const PamService& svc, const std::string& user,
                      const std::optional<std::string>& password,
                      std::vector<std::string> ops = {"authenticate"}) {
    ft::SpawnSpec s;
    s.argv = {"/usr/bin/pamtester", "-v", "-I", "rhost=192.0.2.9", svc.name(), user};
    s.argv.insert(s.argv.end(), ops.begin(), ops.end());
    s.env = {{"PATH", "/usr/bin:/bin"}};
#ifdef MF_ASAN_RUNTIME
    s.env["LD_PRELOAD"] = MF_ASAN_RUNTIME;
    s.env["ASAN_OPTIONS"] = "detect_leaks=0";
#endif
    if (password) {
        s.stdin_data = *password + "\n";
    }
    s.timeout = 60s;
    return ft::spawn_wait(s);
}

// pamtester reports success on stdout and failures on stderr.
bool succeeded(const ft::Spawned& r) {
    return r.exit_code == 0 && r.out.find("successfully authenticated") != std::string::npos;
}

// libpam in this process, with a conversation we control.
struct Conv {
    std::string password;
    bool fail = false;
    int calls = 0;
};

int converse(int n, const pam_message** msg, pam_response** resp, void* data) {
    auto* c = static_cast<Conv*>(data);
    ++c->calls;
    if (c->fail) {
        return PAM_CONV_ERR;
    }
    auto* r =
        static_cast<pam_response*>(std::calloc(static_cast<std::size_t>(n), sizeof(pam_response)));
    for (int i = 0; i < n; ++i) {
        if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF) {
            r[i].resp = ::strdup(c->password.c_str());
        }
    }
    *resp = r;
    return PAM_SUCCESS;
}

struct InProcess {
    int rc = -1;
    std::string pam_user;
};

InProcess pam_in_process(const PamService& svc, const std::string& user, Conv& conv) {
    pam_conv pc{converse, &conv};
    pam_handle_t* pamh = nullptr;
    REQUIRE(pam_start(svc.name().c_str(), user.c_str(), &pc, &pamh) == PAM_SUCCESS);
    REQUIRE(pam_set_item(pamh, PAM_RHOST, "192.0.2.9") == PAM_SUCCESS);
    InProcess out;
    out.rc = pam_authenticate(pamh, 0);
    const void* item = nullptr;
    if (pam_get_item(pamh, PAM_USER, &item) == PAM_SUCCESS && item != nullptr) {
        out.pam_user = static_cast<const char*>(item);
    }
    pam_end(pamh, out.rc);
    return out;
}

} // namespace

TEST_CASE("pamtester: first login, local login, wrong password, old server down") {
    World w;
    SyslogCapture syslog;
    PamService svc("config=" + w.config + " debug");

    auto r = pamtester(svc, "anna@old.example", kAnnaPw, {"authenticate", "acct_mgmt"});
    INFO("pamtester stderr: ", r.err);
    REQUIRE(succeeded(r));
    CHECK(r.out.find("account management done") != std::string::npos);
    CHECK(r.err.find("OK: first login") != std::string::npos); // the engine's log line
    CHECK(r.err.find(kAnnaPw) == std::string::npos);
    auto a = ft::account_in(w.db, "anna@new.example");
    REQUIRE(a);
    CHECK(a->state == mf::AccountState::provisioned);
    if (syslog.active()) {
        CHECK(syslog.saw("user anna@old.example is anna@new.example"));
    }

    r = pamtester(svc, "bob@old.example", "not-bobs");
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("Authentication failure") != std::string::npos);
    CHECK_FALSE(ft::account_in(w.db, "bob@new.example"));
    if (syslog.active()) {
        CHECK(syslog.saw("user bob@old.example: authentication failed"));
    }

    w.old.stop();
    r = pamtester(svc, "anna", kAnnaPw); // short name, from the store
    CHECK(succeeded(r));
    r = pamtester(svc, "carl@old.example", "carl-pw");
    CHECK(r.exit_code != 0);
    // PAM_AUTHINFO_UNAVAIL: Exim turns this into a temporary error.
    CHECK(r.err.find("Authentication service cannot retrieve authentication info") !=
          std::string::npos);
    CHECK_FALSE(ft::account_in(w.db, "carl@new.example"));
    if (syslog.active()) {
        CHECK(syslog.saw("user carl@old.example: temporary failure"));
    } else {
        MESSAGE("/dev/log belongs to a syslog daemon here: module log lines not checked");
    }
    CHECK(ft::account_count(w.db) == 1);
}

TEST_CASE("pamtester: bad inputs — conversation fails, garbage names, long passwords") {
    World w;
    SyslogCapture syslog;
    PamService svc("config=" + w.config);

    auto r = pamtester(svc, "bob@old.example", std::nullopt); // stdin at EOF: no password
    CHECK(r.exit_code != 0);
    CHECK(r.out.find("successfully") == std::string::npos);
    if (syslog.active()) {
        CHECK(syslog.saw("user bob@old.example: cannot get the password (conversation failed)"));
    }
    r = pamtester(svc, std::string(400, 'a') + "@old.example", "bob-pw");
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("Authentication failure") != std::string::npos);
    CHECK(r.err.find("login refused") != std::string::npos);
    r = pamtester(svc, "b\xff\xfeob@old.example", "bob-pw");
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("Authentication failure") != std::string::npos);
    r = pamtester(svc, "bob@old.example", std::string(2000, 'p'));
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("Authentication failure") != std::string::npos);
    CHECK(ft::account_count(w.db) == 0);
}

TEST_CASE("pamtester: module misconfigured — PAM_SERVICE_ERR with a reason") {
    World w;
    SyslogCapture syslog;
    {
        PamService svc("config=" + w.config + " frobnicate");
        auto r = pamtester(svc, "bob@old.example", "bob-pw");
        CHECK(r.exit_code != 0);
        CHECK(r.err.find("Error in service module") != std::string::npos);
        if (syslog.active()) {
            CHECK(syslog.saw("unknown option \"frobnicate\""));
        }
    }
    {
        PamService svc("config=relative/path.toml");
        auto r = pamtester(svc, "bob@old.example", "bob-pw");
        CHECK(r.err.find("Error in service module") != std::string::npos);
        if (syslog.active()) {
            CHECK(syslog.saw("option config= needs an absolute path"));
        }
    }
    {
        PamService svc("config=" + w.dir.file("missing.toml"));
        auto r = pamtester(svc, "bob@old.example", "bob-pw");
        CHECK(r.err.find("Error in service module") != std::string::npos);
        if (syslog.active()) {
            CHECK(syslog.saw("cannot open mailferry (" + w.dir.file("missing.toml") + ")"));
        }
    }
    CHECK(ft::account_count(w.db) == 0);
}

TEST_CASE("libpam in process: PAM_USER becomes the canonical name; failing conversation") {
    World w;
    PamService svc("config=" + w.config);
    Conv ok{kAnnaPw};
    auto r = pam_in_process(svc, "anna", ok);
    CHECK(r.rc == PAM_SUCCESS);
    CHECK(r.pam_user == "anna@new.example");
    CHECK(ok.calls == 1);

    Conv broken{"", true};
    r = pam_in_process(svc, "bob@old.example", broken);
    CHECK(r.rc == PAM_AUTHTOK_ERR); // pam_get_authtok's answer to a failed conversation
    CHECK(r.pam_user == "bob@old.example");
    Conv wrong{"wrong"};
    r = pam_in_process(svc, "bob@old.example", wrong);
    CHECK(r.rc == PAM_AUTH_ERR);
    CHECK(r.pam_user == "bob@old.example");
    CHECK(ft::account_count(w.db) == 1);
}

TEST_CASE("examples/pam/mailferry works as written (module path and config substituted)") {
    World w;
    std::string text = mft::read_file(std::string(MF_SOURCE_DIR) + "/examples/pam/mailferry");
    auto replace_all = [&text](const std::string& from, const std::string& to) {
        REQUIRE(text.find(from) != std::string::npos);
        for (auto p = text.find(from); p != std::string::npos; p = text.find(from, p + to.size())) {
            text.replace(p, from.size(), to);
        }
    };
    replace_all("/etc/mailferry/mailferry.toml", w.config);
    replace_all("  pam_mailferry.so", "  " + module_path());
    PamService svc(text, true);
    auto r = pamtester(svc, "bob@old.example", "bob-pw", {"authenticate", "acct_mgmt"});
    INFO("pamtester stderr: ", r.err);
    CHECK(succeeded(r));
    CHECK(r.out.find("account management done") != std::string::npos);
    CHECK(ft::account_in(w.db, "bob@new.example"));
}

TEST_CASE("end to end: a NEW Dovecot with passdb pam (examples/dovecot + examples/pam)") {
    World w;
    auto subst = [](std::string text, const std::string& from, const std::string& to) {
        REQUIRE(text.find(from) != std::string::npos);
        for (auto p = text.find(from); p != std::string::npos; p = text.find(from, p + to.size())) {
            text.replace(p, from.size(), to);
        }
        return text;
    };
    std::string pam = mft::read_file(std::string(MF_SOURCE_DIR) + "/examples/pam/mailferry");
    pam = subst(pam, "/etc/mailferry/mailferry.toml", w.config);
    pam = subst(pam, "  pam_mailferry.so", "  " + module_path());
    PamService svc(pam, true);

    std::string conf = mft::read_file(std::string(MF_SOURCE_DIR) +
                                      "/examples/dovecot/auth-mailferry-pam.conf.ext");
    conf = subst(conf, "args = cache_key=%u mailferry", "args = cache_key=%u " + svc.name());
    conf = subst(conf, "uid=vmail gid=vmail home=/var/vmail/%d/%n",
                 "uid=mfvmail gid=mfvmail home=" + w.dir.file("home") + "/%d/%n");
    mft::DovecotOptions n;
    n.label = "new";
    n.pop3 = n.pop3s = n.submission = n.imaps = false;
    n.tls = false;
    n.auth_config = conf;
    n.extra_config = "auth_failure_delay = 0\n";
#ifdef MF_ASAN_RUNTIME
    // Dovecot's auth worker loads the sanitized module: preload the ASan runtime into
    // Dovecot's processes and lift their address-space limit (ASan's shadow memory).
    n.extra_config +=
        "import_environment = $import_environment LD_PRELOAD=" + std::string(MF_ASAN_RUNTIME) +
        " ASAN_OPTIONS=detect_leaks=0\ndefault_vsz_limit = 0\n";
#endif
    mft::DovecotServer fresh(n);

    {
        ft::ImapClient c(fresh.imap_port());
        auto reply = c.login("anna@old.example", kAnnaPw);
        INFO("new server log:\n", fresh.log_tail());
        REQUIRE(reply.rfind("a1 OK", 0) == 0);
    }
    CHECK(ft::account_in(w.db, "anna@new.example"));
    {
        ft::ImapClient c(fresh.imap_port());
        CHECK(c.login("bob@old.example", "not-bobs").rfind("a1 NO [AUTHENTICATIONFAILED]", 0) == 0);
    }
    w.old.stop();
    {
        ft::ImapClient c(fresh.imap_port());
        auto reply = c.login("anna", kAnnaPw);
        INFO("new server log:\n", fresh.log_tail());
        CHECK(reply.rfind("a1 OK", 0) == 0);
    }
    { // Through PAM, Dovecot cannot tell "try later" from "wrong": a plain NO.
        ft::ImapClient c(fresh.imap_port());
        CHECK(c.login("carl@old.example", "carl-pw").rfind("a1 NO", 0) == 0);
    }
    CHECK_FALSE(ft::account_in(w.db, "bob@new.example"));
    CHECK_FALSE(ft::account_in(w.db, "carl@new.example"));
    CHECK(ft::account_count(w.db) == 1);
    // Nothing the new server ran (our code inside it) reported a sanitizer error.
    CHECK(fresh.log_tail(400).find("Sanitizer") == std::string::npos);
}
