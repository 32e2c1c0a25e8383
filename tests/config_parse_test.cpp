// config_parse_test.cpp — mailferry.toml: every key, every way to get it wrong.
//
// Each bad input must give an Error whose `what` is exactly "FILE:LINE: key.path" (the
// line of the offending key) and whose detail says what was expected and what was found.
// Also: the value helpers (durations, templates, ports, enum names, config path), file
// loading (unreadable files, relative paths, secret-file warnings) and that the example
// config documents every key and passes.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "../plugin/config_keys.hpp"
#include "mailferry/config.hpp"

#include "support/test_env.hpp"

#include <cstdlib>
#include <sys/stat.h>

using namespace mf;
using namespace std::chrono_literals;

namespace {

// Four lines: 1 [[provider]], 2 name, 3 domains, 4 host.
const std::string kProvider = "[[provider]]\n"
                              "name = \"old\"\n"
                              "domains = [\"example.org\"]\n"
                              "host = \"imap.example.org\"\n";

Config ok(const std::string& text) {
    auto r = parse_config(text, "t.toml");
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? std::string() : r.error().message()));
    return *r;
}

Error bad(const std::string& text) {
    auto r = parse_config(text, "t.toml");
    REQUIRE_MESSAGE(!r.ok(), "accepted:\n" << text);
    CHECK(r.error().scope == Scope::config);
    return r.error();
}

// The error's what must be exactly `what`, and its detail must contain `detail`.
void expect_error(const std::string& text, const std::string& what, const std::string& detail) {
    CAPTURE(text);
    Error e = bad(text);
    CHECK(e.what == what);
    CHECK_MESSAGE(e.detail.find(detail) != std::string::npos, e.detail);
}

// A temp dir with a helper to write a file of a given mode.
struct Dir {
    mft::TempDir tmp{"mf-config"};
    [[nodiscard]] std::string file(const std::string& name) const { return tmp.file(name); }
    void write(const std::string& name, const std::string& text, unsigned mode = 0644) const {
        mft::write_file(tmp.file(name), text, mode);
    }
};

} // namespace

TEST_CASE("a minimal config takes the documented defaults") {
    Config c = ok(kProvider);
    CHECK(c.source_path == "t.toml");
    CHECK(c.store.path == "/var/lib/mailferry/mailferry.db");
    CHECK(c.store.lock_dir == "/var/lib/mailferry/locks");
    CHECK(c.store.busy_timeout == 5s);
    REQUIRE(c.providers.size() == 1);
    const auto& p = c.providers[0];
    CHECK(p.name == "old");
    CHECK(p.domains == std::vector<std::string>{"example.org"});
    CHECK(p.host == "imap.example.org");
    CHECK(p.protocol == Protocol::imap);
    CHECK(p.tls == TlsMode::implicit);
    CHECK(p.port == 0);
    CHECK(p.effective_port() == 993);
    CHECK(p.verify_certificate);
    CHECK(p.timeout == 10s);
    CHECK(p.max_concurrent == 10);
    CHECK(p.login_form == LoginForm::full_address);
    CHECK(p.mechanism == SaslMech::automatic);
    CHECK(c.identity.default_domain.empty());
    CHECK(c.identity.accept_short_names);
    CHECK(c.identity.accept_full_address);
    CHECK_FALSE(c.identity.fold_local_part);
    CHECK(c.hash.scheme == HashScheme::argon2id);
    CHECK(c.provisioner.type == ProvisionerType::builtin);
    CHECK(c.guard.key_file == "/var/lib/mailferry/guard.key");
    CHECK(c.guard.window == 15min);
    CHECK(c.log.level == LogLevel::info);
    CHECK(c.warnings.empty());
}

