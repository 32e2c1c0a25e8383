// cli_replay_test.cpp — `mailferry replay` against real Dovecots (migration_world.hpp), and
// the replay file parser in-process.
//
// A replayed user is verified at the old server, provisioned, queued and copied by the
// worker exactly as after a login, and then logs in at the new server; wrong passwords,
// bad lines and an unreachable old server give their per-line result and exit code; a
// re-run skips what is done; a full server budget makes lines wait, not fail; --dry-run
// contacts nobody and changes nothing. No password ever shows up in any output.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "admin_replay.hpp"
#include "support/migration_world.hpp"

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/file.h>

using namespace std::chrono_literals;
using mf::AccountState;
using mf::cli::LineResult;
using mf::cli::ReplayFormat;

namespace {

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

const std::vector<std::string> kPasswords = {"Anna-Secret-1", "Bob-Secret-2",   "Carl-Secret-3",
                                             "Dora-Secret-4", "WRONG-guess-99", "Eve-Secret-5",
                                             "Finn-Secret-6", "Gus-Secret-7"};

// No password of the test, right or wrong, in anything a run printed.
void check_no_password(const mft::RunResult& r) {
    for (const auto& pw : kPasswords) {
        INFO("password " << pw);
        CHECK_FALSE(has(r.out, pw));
        CHECK_FALSE(has(r.err, pw));
    }
}

mft::RunResult replay(const wt::World& w, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {wt::kMailferry, "replay", "--config", w.config};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = mft::run(argv, {}, 300s);
    check_no_password(r);
    return r;
}

std::vector<mft::TestUser> users() {
    return {{"anna@example.com", "Anna-Secret-1"}, {"bob@example.com", "Bob-Secret-2"},
            {"carl@example.com", "Carl-Secret-3"}, {"dora@example.com", "Dora-Secret-4"},
            {"eve@example.com", "Eve-Secret-5"},   {"finn@example.com", "Finn-Secret-6"},
            {"gus@example.com", "Gus-Secret-7"}};
}

std::string write(const wt::World& w, const std::string& name, const std::string& text,
                  unsigned mode = 0600) {
    std::string p = w.dir.file(name);
    mft::write_file(p, text, mode);
    ::chmod(p.c_str(), mode);
    return p;
}

// The result column of line `n` in --json output.
std::string result_of(const nlohmann::json& doc, std::size_t n) {
    for (const auto& l : doc["lines"]) {
        if (l["line"] == n) {
            return l["result"];
        }
    }
    return "(no line " + std::to_string(n) + ")";
}

std::string detail_of(const nlohmann::json& doc, std::size_t n) {
    for (const auto& l : doc["lines"]) {
        if (l["line"] == n) {
            return l["detail"];
        }
    }
    return {};
}

// The database as bytes (with its WAL, where committed changes may still sit).
std::string snapshot(const wt::World& w) {
    std::string out = mft::read_file(w.db());
    // A read-only SQLite connection may create an empty -wal beside a WAL database.
    if (std::filesystem::exists(w.db() + "-wal") &&
        std::filesystem::file_size(w.db() + "-wal") > 0) {
        out += "|wal|" + mft::read_file(w.db() + "-wal");
    }
    return out;
}

void set_max_concurrent(const wt::World& w, unsigned n) {
    std::string text = mft::read_file(w.config);
    text = wt::replace_all(text, "max_concurrent = 100", "max_concurrent = " + std::to_string(n));
    mft::write_file(w.config, text, 0640);
}

// Holds one of the old server's verification slots, as a login in progress would.
struct HeldSlot {
    int fd = -1;
    HeldSlot(const wt::World& w, unsigned slot) {
        std::string path = w.state + "/locks/provider-old-" + std::to_string(slot) + ".lock";
        fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0660);
        REQUIRE(fd >= 0);
        REQUIRE(::flock(fd, LOCK_EX) == 0);
    }
    void release() {
        if (fd >= 0) {
            ::close(fd);
            fd = -1;
        }
    }
    ~HeldSlot() { release(); }
    HeldSlot(const HeldSlot&) = delete;
    HeldSlot& operator=(const HeldSlot&) = delete;
};

