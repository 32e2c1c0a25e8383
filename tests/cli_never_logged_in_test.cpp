// cli_never_logged_in_test.cpp — the old server's login lines, and the built
// `mailferry never-logged-in` program over real log files.
//
// The parser: Dovecot (syslog and log_path forms, imap and pop3), Courier (imapd, pop3d,
// -ssl, [pid]), syslog / ISO 8601 / Dovecot timestamps, the year of a syslog date taken
// from the file's mtime (over New Year), non-login lines ignored, broken lines garbage.
// The program: migrated accounts left out, imported ones listed, logins outside the
// period not counted, names outside the domains not mapped, garbage counted and never
// fatal (CRLF, BOM, non-UTF-8, NUL, cut-off lines), gzip'd rotations read, missing or
// broken files exit 2 with the file named, 100,000 lines.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "admin_logins.hpp"
#include "mailferry/store.hpp"
#include "support/migration_world.hpp"
#include "support/test_env.hpp"
#include "support/tty.hpp"

#include <ctime>
#include <nlohmann/json.hpp>
#include <sys/time.h>
#include <unistd.h>

using mf::cli::LogFormat;

namespace {

const std::string kProgram = mft::program_path("external-auth", "mailferry");

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

mf::UnixTime local(int y, int mo, int d, int h, int mi, int s) {
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    tm.tm_isdst = -1;
    return static_cast<mf::UnixTime>(std::mktime(&tm));
}

struct Parsed {
    bool login = false;
    std::string user;
    mf::UnixTime at = 0;
    std::string why;
};

Parsed parse(std::string_view line, LogFormat f = LogFormat::auto_detect,
             mf::UnixTime mtime = local(2024, 12, 31, 23, 0, 0)) {
    Parsed p;
    auto ev = mf::cli::parse_login_line(line, f, mtime, &p.why);
    if (ev) {
        p.login = true;
        p.user = ev->user;
        p.at = ev->at;
    }
    return p;
}

std::string iso(mf::UnixTime t) {
    std::time_t tt = t;
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
    return buf;
}

std::string syslog_stamp(mf::UnixTime t) {
    std::time_t tt = t;
    std::tm tm{};
    localtime_r(&tt, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%b %e %H:%M:%S", &tm);
    return buf;
}

} // namespace

TEST_CASE("Dovecot login lines: syslog, log_path, pop3, ISO 8601 and dated timestamps") {
    auto a = parse("Nov 23 10:00:01 mail dovecot: imap-login: Login: user=<anna@example.org>, "
                   "method=PLAIN, rip=192.0.2.7, lip=192.0.2.1, mpid=1234, TLS, session=<x>");
    CHECK(a.login);
    CHECK(a.user == "anna@example.org");
    CHECK(a.at == local(2024, 11, 23, 10, 0, 1));

    auto b = parse("Nov  3 09:05:00 imap-login: Info: Login: user=<bob>, method=PLAIN, rip=::1",
                   LogFormat::dovecot);
    CHECK(b.login);
    CHECK(b.user == "bob");
    CHECK(b.at == local(2024, 11, 3, 9, 5, 0));

    auto c = parse("2024-11-23T10:00:01.123456+01:00 mail dovecot[77]: pop3-login: Login: "
                   "user=<carl@example.org>, method=PLAIN, rip=192.0.2.9");
    CHECK(c.login);
    CHECK(c.user == "carl@example.org");
    CHECK(c.at == 1732352401); // 2024-11-23T09:00:01Z
    auto z = parse("2024-11-23T09:00:01Z h dovecot: imap-login: Login: user=<z@x.org>, method=X");
    CHECK(z.at == 1732352401);
    CHECK(c.at == z.at);

    auto d = parse("2024-11-23 10:00:01 imap-login: Info: Login: user=<dora>, method=PLAIN");
    CHECK(d.login);
    CHECK(d.at == local(2024, 11, 23, 10, 0, 1));

    // Not logins: ignored without complaint.
    for (const char* other :
         {"Nov 23 10:00:02 mail dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 "
          "secs): user=<anna>, method=PLAIN, rip=192.0.2.7",
          "Nov 23 10:00:03 mail postfix/smtpd[9]: connect from unknown[192.0.2.8]",
          "Nov 23 10:00:04 mail dovecot: imap(anna@example.org): Logged out in=10 out=20"}) {
        auto p = parse(other);
        CHECK_FALSE(p.login);
        CHECK_MESSAGE(p.why.empty(), other);
    }
}

TEST_CASE("Courier login lines: imapd, imapd-ssl, pop3d, with pid") {
    auto a = parse("Nov 23 10:00:01 mail imapd: LOGIN, user=anna, ip=[::ffff:1.2.3.4], "
                   "port=[51234], protocol=IMAP");
    CHECK(a.login);
    CHECK(a.user == "anna");
    auto b = parse("Nov 23 10:00:01 mail pop3d-ssl[4321]: LOGIN, user=bob@example.org, "
                   "ip=[::ffff:1.2.3.4], port=[1], protocol=POP3");
    CHECK(b.login);
    CHECK(b.user == "bob@example.org");
    auto c = parse("Nov 23 10:00:01 mail imapd-ssl: LOGIN, user=carl, ip=[::1], port=[1], "
                   "protocol=IMAP",
                   LogFormat::courier);
    CHECK(c.login);
    // --format restricts the kind of line.
    CHECK_FALSE(parse("Nov 23 10:00:01 mail imapd: LOGIN, user=anna, ip=[::1], port=[1]",
                      LogFormat::dovecot)
                    .login);
    CHECK_FALSE(
        parse("Nov 23 10:00:01 m dovecot: imap-login: Login: user=<a>, m", LogFormat::courier)
            .login);
    // Courier's failed login is not a login.
    auto f = parse("Nov 23 10:00:01 mail imapd: LOGIN FAILED, user=anna, ip=[::1]");
    CHECK_FALSE(f.login);
    CHECK(f.why.empty());
}

TEST_CASE("garbage: no timestamp, cut-off lines, bad names, NUL") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"garbage without a date", "no timestamp"},
        {"Nov 99 10:00:01 mail imapd: LOGIN, user=a, ip=[::1]", "no timestamp"},
        {"Nov 23 25:00:01 mail imapd: LOGIN, user=a, ip=[::1]", "no timestamp"},
        {"Nov 23 10:00:01 mail dovecot: imap-login: Login: user=<anna@exa", "cut off"},
        {"Nov 23 10:00:01 mail imapd: LOGIN, user=anna", "cut off"},
        {"Nov 23 10:00:01 mail dovecot: imap-login: Login: user=<>, method=PLAIN", "empty"},
        {"Nov 23 10:00:01 mail imapd: LOGIN, user=d\xe9sir\xe9, ip=[::1]", "UTF-8"},
        {std::string("Nov 23 10:00:01 mail imapd: LOGIN, user=a\0b, ip=[::1]", 49), "NUL"},
        {"2024-13-01T00:00:00Z x dovecot: imap-login: Login: user=<a>, m", "no timestamp"},
    };
    for (const auto& [line, why] : cases) {
        auto p = parse(line);
        CHECK_FALSE(p.login);
        CHECK_MESSAGE(has(p.why, why), line << " -> " << p.why);
    }
}