TEST_CASE("every key is read into its field") {
    Config c = ok("[store]\n"
                  "path = \"/srv/mf/state.db\"\n"
                  "lock_dir = \"/run/mf-locks\"\n"
                  "busy_timeout = \"750ms\"\n"
                  "[[provider]]\n"
                  "name = \"pop-1\"\n"
                  "domains = [\"Example.ORG\", \"example.net\"]\n"
                  "protocol = \"pop3\"\n"
                  "host = \"pop.example.org\"\n"
                  "port = 1995\n"
                  "tls = \"starttls\"\n"
                  "ca_file = \"/etc/ssl/old-ca.pem\"\n"
                  "verify_certificate = false\n"
                  "timeout = 7\n"
                  "max_concurrent = 3\n"
                  "login_form = \"template\"\n"
                  "login_template = \"{local}%{domain}\"\n"
                  "mechanism = \"login\"\n"
                  "[[provider]]\n"
                  "name = \"smtp\"\n"
                  "domains = [\"example.com\"]\n"
                  "protocol = \"smtp\"\n"
                  "host = \"192.0.2.1\"\n"
                  "tls = \"none\"\n"
                  "login_form = \"local_part\"\n"
                  "mechanism = \"plain\"\n"
                  "[identity]\n"
                  "default_domain = \"EXAMPLE.org\"\n"
                  "accept_short_names = false\n"
                  "accept_full_address = true\n"
                  "fold_local_part = true\n"
                  "conflict_map = \"/etc/mf/conflicts\"\n"
                  "[identity.domain_renames]\n"
                  "\"Example.NET\" = \"New.Example\"\n"
                  "[hash]\n"
                  "scheme = \"yescrypt\"\n"
                  "argon2_ops = 3\n"
                  "argon2_memory_kib = 8192\n"
                  "sha512_rounds = 10000\n"
                  "yescrypt_cost = 7\n"
                  "[provisioner]\n"
                  "type = \"dovecot-passwd-file\"\n"
                  "passwd_file = \"/etc/dovecot/users\"\n"
                  "uid = 5000\n"
                  "gid = \"5001\"\n"
                  "home = \"/var/vmail/{domain}/{local}\"\n"
                  "extra_fields = \"userdb_mail=maildir:~/Maildir user={user}\"\n"
                  "timeout = \"2m\"\n"
                  "[guard]\n"
                  "max_failures_per_account = 4\n"
                  "max_failures_per_ip = 40\n"
                  "window = \"1h\"\n"
                  "negative_cache_ttl = \"0s\"\n"
                  "key_file = \"/etc/mf/guard.key\"\n"
                  "[result.extra_fields]\n"
                  "userdb_home = \"/var/vmail/{domain}/{local}\"\n"
                  "quota = \"1G\"\n"
                  "[log]\n"
                  "level = \"debug\"\n");
    CHECK(c.store.path == "/srv/mf/state.db");
    CHECK(c.store.lock_dir == "/run/mf-locks");
    CHECK(c.store.busy_timeout == 750ms);
    REQUIRE(c.providers.size() == 2);
    const auto& p = c.providers[0];
    CHECK(p.name == "pop-1");
    CHECK(p.domains == std::vector<std::string>{"example.org", "example.net"});
    CHECK(p.protocol == Protocol::pop3);
    CHECK(p.host == "pop.example.org");
    CHECK(p.port == 1995);
    CHECK(p.effective_port() == 1995);
    CHECK(p.tls == TlsMode::starttls);
    CHECK(p.ca_file == "/etc/ssl/old-ca.pem");
    CHECK_FALSE(p.verify_certificate);
    CHECK(p.timeout == 7s);
    CHECK(p.max_concurrent == 3);
    CHECK(p.login_form == LoginForm::templated);
    CHECK(p.login_template == "{local}%{domain}");
    CHECK(p.mechanism == SaslMech::login);
    const auto& q = c.providers[1];
    CHECK(q.protocol == Protocol::smtp);
    CHECK(q.tls == TlsMode::none);
    CHECK(q.effective_port() == 587);
    CHECK(q.login_form == LoginForm::local_part);
    CHECK(q.mechanism == SaslMech::plain);
    CHECK(c.identity.default_domain == "example.org");
    CHECK_FALSE(c.identity.accept_short_names);
    CHECK(c.identity.fold_local_part);
    CHECK(c.identity.conflict_map == "/etc/mf/conflicts");
    CHECK(c.identity.domain_renames ==
          std::map<std::string, std::string>{{"example.net", "new.example"}});
    CHECK(c.hash.scheme == HashScheme::yescrypt);
    CHECK(c.hash.argon2_ops == 3);
    CHECK(c.hash.argon2_memory_kib == 8192);
    CHECK(c.hash.sha512_rounds == 10000);
    CHECK(c.hash.yescrypt_cost == 7);
    CHECK(c.provisioner.type == ProvisionerType::dovecot_passwd_file);
    CHECK(c.provisioner.passwd_file == "/etc/dovecot/users");
    CHECK(c.provisioner.uid == "5000");
    CHECK(c.provisioner.gid == "5001");
    CHECK(c.provisioner.home == "/var/vmail/{domain}/{local}");
    CHECK(c.provisioner.extra_fields == "userdb_mail=maildir:~/Maildir user={user}");
    CHECK(c.provisioner.timeout == 2min);
    CHECK(c.guard.max_failures_per_account == 4);
    CHECK(c.guard.max_failures_per_ip == 40);
    CHECK(c.guard.window == 1h);
    CHECK(c.guard.negative_cache_ttl == 0ms);
    CHECK(c.guard.key_file == "/etc/mf/guard.key");
    CHECK(c.result.extra_fields ==
          std::map<std::string, std::string>{{"userdb_home", "/var/vmail/{domain}/{local}"},
                                             {"quota", "1G"}});
    CHECK(c.log.level == LogLevel::debug);
    // Both insecure settings are reported, and the deprecated fold_local_part, nothing else.
    REQUIRE(c.warnings.size() == 3);
    CHECK(c.warnings[0].find("verify_certificate = false") != std::string::npos);
    CHECK(c.warnings[1].find("identity.fold_local_part is deprecated") != std::string::npos);
    CHECK(c.warnings[2].rfind("t.toml:24: provider.tls: provider \"smtp\"", 0) == 0);
    CHECK(c.warnings[2].find("clear text") != std::string::npos);
}

TEST_CASE("the other provisioner types") {
    Config cmd = ok(kProvider + "[provisioner]\ntype = \"command\"\n"
                                "command = [\"/usr/sbin/mk\", \"-q\", \"-q\"]\ntimeout = 5\n");
    CHECK(cmd.provisioner.type == ProvisionerType::command);
    CHECK(cmd.provisioner.command == std::vector<std::string>{"/usr/sbin/mk", "-q", "-q"});
    CHECK(cmd.provisioner.timeout == 5s);

    Config http = ok(kProvider + "[provisioner]\ntype = \"http\"\n"
                                 "url = \"https://admin.example/api\"\nca_file = \"/etc/ca.pem\"\n"
                                 "verify_certificate = true\n");
    CHECK(http.provisioner.type == ProvisionerType::http);
    CHECK(http.provisioner.url == "https://admin.example/api");
    CHECK(http.provisioner.ca_file == "/etc/ca.pem");
    CHECK(http.warnings.empty());

    Config plain = ok(kProvider + "[provisioner]\ntype = \"http\"\nurl = \"http://10.0.0.1/x\"\n"
                                  "verify_certificate = false\n");
    REQUIRE(plain.warnings.size() == 2);
    CHECK(plain.warnings[0].find("verify_certificate = false") != std::string::npos);
    CHECK(plain.warnings[1].rfind("t.toml:7: provisioner.url: http://10.0.0.1/x is not https", 0) ==
          0);

    CHECK(ok(kProvider + "[hash]\nscheme = \"sha512-crypt\"\n").hash.scheme ==
          HashScheme::sha512_crypt);
}