// In-process parser fixture: an identity map over a small config.
struct Parser {
    mf::Config cfg;
    std::optional<mf::IdentityMap> ids;
    Parser() {
        auto c = mf::parse_config("[identity]\ndefault_domain = \"example.com\"\n"
                                  "[identity.domain_renames]\n\"old.example\" = \"example.com\"\n"
                                  "[[provider]]\nname = \"old\"\n"
                                  "domains = [\"old.example\"]\n"
                                  "host = \"imap.example.com\"\n",
                                  "test.toml");
        REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error().message()));
        cfg = std::move(*c);
        auto i = mf::IdentityMap::create(cfg);
        REQUIRE(i.ok());
        ids.emplace(std::move(*i));
    }
    mf::Result<mf::cli::ReplayPlan> plan(const std::string& text,
                                         ReplayFormat f = ReplayFormat::automatic) {
        auto file = mf::TextFile::from_text(text, "replay.txt");
        REQUIRE(file.ok());
        return mf::cli::plan_replay(*file, f, *ids);
    }
};

const mf::cli::LineReport* report_for(const mf::cli::ReplayPlan& p, std::size_t line) {
    for (const auto& r : p.reports) {
        if (r.line == line) {
            return &r;
        }
    }
    return nullptr;
}

} // namespace

TEST_CASE("the programs were built") {
    REQUIRE(::access(wt::kMailferry.c_str(), X_OK) == 0);
    REQUIRE(::access(wt::kCheckpassword.c_str(), X_OK) == 0);
}

// ---- the parser, in-process ----

TEST_CASE("parser: user<TAB>password, comments, bad lines by number and reason only") {
    Parser ps;
    auto p = ps.plan("# a comment\n"
                     "anna\tAnna-Secret-1\n"
                     "\n"
                     "bob@example.com\tBob-Secret-2\textra-Carl-Secret-3\n"
                     "carl-Secret-3-alone\n"
                     "dora@old.example\tDora-Secret-4\n"
                     "bad name\tEve-Secret-5\n"
                     "finn\t\n"
                     "\tFinn-Secret-6\n"
                     "gus\tGus-Secret-7");
    REQUIRE(p.ok());
    CHECK(p->format == ReplayFormat::tab);
    CHECK(p->data_lines == 8);
    REQUIRE(p->lines.size() == 2);
    CHECK(p->lines[0].line == 2);
    CHECK(p->lines[0].identity.canonical == "anna@example.com");
    CHECK(p->lines[0].password.view() == "Anna-Secret-1");
    CHECK(p->lines[1].identity.canonical == "dora@example.com"); // domain rename
    REQUIRE(report_for(*p, 4) != nullptr);
    CHECK(report_for(*p, 4)->result == LineResult::malformed);
    CHECK(report_for(*p, 4)->detail == "3 fields, expected 2: user<TAB>password");
    CHECK(report_for(*p, 5)->detail == "1 field, expected 2: user<TAB>password");
    CHECK(report_for(*p, 7)->result == LineResult::refused);
    CHECK(report_for(*p, 8)->detail == "empty password");
    CHECK(report_for(*p, 9)->detail == "empty user name");
    CHECK(report_for(*p, 10)->result == LineResult::malformed); // no line end: maybe cut off
    CHECK(has(report_for(*p, 10)->detail, "cut off"));
    for (const auto& r : p->reports) {
        for (const auto& pw : kPasswords) {
            CHECK_FALSE(has(r.detail + r.user, pw));
        }
    }
}

TEST_CASE("parser: MoveAccounts header, quoted strings, NewName and NewPassword") {
    Parser ps;
    auto p = ps.plan("Name\tPassword\tNewName\tNewPassword\n"
                     "anna\t\"Anna\\tSecret\"\t\t\n"
                     "bob\tBob-Secret-2\tbob@example.com\t\n"
                     "carl\tCarl-Secret-3\tcharles\t\n"
                     "dora\tDora-Secret-4\t\tEve-Secret-5\n"
                     "eve\tEve-Secret-5\n"
                     "finn\t\"broken\t\t\n");
    REQUIRE(p.ok());
    CHECK(p->format == ReplayFormat::moveaccounts);
    REQUIRE(p->lines.size() == 2);
    CHECK(p->lines[0].password.view() == "Anna\tSecret");
    CHECK(p->lines[1].identity.canonical == "bob@example.com");
    CHECK(report_for(*p, 4)->result == LineResult::unsupported);
    CHECK(has(report_for(*p, 4)->detail, "conflict_map"));
    CHECK(report_for(*p, 5)->result == LineResult::unsupported);
    CHECK(has(report_for(*p, 5)->detail, "NewPassword"));
    CHECK_FALSE(has(report_for(*p, 5)->detail, "Eve-Secret-5"));
    CHECK(report_for(*p, 6)->detail == "2 columns, the header has 4");
    CHECK(report_for(*p, 7)->detail == "Password column: broken quoted string");
    CHECK(p->warnings.size() == 1);
}