TEST_CASE("a syslog date after the file's mtime is from the year before") {
    const auto jan5 = local(2025, 1, 5, 12, 0, 0);
    auto dec = parse("Dec 30 10:00:00 m imapd: LOGIN, user=a, ip=[::1]", LogFormat::courier, jan5);
    CHECK(dec.at == local(2024, 12, 30, 10, 0, 0));
    auto jan = parse("Jan  2 10:00:00 m imapd: LOGIN, user=a, ip=[::1]", LogFormat::courier, jan5);
    CHECK(jan.at == local(2025, 1, 2, 10, 0, 0));
}

TEST_CASE("periods: 12h 30d 2w 6m (months) 1y; bad ones refused") {
    const auto now = local(2024, 11, 23, 12, 0, 0);
    CHECK(*mf::cli::since_from_period("12h", now) == now - 12 * 3600);
    CHECK(*mf::cli::since_from_period("30d", now) == now - 30 * 86400);
    CHECK(*mf::cli::since_from_period("2w", now) == now - 14 * 86400);
    CHECK(*mf::cli::since_from_period("6m", now) == local(2024, 5, 23, 12, 0, 0));
    CHECK(*mf::cli::since_from_period("1y", now) == local(2023, 11, 23, 12, 0, 0));
    for (const char* bad : {"", "m", "6", "6x", "6mo", "-1d", "1.5y", "9999999d"}) {
        auto r = mf::cli::since_from_period(bad, now);
        CHECK_MESSAGE(!r.ok(), bad);
    }
}

