// cli_account_test.cpp — runs the built `mailferry account …` on a store prepared through
// the Store API, and checks what each subcommand changed there and what it refused.
//
// list filters by state and old server (an unknown state is a usage error naming the
// valid ones); disable makes a login FAIL with the reason even when the login cache knows
// the password, and keeps the account's jobs from being claimed, enable puts state and
// jobs back; requeue queues a job due now at login priority, or says why not; reset
// forgets row, jobs, spool entry and copier state file but keeps the audit rows, asks on a
// terminal and refuses without one unless --yes; password takes a 0600 file of the
// caller's or the terminal (no echo) and refuses unsafe files; export writes a 0600
// passwd-file that a real Dovecot accepts. Unknown users exit 1, a missing store 2, a
// locked store 75.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/engine.hpp"
#include "mailferry/password.hpp"
#include "mailferry/spool.hpp"
#include "mailferry/store.hpp"
#include "support/dovecot_server.hpp"
#include "support/store_lock.hpp"
#include "support/test_env.hpp"
#include "support/tty.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace std::chrono_literals;
using mf::AccountState;

namespace {

const std::string kProgram = mft::program_path("external-auth", "mailferry");
const char* kPw = "anna's Pa55word";

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

struct World {
    mft::TempDir tmp{"mf-account"};
    std::string config;
    std::unique_ptr<mf::Store> store;

    // `more`: further sections ([target], [login_cache]).
    explicit World(const std::string& more = "") {
        config = tmp.file("mailferry.toml");
        mft::write_file(config,
                        "[store]\npath = \"" + tmp.file("mf.db") +
                            "\"\nbusy_timeout = \"300ms\"\n"
                            "[identity]\ndefault_domain = \"example.com\"\n"
                            "[[provider]]\nname = \"old\"\ndomains = [\"example.com\"]\n"
                            "host = \"127.0.0.1\"\nport = " +
                            std::to_string(mft::free_port()) +
                            "\ntls = \"none\"\ntimeout = \"2s\"\n"
                            "[[provider]]\nname = \"other\"\ndomains = [\"other.example\"]\n"
                            "host = \"127.0.0.1\"\n"
                            "[hash]\nscheme = \"sha512-crypt\"\nsha512_rounds = 1000\n" +
                            more,
                        0644);
        auto s = mf::open_sqlite_store(tmp.file("mf.db"), mf::Millis(5000));
        REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message()));
        store = std::move(*s);
    }

    void add(const std::string& name, const std::string& provider, AccountState st,
             const std::string& password = "") const {
        mf::Account a;
        a.name = name;
        a.provider = provider;
        a.state = st;
        if (!password.empty()) {
            mf::HashConfig h;
            h.scheme = mf::HashScheme::sha512_crypt;
            h.sha512_rounds = 1000;
            auto hash = mf::make_hash(mf::Secret(password), h);
            REQUIRE(hash.ok());
            a.hash = *hash;
        }
        REQUIRE(store->create_account(a, mf::AuditContext{"test", "", "made by the test"}));
    }

    [[nodiscard]] mft::RunResult run(std::vector<std::string> args,
                                     const std::string& input = "") const {
        std::vector<std::string> argv{kProgram, "--config", config, "account"};
        argv.insert(argv.end(), args.begin(), args.end());
        return mft::run(argv, input, 60s);
    }

    [[nodiscard]] AccountState state(const std::string& name) const {
        auto a = store->find_account(name);
        REQUIRE(a.ok());
        return a->has_value() ? (**a).state : AccountState::unknown;
    }

    [[nodiscard]] std::optional<mf::Job> claim() const {
        mf::ClaimRequest req;
        req.worker = "test-worker";
        req.now = mf::now_unix_ms() + 1000;
        auto j = store->claim_job(req);
        REQUIRE(j.ok());
        return *j;
    }
};

