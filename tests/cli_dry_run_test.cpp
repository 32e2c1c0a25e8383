// cli_dry_run_test.cpp — `mailferry dry-run` against a real Dovecot on loopback.
//
// Each user is mapped (account, old server, old login, store state); conflicts — a user
// twice, two logins for one account, a refused name — are listed; each old server is
// probed once as the verifier reaches it: a valid certificate passes, a certificate from
// an unknown CA, STARTTLS and a closed port are told apart; the provisioner is checked
// without provisioning; the store is byte-for-byte unchanged and a missing store is not
// created; nothing after a TAB of the users file is ever printed.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/store.hpp"
#include "support/dovecot_server.hpp"
#include "support/test_env.hpp"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

using namespace std::chrono_literals;

namespace {

const std::string kProgram = mft::program_path("external-auth", "mailferry");

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

struct Setup {
    mft::DovecotServer old;
    mft::TempDir dir{"mf-dry-run"};
    std::string config;
    std::uint16_t closed_port = mft::free_port();

    static mft::DovecotOptions options() {
        mft::DovecotOptions o;
        o.label = "dryold";
        o.users = {{"anna@example.com", "Anna-Secret-1"}};
        o.pop3 = o.pop3s = o.submission = false;
        return o;
    }

    explicit Setup(const std::string& provisioner = {}) : old(options()) {
        ::mkdir(dir.file("state").c_str(), 0770);
        std::string prov = provisioner.empty() ? "[provisioner]\ntype = \"dovecot-passwd-file\"\n"
                                                 "passwd_file = \"" +
                                                     dir.file("users") + "\"\n"
                                               : provisioner;
        auto provider = [&](const std::string& name, const std::string& domain, std::uint16_t port,
                            const std::string& tls, bool ca) {
            return "[[provider]]\nname = \"" + name + "\"\ndomains = [\"" + domain +
                   "\"]\nhost = \"localhost\"\nport = " + std::to_string(port) + "\ntls = \"" +
                   tls + "\"\n" + (ca ? "ca_file = \"" + old.ca_file() + "\"\n" : "") +
                   "timeout = \"5s\"\n";
        };
        config = dir.file("mailferry.toml");
        mft::write_file(config,
                        "[store]\npath = \"" + db() +
                            "\"\n[identity]\ndefault_domain = \"example.com\"\n" +
                            provider("good", "example.com", old.imaps_port(), "implicit", true) +
                            provider("starttls", "example.net", old.imap_port(), "starttls", true) +
                            provider("badca", "example.org", old.imaps_port(), "implicit", false) +
                            provider("down", "example.edu", closed_port, "none", false) + prov,
                        0640);
    }
    [[nodiscard]] std::string db() const { return dir.file("state/mailferry.db"); }
    std::string users(const std::string& name, const std::string& text) const {
        mft::write_file(dir.file(name), text, 0600);
        return dir.file(name);
    }
    mft::RunResult run(const std::vector<std::string>& args) const {
        std::vector<std::string> argv = {kProgram, "dry-run", "--config", config};
        argv.insert(argv.end(), args.begin(), args.end());
        auto r = mft::run(argv, {}, 120s);
        CHECK_FALSE(has(r.out + r.err, "Secret")); // nothing after a TAB is ever shown
        return r;
    }
};

// Every file under the state directory with its bytes. Not counted: the -shm index of a
// WAL database (shared memory a read-only SQLite reader maps) and an empty -wal, which a
// read-only connection may create; committed data lives in the database and a non-empty
// -wal, and those must not change.
std::map<std::string, std::string> files(const std::string& dir) {
    std::map<std::string, std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        const std::string p = e.path().string();
        std::string body = mft::read_file(p);
        if (p.ends_with("-shm") || (p.ends_with("-wal") && body.empty())) {
            continue;
        }
        out[e.path().filename().string()] = body;
    }
    return out;
}

