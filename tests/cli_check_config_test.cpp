// cli_check_config_test.cpp — runs the built `mailferry check-config` program.
//
// The example config must pass ("ok", a summary, exit 0, same facts with --json); every
// kind of config error must exit 2 with "FILE:LINE: key: detail" on stderr and nothing on
// stdout; global options work before and after the command; usage errors exit 2.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "support/test_env.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

const std::string kProgram = mft::program_path("external-auth", "mailferry");
const std::string kExample = std::string(MF_SOURCE_DIR) + "/examples/mailferry.toml";

struct Dir {
    mft::TempDir tmp{"mf-cli"};
    [[nodiscard]] std::string file(const std::string& name) const { return tmp.file(name); }
    std::string write(const std::string& name, const std::string& text,
                      unsigned mode = 0644) const {
        mft::write_file(tmp.file(name), text, mode);
        return tmp.file(name);
    }
};

// Runs the program with `args` (no shell); `env` is added to the test's environment.
mft::RunResult run(const std::vector<std::string>& args,
                   const std::map<std::string, std::string>& env = {}) {
    std::vector<std::string> argv{kProgram};
    argv.insert(argv.end(), args.begin(), args.end());
    return mft::run(argv, "", std::chrono::seconds(60), env);
}

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

const std::string kProvider = "[[provider]]\n"
                              "name = \"old\"\n"
                              "domains = [\"example.org\"]\n"
                              "host = \"imap.example.org\"\n";

} // namespace

TEST_CASE("the program was built") {
    REQUIRE_MESSAGE(::access(kProgram.c_str(), X_OK) == 0,
                    kProgram << " is missing: build the mailferry-cli target");
}

TEST_CASE("the example config is ok") {
    mft::RunResult r = run({"check-config", "--config", kExample});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out.rfind("ok\n", 0) == 0);
    CHECK(has(r.out, "config       " + kExample + "\n"));
    CHECK(
        has(r.out, "store        /var/lib/mailferry/mailferry.db (locks /var/lib/mailferry/locks"));
    CHECK(has(r.out, "provider     old-imap: imap mail.example.org:993 tls implicit, domains "
                     "example.org, example.net\n"));
    CHECK(has(r.out, "identity     default domain example.org"));
    CHECK(has(r.out, "renames example.net -> example.com"));
    CHECK(has(r.out, "hash         argon2id (ops 2, memory 65536 KiB)\n"));
    CHECK(has(r.out, "provisioner  dovecot-passwd-file /etc/dovecot/users"));
    CHECK(has(r.out, "guard        5 failures per account and address, 50 per address, within "
                     "15m (then TEMPFAIL)"));
    CHECK(has(r.out, "old-server budget 10 wrong passwords per account (clean addresses up to "
                     "20); negative cache 5m"));
    CHECK(has(r.out, "log          info\n"));
    CHECK_FALSE(has(r.out, "warning"));
    // One screen.
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') < 25);
}

TEST_CASE("--json gives the same facts as one document") {
    mft::RunResult r = run({"--json", "check-config", "--config", kExample});
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.empty());
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["ok"] == true);
    CHECK(j["config"] == kExample);
    CHECK(j["store"]["path"] == "/var/lib/mailferry/mailferry.db");
    CHECK(j["store"]["busy_timeout"] == "5s");
    REQUIRE(j["providers"].size() == 1);
    CHECK(j["providers"][0]["name"] == "old-imap");
    CHECK(j["providers"][0]["protocol"] == "imap");
    CHECK(j["providers"][0]["port"] == 993);
    CHECK(j["providers"][0]["tls"] == "implicit");
    CHECK(j["providers"][0]["domains"] == nlohmann::json({"example.org", "example.net"}));
    CHECK(j["identity"]["domain_renames"]["example.net"] == "example.com");
    CHECK(j["hash"]["scheme"] == "argon2id");
    CHECK(j["provisioner"]["type"] == "dovecot-passwd-file");
    CHECK(j["provisioner"]["uid"] == "5000");
    CHECK(j["guard"]["window"] == "15m");
    CHECK(j["log"]["level"] == "info");
    CHECK(j["warnings"].empty());
}

