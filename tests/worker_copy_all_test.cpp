// worker_copy_all_test.cpp — accounts imported with their old hash and never logged in are
// copied without their passwords: `mailferry copy-all --imported` provisions and queues
// them, and the worker logs in at the old Dovecot as a master user ([[provider]]
// master_user, AUTHENTICATE PLAIN with the account as authzid) and at the new one as its
// master user, with no sealed password in the spool. Bad configs are refused clearly.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "support/migration_world.hpp"

#include <nlohmann/json.hpp>

using namespace std::chrono_literals;
using mf::AccountState;

namespace {

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

bool ok_reply(const std::string& reply) {
    return reply.rfind("a1 OK", 0) == 0;
}

mft::RunResult mailferry(const std::string& config, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {wt::kMailferry};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--config", config});
    return mft::run(argv, {}, 120s);
}

// The old server's master user: Dovecot reads its passwd-file (as mfvmail), the worker
// its password file (as mailferry); both 0600.
struct OldMaster {
    mft::TempDir dir{"mf-oldmaster"};
    std::string password = "old-master-" + std::to_string(::getpid()) + "-Zk4";
    std::string passdb = dir.file("old-masters");
    std::string secret = dir.file("old-master-password");

    OldMaster() {
        ::chmod(dir.path().c_str(), 0755);
        mft::write_file(passdb, "oldmaster:{PLAIN}" + password + "\n", 0600);
        wt::Ids v = wt::ids_of("mfvmail");
        wt::chown_path(passdb, v.uid, v.gid);
        mft::write_file(secret, password + "\n", 0600);
        wt::Ids m = wt::ids_of("mailferry");
        wt::chown_path(secret, m.uid, m.gid);
    }
    [[nodiscard]] std::string dovecot() const {
        return "passdb {\n  driver = passwd-file\n  master = yes\n  args = " + passdb + "\n}\n";
    }
    [[nodiscard]] std::string provider() const {
        return "master_user = \"oldmaster\"\nmaster_password_file = \"" + secret + "\"\n";
    }
};

} // namespace

TEST_CASE("copy-all --imported: imported accounts copy with master users, no password") {
    OldMaster om;
    wt::WorldOptions o;
    o.users = {{"anna@example.com", "anna-pw-1"}, {"bob@example.com", "bob-pw-1"}};
    o.old_extra = om.dovecot();
    o.provider_extra = om.provider();
    wt::World w(o);
    wt::fill_mailbox(w.old, "anna@example.com", "", 12, 3000, 1);
    wt::fill_mailbox(w.old, "anna@example.com", "Archive", 4, 2000, 2);
    wt::fill_mailbox(w.old, "bob@example.com", "", 7, 1500, 3);

    std::string exported = w.dir.file("export.passwd");
    mft::write_file(exported,
                    "anna@example.com:{PLAIN}anna-pw-1::::::\n"
                    "bob@example.com:{PLAIN}bob-pw-1::::::\n",
                    0600);
    auto imp = mailferry(w.config, {"import", exported, "--format", "dovecot-passwd-file"});
    INFO(imp.out, imp.err);
    REQUIRE(imp.exit_code == 0);
    REQUIRE(w.account("anna@example.com")->state == AccountState::verified);

    // Without --imported nothing is chosen; a dry run changes nothing.
    CHECK(mailferry(w.config, {"copy-all"}).exit_code == 2);
    auto dry = mailferry(w.config, {"copy-all", "--imported", "--dry-run", "--json"});
    INFO(dry.out, dry.err);
    CHECK(dry.exit_code == 0);
    CHECK(nlohmann::json::parse(dry.out)["accounts"].size() == 2);
    CHECK(w.account("anna@example.com")->state == AccountState::verified);
    CHECK(w.jobs().empty());

    auto run = mailferry(w.config, {"copy-all", "--imported"});
    INFO(run.out, run.err);
    CHECK(run.exit_code == 0);
    CHECK(has(run.out, "anna@example.com  queued"));
    CHECK(w.account("bob@example.com")->state == AccountState::provisioned);
    CHECK(w.jobs().size() == 2);
    // A second run has nothing left to do.
    CHECK(has(mailferry(w.config, {"copy-all", "--imported"}).out, "no imported account waits"));

    auto worker = w.start_worker();
    INFO("worker log:\n", mft::read_file(worker.log));
    REQUIRE(w.wait_state({"anna@example.com", "bob@example.com"}, AccountState::synced, 90s));
    CHECK(wt::counts(*w.fresh, "anna@example.com") == wt::counts(w.old, "anna@example.com"));
    CHECK(wt::counts(*w.fresh, "bob@example.com") == wt::counts(w.old, "bob@example.com"));
    CHECK(wt::counts(*w.fresh, "anna@example.com")["Archive"] == 4);
    CHECK_FALSE(std::filesystem::exists(w.spool_dir() + "/anna@example.com.sealed"));
    worker.signal(SIGTERM);
    CHECK(worker.wait(15s) == 0);
    CHECK(wt::find_secrets(worker.log, {om.password, w.master_password}).empty());

    // The user's first login is checked against the imported hash, the old server idle.
    CHECK(ok_reply(wt::imap_login(w.fresh->imap_port(), "anna", "anna-pw-1")));
    CHECK_FALSE(ok_reply(wt::imap_login(w.fresh->imap_port(), "anna", "wrong")));
}

TEST_CASE("copy-all --imported: configs that cannot copy without passwords are refused") {
    OldMaster om;
    wt::WorldOptions o;
    o.users = {{"carl@example.com", "carl-pw-1"}};
    o.provider_extra = om.provider();
    wt::World w(o);
    std::string base = mft::read_file(w.config);

    // The new server logs in with each user's own password: refused, nothing changed.
    std::string no_master = w.dir.file("no-target-master.toml");
    std::string text = base;
    auto at = text.find("master_user = \"" + wt::kMasterUser + "\"");
    REQUIRE(at != std::string::npos);
    text.erase(at, text.find('\n', at) - at);
    at = text.find("master_password_file = \"" + w.state);
    REQUIRE(at != std::string::npos);
    text.erase(at, text.find('\n', at) - at);
    mft::write_file(no_master, text, 0644);
    auto r = mailferry(no_master, {"copy-all", "--imported"});
    CHECK(r.exit_code == 2);
    CHECK(has(r.err, "set target.master_user"));

    // provider.master_user without its password file, and on a POP3 old server.
    std::string half = w.dir.file("half.toml");
    std::string h = base;
    h.replace(h.find("master_password_file = \"" + om.secret + "\""),
              std::string("master_password_file = \"" + om.secret + "\"").size(), "");
    mft::write_file(half, h, 0644);
    auto hr = mailferry(half, {"check-config"});
    CHECK(hr.exit_code == 2);
    CHECK(has(hr.err, "needs provider.master_password_file as well"));
    std::string pop = w.dir.file("pop.toml");
    std::string p = base;
    p.replace(p.find("protocol = \"imap\""), std::string("protocol = \"imap\"").size(),
              "protocol = \"pop3\"");
    mft::write_file(pop, p, 0644);
    auto pr = mailferry(pop, {"check-config"});
    CHECK(pr.exit_code == 2);
    CHECK(has(pr.err, "is for an IMAP old server, found protocol = \"pop3\""));
}