// The report's entry for input line `line` (null when there is none).
nlohmann::json user_at(const nlohmann::json& doc, std::size_t line) {
    for (const auto& u : doc["users"]) {
        if (u["line"] == line) {
            return u;
        }
    }
    return nlohmann::json();
}

} // namespace

TEST_CASE("the program was built") {
    REQUIRE(::access(kProgram.c_str(), X_OK) == 0);
}

TEST_CASE("dry-run: mapping, conflicts, each old server probed once, provisioner") {
    Setup s;
    std::string f = s.users("users.txt", "# campaign 1\n"
                                         "anna\tAnna-Secret-1\n"
                                         "anna@example.com\n"
                                         "carl@example.net\n"
                                         "dan@example.org\n"
                                         "eve@example.edu\n"
                                         "bad name\n"
                                         "carl@example.net\tCarl-Secret-3\n"
                                         "\n"
                                         "finn\n");
    auto r = s.run({"--json", f});
    INFO(r.out, r.err);
    CHECK(r.exit_code == 1);
    auto doc = nlohmann::json::parse(r.out);
    CHECK(doc["data_lines"] == 8);
    auto user = [&](std::size_t line) { return user_at(doc, line); };
    CHECK(user(2)["account"] == "anna@example.com");
    CHECK(user(2)["server"] == "good");
    CHECK(user(2)["old_login"] == "anna@example.com");
    CHECK(user(2)["status"] == "ok");
    CHECK(user(3)["status"] == "conflict");
    CHECK(has(user(3)["detail"], "same account as line 2"));
    CHECK(user(7)["status"] == "refused");
    CHECK(user(8)["status"] == "duplicate");
    CHECK(user(10)["status"] == "ok");
    CHECK(doc["conflicts"].size() == 3);

    std::map<std::string, nlohmann::json> servers;
    for (const auto& sv : doc["servers"]) {
        servers[sv["name"]] = sv;
    }
    REQUIRE(servers.size() == 4);
    CHECK(servers["good"]["users"] == 3);
    CHECK(servers["good"]["reachable"] == true);
    CHECK(has(servers["good"]["detail"], "TLS certificate verified"));
    CHECK(has(servers["good"]["detail"], "greeting \"* OK"));
    CHECK(servers["starttls"]["reachable"] == true);
    CHECK(servers["starttls"]["users"] == 2);
    CHECK(has(servers["starttls"]["detail"], "TLS certificate verified"));
    CHECK(servers["badca"]["reachable"] == false);
    CHECK(has(servers["badca"]["detail"], "TLS failed"));
    CHECK(servers["down"]["reachable"] == false);
    CHECK(doc["problems"].size() == 2);
    CHECK(doc["provisioner"]["ok"] == true);

    // The text form says the same for a person.
    auto t = s.run({f});
    INFO(t.out, t.err);
    CHECK(t.exit_code == 1);
    CHECK(has(t.out, "conflict: line 3: anna@example.com"));
    CHECK(has(t.out, "problem: old server badca"));
    CHECK(has(t.out, "provisioner  dovecot-passwd-file"));
    CHECK(has(t.err, "no store yet"));
}

TEST_CASE("dry-run: a clean campaign exits 0 and changes nothing, store or not") {
    Setup s;
    std::string f = s.users("users.txt", "anna\nbob@example.com\ncarl@example.net\n");
    // No store yet: none is created.
    auto r = s.run({f});
    INFO(r.out, r.err);
    CHECK(r.exit_code == 0);
    CHECK_FALSE(std::filesystem::exists(s.db()));
    CHECK(std::filesystem::is_empty(s.dir.file("state")));

    // A store with a migrated account: its state is shown, not a byte changes.
    {
        auto store = mf::open_sqlite_store(s.db(), mf::Millis(5000));
        REQUIRE(store.ok());
        mf::Account a;
        a.name = "anna@example.com";
        a.provider = "good";
        a.state = mf::AccountState::synced;
        a.hash = "{PLAIN}x";
        REQUIRE((*store)->create_account(a, mf::AuditContext{"test", "", ""}).ok());
    }
    auto before = files(s.dir.file("state"));
    auto j = s.run({"--json", f});
    INFO(j.out, j.err);
    CHECK(j.exit_code == 0);
    auto doc = nlohmann::json::parse(j.out);
    CHECK(doc["users"][0]["state"] == "synced");
    CHECK(doc["users"][1]["state"] == "");
    auto after = files(s.dir.file("state"));
    CHECK(after.size() == before.size());
    for (const auto& [name, body] : before) {
        INFO(name);
        CHECK(after[name] == body);
    }
    CHECK_FALSE(std::filesystem::exists(s.dir.file("users"))); // the passwd-file neither
}

