// cli_import_test.cpp — runs the built `mailferry import` program on good and bad exports.
//
// A good file imports every account (state verified, the old hash) in one transaction and
// a second run changes nothing; any bad line (truncated, wrong column count, unknown hash,
// duplicate with another password, not UTF-8) refuses the whole file with FILE:LINE
// errors and leaves the store exactly as it was; skipped lines say why; BOM and CRLF are
// accepted; empty and unreadable files are refused clearly; no hash is ever printed; a
// 100,000-line passwd-file imports in reasonable time (measured, printed).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/store.hpp"
#include "support/test_env.hpp"
#include "support/tty.hpp"

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;

namespace {

const std::string kProgram = mft::program_path("external-auth", "mailferry");
// {SHA256} of "pw" (base64 of the raw digest), as a Dovecot passwd-file holds it.
const std::string kShaPw = "{SHA256}MMlS+rEiw/l1nwKm2Vw3WLJGtP7iOZV7LU/uRuJhcMQ=";
const std::string kCrypt = "$1$saltsalt$6SNdNaZLKst2LlSm7oPPL1"; // md5crypt of "pw"

struct Dir {
    mft::TempDir tmp{"mf-import"};
    std::string config;
    Dir() {
        // A cheap scheme: clear-text values (CommuniGate, Modoboa) are hashed per line.
        config = write("mailferry.toml",
                       "[store]\npath = \"" + tmp.file("mf.db") +
                           "\"\n[identity]\ndefault_domain = \"example.com\"\n"
                           "[[provider]]\nname = \"old\"\ndomains = [\"example.com\"]\n"
                           "host = \"imap.example.com\"\n"
                           "[hash]\nscheme = \"sha512-crypt\"\nsha512_rounds = 1000\n",
                       0644);
    }
    [[nodiscard]] std::string file(const std::string& name) const { return tmp.file(name); }
    [[nodiscard]] std::string write(const std::string& name, const std::string& text,
                                    unsigned mode = 0600) const {
        mft::write_file(tmp.file(name), text, mode);
        return tmp.file(name);
    }
    [[nodiscard]] mft::RunResult import(const std::string& file, const std::string& format,
                                        std::vector<std::string> extra = {}) const {
        std::vector<std::string> argv{kProgram, "import",   file,  "--format",
                                      format,   "--config", config};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return mft::run(argv, "", std::chrono::seconds(600));
    }
    [[nodiscard]] std::unique_ptr<mf::Store> store() const {
        auto s = mf::open_sqlite_store(file("mf.db"), mf::Millis(5000));
        REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message()));
        return std::move(*s);
    }
    // Every account and audit row, to compare the store before and after a refused import.
    [[nodiscard]] std::string snapshot() const {
        if (::access(file("mf.db").c_str(), F_OK) != 0) {
            return "no store";
        }
        auto s = store();
        std::string out;
        auto accounts = s->list_accounts();
        REQUIRE(accounts.ok());
        for (const auto& a : *accounts) {
            out += a.name + " " + mf::to_string(a.state) + " " + a.hash + "\n";
            out += std::to_string(s->audit_log(a.name)->size()) + " audit rows\n";
        }
        return out;
    }
};

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("the program was built") {
    REQUIRE_MESSAGE(::access(kProgram.c_str(), X_OK) == 0, kProgram << " is missing");
}