TEST_CASE("the program lists who logged in recently and is not migrated") {
    REQUIRE_MESSAGE(::access(kProgram.c_str(), X_OK) == 0, kProgram << " is missing");
    mft::TempDir dir{"mf-nli"};
    const std::string config = dir.file("mailferry.toml");
    mft::write_file(config, "[store]\npath = \"" + dir.file("mf.db") +
                                "\"\n[identity]\ndefault_domain = \"example.org\"\n"
                                "[[provider]]\nname = \"old\"\ndomains = [\"example.org\"]\n"
                                "host = \"imap.example.org\"\n");
    auto run = [&](std::vector<std::string> args) {
        std::vector<std::string> argv{kProgram, "never-logged-in", "--config", config};
        argv.insert(argv.end(), args.begin(), args.end());
        return mft::run(argv, "", std::chrono::seconds(300));
    };

    // No store yet: everyone who logged in is listed.
    const auto now = static_cast<mf::UnixTime>(std::time(nullptr));
    const auto day = 86400;
    std::string log =
        "\xEF\xBB\xBF" + iso(now - 5 * day) +
        " mail dovecot: imap-login: Login: user=<anna@example.org>, method=PLAIN, "
        "rip=192.0.2.7\r\n" +
        iso(now - 4 * day) + " mail dovecot: imap-login: Login: user=<bob>, method=PLAIN\r\n" +
        iso(now - 3 * day) +
        " mail dovecot: pop3-login: Login: user=<bob@Example.ORG>, method=PLAIN\n" +
        iso(now - 800 * day) + " mail dovecot: imap-login: Login: user=<carl>, method=PLAIN\n" +
        iso(now - 2 * day) +
        " mail dovecot: imap-login: Login: user=<dora@elsewhere.example>, m=P\n" +
        iso(now - 2 * day) + " mail dovecot: imap-login: Login: user=<ivy>, method=PLAIN\n" +
        "this is not a log line\n" + std::string("\xff\xfe\x00garbage\n", 11) + iso(now - day) +
        " mail dovecot: imap-login: Login: user=<cut\n" + "\n";
    mft::write_file(dir.file("mail.log"), log);
    // A rotation: gzip'd, Courier lines with syslog dates (the year from its mtime).
    mft::write_file(dir.file("mail.log.1"),
                    syslog_stamp(now - 10 * day) +
                        " mail imapd: LOGIN, user=erik, ip=[::ffff:1.2.3.4], port=[1], "
                        "protocol=IMAP\n" +
                        syslog_stamp(now - 9 * day) +
                        " mail pop3d: LOGIN, user=anna, ip=[::ffff:1.2.3.4], port=[2], "
                        "protocol=POP3\n");
    REQUIRE(mft::run({"gzip", "-f", dir.file("mail.log.1")}).exit_code == 0);
    const std::vector<std::string> files{dir.file("mail.log"), dir.file("mail.log.1.gz")};

    auto first = run({"--json", "--since", "6m", "--log", files[0], files[1]});
    REQUIRE_MESSAGE(first.exit_code == 0, first.err);
    auto j = nlohmann::json::parse(first.out);
    CHECK(j["store_exists"] == false);
    CHECK(j["count"] == 4); // anna, bob, erik, ivy — not carl (too old), not dora
    CHECK(j["files"] == 2);
    CHECK(j["garbage"] == 3);
    CHECK(j["not_mapped"] == 1);
    CHECK(j["logins"] == 8);
    CHECK(j["logins_in_period"] == 7);

    // anna is migrated, ivy imported (never logged in at the new server).
    {
        auto s = mf::open_sqlite_store(dir.file("mf.db"), mf::Millis(5000));
        REQUIRE(s.ok());
        mf::Account a;
        a.name = "anna@example.org";
        a.provider = "old";
        a.state = mf::AccountState::synced;
        a.hash = "{PLAIN}x";
        REQUIRE((*s)->create_account(a, {"test", "", ""}).ok());
        REQUIRE((*s)->import_accounts({{"ivy@example.org", "old", "{PLAIN}y", "t"}}, "t").ok());
    }
    auto r = run({"--json", "--since", "6m", "--log", files[0], files[1]});
    REQUIRE(r.exit_code == 0);
    j = nlohmann::json::parse(r.out);
    REQUIRE(j["count"] == 3);
    CHECK(j["already_migrated"] == 1);
    CHECK(j["users"][0]["account"] == "bob@example.org");
    CHECK(j["users"][0]["logins"] == 2);
    CHECK(j["users"][0]["last_login"] == iso(now - 3 * day).substr(0, 19) + "Z");
    CHECK(j["users"][0]["in_store"] == "no");
    CHECK(j["users"][1]["account"] == "erik@example.org");
    CHECK(j["users"][2]["account"] == "ivy@example.org");
    CHECK(j["users"][2]["in_store"] == "verified");

    auto text = run({"--since", "7d", "--log", files[0], files[1]});
    CHECK(text.exit_code == 0);
    CHECK(has(text.out, "bob@example.org"));
    CHECK_FALSE(has(text.out, "erik@example.org")); // ten days ago
    CHECK(has(text.out, "2 accounts logged in at the old server since"));
    CHECK(
        has(text.err, "warning: 3 lines could not be read (ignored); first: " + files[0] + ":7:"));
    CHECK(has(text.err, "1 login name not in a migrated domain"));

    // Courier only: the Dovecot lines are not logins, so nothing to say about them.
    auto courier = run({"--json", "--format", "courier", "--log", files[1]});
    CHECK(nlohmann::json::parse(courier.out)["count"] == 1); // erik

    auto empty = run({"--log", dir.file("empty")}); // missing
    CHECK(empty.exit_code == 2);
    CHECK(has(empty.err, dir.file("empty")));
    mft::write_file(dir.file("empty.log"), "");
    auto e2 = run({"--json", "--log", dir.file("empty.log")});
    CHECK(e2.exit_code == 0);
    CHECK(nlohmann::json::parse(e2.out)["count"] == 0);
    auto d = run({"--log", dir.path()});
    CHECK(d.exit_code == 2);
    CHECK(has(d.err, dir.path()));

    // A log the user running the command cannot read: named, exit 2.
    mft::write_file(dir.file("root-only.log"), log, 0600);
    auto denied = mft::run({"runuser", "-u", "mfvmail", "--", kProgram, "never-logged-in",
                            "--config", config, "--log", dir.file("root-only.log")});
    CHECK(denied.exit_code == 2);
    CHECK(has(denied.err, dir.file("root-only.log")));
    CHECK(has(denied.err, "Permission denied"));

    // A gzip'd rotation cut off half-way: named, exit 2.
    std::string gz = mft::read_file(files[1]);
    mft::write_file(dir.file("cut.gz"), gz.substr(0, gz.size() / 2));
    auto cut = run({"--log", dir.file("cut.gz")});
    CHECK(cut.exit_code == 2);
    CHECK(has(cut.err, dir.file("cut.gz")));

    CHECK(run({"--since", "6x", "--log", files[0]}).exit_code == 2);
    CHECK(run({"--format", "exim", "--log", files[0]}).exit_code == 2);
    CHECK(run({}).exit_code == 2); // --log is required
}