TEST_CASE("dry-run: provisioner problems, unusable files") {
    Setup s("[provisioner]\ntype = \"command\"\ncommand = [\"/nonexistent/mf-provision\"]\n");
    std::string f = s.users("users.txt", "anna\n");
    auto r = s.run({f});
    INFO(r.out, r.err);
    CHECK(r.exit_code == 1);
    CHECK(has(r.out, "provisioner  command /nonexistent/mf-provision: FAILED: cannot execute"));

    CHECK(s.run({s.users("empty.txt", "")}).exit_code == 2);
    CHECK(s.run({s.users("comments.txt", "# nobody\n\n")}).exit_code == 2);
    auto missing = s.run({s.dir.file("nope.txt")});
    CHECK(missing.exit_code == 2);
    CHECK(has(missing.err, "nope.txt"));
    auto bad = s.run({"--json", s.users("bad.txt", "anna\nb\xE9la\n")});
    CHECK(bad.exit_code == 1);
    CHECK(has(bad.out, "not valid UTF-8"));
    mft::write_file(s.dir.file("open.txt"), "anna\n", 0644);
    ::chmod(s.dir.file("open.txt").c_str(), 0644);
    auto open = s.run({s.dir.file("open.txt")});
    CHECK(has(open.err, "readable by everybody"));
}

TEST_CASE("dry-run: case variants of one user, in the file and against the store") {
    Setup s;
    // Made by versions that kept the spelling typed: Carl once, Dora twice.
    {
        auto store = mf::open_sqlite_store(s.db(), mf::Millis(5000));
        REQUIRE(store.ok());
        mf::UnixTime created = 1000; // Dora@ is older than DORA@
        for (const char* name : {"Carl@example.com", "Dora@example.com", "DORA@example.com"}) {
            mf::Account a;
            a.name = name;
            a.created = created++;
            a.provider = "good";
            a.state = mf::AccountState::synced;
            a.hash = "{SHA512-CRYPT}$6$x$y";
            REQUIRE((*store)->create_account(a, mf::AuditContext{"test", "", ""}).ok());
        }
    }
    std::string f = s.users("users.txt", "anna\n"
                                         "ANNA\n"             // 2: anna in another case
                                         "carl\n"             // 3: stored as Carl@
                                         "dora@example.com\n" // 4: stored twice
                                         "erik\n");
    auto r = s.run({"--json", f});
    INFO(r.out, r.err);
    CHECK(r.exit_code == 1);
    auto doc = nlohmann::json::parse(r.out);
    auto user = [&](std::size_t line) { return user_at(doc, line); };
    CHECK(user(2)["account"] == "anna@example.com");
    CHECK(user(2)["status"] == "duplicate");
    CHECK(has(user(2)["detail"], "another letter case"));
    CHECK(user(3)["account"] == "carl@example.com");
    CHECK(user(3)["status"] == "conflict");
    CHECK(user(3)["state"] == "synced");
    CHECK(has(user(3)["detail"], "the store has this account as Carl@example.com"));
    CHECK(user(4)["status"] == "conflict");
    CHECK(has(user(4)["detail"], "the store has this account as Dora@example.com"));
    CHECK(has(user(4)["detail"], "DORA@example.com is another account for the same user"));
    CHECK(user(5)["status"] == "ok");
    CHECK(doc["conflicts"].size() == 3);
}