TEST_CASE("a passwd-file imports in one go; a re-import changes nothing; no hash printed") {
    Dir d;
    auto f = d.write("users", "# exported from old Dovecot\n"
                              "anna@example.com:" +
                                  kShaPw + ":5000:5000::/home/anna::\n" + "bob:" + kCrypt +
                                  "\n\ncarl@example.com:{PLAIN}carl-pw\n");
    auto r = d.import(f, "dovecot-passwd-file");
    CHECK_MESSAGE(r.exit_code == 0, r.out << r.err);
    CHECK(has(r.out, "imported 3 accounts from " + f));
    CHECK(has(r.out, "created    3"));
    for (const std::string& secret :
         {kShaPw, kCrypt, std::string("carl-pw"), std::string("MMlS")}) {
        CHECK_FALSE(has(r.out + r.err, secret));
    }
    auto s = d.store();
    auto bob = s->find_account("bob@example.com");
    REQUIRE(bob->has_value());
    CHECK((**bob).state == mf::AccountState::verified);
    CHECK((**bob).hash == "{CRYPT}" + kCrypt);
    CHECK((**bob).provider == "old");
    CHECK(s->audit_log("bob@example.com")->at(0).detail ==
          "imported from " + f + ":3 (dovecot-passwd-file)");

    auto again = d.import(f, "dovecot-passwd-file", {"--json"});
    REQUIRE(again.exit_code == 0);
    auto j = nlohmann::json::parse(again.out);
    CHECK(j["ok"] == true);
    CHECK(j["created"] == 0);
    CHECK(j["unchanged"] == 3);
    CHECK(s->audit_log("bob@example.com")->size() == 1);

    // Anna has logged in since (her hash is newer): kept. A changed hash of a still
    // unused import is updated.
    REQUIRE(s->set_state("anna@example.com", mf::AccountState::provisioned, {"test", "", ""}).ok());
    REQUIRE(s->set_hash("anna@example.com", "{PLAIN}new", {"test", "", ""}).ok());
    auto f2 = d.write("users2", "anna@example.com:" + kShaPw + "\nbob:{PLAIN}other\n" +
                                    "carl@example.com:{PLAIN}carl-pw\n");
    auto third = d.import(f2, "dovecot-passwd-file", {"--json"});
    REQUIRE(third.exit_code == 0);
    j = nlohmann::json::parse(third.out);
    CHECK(j["kept"] == 1);
    CHECK(j["updated"] == 1);
    CHECK(j["unchanged"] == 1);
    CHECK((**s->find_account("anna@example.com")).hash == "{PLAIN}new");
    // A clear-text value is hashed at import with the configured scheme.
    CHECK((**s->find_account("bob@example.com")).hash.rfind("{SHA512-CRYPT}$6$", 0) == 0);
}

TEST_CASE("any bad line refuses the whole file, each error with its line; store unchanged") {
    Dir d;
    REQUIRE(d.import(d.write("first", "zoe:" + kShaPw + "\n"), "dovecot-passwd-file").exit_code ==
            0);
    const std::string before = d.snapshot();
    auto f = d.write("bad", "anna:" + kShaPw +
                                "\n"
                                "truncated-line\n"              // 2: one field
                                "bob:{NOSUCH}abcdef\n"          // 3: unknown scheme
                                "carl:{PLAIN}one\n"             // 4: duplicate …
                                "carl@example.com:{PLAIN}two\n" // 5: … another password
                                "d\xe9sir\xe9:{PLAIN}x\n"       // 6: Latin-1, not UTF-8
                                "erik:{PLAIN}e\n"               // 7: fine
                                "erik:{PLAIN}e\n"               // 8: same: counted once
                                "fred:\n");                     // 9: no password
    auto r = d.import(f, "dovecot-passwd-file");
    CHECK(r.exit_code == 1);
    for (int line : {2, 3, 4, 5, 6, 9}) {
        CHECK_MESSAGE(has(r.err, f + ":" + std::to_string(line) + ": error: "), line << r.err);
    }
    CHECK_FALSE(has(r.err, f + ":1:"));
    CHECK_FALSE(has(r.err, f + ":7:"));
    CHECK(has(r.out, f + ":8: note: "));
    CHECK(has(r.err, "6 lines with errors: nothing was imported"));
    CHECK_FALSE(has(r.out + r.err, "{PLAIN}one"));
    CHECK(d.snapshot() == before);

    auto j = nlohmann::json::parse(d.import(f, "dovecot-passwd-file", {"--json"}).out);
    CHECK(j["ok"] == false);
    CHECK(j["imported"] == false);
    REQUIRE(j["errors"].size() == 6);
    CHECK(j["errors"][0]["line"] == 2);
    CHECK(d.snapshot() == before);
}