mf::Job enqueue(const World& w, const std::string& name) {
    mf::EnqueueRequest req;
    req.account = name;
    req.provider = "old";
    req.kind = mf::JobKind::resync;
    req.priority = mf::kPriorityResync;
    auto j = w.store->enqueue_job(req);
    REQUIRE(j.ok());
    return *j;
}

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
    auto line_starting = [&](const std::string& start) {
        for (;;) {
            for (auto nl = buf.find("\r\n"); nl != std::string::npos; nl = buf.find("\r\n")) {
                std::string line = buf.substr(0, nl);
                buf.erase(0, nl + 2);
                if (line.rfind(start, 0) == 0) {
                    return line;
                }
            }
            char chunk[1024];
            ssize_t n = ::read(fd, chunk, sizeof chunk);
            if (n <= 0) {
                return std::string("(connection closed)");
            }
            buf.append(chunk, static_cast<std::size_t>(n));
        }
    };
    CHECK(line_starting("* ").rfind("* OK", 0) == 0);
    std::string cmd = "a1 LOGIN \"" + user + "\" \"" + pass + "\"\r\n";
    REQUIRE(::write(fd, cmd.data(), cmd.size()) == static_cast<ssize_t>(cmd.size()));
    std::string reply = line_starting("a1 ");
    ::close(fd);
    return reply;
}

} // namespace

TEST_CASE("list: every account, or one state or old server; bad state names and no store") {
    World w;
    w.add("anna@example.com", "old", AccountState::synced, kPw);
    w.add("bob@example.com", "old", AccountState::failed);
    w.add("carl@other.example", "other", AccountState::synced);

    auto all = w.run({"list"});
    CHECK(all.exit_code == 0);
    CHECK(has(all.out, "anna@example.com"));
    CHECK(has(all.out, "carl@other.example"));
    CHECK(has(all.out, "3 account(s)"));
    CHECK_FALSE(has(all.out, "$6$")); // never a hash

    auto synced = w.run({"list", "--state", "synced", "--json"});
    REQUIRE(synced.exit_code == 0);
    auto doc = nlohmann::json::parse(synced.out);
    CHECK(doc["count"] == 2);
    auto old = nlohmann::json::parse(
        w.run({"list", "--state", "synced", "--server", "old", "--json"}).out);
    REQUIRE(old["count"] == 1);
    CHECK(old["accounts"][0]["account"] == "anna@example.com");
    CHECK(old["accounts"][0]["last_login"] == "");

    auto server = w.run({"list", "--server", "nowhere"});
    CHECK(server.exit_code == 2);
    CHECK(has(server.err, "valid: old, other"));

    auto bad = w.run({"list", "--state", "migrated"});
    CHECK(bad.exit_code == 2);
    CHECK(has(bad.err, "valid: verified, provisioned"));
    CHECK(has(bad.err, "disabled"));

    mft::TempDir empty("mf-account-none");
    mft::write_file(empty.file("m.toml"),
                    "[store]\npath = \"" + empty.file("none.db") +
                        "\"\n[[provider]]\nname = \"old\"\ndomains = [\"example.com\"]\n"
                        "host = \"127.0.0.1\"\n");
    auto none = mft::run({kProgram, "--config", empty.file("m.toml"), "account", "list"});
    CHECK(none.exit_code == 2);
    CHECK(has(none.err, "no such file"));
    CHECK(::access(empty.file("none.db").c_str(), F_OK) != 0); // not created
}

TEST_CASE("disable: logins FAIL with the reason, cached or not, jobs wait; enable restores") {
    World w; // [login_cache] on by default (5 minutes)
    w.add("anna@example.com", "old", AccountState::synced, kPw);
    const mf::Job job = enqueue(w, "anna@example.com");
    auto engine = mf::Engine::open(w.config);
    REQUIRE_MESSAGE(engine.ok(), (engine.ok() ? "" : engine.error().message()));
    auto login = [&] {
        return (*engine)->authenticate(mf::AuthRequest{"anna", kPw, "imap", "192.0.2.1", "test"});
    };
    REQUIRE(login().status == mf::AuthStatus::ok);
    REQUIRE(has(login().message, "login cache")); // the next right password skips the hash

    auto off = w.run({"disable", "anna", "--reason", "left the company"});
    CHECK_MESSAGE(off.exit_code == 0, off.err);
    CHECK(has(off.out, "was synced"));
    CHECK(w.state("anna@example.com") == AccountState::disabled);
    auto refused = login();
    CHECK(refused.status == mf::AuthStatus::fail);
    CHECK(has(refused.message, "account disabled by admin:account: left the company"));
    CHECK_FALSE(w.claim().has_value());               // its job waits, unclaimed
    CHECK(w.run({"disable", "anna"}).exit_code == 1); // already

    auto on = w.run({"enable", "anna", "--json"});
    CHECK_MESSAGE(on.exit_code == 0, on.err);
    CHECK(nlohmann::json::parse(on.out)["state"] == "synced");
    CHECK(w.state("anna@example.com") == AccountState::synced);
    CHECK(login().status == mf::AuthStatus::ok);
    auto claimed = w.claim();
    REQUIRE(claimed.has_value());
    CHECK(claimed->id == job.id);
    CHECK(w.run({"enable", "anna"}).exit_code == 1); // not disabled

    auto unknown = w.run({"disable", "zed"});
    CHECK(unknown.exit_code == 1);
    CHECK(has(unknown.err, "no such account"));
    auto audit = w.store->audit_log("anna@example.com");
    REQUIRE(audit.ok());
    CHECK(audit->size() == 3); // created, disabled, enabled
}