TEST_CASE("parser: BOM and CRLF are read, duplicates, non-UTF-8 names") {
    Parser ps;
    auto p = ps.plan("\xEF\xBB\xBFName\tPassword\r\nanna\tAnna-Secret-1\r\n"
                     "anna@example.com\tAnna-Secret-1\r\n"
                     "anna@old.example\tWRONG-guess-99\r\n"
                     "b\xE9la\tBob-Secret-2\r\n");
    REQUIRE(p.ok());
    CHECK(p->format == ReplayFormat::moveaccounts);
    REQUIRE(p->lines.size() == 1);
    CHECK(p->lines[0].password.view() == "Anna-Secret-1"); // no CR
    CHECK(report_for(*p, 3)->result == LineResult::skipped);
    CHECK(report_for(*p, 4)->result == LineResult::duplicate);
    CHECK(report_for(*p, 5)->result == LineResult::malformed);
    CHECK(has(report_for(*p, 5)->detail, "not valid UTF-8"));
    CHECK(p->warnings.size() == 2); // BOM, CRLF
}

TEST_CASE("parser: an empty file and a header without Name are refused as a whole") {
    Parser ps;
    CHECK_FALSE(ps.plan("").ok());
    CHECK_FALSE(ps.plan("\n\n# only comments\n").ok());
    auto p = ps.plan("User\tPassword\nanna\tAnna-Secret-1\n", ReplayFormat::moveaccounts);
    REQUIRE_FALSE(p.ok());
    CHECK(has(p.error().message(), "none called Name"));
    CHECK_FALSE(ps.plan("Name\tPassword\n", ReplayFormat::moveaccounts).ok());
}

TEST_CASE("exit code: temporary (75) wins over a definite no (1), which wins over ok (0)") {
    auto code = [](std::vector<LineResult> results) {
        std::vector<mf::cli::LineReport> reps;
        for (auto r : results) {
            mf::cli::LineReport rep;
            rep.result = r;
            reps.push_back(rep);
        }
        return mf::cli::replay_exit_code(reps);
    };
    CHECK(code({}) == 0);
    CHECK(code({LineResult::ok, LineResult::skipped}) == 0);
    CHECK(code({LineResult::would_replay, LineResult::skipped}) == 0);
    CHECK(code({LineResult::ok, LineResult::wrong_password}) == 1);
    CHECK(code({LineResult::malformed}) == 1);
    CHECK(code({LineResult::duplicate}) == 1);
    CHECK(code({LineResult::unsupported}) == 1);
    CHECK(code({LineResult::refused}) == 1);
    CHECK(code({LineResult::wrong_password, LineResult::temporary, LineResult::ok}) == 75);
}

// ---- the program, on real servers ----