TEST_CASE("BOM and CRLF are fine; empty, binary, missing and unreadable files are refused") {
    Dir d;
    auto crlf = d.write("crlf", "\xEF\xBB\xBF"
                                "anna:" +
                                    kShaPw + "\r\nbob:" + kShaPw + "\r\n");
    auto r = d.import(crlf, "dovecot-passwd-file");
    CHECK_MESSAGE(r.exit_code == 0, r.err);
    CHECK(d.store()->find_account("anna@example.com")->has_value());

    auto empty = d.import(d.write("empty", ""), "dovecot-passwd-file");
    CHECK(empty.exit_code == 1);
    CHECK(has(empty.err, "empty"));
    auto comments = d.import(d.write("comments", "# nothing\n\n"), "dovecot-passwd-file");
    CHECK(comments.exit_code == 1);

    auto nul =
        d.import(d.write("nul", std::string("anna:{PLAIN}a\0b\n", 16)), "dovecot-passwd-file");
    CHECK(nul.exit_code != 0);
    CHECK(nul.exit_code != 70);

    auto missing = d.import(d.file("no-such-file"), "dovecot-passwd-file");
    CHECK(missing.exit_code == 2);
    CHECK(has(missing.err, d.file("no-such-file")));
    auto dir = d.import(d.tmp.path(), "dovecot-passwd-file");
    CHECK(dir.exit_code == 2);
    CHECK(has(dir.err, d.tmp.path()));

    // A file cut off in the middle of its last line: that line's error, and a warning.
    auto cut = d.write("cut", "gus:" + kShaPw + "\nhal:" + kShaPw.substr(0, 20));
    auto c = d.import(cut, "dovecot-passwd-file");
    CHECK(c.exit_code == 1);
    CHECK(has(c.err, cut + ":2: error: "));
    CHECK(has(c.err, "has no line end"));
    CHECK_FALSE(d.store()->find_account("gus@example.com")->has_value());

    // Unreadable for the admin running the command (root reads anything: run as another
    // user, the file 0600 root's).
    auto secret = d.write("root-only", "anna:" + kShaPw + "\n", 0600);
    auto denied = mft::run({"runuser", "-u", "mfvmail", "--", kProgram, "import", secret,
                            "--format", "dovecot-passwd-file", "--config", d.config});
    CHECK(denied.exit_code == 2);
    CHECK(has(denied.err, secret));
    CHECK(has(denied.err, "Permission denied"));

    auto usage = d.import(crlf, "passwd");
    CHECK(usage.exit_code == 2);
    CHECK(has(usage.err, "--format"));
}

TEST_CASE("a file readable by others is imported with a warning") {
    Dir d;
    auto f = d.write("open", "anna:" + kShaPw + "\n", 0644);
    auto r = d.import(f, "dovecot-passwd-file");
    CHECK(r.exit_code == 0);
    CHECK(has(r.err, "warning: " + f + " is readable by everybody"));
    auto closed = d.import(d.write("closed", "anna:" + kShaPw + "\n"), "dovecot-passwd-file");
    CHECK_FALSE(has(closed.err, "readable by"));
}

TEST_CASE("CommuniGate: columns counted, clear text hashed; Modoboa: skipped lines say why") {
    Dir d;
    auto cgp = d.write("cgp", "Name\tRealName\tPassword\n"
                              "anna\tAnna A\t\"clear pw\"\n"
                              "bob\tBob\n"); // 2 columns, the header has 3
    auto r = d.import(cgp, "communigate");
    CHECK(r.exit_code == 1);
    CHECK(has(r.err, cgp + ":3: error: 2 columns, the header has 3"));
    CHECK_FALSE(d.store()->find_account("anna@example.com")->has_value());

    auto good = d.write("cgp2", "Name\tPassword\nanna\t\"clear pw\"\n");
    REQUIRE(d.import(good, "communigate").exit_code == 0);
    auto anna = d.store()->find_account("anna@example.com");
    REQUIRE(anna->has_value());
    CHECK((**anna).hash.rfind("{SHA512-CRYPT}", 0) == 0);
    // Clear text hashed again would get a new salt: a re-import keeps the stored hash.
    auto again = nlohmann::json::parse(d.import(good, "communigate", {"--json"}).out);
    CHECK(again["unchanged"] == 1);
    CHECK(again["updated"] == 0);
    CHECK((**d.store()->find_account("anna@example.com")).hash == (**anna).hash);
    auto changed = d.write("cgp3", "Name\tPassword\nanna\t\"new pw\"\n");
    auto third = nlohmann::json::parse(d.import(changed, "communigate", {"--json"}).out);
    CHECK(third["updated"] == 1);

    auto mb = d.write("modoboa.csv", "domain; example.com; 1000; 0; True\n"
                                     "account; carl@example.com; {PLAIN}c; Carl; C; True\n"
                                     "account; dora@example.com; {PLAIN}d; Dora; D; False\n"
                                     "alias; info@example.com; True; carl@example.com\n");
    auto m = d.import(mb, "modoboa", {"--dry-run"});
    CHECK_MESSAGE(m.exit_code == 0, m.err);
    CHECK(has(m.out, mb + ":1: skipped: domain line"));
    CHECK(has(m.out, mb + ":3: skipped: dora@example.com: disabled"));
    CHECK(has(m.out, mb + ":4: skipped: alias line"));
    CHECK(has(m.out, "dry run: would import 1 account"));
    CHECK_FALSE(d.store()->find_account("carl@example.com")->has_value()); // dry run
    REQUIRE(d.import(mb, "modoboa").exit_code == 0);
    CHECK(d.store()->find_account("carl@example.com")->has_value());
}