TEST_CASE("every clear-text path of a password warns, naming the key, file:line and whose") {
    // One provider with TLS, one without: only the second warns, at its own tls line.
    Config two = ok(kProvider + "[[provider]]\nname = \"pop\"\ndomains = [\"example.net\"]\n"
                                "protocol = \"pop3\"\nhost = \"pop.example.net\"\n"
                                "tls = \"none\"\n");
    REQUIRE(two.warnings.size() == 1);
    CHECK(two.warnings[0] == "t.toml:10: provider.tls: provider \"pop\" has tls = \"none\": each "
                             "user's own password goes in clear text to the old server "
                             "pop.example.net:110, at the first-login check and at every copy "
                             "login");

    // [target] without TLS: the users' own passwords, or the master password.
    Config users = ok(kProvider + "[target]\nhost = \"new.example\"\ntls = \"none\"\n");
    REQUIRE(users.warnings.size() == 1);
    CHECK(users.warnings[0] == "t.toml:7: target.tls: tls = \"none\" without master_user: each "
                               "user's own password goes in clear text to the new server "
                               "new.example:143 at every copy login");
    Dir dir;
    dir.write("master", "pw\n", 0600);
    Config master = ok(kProvider +
                       "[target]\nhost = \"new.example\"\nport = 1143\n"
                       "master_user = \"mf\"\nmaster_password_file = \"" +
                       dir.file("master") + "\"\ntls = \"none\"\n");
    REQUIRE(master.warnings.size() == 1);
    CHECK(master.warnings[0].rfind("t.toml:10: target.tls: tls = \"none\" with master_user = "
                                   "\"mf\": the master password",
                                   0) == 0);
    CHECK(master.warnings[0].find("opens every mailbox there") != std::string::npos);
    CHECK(master.warnings[0].find("new.example:1143") != std::string::npos);
    CHECK(master.warnings[0].find("own password") == std::string::npos);

    // The provisioner's URL: the new password, POSTed.
    Config http =
        ok(kProvider + "[provisioner]\ntype = \"http\"\nurl = \"http://127.0.0.1:8080/a\"\n");
    REQUIRE(http.warnings.size() == 1);
    CHECK(http.warnings[0].rfind("t.toml:7: provisioner.url: http://127.0.0.1:8080/a is not https: "
                                 "each new account's password is POSTed in clear text",
                                 0) == 0);

    // All at once: one warning per path (providers, target, provisioner).
    Config all = ok("[[provider]]\nname = \"old\"\ndomains = [\"example.org\"]\n"
                    "host = \"imap.example.org\"\ntls = \"none\"\n"
                    "[provisioner]\ntype = \"http\"\nurl = \"http://localhost/x\"\n"
                    "[target]\nhost = \"new.example\"\ntls = \"none\"\n");
    REQUIRE(all.warnings.size() == 3);
    CHECK(all.warnings[0].rfind("t.toml:5: provider.tls: ", 0) == 0);
    CHECK(all.warnings[1].rfind("t.toml:11: target.tls: ", 0) == 0);
    CHECK(all.warnings[2].rfind("t.toml:8: provisioner.url: ", 0) == 0);

    // Not a network path, or TLS on: nothing to say.
    CHECK(ok(kProvider + "tls = \"starttls\"\n").warnings.empty());
    CHECK(ok(kProvider + "[provisioner]\ntype = \"command\"\ncommand = [\"/bin/true\"]\n")
              .warnings.empty());
    CHECK(ok(kProvider + "[target]\nmaildir = \"/m/{domain}/{local}\"\ntls = \"none\"\n")
              .warnings.empty());
    CHECK(ok(kProvider + "[target]\nhost = \"new.example\"\n").warnings.empty());
}

TEST_CASE("lock_dir and key_file default to the database's directory") {
    Config c = ok("[store]\npath = \"/srv/mf/x.db\"\n" + kProvider);
    CHECK(c.store.lock_dir == "/srv/mf/locks");
    CHECK(c.guard.key_file == "/srv/mf/guard.key");
}

TEST_CASE("unknown keys and sections") {
    expect_error("[store]\npath = \"/x.db\"\nbogus = 1\n" + kProvider, "t.toml:3: store.bogus",
                 "unknown key; [store] knows path, lock_dir, busy_timeout");
    expect_error(kProvider + "[spoon]\nx = 1\n", "t.toml:5: spoon",
                 "known sections: store, provider");
    expect_error("verbose = true\n" + kProvider, "t.toml:1: verbose", "unknown section or key");
    expect_error(kProvider + "hostname = \"x\"\n", "t.toml:5: provider.hostname",
                 "unknown key; [provider] knows name, domains");
    expect_error(kProvider + "[identity.domain_renames]\n\"a.example\" = \"b.example\"\n"
                             "[identity.extra]\nx = \"y\"\n",
                 "t.toml:7: identity.extra", "unknown key");
    expect_error(kProvider + "[result]\nhome = \"/x\"\n", "t.toml:6: result.home", "unknown key");
}

TEST_CASE("wrong types") {
    expect_error(kProvider + "port = \"993\"\n", "t.toml:5: provider.port",
                 "expected an integer from 1 to 65535, found \"993\"");
    expect_error(kProvider + "port = 99.3\n", "t.toml:5: provider.port",
                 "found a floating-point number");
    expect_error(kProvider + "verify_certificate = \"yes\"\n",
                 "t.toml:5: provider.verify_certificate", "expected true or false, found \"yes\"");
    expect_error(kProvider + "tls = true\n", "t.toml:5: provider.tls",
                 "expected one of implicit, starttls, none; found a boolean (true)");
    expect_error("[[provider]]\nname = \"old\"\ndomains = \"example.org\"\nhost = \"h\"\n",
                 "t.toml:3: provider.domains",
                 "expected a non-empty array of strings, found \"example.org\"");
    expect_error("[[provider]]\nname = \"old\"\ndomains = [\"a.example\", 3]\nhost = \"h\"\n",
                 "t.toml:3: provider.domains", "expected a string, found 3");
    expect_error("[store]\npath = 17\n" + kProvider, "t.toml:2: store.path",
                 "expected a string, found 17");
    expect_error("store = \"/x.db\"\n" + kProvider, "t.toml:1: store",
                 "expected a table [store], found \"/x.db\"");
    expect_error("[provider]\nname = \"old\"\ndomains = [\"a.example\"]\nhost = \"h\"\n",
                 "t.toml:1: provider", "expected one or more [[provider]] sections, found a table");
    expect_error(kProvider + "[identity]\ndomain_renames = [\"a\"]\n",
                 "t.toml:6: identity.domain_renames", "expected a table, found an array");
    expect_error(kProvider + "[guard]\nwindow = 1979-05-27\n", "t.toml:6: guard.window",
                 "found a date");
    expect_error(kProvider + "[provisioner]\ntype = \"command\"\ncommand = \"/bin/mk\"\n",
                 "t.toml:7: provisioner.command", "expected a non-empty array of strings");
    expect_error(kProvider + "[provisioner]\ntype = \"command\"\ncommand = []\n",
                 "t.toml:7: provisioner.command", "found an empty array");
}