TEST_CASE("100,000 log lines") {
    mft::TempDir dir{"mf-nli-big"};
    const std::string config = dir.file("mailferry.toml");
    mft::write_file(config, "[store]\npath = \"" + dir.file("mf.db") +
                                "\"\n[identity]\ndefault_domain = \"example.org\"\n"
                                "[[provider]]\nname = \"old\"\ndomains = [\"example.org\"]\n"
                                "host = \"imap.example.org\"\n");
    const auto now = static_cast<mf::UnixTime>(std::time(nullptr));
    std::string log;
    for (int i = 0; i < 100000; ++i) {
        log += iso(now - 3600 - i) + " mail dovecot: imap-login: Login: user=<u" +
               std::to_string(i % 5000) + ">, method=PLAIN, rip=192.0.2.1\n";
    }
    mft::write_file(dir.file("big.log"), log);
    auto t0 = std::chrono::steady_clock::now();
    auto r = mft::run({kProgram, "--json", "never-logged-in", "--config", config, "--log",
                       dir.file("big.log"), "--since", "30d"});
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["count"] == 5000);
    CHECK(j["logins"] == 100000);
    MESSAGE("never-logged-in over 100,000 lines: " << secs << " s");
    CHECK(secs < 60);
    CHECK_FALSE(has(r.err, "reading logs"));

    // On a terminal: a progress bar over the bytes of the logs, then the table.
    auto tty = mft::run_on_tty({kProgram, "never-logged-in", "--config", config, "--log",
                                dir.file("big.log"), "--since", "30d"},
                               std::chrono::seconds(120));
    CHECK(tty.exit_code == 0);
    CHECK(has(tty.screen, "reading logs ["));
    CHECK(has(tty.screen, "5000 accounts logged in at the old server"));
}