TEST_CASE("100,000 lines import in one transaction in reasonable time") {
    Dir d;
    std::string text;
    text.reserve(100000 * 70);
    for (int i = 0; i < 100000; ++i) {
        text += "user" + std::to_string(i) + "@example.com:" + kShaPw + "\n";
    }
    auto f = d.write("big", text);
    auto t0 = std::chrono::steady_clock::now();
    auto r = d.import(f, "dovecot-passwd-file", {"--json"});
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["created"] == 100000);
    MESSAGE("import of 100,000 passwd-file lines: " << secs << " s wall (program says "
                                                    << j["seconds"].get<double>() << " s)");
    CHECK(secs < 120); // a sanitizer build on a shared machine; release is far faster
    CHECK(d.store()->count_by_state()->at(mf::AccountState::verified) == 100000);
    // A bad line at the very end: nothing of the 100,000 changes.
    auto before = d.store()->audit_log("user99999@example.com")->size();
    auto bad = d.write("big-bad", text + "broken\n");
    auto rb = d.import(bad, "dovecot-passwd-file");
    CHECK(rb.exit_code == 1);
    CHECK(has(rb.err, bad + ":100001: error: "));
    CHECK(d.store()->audit_log("user99999@example.com")->size() == before);
}

TEST_CASE("on a terminal a progress bar shows the planning; piped, nothing of it") {
    Dir d;
    std::string text;
    for (int i = 0; i < 20000; ++i) {
        text += "user" + std::to_string(i) + "@example.com:" + kShaPw + "\n";
    }
    auto f = d.write("tty-users", text);
    auto r = mft::run_on_tty(
        {kProgram, "import", f, "--format", "dovecot-passwd-file", "--config", d.config}, 300s);
    CHECK(r.exit_code == 0);
    CHECK(has(r.screen, "planning " + f + " ["));
    CHECK(has(r.screen, "20000/20000"));
    CHECK(has(r.screen, "imported 20000 accounts"));
    auto piped = d.import(f, "dovecot-passwd-file");
    CHECK(piped.exit_code == 0);
    CHECK_FALSE(has(piped.err, "planning"));
    CHECK_FALSE(has(piped.err, "\r"));
}

// Every byte SQLite holds for the store (the database and its write-ahead log).
std::string store_bytes(const Dir& d) {
    std::string out = mft::read_file(d.file("mf.db"));
    if (::access(d.file("mf.db-wal").c_str(), F_OK) == 0) {
        out += mft::read_file(d.file("mf.db-wal"));
    }
    return out;
}