TEST_CASE("values out of range") {
    expect_error(kProvider + "port = 0\n", "t.toml:5: provider.port", "found 0");
    expect_error(kProvider + "port = 65536\n", "t.toml:5: provider.port", "found 65536");
    expect_error(kProvider + "port = -1\n", "t.toml:5: provider.port", "found -1");
    CHECK(ok(kProvider + "port = 65535\n").providers[0].port == 65535);
    CHECK(ok(kProvider + "port = 1\n").providers[0].port == 1);
    expect_error(kProvider + "max_concurrent = 0\n", "t.toml:5: provider.max_concurrent",
                 "expected an integer from 1 to 1000, found 0");
    expect_error(kProvider + "timeout = \"0s\"\n", "t.toml:5: provider.timeout",
                 "expected a duration from 1ms to 10m");
    expect_error(kProvider + "timeout = 0\n", "t.toml:5: provider.timeout", "found 0");
    expect_error(kProvider + "timeout = \"11m\"\n", "t.toml:5: provider.timeout", "found \"11m\"");
    expect_error(kProvider + "timeout = -5\n", "t.toml:5: provider.timeout", "found -5");
    expect_error(kProvider + "timeout = \"ten seconds\"\n", "t.toml:5: provider.timeout",
                 "(\"500ms\", \"10s\", \"15m\", \"2h\", \"1d\" or whole seconds)");
    expect_error(kProvider + "timeout = 9223372036854775807\n", "t.toml:5: provider.timeout",
                 "expected a duration");
    expect_error("[store]\nbusy_timeout = \"0ms\"\n" + kProvider, "t.toml:2: store.busy_timeout",
                 "from 1ms to 1h");
    expect_error(kProvider + "[provisioner]\ntimeout = \"0s\"\n", "t.toml:6: provisioner.timeout",
                 "from 1ms to 1h");
    expect_error(kProvider + "[guard]\nwindow = \"0s\"\n", "t.toml:6: guard.window",
                 "from 1s to 30d");
    expect_error(kProvider + "[guard]\nnegative_cache_ttl = \"2d\"\n",
                 "t.toml:6: guard.negative_cache_ttl", "from 0s to 1d");
    expect_error(kProvider + "[guard]\nmax_failures_per_account = 0\n",
                 "t.toml:6: guard.max_failures_per_account", "from 1 to 1000000");
    expect_error(kProvider + "[guard]\nmax_failures_per_ip = 1000001\n",
                 "t.toml:6: guard.max_failures_per_ip", "from 1 to 1000000");
    expect_error(kProvider + "[login_cache]\nttl = \"2d\"\n", "t.toml:6: login_cache.ttl",
                 "from 0s to 1d");
    expect_error(kProvider + "[login_cache]\nmax_entries = 0\n",
                 "t.toml:6: login_cache.max_entries", "from 1 to 10000000");
    CHECK(ok(kProvider + "[login_cache]\nttl = \"0\"\n").login_cache.ttl.count() == 0);
    CHECK(ok(kProvider).login_cache.ttl.count() == 5 * 60 * 1000);
    expect_error(kProvider + "[worker]\nmessages_per_connection = -1\n",
                 "t.toml:6: worker.messages_per_connection", "from 0 to 1000000");
    expect_error(kProvider + "[worker]\nmessages_per_connection = 1000001\n",
                 "t.toml:6: worker.messages_per_connection", "from 0 to 1000000");
    CHECK(
        ok(kProvider + "[worker]\nmessages_per_connection = 0\n").worker.messages_per_connection ==
        0);
    CHECK(ok(kProvider).worker.messages_per_connection == 250);
    expect_error(kProvider + "[hash]\nargon2_ops = 0\n", "t.toml:6: hash.argon2_ops",
                 "from 1 to 64");
    expect_error(kProvider + "[hash]\nargon2_memory_kib = 4\n", "t.toml:6: hash.argon2_memory_kib",
                 "from 8 to 4194304");
    expect_error(kProvider + "[hash]\nsha512_rounds = 999\n", "t.toml:6: hash.sha512_rounds",
                 "from 1000 to 999999999");
    expect_error(kProvider + "[hash]\nyescrypt_cost = 12\n", "t.toml:6: hash.yescrypt_cost",
                 "from 1 to 11");
    expect_error(kProvider + "[provisioner]\ntype = \"dovecot-passwd-file\"\npasswd_file = \"/u\"\n"
                             "uid = -1\n",
                 "t.toml:8: provisioner.uid", "from 0 to 4294967294");
    expect_error(kProvider + "[provisioner]\ntype = \"dovecot-passwd-file\"\npasswd_file = \"/u\"\n"
                             "gid = \"50a\"\n",
                 "t.toml:8: provisioner.gid", "found \"50a\"");
    expect_error(kProvider + "[provisioner]\ntype = \"dovecot-passwd-file\"\npasswd_file = \"/u\"\n"
                             "uid = \"4294967295\"\n",
                 "t.toml:8: provisioner.uid", "from 0 to 4294967294");
}