TEST_CASE("replay: verified, provisioned, queued and copied like a login; re-run skips") {
    wt::WorldOptions o;
    o.users = users();
    wt::World w(o);
    wt::fill_mailbox(w.old, "anna@example.com", "", 5, 2000, 1);
    std::string file = write(w, "accounts.txt",
                             "anna\tAnna-Secret-1\n"
                             "bob@example.com\tWRONG-guess-99\n"
                             "carl\n"
                             "dora\tDora-Secret-4\n");
    auto r = replay(w, {"--json", file});
    INFO(r.out, r.err);
    CHECK(r.exit_code == 1); // a wrong password and a malformed line
    auto doc = nlohmann::json::parse(r.out);
    CHECK(result_of(doc, 1) == "ok");
    CHECK(result_of(doc, 2) == "wrong password");
    CHECK(result_of(doc, 3) == "malformed");
    CHECK(result_of(doc, 4) == "ok");
    CHECK(doc["exit"] == 1);
    CHECK(w.account("anna@example.com")->state == AccountState::provisioned);
    CHECK(w.account("dora@example.com")->state == AccountState::provisioned);
    CHECK_FALSE(w.account("bob@example.com").has_value());
    // The same hook as a login: sealed password and a queued copy job.
    CHECK(std::filesystem::exists(w.spool_dir() + "/anna@example.com.sealed"));
    auto jobs = w.jobs();
    CHECK(jobs.size() == 2);
    // The audit says who did it.
    auto s = mf::open_sqlite_store(w.db(), mf::Millis(5000));
    REQUIRE(s.ok());
    auto audit = (*s)->audit_log("anna@example.com");
    REQUIRE(audit.ok());
    REQUIRE_FALSE(audit->empty());
    CHECK(audit->front().actor == "replay");

    // The worker copies, and anna logs in at the new server with her old password.
    auto worker = w.start_worker();
    INFO("worker log:\n", mft::read_file(worker.log));
    REQUIRE(w.wait_state({"anna@example.com"}, AccountState::synced, 60s));
    CHECK(wt::counts(*w.fresh, "anna@example.com")["INBOX"] == 5);
    CHECK(wt::imap_login(w.fresh->imap_port(), "anna", "Anna-Secret-1").rfind("a1 OK", 0) == 0);

    // Re-run: done lines are skipped without asking anybody, even with the old server off.
    w.old.stop();
    auto again = replay(w, {file});
    INFO(again.out, again.err);
    // bob is asked again — and answered by the guard's negative cache, not the old server.
    CHECK(again.exit_code == 1);
    CHECK(has(again.out, "negative cache"));
    CHECK(has(again.out, "already migrated"));
    std::string fixed = write(w, "fixed.txt", "anna\tAnna-Secret-1\ndora\tDora-Secret-4\n");
    auto done = replay(w, {fixed});
    INFO(done.out, done.err);
    CHECK(done.exit_code == 0);
    CHECK(has(done.out, "2 skipped"));
}

TEST_CASE("replay: many wrong passwords in one file do not lock out the lines after them") {
    wt::WorldOptions o;
    o.users = users();
    wt::World w(o);
    std::string text;
    for (int i = 0; i < 55; ++i) { // more than the default max_failures_per_ip (50)
        text += "ghost" + std::to_string(i) + "\tWrong-" + std::to_string(i) + "\n";
    }
    text += "eve\tEve-Secret-5\n";
    std::string file = write(w, "many.txt", text);
    auto r = replay(w, {"--json", "--jobs", "4", file});
    INFO(r.out, r.err);
    CHECK(r.exit_code == 1);
    auto doc = nlohmann::json::parse(r.out);
    CHECK(result_of(doc, 56) == "ok");
    CHECK(w.account("eve@example.com")->state == AccountState::provisioned);
}

TEST_CASE("replay: an unreachable old server is temporary (75), nothing is created") {
    wt::WorldOptions o;
    o.users = users();
    wt::World w(o);
    w.old.stop();
    std::string file = write(w, "a.txt", "anna\tAnna-Secret-1\nbob\tWRONG-guess-99\n");
    auto r = replay(w, {file});
    INFO(r.out, r.err);
    CHECK(r.exit_code == 75);
    CHECK(has(r.out, "temporary, retry later"));
    CHECK_FALSE(w.account("anna@example.com").has_value());
    CHECK(w.jobs().empty());
}

TEST_CASE("replay: a full server budget makes lines wait for a slot, bounded by --busy-wait") {
    wt::WorldOptions o;
    o.users = users();
    wt::World w(o);
    set_max_concurrent(w, 1);
    std::string file = write(w, "a.txt",
                             "anna\tAnna-Secret-1\nbob\tBob-Secret-2\ncarl\tCarl-Secret-3\n"
                             "dora\tDora-Secret-4\neve\tEve-Secret-5\nfinn\tFinn-Secret-6\n");
    {
        // Every slot taken for longer than we wait: temporary, and the reason says why.
        HeldSlot slot(w, 0);
        auto r = replay(w, {"--json", "--jobs", "3", "--busy-wait", "300ms", file});
        INFO(r.out, r.err);
        CHECK(r.exit_code == 75);
        auto doc = nlohmann::json::parse(r.out);
        CHECK(result_of(doc, 1) == "temporary, retry later");
        CHECK(has(detail_of(doc, 1), "max_concurrent"));
        CHECK(has(detail_of(doc, 1), "still busy"));
        CHECK_FALSE(w.account("anna@example.com").has_value());
    }
    {
        // The slot comes free after three seconds (longer than the program takes to start):
        // the lines waited and all went through, one at a time although 6 jobs ran.
        auto slot = std::make_unique<HeldSlot>(w, 0);
        std::thread freer([&] {
            std::this_thread::sleep_for(3s);
            slot->release();
        });
        auto t0 = std::chrono::steady_clock::now();
        auto r = replay(w, {"--json", "--jobs", "6", file});
        CHECK(std::chrono::steady_clock::now() - t0 >= 3s);
        freer.join();
        INFO(r.out, r.err);
        CHECK(r.exit_code == 0);
        auto doc = nlohmann::json::parse(r.out);
        bool waited = false;
        for (std::size_t n = 1; n <= 6; ++n) {
            CHECK(result_of(doc, n) == "ok");
            waited = waited || has(detail_of(doc, n), "for a free server slot");
        }
        CHECK(waited);
    }
}

