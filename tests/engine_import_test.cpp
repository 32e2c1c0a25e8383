// engine_import_test.cpp — the first login of an account imported with its old hash
// (`mailferry import`, state verified): the password is checked against the imported
// hash without asking the old server, then the account is provisioned on the new server,
// rehashed, moved to `provisioned` and its copy queued (real spool keys, real job queue),
// and the answer says first login. A wrong password is FAIL with nothing changed; a hash
// we cannot verify here still goes to the old server (a real Dovecot on loopback).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/engine.hpp"
#include "mailferry/password.hpp"
#include "mailferry/spool.hpp"
#include "support/dovecot_server.hpp"
#include "support/test_env.hpp"

#include <algorithm>
#include <thread>
#include <vector>

using namespace mf;
using namespace std::chrono_literals;

namespace {

// The provider block points at an old server; the command provisioner appends each
// account it creates to created.log; [target] makes the engine queue copies.
std::string write_config(const mft::TempDir& dir, const std::string& provider_block) {
    mft::write_file(dir.file("create.sh"),
                    "#!/bin/sh\necho \"$1\" >> " + dir.file("created.log") + "\n", 0755);
    std::string text =
        "[store]\npath = \"" + dir.file("mf.db") +
        "\"\nbusy_timeout = \"5s\"\n\n"
        "[identity]\ndefault_domain = \"example.com\"\n\n"
        "[[provider]]\nname = \"old\"\ndomains = [\"example.com\"]\n" +
        provider_block +
        "\n[hash]\nscheme = \"argon2id\"\nargon2_ops = 1\nargon2_memory_kib = 8192\n\n"
        "[provisioner]\ntype = \"command\"\ncommand = [\"" +
        dir.file("create.sh") +
        "\"]\n\n[guard]\nmax_failures_per_account = 5\nmax_failures_per_ip = 50\n"
        "\n[target]\nhost = \"127.0.0.1\"\n";
    auto path = dir.file("mailferry.toml");
    mft::write_file(path, text, 0644);
    return path;
}

std::string silent_block(const mft::SilentServer& silent) {
    // Any contact with this "old server" hangs until the timeout: TEMPFAIL.
    return "protocol = \"imap\"\nhost = \"127.0.0.1\"\nport = " + std::to_string(silent.port()) +
           "\ntls = \"none\"\ntimeout = \"2s\"\n";
}

std::unique_ptr<Engine> open_engine(const std::string& config) {
    auto e = Engine::open(config);
    REQUIRE_MESSAGE(e.ok(), (e.ok() ? "" : e.error().message()));
    auto& cfg = (*e)->config();
    spool::KeyFiles kf{cfg.spool.public_key_file, cfg.spool.secret_key_file, {}, {}};
    if (::access(kf.public_key_file.c_str(), F_OK) != 0) {
        REQUIRE(spool::generate_keys(kf, false).ok());
    }
    return std::move(*e);
}

AuthResult login(Engine& e, std::string_view user, std::string_view pw) {
    return e.authenticate(AuthRequest{user, pw, "imap", "192.0.2.10", "test"});
}

// An account as `mailferry import` leaves it: state verified, the old server's hash.
void import_account(Store& store, const std::string& name, const std::string& hash) {
    auto r = store.import_accounts({ImportEntry{name, "old", hash, "imported from test"}},
                                   "admin:import");
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));
    REQUIRE(r->at(0) == ImportOutcome::created);
}

std::string legacy_hash(const char* password) {
    HashConfig h;
    h.scheme = HashScheme::sha512_crypt;
    h.sha512_rounds = 1000;
    auto made = make_hash(Secret(password), h);
    REQUIRE(made.ok());
    return *made;
}

std::string created_log(const mft::TempDir& dir) {
    return ::access(dir.file("created.log").c_str(), F_OK) == 0
               ? mft::read_file(dir.file("created.log"))
               : std::string();
}

} // namespace