TEST_CASE("a locked store is exit 75 and changes nothing") {
    World w;
    w.add("anna@example.com", "old", AccountState::synced, kPw);
    mft::StoreLockHolder lock(w.tmp.file("mf.db"));
    auto r = w.run({"disable", "anna"});
    CHECK(r.exit_code == 75);
    lock.release();
    CHECK(w.state("anna@example.com") == AccountState::synced);
}

TEST_CASE("requeue: a job due now at the front of the queue, or the reason why not") {
    World w("[target]\nhost = \"127.0.0.1\"\n");
    w.add("anna@example.com", "old", AccountState::synced, kPw);
    w.add("bob@example.com", "old", AccountState::verified, kPw);
    w.add("carl@example.com", "old", AccountState::cutover, kPw);

    auto no_entry = w.run({"requeue", "anna"});
    CHECK(no_entry.exit_code == 1);
    CHECK(has(no_entry.err, "no sealed password"));
    CHECK(w.run({"requeue", "bob"}).exit_code == 1);
    auto over = w.run({"requeue", "carl"});
    CHECK(over.exit_code == 1);
    CHECK(has(over.err, "cutover"));

    mf::spool::Spool sp(w.tmp.file("spool"));
    REQUIRE(sp.put("anna@example.com", "sealed bytes"));
    enqueue(w, "anna@example.com"); // a resync round, due now at low priority
    auto ok = w.run({"requeue", "anna", "--json"});
    REQUIRE_MESSAGE(ok.exit_code == 0, ok.err);
    auto doc = nlohmann::json::parse(ok.out);
    CHECK(doc["kind"] == "resync");
    auto job = w.store->active_job("anna@example.com");
    REQUIRE(job.ok());
    REQUIRE(job->has_value());
    CHECK((**job).priority == mf::kPriorityLogin);
    CHECK((**job).run_at <= mf::now_unix_ms());

    REQUIRE(w.store->set_state("anna@example.com", AccountState::disabled,
                               mf::AuditContext{"test", "", ""}));
    auto disabled = w.run({"requeue", "anna"});
    CHECK(disabled.exit_code == 1);
    CHECK(has(disabled.err, "enable"));
}

TEST_CASE("reset: row, jobs, spool entry and copier state go; the audit stays; asks first") {
    World w("[target]\nhost = \"127.0.0.1\"\n");
    w.add("anna@example.com", "old", AccountState::synced, kPw);
    enqueue(w, "anna@example.com");
    mf::spool::Spool sp(w.tmp.file("spool"));
    REQUIRE(sp.put("anna@example.com", "sealed bytes"));
    REQUIRE(::mkdir(w.tmp.file("copy-state").c_str(), 0700) == 0);
    const std::string state_file = w.tmp.file("copy-state/anna@example.com.db");
    mft::write_file(state_file, "copier state", 0600);

    auto no_tty = w.run({"reset", "anna"});
    CHECK(no_tty.exit_code == 2);
    CHECK(has(no_tty.err, "--yes"));
    auto said_no = mft::run_on_tty({kProgram, "--config", w.config, "account", "reset", "anna"},
                                   30s, {{"Type yes: ", "no\n"}});
    CHECK_MESSAGE(said_no.exit_code == 1, said_no.screen);
    CHECK(w.state("anna@example.com") == AccountState::synced);

    // A copy under way: try again later, nothing changed.
    mf::ClaimRequest req;
    req.worker = "busy-worker";
    req.now = mf::now_unix_ms();
    req.lease = mf::Millis(60000);
    REQUIRE(w.store->claim_job(req)->has_value());
    auto running = w.run({"reset", "anna", "--yes"});
    CHECK(running.exit_code == 75);
    CHECK(has(running.err, "busy-worker"));
    CHECK(w.state("anna@example.com") == AccountState::synced);
    auto jobs = w.store->list_jobs(true);
    REQUIRE(jobs.ok());
    REQUIRE(jobs->size() == 1);
    REQUIRE(w.store->release_job(jobs->front().id, "busy-worker"));

    auto yes = mft::run_on_tty({kProgram, "--config", w.config, "account", "reset", "anna"}, 30s,
                               {{"Type yes: ", "yes\n"}});
    CHECK_MESSAGE(yes.exit_code == 0, yes.screen);
    CHECK(w.state("anna@example.com") == AccountState::unknown);
    CHECK(w.store->list_jobs(false)->empty());
    CHECK_FALSE(sp.get("anna@example.com")->has_value());
    CHECK(::access(state_file.c_str(), F_OK) != 0);
    auto audit = w.store->audit_log("anna@example.com");
    REQUIRE(audit.ok());
    REQUIRE(audit->size() == 2);
    CHECK(audit->back().from_state == "synced");
    CHECK(audit->back().to_state == "unknown");
    CHECK(w.run({"reset", "anna", "--yes"}).exit_code == 1); // gone now
}