// The lines a real Dovecot writes: anna and bob log in at the old server, bob is already
// migrated, a wrong password is not a login. Only anna is listed.
TEST_CASE("a real Dovecot's log") {
    mft::DovecotOptions o;
    o.label = "nli-old";
    o.users = {{"anna@example.org", "anna-pw-1"}, {"bob@example.org", "bob-pw-2"}};
    o.tls = o.imaps = o.pop3s = o.submission = false;
    mft::DovecotServer old(o);
    CHECK(wt::imap_login(old.imap_port(), "anna@example.org", "anna-pw-1").rfind("a1 OK", 0) == 0);
    CHECK(wt::imap_login(old.imap_port(), "bob@example.org", "bob-pw-2").rfind("a1 OK", 0) == 0);
    CHECK(wt::imap_login(old.imap_port(), "carl@example.org", "nope").rfind("a1 OK", 0) != 0);

    mft::TempDir dir{"mf-nli-real"};
    const std::string config = dir.file("mailferry.toml");
    mft::write_file(config, "[store]\npath = \"" + dir.file("mf.db") +
                                "\"\n[identity]\ndefault_domain = \"example.org\"\n"
                                "[[provider]]\nname = \"old\"\ndomains = [\"example.org\"]\n"
                                "host = \"imap.example.org\"\n");
    {
        auto s = mf::open_sqlite_store(dir.file("mf.db"), mf::Millis(5000));
        REQUIRE(s.ok());
        mf::Account bob;
        bob.name = "bob@example.org";
        bob.provider = "old";
        bob.state = mf::AccountState::synced;
        bob.hash = "{PLAIN}x";
        REQUIRE((*s)->create_account(bob, mf::AuditContext{"test", "", "migrated"}).ok());
    }
    mft::write_file(dir.file("dovecot.log"), old.log_tail(100000));
    auto r = mft::run({kProgram, "never-logged-in", "--config", config, "--json", "--since", "1d",
                       "--log", dir.file("dovecot.log")});
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["logins_in_period"] == 2);
    REQUIRE(j["count"] == 1);
    CHECK(r.out.find("anna@example.org") != std::string::npos);
    CHECK(r.out.find("carl") == std::string::npos);
}
