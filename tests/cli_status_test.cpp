// cli_status_test.cpp — runs the built `mailferry status` program.
//
// Without a store: "no accounts yet", exit 0 (a user: exit 1). With accounts in every
// state over two old servers: the counts per state and server and the campaign buckets,
// as text and JSON. An unknown user: exit 1 with a clear message. End to end on two real
// Dovecots (migration_world.hpp): one user logs in at the new server, another is imported
// and then logs in with the imported hash; after the worker's copy, `status USER` shows
// first and last login, the job's runs and result, and the copier's progress (folders,
// messages, bytes) matching what the old server holds.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/store.hpp"
#include "support/migration_world.hpp"
#include "support/test_env.hpp"

#include <nlohmann/json.hpp>

using namespace std::chrono_literals;
using mf::AccountState;

namespace {

const std::string kProgram = mft::program_path("external-auth", "mailferry");

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

mft::RunResult status(const std::string& config, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{kProgram, "status", "--config", config};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return mft::run(argv);
}

struct Dir {
    mft::TempDir tmp{"mf-status"};
    std::string config;
    Dir() {
        config = tmp.file("mailferry.toml");
        mft::write_file(config, "[store]\npath = \"" + tmp.file("mf.db") +
                                    "\"\n[identity]\ndefault_domain = \"example.com\"\n"
                                    "[[provider]]\nname = \"old\"\ndomains = [\"example.com\"]\n"
                                    "host = \"imap.example.com\"\n"
                                    "[[provider]]\nname = \"legacy\"\ndomains = [\"example.net\"]\n"
                                    "host = \"pop.example.net\"\n");
    }
};

void add(mf::Store& s, const std::string& name, const std::string& provider, AccountState st,
         const std::string& error = {}) {
    mf::Account a;
    a.name = name;
    a.provider = provider;
    a.state = AccountState::provisioned;
    a.hash = "{PLAIN}secret-hash-value";
    REQUIRE(s.create_account(a, {"test", "", "first login"}).ok());
    if (st != AccountState::provisioned) {
        REQUIRE(s.set_state(name, st, {"test", "", error}).ok());
    }
}

} // namespace

TEST_CASE("the program was built") {
    REQUIRE_MESSAGE(::access(kProgram.c_str(), X_OK) == 0, kProgram << " is missing");
}

TEST_CASE("no store yet: no accounts, exit 0; a user is unknown, exit 1") {
    Dir d;
    auto r = status(d.config);
    CHECK(r.exit_code == 0);
    CHECK(has(r.out, "no accounts yet"));
    auto j = nlohmann::json::parse(status(d.config, {"--json"}).out);
    CHECK(j["store_exists"] == false);
    CHECK(j["total"] == 0);
    auto u = status(d.config, {"anna"});
    CHECK(u.exit_code == 1);
    CHECK(has(u.err, "anna@example.com"));
    CHECK(has(u.err, "no accounts yet"));
    CHECK(::access(d.tmp.file("mf.db").c_str(), F_OK) != 0); // status created nothing
}

TEST_CASE("counts per state and old server, and the campaign line") {
    Dir d;
    {
        auto s = mf::open_sqlite_store(d.tmp.file("mf.db"), mf::Millis(5000));
        REQUIRE(s.ok());
        auto& st = **s;
        REQUIRE(st.import_accounts({{"ivy@example.com", "old", "{PLAIN}x", "test"},
                                    {"ida@example.net", "legacy", "{PLAIN}y", "test"}},
                                   "test")
                    .ok());
        add(st, "anna@example.com", "old", AccountState::synced);
        add(st, "bob@example.com", "old", AccountState::cutover);
        add(st, "carl@example.com", "old", AccountState::copying);
        add(st, "dora@example.net", "legacy", AccountState::provisioned);
        add(st, "erik@example.net", "legacy", AccountState::failed, "copy failed: boom");
        add(st, "fred@example.net", "legacy", AccountState::disabled);
    }
    auto r = status(d.config);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(has(r.out, "accounts  8 in "));
    CHECK(has(r.out, "campaign  migrated 2, copying 2, failed 1, not yet seen 2, disabled 1\n"));
    CHECK(has(r.out, "not yet seen = imported but never logged in"));
    CHECK(has(r.out, "old server  verified  provisioned  copying  synced  failed  cutover  "
                     "disabled  total\n"));
    CHECK(has(r.out, "legacy      1         1            0        0       1       0        1    "
                     "     4\n"));
    CHECK(has(r.out, "all         2         1            1        1       1       1        1    "
                     "     8\n"));
    CHECK_FALSE(has(r.out, "secret-hash-value"));

    auto j = nlohmann::json::parse(status(d.config, {"--json"}).out);
    CHECK(j["total"] == 8);
    CHECK(j["campaign"]["migrated"] == 2);
    CHECK(j["campaign"]["not_seen"] == 2);
    CHECK(j["states"]["verified"] == 2);
    REQUIRE(j["providers"].size() == 2);
    CHECK(j["providers"][0]["provider"] == "legacy");
    CHECK(j["providers"][0]["states"]["failed"] == 1);

    auto erik = status(d.config, {"erik@example.net", "--json"});
    REQUIRE(erik.exit_code == 0);
    auto e = nlohmann::json::parse(erik.out);
    CHECK(e["state"] == "failed");
    CHECK(e["provider"] == "legacy");
    CHECK(e["copy"]["exists"] == false);
    CHECK_FALSE(has(erik.out, "secret-hash-value"));

    auto ivy = status(d.config, {"ivy"});
    CHECK(ivy.exit_code == 0);
    CHECK(has(ivy.out, "first login  never"));
    CHECK(has(ivy.out, "state        verified"));

    auto nobody = status(d.config, {"nobody"});
    CHECK(nobody.exit_code == 1);
    CHECK(has(nobody.err, "nobody@example.com: no such account"));
    auto garbage = status(d.config, {"a b@c"});
    CHECK(garbage.exit_code == 1);
    auto bad_config = status(d.tmp.file("missing.toml"));
    CHECK(bad_config.exit_code == 2);
}