TEST_CASE("password: a private file or the terminal, hashed as configured; unsafe files refused") {
    World w;
    w.add("anna@example.com", "old", AccountState::synced, kPw);
    auto hash = [&] { return (*w.store->find_account("anna@example.com"))->hash; };
    const std::string before = hash();

    const std::string file = w.tmp.file("pw");
    mft::write_file(file, "N3w secret\n", 0644);
    auto loose = w.run({"password", "anna", "--password-file", file});
    CHECK(loose.exit_code == 2);
    CHECK(has(loose.err, "mode 0644"));
    CHECK(hash() == before);

    REQUIRE(::symlink(file.c_str(), w.tmp.file("link").c_str()) == 0);
    REQUIRE(::chmod(file.c_str(), 0600) == 0);
    auto link = w.run({"password", "anna", "--password-file", w.tmp.file("link")});
    CHECK(link.exit_code == 2);
    CHECK(has(link.err, "symbolic link"));
    if (::geteuid() == 0) {
        passwd* nobody = ::getpwnam("nobody"); // NOLINT(concurrency-mt-unsafe): one thread
        REQUIRE(nobody != nullptr);
        REQUIRE(::chown(file.c_str(), nobody->pw_uid, nobody->pw_gid) == 0);
        auto theirs = w.run({"password", "anna", "--password-file", file});
        CHECK(theirs.exit_code == 2);
        CHECK(has(theirs.err, "owned by uid"));
        REQUIRE(::chown(file.c_str(), 0, 0) == 0);
    }
    auto no_tty = w.run({"password", "anna"});
    CHECK(no_tty.exit_code == 2);
    CHECK(w.run({"password", "zed", "--password-file", file}).exit_code == 1);
    CHECK(hash() == before);

    auto ok = w.run({"password", "anna", "--password-file", file});
    CHECK_MESSAGE(ok.exit_code == 0, ok.err);
    CHECK(hash().rfind("{SHA512-CRYPT}$6$rounds=1000$", 0) == 0);
    CHECK(mf::verify_hash(hash(), mf::Secret(std::string_view("N3w secret"))).result ==
          mf::HashMatch::match);
    CHECK_FALSE(has(ok.out + ok.err, "N3w secret"));

    auto typed =
        mft::run_on_tty({kProgram, "--config", w.config, "account", "password", "anna"}, 30s,
                        {{"New password: ", "typed-Pw 2\n"}, {"Repeat it: ", "typed-Pw 2\n"}});
    CHECK_MESSAGE(typed.exit_code == 0, typed.screen);
    CHECK_FALSE(has(typed.screen, "typed-Pw")); // never echoed
    CHECK(mf::verify_hash(hash(), mf::Secret(std::string_view("typed-Pw 2"))).result ==
          mf::HashMatch::match);
    auto differ =
        mft::run_on_tty({kProgram, "--config", w.config, "account", "password", "anna"}, 30s,
                        {{"New password: ", "one one\n"}, {"Repeat it: ", "two two\n"}});
    CHECK(differ.exit_code == 2);
    CHECK(has(differ.screen, "differ"));
}