TEST_CASE("an imported account's first login: verified locally, provisioned, copy queued") {
    mft::TempDir dir;
    mft::SilentServer silent;
    auto engine = open_engine(write_config(dir, silent_block(silent)));
    const std::string old_hash = legacy_hash("imported pw");
    import_account(engine->store(), "anna@example.com", old_hash);

    auto t0 = std::chrono::steady_clock::now();
    auto r = login(*engine, "anna", "imported pw");
    REQUIRE_MESSAGE(r.status == AuthStatus::ok, r.message);
    CHECK(std::chrono::steady_clock::now() - t0 < 2s); // the old server was not asked
    CHECK(r.first_login);
    CHECK(r.user == "anna@example.com");
    CHECK(r.message.find("imported hash") != std::string::npos);

    auto acct = engine->store().find_account("anna@example.com");
    REQUIRE(acct->has_value());
    CHECK((**acct).state == AccountState::provisioned);
    CHECK((**acct).hash.rfind("{ARGON2ID}", 0) == 0); // rehashed to the configured scheme
    CHECK((**acct).last_login > 0);
    CHECK(created_log(dir) == "anna@example.com\n"); // the provisioner ran

    // The provisioned hook ran: a login-priority copy job and a sealed spool entry.
    auto job = engine->store().active_job("anna@example.com");
    REQUIRE(job->has_value());
    CHECK((**job).priority == kPriorityLogin);
    CHECK((**job).kind == JobKind::copy);
    const Config& cfg = engine->config();
    auto op = spool::Opener::load(cfg.spool.secret_key_file);
    REQUIRE(op.ok());
    auto pw = spool::load_password(*op, spool::Spool(cfg.spool.dir), "anna@example.com");
    REQUIRE(pw.ok());
    CHECK(pw->view() == "imported pw");

    auto audit = engine->store().audit_log("anna@example.com");
    REQUIRE(audit.ok());
    bool provisioned_row = false;
    for (const auto& a : *audit) {
        provisioned_row = provisioned_row || (a.to_state == "provisioned" &&
                                              a.detail.find("imported hash") != std::string::npos);
        CHECK(a.detail.find("imported pw") == std::string::npos);
    }
    CHECK(provisioned_row);

    // The next login is an ordinary local one: no second provisioning.
    auto again = login(*engine, "anna", "imported pw");
    CHECK_MESSAGE(again.status == AuthStatus::ok, again.message);
    CHECK_FALSE(again.first_login);
    CHECK(created_log(dir) == "anna@example.com\n");
    CHECK(login(*engine, "anna", "wrong").status == AuthStatus::fail);
}

TEST_CASE("an imported account with a wrong password: FAIL, nothing provisioned or queued") {
    mft::TempDir dir;
    mft::SilentServer silent;
    auto engine = open_engine(write_config(dir, silent_block(silent)));
    const std::string old_hash = legacy_hash("right one");
    import_account(engine->store(), "bob@example.com", old_hash);

    auto r = login(*engine, "bob", "wrong one");
    CHECK(r.status == AuthStatus::fail);
    CHECK(r.message.find("imported hash") != std::string::npos);
    auto acct = engine->store().find_account("bob@example.com");
    REQUIRE(acct->has_value());
    CHECK((**acct).state == AccountState::verified);
    CHECK((**acct).hash == old_hash);
    CHECK((**acct).last_login == 0);
    CHECK(created_log(dir).empty());
    CHECK_FALSE(engine->store().active_job("bob@example.com")->has_value());
}

TEST_CASE("an imported hash we cannot verify: the old server decides, then provisioned") {
    mft::TempDir dir;
    mft::DovecotOptions o;
    o.label = "old";
    o.users = {{"carl@example.com", "carl-old-pw"}, {"dora@example.com", "dora-old-pw"}};
    mft::DovecotServer old(o);
    std::string block =
        "protocol = \"imap\"\nhost = \"localhost\"\nport = " + std::to_string(old.imaps_port()) +
        "\ntls = \"implicit\"\nca_file = \"" + old.ca_file() + "\"\ntimeout = \"5s\"\n";
    auto engine = open_engine(write_config(dir, block));
    // {WM-CRY}: no published spec, never verifiable locally.
    import_account(engine->store(), "carl@example.com", "{WM-CRY}abcdef0123");
    import_account(engine->store(), "dora@example.com", "{WM-CRY}abcdef0123");

    CHECK(login(*engine, "dora", "not dora's").status == AuthStatus::fail);
    CHECK((**engine->store().find_account("dora@example.com")).state == AccountState::verified);

    auto r = login(*engine, "carl", "carl-old-pw");
    REQUIRE_MESSAGE(r.status == AuthStatus::ok, r.message);
    CHECK(r.first_login);
    CHECK(r.message.find("verified at old") != std::string::npos);
    auto acct = engine->store().find_account("carl@example.com");
    CHECK((**acct).state == AccountState::provisioned);
    CHECK((**acct).hash.rfind("{ARGON2ID}", 0) == 0);
    CHECK(engine->store().active_job("carl@example.com")->has_value());
    CHECK(created_log(dir) == "carl@example.com\n");
}

TEST_CASE("eight simultaneous first logins of one imported account provision it once") {
    mft::TempDir dir;
    mft::SilentServer silent;
    auto engine = open_engine(write_config(dir, silent_block(silent)));
    import_account(engine->store(), "erik@example.com", legacy_hash("erik pw"));
    std::vector<std::thread> threads;
    std::vector<AuthResult> results(8);
    for (std::size_t i = 0; i < results.size(); ++i) {
        threads.emplace_back([&, i] { results[i] = login(*engine, "erik", "erik pw"); });
    }
    for (auto& t : threads) {
        t.join();
    }
    int first = 0;
    for (const auto& r : results) {
        CHECK_MESSAGE(r.status == AuthStatus::ok, r.message);
        first += r.first_login ? 1 : 0;
    }
    CHECK(first == 1);
    CHECK(created_log(dir) == "erik@example.com\n");
    CHECK(engine->store().list_jobs(true)->size() == 1);
}