TEST_CASE("an account an older version stored under another letter case is found by any "
          "spelling") {
    Dir d;
    {
        auto s = mf::open_sqlite_store(d.tmp.file("mf.db"), mf::Millis(5000));
        REQUIRE(s.ok());
        add(**s, "Greta@example.com", "old", AccountState::synced);
    }
    for (const std::string user : {"greta", "GRETA@Example.com", "Greta"}) {
        auto r = status(d.config, {user, "--json"});
        REQUIRE_MESSAGE(r.exit_code == 0, user << ": " << r.err);
        auto j = nlohmann::json::parse(r.out);
        CHECK(j["account"] == "Greta@example.com");
        CHECK(j["state"] == "synced");
    }
}

TEST_CASE("one user end to end: logins, job, the copier's progress (real Dovecots)") {
    wt::WorldOptions o;
    o.users = {{"anna@example.com", "anna-old-pw"}, {"bob@example.com", "bob-old-pw"}};
    wt::World w(o);
    wt::fill_mailbox(w.old, "anna@example.com", "", 12, 4000, 1);
    wt::fill_mailbox(w.old, "anna@example.com", "Sent", 3, 2000, 2);
    wt::fill_mailbox(w.old, "bob@example.com", "", 4, 3000, 3);

    // bob is imported (state verified) with the hash the old server has.
    mft::write_file(w.dir.file("users"), "bob@example.com:{PLAIN}bob-old-pw\n", 0600);
    auto imp = mft::run({kProgram, "import", w.dir.file("users"), "--format", "dovecot-passwd-file",
                         "--config", w.config});
    REQUIRE_MESSAGE(imp.exit_code == 0, imp.err);
    auto before =
        nlohmann::json::parse(mft::run({kProgram, "--json", "status", "--config", w.config}).out);
    CHECK(before["campaign"]["not_seen"] == 1);

    auto worker = w.start_worker();
    REQUIRE(wt::imap_login(w.fresh->imap_port(), "anna", "anna-old-pw").rfind("a1 OK", 0) == 0);
    REQUIRE(wt::imap_login(w.fresh->imap_port(), "bob", "bob-old-pw").rfind("a1 OK", 0) == 0);
    INFO("worker log:\n", mft::read_file(worker.log));
    REQUIRE(w.wait_state({"anna@example.com", "bob@example.com"}, AccountState::synced, 60s));

    auto r = mft::run({kProgram, "--json", "status", "anna", "--config", w.config});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["state"] == "synced");
    CHECK(j["first_login"] != "");
    CHECK(j["last_login"] != "");
    CHECK(j["runs"].get<int>() >= 1);
    CHECK(has(j["job"]["last_result"].get<std::string>(), "copied 15 messages"));
    CHECK(j["copy"]["exists"] == true);
    CHECK(j["copy"]["problem"] == "");
    CHECK(j["copy"]["messages_copied"] == 15);
    CHECK(j["copy"]["folders"].get<int>() >= 2);
    CHECK(j["copy"]["folders_complete"] == j["copy"]["folders"]);
    CHECK(j["copy"]["bytes_copied"].get<long>() > 15 * 2000);
    CHECK(j["last_error"] == "");

    // The imported account's first login provisioned it and queued its copy.
    auto b = nlohmann::json::parse(
        mft::run({kProgram, "--json", "status", "bob", "--config", w.config}).out);
    CHECK(b["state"] == "synced");
    CHECK(b["first_login"] != "");
    CHECK(b["copy"]["messages_copied"] == 4);

    auto text = mft::run({kProgram, "status", "anna", "--config", w.config});
    CHECK(has(text.out, "copy state   "));
    CHECK(has(text.out, "15 messages ("));
    auto all =
        nlohmann::json::parse(mft::run({kProgram, "--json", "status", "--config", w.config}).out);
    CHECK(all["campaign"]["migrated"] == 2);
    CHECK(all["campaign"]["not_seen"] == 0);
}