TEST_CASE("clear-text values are hashed at import: no readable password in the store") {
    Dir d;
    // Base64 of "Secret-B64-pw", hex of "Secret-Hex-pw".
    auto f = d.write("users", "anna:{PLAIN}Secret-Plain-pw\n"
                              "bob:{CLEARTEXT}Secret-Clear-pw\n"
                              "carl:{plain.b64}U2VjcmV0LUI2NC1wdw==\n"
                              "dora:{PLAIN.HEX}5365637265742d4865782d7077\n"
                              "erik:{PLAIN-MD5}8e0b5f2a3b5e4a6f9d7c1b2a3c4d5e6f\n"
                              "finn:{PLAIN-TRUNC}6-Secret-Trunc\n");
    auto r = d.import(f, "dovecot-passwd-file");
    CHECK_MESSAGE(r.exit_code == 0, r.out << r.err);
    CHECK(has(r.out, "imported 5 accounts"));
    CHECK(has(r.out, f + ":6: skipped: finn@example.com: {PLAIN-TRUNC} is a readable password"));
    CHECK(has(r.err, "unsalted digests: {PLAIN-MD5} (1 account, first at line 5). They cannot "
                     "become the configured scheme without the password: they stay in the store "
                     "until each user's first login"));
    auto s = d.store();
    for (const char* name : {"anna", "bob", "carl", "dora"}) {
        CAPTURE(name);
        auto a = s->find_account(std::string(name) + "@example.com");
        REQUIRE(a->has_value());
        CHECK((**a).hash.rfind("{SHA512-CRYPT}$6$", 0) == 0);
    }
    CHECK((**s->find_account("erik@example.com")).hash.rfind("{PLAIN-MD5}", 0) == 0);
    CHECK_FALSE(s->find_account("finn@example.com")->has_value());
    s.reset();
    // Open the SQLite files themselves: not one clear-text password in them.
    const std::string bytes = store_bytes(d);
    REQUIRE(bytes.size() > 1000);
    for (const char* pw : {"Secret-Plain-pw", "Secret-Clear-pw", "Secret-B64-pw",
                           "U2VjcmV0LUI2NC1wdw", "Secret-Hex-pw", "5365637265742d4865782d7077",
                           "Secret-Trunc", "{PLAIN}", "{CLEARTEXT}"}) {
        CAPTURE(pw);
        CHECK_FALSE(has(bytes, pw));
        CHECK_FALSE(has(r.out + r.err, pw));
    }

    // A re-import of the same clear text changes nothing (the stored hash is kept).
    auto again = d.import(f, "dovecot-passwd-file", {"--json"});
    REQUIRE(again.exit_code == 0);
    CHECK(nlohmann::json::parse(again.out)["unchanged"] == 5);

    // Broken encodings are errors on their line.
    auto bad = d.write("bad", "gus:{PLAIN.HEX}zz\nhal:{PLAIN.B64}@@@\nivy:{PLAIN.ROT13}x\n");
    auto b = d.import(bad, "dovecot-passwd-file");
    CHECK(b.exit_code == 1);
    CHECK(has(b.err, bad + ":1: error: gus@example.com: the clear-text value is not valid hex"));
    CHECK(has(b.err, bad + ":2: error: hal@example.com: the clear-text value is not valid base64"));
    CHECK(has(b.err, bad + ":3: error: ivy@example.com: unknown encoding suffix"));
}

TEST_CASE("case variants of one user: in the file, and against accounts of older versions") {
    Dir d;
    {
        auto s = d.store();
        mf::UnixTime created = 1000; // Dora@ is older than DORA@
        for (const char* name : {"Carl@example.com", "Dora@example.com", "DORA@example.com"}) {
            mf::Account a;
            a.name = name;
            a.created = created++;
            a.provider = "old";
            a.state = mf::AccountState::verified;
            a.hash = kShaPw;
            REQUIRE(s->create_account(a, {"test", "", ""}).ok());
        }
    }
    // Anna twice with one password: counted once; Bob twice with two: neither imported.
    auto f = d.write("users", "Anna:{PLAIN}a\nanna@EXAMPLE.com:{PLAIN}a\n"
                              "BOB:{PLAIN}b1\nbob@example.com:{PLAIN}b2\n");
    auto r = d.import(f, "dovecot-passwd-file");
    CHECK(r.exit_code == 1);
    CHECK(has(r.out, f + ":2: note: anna@example.com: same account and password as line 1 (as "
                         "Anna: the same user in another letter case"));
    CHECK(has(r.err, f + ":4: error: bob@example.com: also at line 3 (as BOB: the "
                         "same user in another letter case"));
    CHECK(has(r.err, f + ":3: error: bob@example.com: also at line 4"));

    // Carl is stored as Carl@: imported onto that account, no second one. Dora is stored
    // twice: a conflict the admin has to see.
    auto g = d.write("more", "carl:{PLAIN}c\ndora:" + kShaPw + "\n");
    auto m = d.import(g, "dovecot-passwd-file");
    CHECK(m.exit_code == 1);
    CHECK(has(m.err, g + ":2: error: dora@example.com: the store already holds 2 accounts for "
                         "this user, differing only in letter case (Dora@example.com, "
                         "DORA@example.com)"));
    auto h = d.write("carl", "carl:{PLAIN}c\n");
    auto c = d.import(h, "dovecot-passwd-file", {"--json"});
    REQUIRE_MESSAGE(c.exit_code == 0, c.out << c.err);
    auto j = nlohmann::json::parse(c.out);
    CHECK(j["updated"] == 1);
    CHECK(j["created"] == 0);
    auto s = d.store();
    CHECK_FALSE(s->find_account("carl@example.com")->has_value());
    CHECK((**s->find_account("Carl@example.com")).hash.rfind("{SHA512-CRYPT}", 0) == 0);
    CHECK(s->list_accounts()->size() == 3);
}