TEST_CASE("enum values outside their set") {
    expect_error(kProvider + "protocol = \"imap4\"\n", "t.toml:5: provider.protocol",
                 "expected one of imap, pop3, smtp; found \"imap4\"");
    expect_error(kProvider + "tls = \"ssl\"\n", "t.toml:5: provider.tls",
                 "expected one of implicit, starttls, none; found \"ssl\"");
    expect_error(kProvider + "login_form = \"address\"\n", "t.toml:5: provider.login_form",
                 "expected one of full_address, local_part, template; found \"address\"");
    expect_error(kProvider + "mechanism = \"cram-md5\"\n", "t.toml:5: provider.mechanism",
                 "expected one of auto, plain, login; found \"cram-md5\"");
    expect_error(kProvider + "[hash]\nscheme = \"md5-crypt\"\n", "t.toml:6: hash.scheme",
                 "expected one of argon2id, sha512-crypt, yescrypt; found \"md5-crypt\"");
    expect_error(kProvider + "[provisioner]\ntype = \"ldap\"\n", "t.toml:6: provisioner.type",
                 "expected one of builtin, dovecot-passwd-file, command, http; found \"ldap\"");
    expect_error(kProvider + "[log]\nlevel = \"trace\"\n", "t.toml:6: log.level",
                 "expected one of debug, info, warning, error; found \"trace\"");
    expect_error(kProvider + "[log]\nlevel = \"INFO\"\n", "t.toml:6: log.level", "found \"INFO\"");
}

TEST_CASE("missing required values") {
    expect_error("[store]\npath = \"/x.db\"\n", "t.toml: provider",
                 "at least one [[provider]] section is required");
    expect_error("", "t.toml: provider", "at least one [[provider]]");
    expect_error("[store]\n\n[[provider]]\ndomains = [\"a.example\"]\nhost = \"h\"\n",
                 "t.toml:3: provider.name", "missing: this key is required in [provider]");
    expect_error("[[provider]]\nname = \"a\"\nhost = \"h\"\n", "t.toml:1: provider.domains",
                 "missing");
    expect_error("[[provider]]\nname = \"a\"\ndomains = [\"a.example\"]\n",
                 "t.toml:1: provider.host", "missing");
    expect_error(kProvider + "[provisioner]\ntype = \"dovecot-passwd-file\"\n",
                 "t.toml:6: provisioner.passwd_file",
                 "missing: type = \"dovecot-passwd-file\" needs it");
    expect_error(kProvider + "[provisioner]\ntype = \"command\"\n", "t.toml:6: provisioner.command",
                 "missing: type = \"command\" needs it");
    expect_error(kProvider + "[provisioner]\ntype = \"http\"\ntoken_file = \"/t\"\n",
                 "t.toml:6: provisioner.url", "missing: type = \"http\" needs it");
    expect_error(kProvider + "login_form = \"template\"\n", "t.toml:5: provider.login_form",
                 "needs provider.login_template");
}

TEST_CASE("empty strings and control characters") {
    expect_error("[[provider]]\nname = \"old\"\ndomains = [\"a.example\"]\nhost = \"\"\n",
                 "t.toml:4: provider.host", "expected a non-empty string, found \"\"");
    expect_error("[[provider]]\nname = \"old\"\ndomains = [\"a.example\"]\nhost = \"a\\tb\"\n",
                 "t.toml:4: provider.host", "without control characters");
    expect_error("[store]\npath = \"\"\n" + kProvider, "t.toml:2: store.path", "non-empty");
}

TEST_CASE("keys that only make sense together") {
    expect_error(kProvider + "login_template = \"{local}\"\n", "t.toml:5: provider.login_template",
                 "only used with login_form = \"template\", found login_form = \"full_address\"");
    expect_error(kProvider + "tls = \"none\"\nca_file = \"/ca.pem\"\n",
                 "t.toml:6: provider.ca_file", "only used with TLS");
    expect_error(kProvider + "[provisioner]\npasswd_file = \"/etc/dovecot/users\"\n",
                 "t.toml:6: provisioner.passwd_file",
                 "only used with type = \"dovecot-passwd-file\", found type = \"builtin\"");
    expect_error(kProvider +
                     "[provisioner]\ntype = \"http\"\nurl = \"https://a/\"\nhome = \"/h\"\n",
                 "t.toml:8: provisioner.home", "only used with type = \"dovecot-passwd-file\"");
    expect_error(
        kProvider + "[provisioner]\ntype = \"command\"\ncommand = [\"/x\"]\nurl = \"https://a/\"\n",
        "t.toml:8: provisioner.url", "only used with type = \"http\"");
    expect_error(kProvider + "[provisioner]\ntype = \"dovecot-passwd-file\"\npasswd_file = \"/u\"\n"
                             "command = [\"/x\"]\n",
                 "t.toml:8: provisioner.command", "only used with type = \"command\"");
    expect_error(kProvider +
                     "[identity]\naccept_short_names = false\naccept_full_address = false\n",
                 "t.toml:7: identity.accept_full_address", "no login would be accepted");
}

TEST_CASE("providers: names, domains, hosts") {
    expect_error(
        kProvider + "[[provider]]\nname = \"old\"\ndomains = [\"b.example\"]\nhost = \"h\"\n",
        "t.toml:6: provider.name", "\"old\" is already the name of the provider at line 2");
    expect_error(
        kProvider + "[[provider]]\nname = \"new\"\ndomains = [\"b.example\", \"EXAMPLE.org\"]\n"
                    "host = \"h\"\n",
        "t.toml:7: provider.domains", "domain example.org is already served by provider \"old\"");
    expect_error(
        "[[provider]]\nname = \"a\"\ndomains = [\"x.example\", \"x.example\"]\nhost = \"h\"\n",
        "t.toml:3: provider.domains", "domain x.example is already served");
    expect_error("[[provider]]\nname = \"old one\"\ndomains = [\"a.example\"]\nhost = \"h\"\n",
                 "t.toml:2: provider.name", "a name of at most 64 letters");
    for (const char* d :
         {"anna@example.org", "a..example", ".example", "example.", "ex ample", "ex/ample"}) {
        CAPTURE(d);
        expect_error(std::string("[[provider]]\nname = \"a\"\ndomains = [\"") + d +
                         "\"]\nhost = \"h\"\n",
                     "t.toml:3: provider.domains", "expected a domain name");
    }
    expect_error("[[provider]]\nname = \"a\"\ndomains = [\"a.example\"]\nhost = \"mail host\"\n",
                 "t.toml:4: provider.host", "expected a host name or IP address");
    // An internationalised domain in UTF-8 is a domain.
    CHECK(ok("[[provider]]\nname = \"a\"\ndomains = [\"bücher.example\"]\nhost = \"h\"\n")
              .providers[0]
              .domains[0] == "bücher.example");
}