TEST_CASE("export: a 0600 passwd-file a real Dovecot accepts; accounts without a hash skipped") {
    World w;
    w.add("anna@example.com", "old", AccountState::synced, kPw);
    w.add("bob@example.com", "old", AccountState::verified); // no hash
    w.add("carl@example.com", "old", AccountState::disabled, "carl's pw");
    const std::string out = w.tmp.file("users");
    auto r = w.run({"export", "--output", out, "--json"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    auto doc = nlohmann::json::parse(r.out);
    CHECK(doc["written"] == 1);
    REQUIRE(doc["skipped"].size() == 2);
    CHECK(doc["skipped"][0]["account"] == "bob@example.com");
    CHECK(doc["skipped"][1]["reason"] == "disabled");
    struct stat st {};
    REQUIRE(::stat(out.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    const std::string text = mft::read_file(out);
    CHECK(text.rfind("anna@example.com:{SHA512-CRYPT}$6$", 0) == 0);
    CHECK(text.find("::::::\n") == text.size() - 7);

    auto text_run = w.run({"export"});
    CHECK(text_run.out == text);
    CHECK(has(text_run.err, "skipped bob@example.com"));
    CHECK(w.run({"export", "--output", w.tmp.file("no/such/dir/users")}).exit_code == 2);

    passwd* vm = ::getpwnam("mfvmail"); // NOLINT(concurrency-mt-unsafe): one thread here
    REQUIRE(vm != nullptr);
    if (::geteuid() == 0) {
        REQUIRE(::chown(out.c_str(), vm->pw_uid, vm->pw_gid) == 0); // Dovecot's auth reads it
    }
    mft::DovecotOptions opts;
    opts.label = "export";
    opts.imaps = opts.pop3 = opts.pop3s = opts.submission = false;
    opts.tls = false;
    mft::TempDir homes("mf-export-home");
    if (::geteuid() == 0) {
        REQUIRE(::chown(homes.path().c_str(), vm->pw_uid, vm->pw_gid) == 0);
    }
    opts.auth_config =
        "passdb {\n  driver = passwd-file\n  args = username_format=%u " + out +
        "\n}\nuserdb {\n  driver = static\n  args = uid=" + std::to_string(vm->pw_uid) +
        " gid=" + std::to_string(vm->pw_gid) + " home=" + homes.path() + "/%d/%n\n}\n";
    mft::DovecotServer dovecot(opts);
    CHECK(imap_login(dovecot.imap_port(), "anna@example.com", kPw).rfind("a1 OK", 0) == 0);
    CHECK(imap_login(dovecot.imap_port(), "anna@example.com", "wrong").rfind("a1 NO", 0) == 0);
    CHECK(imap_login(dovecot.imap_port(), "carl@example.com", "carl's pw").rfind("a1 NO", 0) == 0);
}

TEST_CASE("password: a passwd-file provisioner gets the new hash first; if it fails, nothing") {
    mft::TempDir files("mf-account-pf");
    const std::string users = files.file("users");
    mft::write_file(users, "# the new server's users\n", 0600);
    World w("[provisioner]\ntype = \"dovecot-passwd-file\"\npasswd_file = \"" + users + "\"\n");
    w.add("anna@example.com", "old", AccountState::synced, kPw);
    w.add("bob@example.com", "old", AccountState::verified, kPw); // not on the new server
    const std::string file = w.tmp.file("pw");
    mft::write_file(file, "N3w secret", 0600);

    auto ok = w.run({"password", "anna", "--password-file", file});
    REQUIRE_MESSAGE(ok.exit_code == 0, ok.err);
    const std::string hash = (*w.store->find_account("anna@example.com"))->hash;
    CHECK(has(mft::read_file(users), "anna@example.com:" + hash + ":"));
    CHECK(w.run({"password", "bob", "--password-file", file}).exit_code == 0);
    CHECK_FALSE(has(mft::read_file(users), "bob@example.com"));

    // The passwd-file's directory is gone: the store keeps the old hash.
    World broken("[provisioner]\ntype = \"dovecot-passwd-file\"\npasswd_file = \"" +
                 files.file("gone/users") + "\"\n");
    broken.add("anna@example.com", "old", AccountState::synced, kPw);
    const std::string before = (*broken.store->find_account("anna@example.com"))->hash;
    auto refused = broken.run({"password", "anna", "--password-file", file});
    CHECK(refused.exit_code != 0);
    CHECK((*broken.store->find_account("anna@example.com"))->hash == before);
}