TEST_CASE("replay --dry-run: maps and checks, contacts nobody, changes nothing") {
    wt::WorldOptions o;
    o.users = users();
    wt::World w(o);
    w.old.stop(); // would be temporary if anybody were asked
    std::string file = write(w, "a.txt",
                             "Name\tPassword\tNewName\tNewPassword\n"
                             "anna\tAnna-Secret-1\tanna\t\n"
                             "bob\tBob-Secret-2\tbobby\t\n"
                             "carl\tCarl-Secret-3\n");
    const std::string before = snapshot(w);
    auto r = replay(w, {"--dry-run", file});
    INFO(r.out, r.err);
    CHECK(r.exit_code == 1);
    CHECK(has(r.out, "would replay"));
    CHECK(has(r.out, "unsupported"));
    CHECK(has(r.out, "2 columns, the header has 4"));
    CHECK(snapshot(w) == before);
    CHECK_FALSE(w.account("anna@example.com").has_value());

    // 100,000 lines: checked in one go.
    std::string big;
    for (int i = 0; i < 100000; ++i) {
        big += "user" + std::to_string(i) + "\tPw-" + std::to_string(i) + "\n";
    }
    std::string bigfile = write(w, "big.txt", big);
    auto b = replay(w, {"--json", "--dry-run", bigfile});
    CHECK(b.exit_code == 0);
    auto doc = nlohmann::json::parse(b.out);
    CHECK(doc["data_lines"] == 100000);
    CHECK(doc["counts"]["would replay"] == 100000);
    CHECK(snapshot(w) == before);
}

TEST_CASE("replay: unusable files exit 2, a world-readable file is warned about") {
    wt::WorldOptions o;
    o.users = users();
    wt::World w(o);
    auto empty = replay(w, {write(w, "empty.txt", "")});
    CHECK(empty.exit_code == 2);
    CHECK(has(empty.err, "empty"));
    auto missing = replay(w, {w.dir.file("no-such-file")});
    CHECK(missing.exit_code == 2);
    CHECK(has(missing.err, "no-such-file"));
    auto dir = replay(w, {w.dir.path()});
    CHECK(dir.exit_code == 2);
    auto utf16 = replay(w, {write(w, "u16.txt",
                                  std::string("\xFF\xFE"
                                              "a\0n\0",
                                              6))});
    CHECK(utf16.exit_code == 2);
    CHECK(has(utf16.err, "UTF-16"));
    auto noheader =
        replay(w, {"--format", "moveaccounts", write(w, "nohdr.txt", "anna\tAnna-Secret-1\n")});
    CHECK(noheader.exit_code == 2);
    CHECK(has(noheader.err, "header"));
    auto usage = replay(w, {"--format", "csv", write(w, "x.txt", "anna\tAnna-Secret-1\n")});
    CHECK(usage.exit_code == 2);

    auto open = replay(w, {"--dry-run", write(w, "open.txt", "anna\tAnna-Secret-1\n", 0644)});
    CHECK(open.exit_code == 0);
    CHECK(has(open.err, "warning: "));
    CHECK(has(open.err, "readable by everybody"));
    auto closed = replay(w, {"--dry-run", write(w, "closed.txt", "anna\tAnna-Secret-1\n", 0600)});
    CHECK(closed.exit_code == 0);
    CHECK_FALSE(has(closed.err, "readable"));
    // CRLF and a BOM are fine, with a note.
    auto crlf = replay(w, {"--dry-run", write(w, "crlf.txt",
                                              "\xEF\xBB\xBF"
                                              "anna\tAnna-Secret-1\r\n")});
    CHECK(crlf.exit_code == 0);
    CHECK(has(crlf.err, "CRLF"));
    CHECK(has(crlf.err, "byte order mark"));
}