TEST_CASE("templates name only known placeholders") {
    expect_error(kProvider + "login_form = \"template\"\nlogin_template = \"{login}\"\n",
                 "t.toml:6: provider.login_template",
                 "expected a template using {local}, {domain} or {address}");
    expect_error(kProvider + "login_form = \"template\"\nlogin_template = \"anna\"\n",
                 "t.toml:6: provider.login_template", "found \"anna\"");
    expect_error(kProvider + "login_form = \"template\"\nlogin_template = \"{local\"\n",
                 "t.toml:6: provider.login_template", "expected a template");
    expect_error(kProvider + "[result.extra_fields]\nhome = \"/v/{uid}\"\n",
                 "t.toml:6: result.extra_fields.\"home\"", "no placeholders but {local}");
    expect_error(kProvider + "[result.extra_fields]\n\"bad name\" = \"x\"\n",
                 "t.toml:6: result.extra_fields.\"bad name\"", "a field name");
    expect_error(kProvider + "[provisioner]\ntype = \"dovecot-passwd-file\"\npasswd_file = \"/u\"\n"
                             "home = \"vmail/{local}\"\n",
                 "t.toml:8: provisioner.home", "an absolute directory template");
    expect_error(kProvider + "[provisioner]\ntype = \"dovecot-passwd-file\"\npasswd_file = \"/u\"\n"
                             "home = \"/v:{local}\"\n",
                 "t.toml:8: provisioner.home", "without ':'");
    expect_error(kProvider + "[provisioner]\ntype = \"http\"\nurl = \"ftp://x/\"\n",
                 "t.toml:7: provisioner.url", "expected an http:// or https:// URL");
    expect_error(kProvider + "[provisioner]\ntype = \"http\"\nurl = \"https://\"\n",
                 "t.toml:7: provisioner.url", "URL");
}

TEST_CASE("identity: renames and the default domain") {
    expect_error(kProvider + "[identity.domain_renames]\n\"other.example\" = \"new.example\"\n",
                 "t.toml:6: identity.domain_renames.\"other.example\"",
                 "no provider serves other.example");
    expect_error(kProvider + "[identity.domain_renames]\n\"Example.org\" = \"EXAMPLE.ORG\"\n",
                 "t.toml:6: identity.domain_renames.\"Example.org\"", "to itself");
    expect_error(kProvider + "[[provider]]\nname = \"b\"\ndomains = [\"b.example\"]\nhost = \"h\"\n"
                             "[identity.domain_renames]\n\"example.org\" = \"b.example\"\n",
                 "t.toml:10: identity.domain_renames.\"example.org\"",
                 "the new domain b.example is also served by provider \"b\"");
    expect_error(
        "[[provider]]\nname = \"a\"\ndomains = [\"a.example\", \"b.example\"]\nhost = \"h\"\n"
        "[identity.domain_renames]\n\"a.example\" = \"n.example\"\n"
        "\"b.example\" = \"n.example\"\n",
        "t.toml:7: identity.domain_renames.\"b.example\"",
        "both a.example and b.example are renamed to n.example");
    expect_error(kProvider + "[identity.domain_renames]\n\"Example.org\" = \"n.example\"\n"
                             "\"example.ORG\" = \"m.example\"\n",
                 "t.toml:7: identity.domain_renames.\"example.ORG\"", "listed twice");
    expect_error(kProvider + "[identity.domain_renames]\n\"example.org\" = \"n@example\"\n",
                 "t.toml:6: identity.domain_renames.\"example.org\"", "expected a domain name");
    expect_error(kProvider + "[identity]\ndefault_domain = \"other.example\"\n",
                 "t.toml:6: identity.default_domain", "no provider serves other.example");
    // The new name of a renamed domain is a fine default.
    Config c = ok(kProvider + "[identity]\ndefault_domain = \"new.example\"\n"
                              "[identity.domain_renames]\n\"example.org\" = \"new.example\"\n");
    CHECK(c.identity.default_domain == "new.example");
}

TEST_CASE("TOML syntax errors name file and line") {
    Error e = bad(kProvider + "port = \n");
    CHECK(e.what == "t.toml:5");
    CHECK(e.detail.find("TOML syntax:") == 0);
    // A key given twice is a TOML error too.
    e = bad(kProvider + "host = \"again\"\n");
    CHECK(e.what == "t.toml:5");
    CHECK(e.detail.find("TOML syntax:") == 0);
    e = bad("[store\n" + kProvider);
    CHECK(e.what == "t.toml:1");
    // Invalid UTF-8 inside a string.
    e = bad(kProvider + "[log]\nlevel = \"\xff\"\n");
    CHECK(e.what == "t.toml:6");
}

TEST_CASE("parse_duration and format_duration") {
    struct Case {
        const char* text;
        long long ms;
    };
    for (auto c : {Case{"500ms", 500}, Case{"10s", 10000}, Case{"15m", 900000}, Case{"2h", 7200000},
                   Case{"1d", 86400000}, Case{"30", 30000}, Case{"0s", 0}, Case{"007s", 7000}}) {
        CAPTURE(c.text);
        auto d = parse_duration(c.text);
        REQUIRE(d.ok());
        CHECK(d->count() == c.ms);
    }
    for (const char* text : {"", "s", "10 s", " 10s", "10s ", "1h30m", "-5s", "1.5s", "10S",
                             "10sec", "10w", "ms", "99999999999999999999", "9999999999999999d"}) {
        CAPTURE(text);
        auto d = parse_duration(text);
        REQUIRE_FALSE(d.ok());
        CHECK(d.error().scope == Scope::config);
    }
    CHECK(format_duration(0ms) == "0s");
    CHECK(format_duration(500ms) == "500ms");
    CHECK(format_duration(1500ms) == "1500ms");
    CHECK(format_duration(10s) == "10s");
    CHECK(format_duration(15min) == "15m");
    CHECK(format_duration(2h) == "2h");
    CHECK(format_duration(48h) == "2d");
    CHECK(format_duration(90min) == "90m");
}