TEST_CASE("--config and --json work before or after the command; $MAILFERRY_CONFIG too") {
    Dir dir;
    std::string cfg = dir.write("m.toml", kProvider);
    for (const auto& args :
         std::vector<std::vector<std::string>>{{"--config", cfg, "check-config"},
                                               {"check-config", "--config", cfg},
                                               {"check-config", "--config=" + cfg}}) {
        mft::RunResult r = run(args);
        CHECK(r.exit_code == 0);
        CHECK(has(r.out, "config       " + cfg + "\n"));
    }
    mft::RunResult env = run({"check-config"}, {{"MAILFERRY_CONFIG", cfg}});
    CHECK(env.exit_code == 0);
    CHECK(has(env.out, "config       " + cfg + "\n"));
    // --config beats the environment.
    mft::RunResult both =
        run({"check-config", "--config", cfg}, {{"MAILFERRY_CONFIG", dir.file("none")}});
    CHECK(both.exit_code == 0);
    mft::RunResult after = run({"check-config", "--json"}, {{"MAILFERRY_CONFIG", cfg}});
    CHECK(after.exit_code == 0);
    CHECK(nlohmann::json::parse(after.out)["config"] == cfg);
}

TEST_CASE("every kind of config error exits 2 naming file:line: key") {
    Dir dir;
    struct Case {
        const char* name;
        std::string text;
        std::string where; // after "FILE"
        std::string detail;
    };
    const Case cases[] = {
        {"unknown key", kProvider + "hostname = \"x\"\n", ":5: provider.hostname", "unknown key"},
        {"unknown section", kProvider + "[frobnicate]\ndir = \"/x\"\n", ":5: frobnicate",
         "unknown section"},
        {"wrong type", kProvider + "port = \"993\"\n", ":5: provider.port",
         "expected an integer from 1 to 65535, found \"993\""},
        {"out of range", kProvider + "max_concurrent = 0\n", ":5: provider.max_concurrent",
         "from 1 to 1000, found 0"},
        {"bad duration", kProvider + "timeout = \"soon\"\n", ":5: provider.timeout",
         "expected a duration"},
        {"enum", kProvider + "tls = \"ssl\"\n", ":5: provider.tls",
         "expected one of implicit, starttls, none; found \"ssl\""},
        {"missing host", "[[provider]]\nname = \"a\"\ndomains = [\"a.example\"]\n",
         ":1: provider.host", "missing"},
        {"no provider", "[log]\nlevel = \"info\"\n", ": provider", "at least one [[provider]]"},
        {"duplicate name",
         kProvider + "[[provider]]\nname = \"old\"\ndomains = [\"b.example\"]\nhost = \"h\"\n",
         ":6: provider.name", "already the name of the provider at line 2"},
        {"domain twice",
         kProvider + "[[provider]]\nname = \"b\"\ndomains = [\"example.org\"]\nhost = \"h\"\n",
         ":7: provider.domains", "already served by provider \"old\""},
        {"provisioner needs a file", kProvider + "[provisioner]\ntype = \"dovecot-passwd-file\"\n",
         ":6: provisioner.passwd_file", "needs it"},
        {"TOML syntax", kProvider + "port = \n", ":5", "TOML syntax"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        std::string cfg = dir.write("bad.toml", c.text);
        mft::RunResult r = run({"check-config", "--config", cfg});
        CHECK(r.exit_code == 2);
        CHECK(r.out.empty());
        CHECK_MESSAGE(r.err.rfind(cfg + c.where + ": ", 0) == 0, r.err);
        CHECK_MESSAGE(has(r.err, c.detail), r.err);

        mft::RunResult j = run({"--json", "check-config", "--config", cfg});
        CHECK(j.exit_code == 2);
        auto doc = nlohmann::json::parse(j.out);
        CHECK(doc["ok"] == false);
        CHECK(doc["error"]["what"] == cfg + c.where);
        CHECK(has(doc["error"]["detail"].get<std::string>(), c.detail));
    }
}

TEST_CASE("unreadable config and a bad conflict map exit 2") {
    Dir dir;
    mft::RunResult missing = run({"check-config", "--config", dir.file("none.toml")});
    CHECK(missing.exit_code == 2);
    CHECK(missing.out.empty());
    CHECK(missing.err == "open(" + dir.file("none.toml") + ") failed: No such file or directory\n");

    mft::RunResult directory = run({"check-config", "--config", dir.file("")});
    CHECK(directory.exit_code == 2);
    CHECK(has(directory.err, "Is a directory"));

    std::string map = dir.write("conflicts", "anna anna.b\nbob\n");
    std::string cfg =
        dir.write("m.toml", kProvider + "[identity]\ndefault_domain = \"example.org\"\n"
                                        "conflict_map = \"conflicts\"\n");
    mft::RunResult r = run({"check-config", "--config", cfg});
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK_MESSAGE(r.err.rfind(map + ":2: ", 0) == 0, r.err);
    CHECK(has(r.err, "two fields"));

    mft::RunResult no_map =
        run({"check-config", "--config",
             dir.write("n.toml", kProvider + "[identity]\nconflict_map = \"nothere\"\n")});
    CHECK(no_map.exit_code == 2);
    CHECK(has(no_map.err, "identity.conflict_map: open(" + dir.file("nothere") + ") failed"));
}

TEST_CASE("warnings are printed after ok") {
    Dir dir;
    std::string token = dir.write("token", "secret-token-value\n", 0644);
    std::string cfg =
        dir.write("m.toml", kProvider + "tls = \"none\"\n[provisioner]\ntype = \"http\"\n"
                                        "url = \"https://admin.example/api\"\n"
                                        "token_file = \"token\"\n");
    mft::RunResult r = run({"check-config", "--config", cfg});
    CHECK(r.exit_code == 0);
    CHECK(r.out.rfind("ok\n", 0) == 0);
    CHECK(has(r.out, "warning: " + cfg +
                         ":5: provider.tls: provider \"old\" has tls = \"none\": each user's own "
                         "password goes in clear text to the old server imap.example.org:143, at "
                         "the first-login check and at every copy login\n"));
    CHECK(has(r.out,
              "warning: provisioner.token_file: " + token + " holds a secret but has mode 0644"));
    CHECK(has(r.out, "provider     old: imap imap.example.org:143 tls none"));
    CHECK_FALSE(has(r.out, "secret-token-value"));
    mft::RunResult j = run({"--json", "check-config", "--config", cfg});
    CHECK(j.exit_code == 0);
    CHECK(nlohmann::json::parse(j.out)["warnings"].size() == 2);
    CHECK_FALSE(has(j.out, "secret-token-value"));
}

TEST_CASE("every clear-text password path is a warning naming file:line, key and whose") {
    Dir dir;
    std::string master = dir.write("master", "pw\n", 0600);
    std::string cfg =
        dir.write("c.toml", kProvider +
                                "tls = \"none\"\n"                                       // line 5
                                "[provisioner]\ntype = \"http\"\n"                       // 6, 7
                                "url = \"http://127.0.0.1:8080/api\"\n"                  // 8
                                "[target]\nhost = \"new.example.org\"\ntls = \"none\"\n" // 9-11
                                "master_user = \"mf\"\nmaster_password_file = \"" +
                                master + "\"\n");
    mft::RunResult r = run({"check-config", "--config", cfg});
    CHECK(r.exit_code == 0);
    CHECK_MESSAGE(has(r.out, "warning: " + cfg +
                                 ":5: provider.tls: provider \"old\" has tls = "
                                 "\"none\": each user's own password"),
                  r.out);
    CHECK_MESSAGE(has(r.out, "warning: " + cfg +
                                 ":11: target.tls: tls = \"none\" with "
                                 "master_user = \"mf\": the master password"),
                  r.out);
    CHECK(has(r.out, "new.example.org:143 at every copy login\n"));
    CHECK_MESSAGE(has(r.out, "warning: " + cfg +
                                 ":8: provisioner.url: http://127.0.0.1:8080/api "
                                 "is not https: each new account's password"),
                  r.out);
    CHECK_FALSE(has(r.out, "pw\n"));

    // Without master_user the users' own passwords go to the new server.
    std::string own = dir.write("o.toml", kProvider + "[target]\nhost = \"new.example.org\"\n"
                                                      "tls = \"none\"\n");
    mft::RunResult o = run({"check-config", "--config", own});
    CHECK(o.exit_code == 0);
    CHECK_MESSAGE(has(o.out, "warning: " + own +
                                 ":7: target.tls: tls = \"none\" without "
                                 "master_user: each user's own password goes in "
                                 "clear text to the new server new.example.org:143"),
                  o.out);
    mft::RunResult j = run({"--json", "check-config", "--config", cfg});
    CHECK(nlohmann::json::parse(j.out)["warnings"].size() == 3);
}

TEST_CASE("usage errors exit 2, help exits 0") {
    mft::RunResult none = run({});
    CHECK(none.exit_code == 2);
    CHECK(has(none.err, "subcommand is required"));
    mft::RunResult unknown = run({"frobnicate"});
    CHECK(unknown.exit_code == 2);
    mft::RunResult bad_option = run({"check-config", "--bogus"});
    CHECK(bad_option.exit_code == 2);
    CHECK(has(bad_option.err, "--bogus"));
    mft::RunResult no_value = run({"check-config", "--config"});
    CHECK(no_value.exit_code == 2);
    mft::RunResult help = run({"--help"});
    CHECK(help.exit_code == 0);
    CHECK(has(help.out, "check-config"));
    CHECK(has(help.out, "--config"));
    mft::RunResult sub_help = run({"check-config", "--help"});
    CHECK(sub_help.exit_code == 0);
    CHECK(has(sub_help.out, "Examples:"));
}