TEST_CASE("expand_template") {
    CHECK(expand_template("/var/vmail/{domain}/{local}", "anna", "example.org") ==
          "/var/vmail/example.org/anna");
    CHECK(expand_template("{address} {user}", "a", "b.example") == "a@b.example a@b.example");
    CHECK(expand_template("{local}%{domain}", "Anna", "x.example") == "Anna%x.example");
    CHECK(expand_template("no placeholders", "a", "b") == "no placeholders");
    CHECK(expand_template("{unknown}{local", "a", "b") == "{unknown}{local");
    CHECK(expand_template("", "a", "b").empty());
}

TEST_CASE("effective_port follows protocol and TLS mode") {
    struct Case {
        Protocol p;
        TlsMode t;
        int port;
    };
    for (auto c :
         {Case{Protocol::imap, TlsMode::implicit, 993},
          Case{Protocol::imap, TlsMode::starttls, 143}, Case{Protocol::imap, TlsMode::none, 143},
          Case{Protocol::pop3, TlsMode::implicit, 995},
          Case{Protocol::pop3, TlsMode::starttls, 110}, Case{Protocol::pop3, TlsMode::none, 110},
          Case{Protocol::smtp, TlsMode::implicit, 465},
          Case{Protocol::smtp, TlsMode::starttls, 587}, Case{Protocol::smtp, TlsMode::none, 587}}) {
        ProviderConfig p;
        p.protocol = c.p;
        p.tls = c.t;
        CHECK(p.effective_port() == c.port);
        p.port = 10143;
        CHECK(p.effective_port() == 10143);
    }
}

TEST_CASE("enum names") {
    CHECK(std::string(to_string(Protocol::pop3)) == "pop3");
    CHECK(std::string(to_string(TlsMode::starttls)) == "starttls");
    CHECK(std::string(to_string(HashScheme::sha512_crypt)) == "sha512-crypt");
    CHECK(std::string(to_string(ProvisionerType::dovecot_passwd_file)) == "dovecot-passwd-file");
    CHECK(std::string(to_string(LoginForm::templated)) == "template");
    CHECK(std::string(to_string(SaslMech::automatic)) == "auto");
    CHECK(std::string(to_string(LogLevel::warning)) == "warning");
}

TEST_CASE("config_path_from: --config, then $MAILFERRY_CONFIG, then the default") {
    ::unsetenv(kConfigEnv);
    CHECK(config_path_from("") == kDefaultConfigPath);
    CHECK(config_path_from("/a.toml") == "/a.toml");
    ::setenv(kConfigEnv, "/env.toml", 1);
    CHECK(config_path_from("") == "/env.toml");
    CHECK(config_path_from("/a.toml") == "/a.toml");
    ::setenv(kConfigEnv, "", 1);
    CHECK(config_path_from("") == kDefaultConfigPath);
    ::unsetenv(kConfigEnv);
}

TEST_CASE("load_config: files") {
    Dir dir;
    SUBCASE("a missing file") {
        auto r = load_config(dir.file("none.toml"));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().scope == Scope::config);
        CHECK(r.error().message() ==
              "open(" + dir.file("none.toml") + ") failed: No such file or directory");
    }
    SUBCASE("a directory") {
        auto r = load_config(dir.file(""));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message().find("Is a directory") != std::string::npos);
    }
    SUBCASE("errors name the file") {
        dir.write("m.toml", kProvider + "port = 0\n");
        auto r = load_config(dir.file("m.toml"));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().what == dir.file("m.toml") + ":5: provider.port");
    }
    SUBCASE("relative paths are relative to the config's directory") {
        dir.write("m.toml", "[store]\npath = \"state/mf.db\"\n" + kProvider +
                                "ca_file = \"ca.pem\"\n[identity]\nconflict_map = \"/abs/map\"\n");
        auto r = load_config(dir.file("m.toml"));
        REQUIRE(r.ok());
        CHECK(r->source_path == dir.file("m.toml"));
        CHECK(r->store.path == dir.file("state/mf.db"));
        CHECK(r->store.lock_dir == dir.file("state/locks"));
        CHECK(r->guard.key_file == dir.file("state/guard.key"));
        CHECK(r->providers[0].ca_file == dir.file("ca.pem"));
        CHECK(r->identity.conflict_map == "/abs/map");
    }
    SUBCASE("a token file others can read earns a warning; a private one does not") {
        std::string text = kProvider + "[provisioner]\ntype = \"http\"\n"
                                       "url = \"https://admin.example/api\"\n"
                                       "token_file = \"token\"\n";
        dir.write("m.toml", text);
        dir.write("token", "s3cret\n", 0644);
        auto loose = load_config(dir.file("m.toml"));
        REQUIRE(loose.ok());
        REQUIRE(loose->warnings.size() == 1);
        CHECK(loose->warnings[0].find(dir.file("token")) != std::string::npos);
        CHECK(loose->warnings[0].find("0644") != std::string::npos);
        ::chmod(dir.file("token").c_str(), 0640);
        auto group = load_config(dir.file("m.toml"));
        REQUIRE(group.ok());
        CHECK(group->warnings.size() == 1);
        ::chmod(dir.file("token").c_str(), 0600);
        auto tight = load_config(dir.file("m.toml"));
        REQUIRE(tight.ok());
        CHECK(tight->warnings.empty());
    }
}

TEST_CASE("the guard key and a passwd-file must not be readable by everybody") {
    Dir dir;
    dir.write("m.toml", "[store]\npath = \"mf.db\"\n" + kProvider +
                            "[provisioner]\ntype = \"dovecot-passwd-file\"\n"
                            "passwd_file = \"users\"\n");
    auto none_yet = load_config(dir.file("m.toml"));
    REQUIRE(none_yet.ok());
    CHECK(none_yet->warnings.empty()); // neither file exists yet: nothing to say

    dir.write("guard.key", "k", 0644);
    dir.write("users", "", 0604);
    auto loose = load_config(dir.file("m.toml"));
    REQUIRE(loose.ok());
    REQUIRE(loose->warnings.size() == 2);
    CHECK(loose->warnings[0] == "guard.key_file: " + dir.file("guard.key") +
                                    " is readable or writable by everybody (mode 0644): make it "
                                    "0640 or 0600");
    CHECK(loose->warnings[1].rfind("provisioner.passwd_file: " + dir.file("users"), 0) == 0);

    ::chmod(dir.file("guard.key").c_str(), 0640);
    ::chmod(dir.file("users").c_str(), 0640);
    auto tight = load_config(dir.file("m.toml"));
    REQUIRE(tight.ok());
    CHECK(tight->warnings.empty());
}

TEST_CASE("the example config passes and documents every key") {
    std::string path = std::string(MF_SOURCE_DIR) + "/examples/mailferry.toml";
    auto r = load_config(path);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));
    CHECK(r->warnings.empty());
    CHECK(r->provisioner.type == ProvisionerType::dovecot_passwd_file);
    CHECK(r->identity.domain_renames.size() == 1);

    // Each key must appear in its own section, set ("key = ") or shown commented out
    // ("# key = "), so no key goes undocumented.
    std::string text = mft::read_file(path);
    auto keys = config_detail::config_keys();
    CHECK(keys.size() > 40);
    for (const auto& full : keys) {
        CAPTURE(full);
        auto dot = full.find('.');
        std::string section = full.substr(0, dot);
        std::string key = full.substr(dot + 1);
        std::string header = section == "provider" ? "\n[[provider]]\n" : "\n[" + section + "]";
        if (key == "domain_renames" || key == "extra_fields") {
            if (section == "identity" || section == "result") {
                CHECK(text.find("\n[" + full + "]\n") != std::string::npos);
                continue;
            }
        }
        auto start = text.find(header);
        REQUIRE(start != std::string::npos);
        auto end = text.find("\n[", start + header.size());
        std::string body = text.substr(start, end - start);
        bool set = body.find("\n" + key + " = ") != std::string::npos;
        bool shown = body.find("\n# " + key + " = ") != std::string::npos;
        CHECK((set || shown));
    }
}

TEST_CASE("[mailflow] and the providers' mail keys: defaults, values, mistakes") {
    Config d = ok(kProvider);
    CHECK(d.mailflow.local_transport == "lmtp:unix:private/dovecot-lmtp");
    CHECK(d.mailflow.unmigrated == Unmigrated::relay);
    CHECK(d.mailflow.probe_timeout == 10s);
    CHECK(d.mailflow.postfix_config_dir == "/etc/postfix");
    CHECK(d.providers[0].mail_host == "imap.example.org");
    CHECK(d.providers[0].mail_port == 25);
    CHECK(d.providers[0].relay_transport == "smtp:[imap.example.org]:25");

    Config c = ok(kProvider + "mail_protocol = \"lmtp\"\nmail_port = 2424\n"
                              "mail_host = \"10.0.0.5\"\n"
                              "[mailflow]\nlocal_transport = \"lmtp:inet:127.0.0.1:24\"\n"
                              "unmigrated = \"probe\"\nprobe_timeout = \"3s\"\n"
                              "probe_helo = \"mx.new.example\"\n"
                              "postfix_config_dir = \"/etc/postfix-mx\"\n");
    CHECK(c.providers[0].relay_transport == "lmtp:inet:10.0.0.5:2424");
    CHECK(c.mailflow.local_transport == "lmtp:inet:127.0.0.1:24");
    CHECK(c.mailflow.unmigrated == Unmigrated::probe);
    CHECK(c.mailflow.probe_timeout == 3s);
    CHECK(c.mailflow.postfix_config_dir == "/etc/postfix-mx");
    Config own = ok(kProvider + "relay_transport = \"relay:[old.example.org]:587\"\n");
    CHECK(own.providers[0].relay_transport == "relay:[old.example.org]:587");

    expect_error(kProvider + "[mailflow]\nlocal_transport = \"lmtp\"\n",
                 "t.toml:6: mailflow.local_transport", "transport:nexthop");
    expect_error(kProvider + "[mailflow]\nlocal_transport = \"smtp:[a] b\"\n",
                 "t.toml:6: mailflow.local_transport", "without blanks");
    expect_error(kProvider + "[mailflow]\nunmigrated = \"bounce\"\n",
                 "t.toml:6: mailflow.unmigrated", "relay");
    expect_error(kProvider + "[mailflow]\nprobe_timeout = \"10m\"\n",
                 "t.toml:6: mailflow.probe_timeout", "");
    expect_error(kProvider + "[mailflow]\nprobe_helo = \"bad name\"\n",
                 "t.toml:6: mailflow.probe_helo", "EHLO");
    expect_error(kProvider + "[mailflow]\nbogus = 1\n", "t.toml:6: mailflow.bogus", "unknown key");
    expect_error(kProvider + "relay_transport = \"smtp [old]:25\"\n",
                 "t.toml:5: provider.relay_transport", "transport:nexthop");
    expect_error(kProvider + "mail_port = 0\n", "t.toml:5: provider.mail_port", "");
    expect_error(kProvider + "mail_protocol = \"lmtp\"\n", "t.toml:5: provider.mail_port",
                 "needs it");
    expect_error(kProvider + "mail_protocol = \"imap\"\n", "t.toml:5: provider.mail_protocol",
                 "smtp");
}
