// mailflow_services_test.cpp — `mailferry policy` and `mailferry transport` fed directly
// on stdin, as Postfix's spawn would connect them: good requests, then every kind of
// garbage (no empty line, over-long lines, too many attributes, unknown request types,
// missing attributes, broken netstrings). Each gets a clear log line and a safe answer
// (DEFER_IF_PERMIT, PERM, or the connection closed), never a crash. Also the parsers
// alone, and a busy store (DEFER_IF_PERMIT, never a HOLD nobody remembers).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/mailflow.hpp"
#include "mailferry/store.hpp"
#include "support/store_lock.hpp"
#include "support/test_env.hpp"

#include <filesystem>
#include <sqlite3.h>

using namespace std::chrono_literals;
using mf::AccountState;
using mf::mailflow::ParseStatus;

namespace {

const std::string kMailferry = mft::program_path("external-auth", "mailferry");

struct Setup {
    mft::TempDir dir{"mailferry-services"};
    std::string config = dir.file("m.toml");
    std::string db = dir.file("m.db");

    explicit Setup(const std::string& mode = "relay") {
        std::string c = "[store]\npath = \"" + db + "\"\nbusy_timeout = \"200ms\"\n";
        c += "[[provider]]\nname = \"old\"\ndomains = [\"example.com\"]\nhost = \"127.0.0.1\"\n";
        // Nobody listens on port 9 (discard): a probe finds the old server unavailable.
        c += "mail_port = 9\n[mailflow]\nlocal_transport = \"lmtp:inet:127.0.0.1:24\"\n";
        c += "unmigrated = \"" + mode + "\"\nprobe_timeout = \"2s\"\n";
        mft::write_file(config, c);
        auto s = mf::open_sqlite_store(db, mf::Millis(2000));
        REQUIRE(s.ok());
        for (auto [name, st] : {std::pair{"mia@example.com", AccountState::synced},
                                std::pair{"carl@example.com", AccountState::held}}) {
            mf::Account a;
            a.name = name;
            a.provider = "old";
            a.state = st;
            REQUIRE((*s)->create_account(a, {"test", "", ""}).ok());
        }
    }

    [[nodiscard]] mft::RunResult run(const std::string& cmd, const std::string& in) const {
        return mft::run({kMailferry, "--config", config, cmd}, in, 60s);
    }
};

std::string request(const std::string& state, const std::string& rcpt,
                    const std::string& extra = "") {
    return "request=smtpd_access_policy\nprotocol_state=" + state + "\nprotocol_name=ESMTP\n" +
           "recipient=" + rcpt + "\nsender=s@elsewhere.example\ninstance=1a.2b.3c\n" + extra + "\n";
}

std::string ns(const std::string& s) {
    return mf::mailflow::netstring(s);
}

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("netstring parser: complete, partial, and broken input") {
    using mf::mailflow::parse_netstring;
    auto n = parse_netstring("5:hello,rest");
    CHECK(n.status == ParseStatus::complete);
    CHECK(n.payload == "hello");
    CHECK(n.consumed == 8);
    CHECK(parse_netstring("5:hel").status == ParseStatus::incomplete);
    CHECK(parse_netstring("12").status == ParseStatus::incomplete);
    CHECK(parse_netstring("").status == ParseStatus::incomplete);
    for (const char* b :
         {"x:abc,", ":abc,", "3:abc;", "03:abc,", "99999999999:a", "10001:", "-1:a,"}) {
        CAPTURE(b);
        auto r = parse_netstring(b);
        CHECK(r.status == ParseStatus::bad);
        CHECK_FALSE(r.error.empty());
    }
    CHECK(mf::mailflow::netstring("OK x") == "4:OK x,");
}

TEST_CASE("policy parser: requests, limits, garbage") {
    using mf::mailflow::parse_policy_request;
    auto r = parse_policy_request("a=1\r\nb=x=y\n\nnext");
    CHECK(r.status == ParseStatus::complete);
    CHECK(r.attrs.at("a") == "1");
    CHECK(r.attrs.at("b") == "x=y");
    CHECK(r.consumed == 12);
    CHECK(parse_policy_request("a=1\nb=2").status == ParseStatus::incomplete);
    CHECK(parse_policy_request("\n").status == ParseStatus::bad);
    CHECK(parse_policy_request("novalue\n\n").status == ParseStatus::bad);
    CHECK(parse_policy_request("=v\n\n").status == ParseStatus::bad);
    CHECK(parse_policy_request(std::string(5000, 'a')).status == ParseStatus::bad);
    CHECK(parse_policy_request("a=" + std::string(5000, 'b') + "\n\n").status == ParseStatus::bad);
    std::string many;
    for (int i = 0; i < 101; ++i) {
        many += "k" + std::to_string(i) + "=v\n";
    }
    CHECK(parse_policy_request(many + "\n").status == ParseStatus::bad);
    CHECK(mf::mailflow::policy_reply("HOLD a\r\nb") == "action=HOLD a  b\n\n");
}

TEST_CASE("mailferry policy on stdin: answers, then safe answers to garbage") {
    Setup s;
    auto r = s.run("policy",
                   request("RCPT", "mia@example.com") + request("RCPT", "anna@example.com") +
                       request("RCPT", "x@other.example") + request("RCPT", "carl@example.com") +
                       request("END-OF-MESSAGE", "", "queue_id=4F00A1\n") + "request=other\n\n" +
                       "request=smtpd_access_policy\n\n" + request("RCPT", "") + "oops no end");
    INFO(r.out, r.err);
    CHECK(r.exit_code == 1); // the last request never ended
    CHECK(r.out == "action=DUNNO\n\naction=DUNNO\n\naction=DUNNO\n\n"
                   "action=HOLD mailferry: carl@example.com is in its final copy round\n\n"
                   "action=DUNNO\n\n"
                   "action=DEFER_IF_PERMIT 4.3.0 mailferry: temporary failure, try again\n\n"
                   "action=DEFER_IF_PERMIT 4.3.0 mailferry: temporary failure, try again\n\n"
                   "action=DEFER_IF_PERMIT 4.3.0 mailferry: temporary failure, try again\n\n");
    CHECK(has(r.err, "unknown request type \"other\""));
    CHECK(has(r.err, "request without protocol_state"));
    CHECK(has(r.err, "RCPT request without a recipient"));
    CHECK(has(r.err, "connection closed inside a request (no empty line)"));
    auto store = mf::open_sqlite_store(s.db, mf::Millis(2000));
    REQUIRE(store.ok());
    auto rows = (*store)->list_held_mail("carl@example.com");
    REQUIRE(rows.ok());
    REQUIRE(rows->size() == 1);
    CHECK((*rows)[0].queue_id == "4F00A1");

    for (const std::string& garbage :
         {std::string("no equals sign\n\n"), "a=" + std::string(5000, 'x') + "\n\n",
          std::string(10000, 'y'), std::string("\n")}) {
        auto g = s.run("policy", garbage + request("RCPT", "mia@example.com"));
        CAPTURE(garbage.substr(0, 20));
        CHECK(g.exit_code == 1);
        CHECK(g.out == "action=DEFER_IF_PERMIT 4.3.0 mailferry: temporary failure, try again\n\n");
        CHECK(has(g.err, "malformed request"));
    }
    std::string many = "request=smtpd_access_policy\n";
    for (int i = 0; i < 120; ++i) {
        many += "x" + std::to_string(i) + "=1\n";
    }
    auto m = s.run("policy", many + "\n");
    CHECK(m.exit_code == 1);
    CHECK(has(m.err, "more than 100 attributes"));
}

TEST_CASE("mailferry policy: probe mode with the old server unreachable defers") {
    Setup s("probe");
    auto r = s.run("policy", request("RCPT", "anna@example.com"));
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(has(r.out, "action=DEFER_IF_PERMIT 4.4.3"));
    CHECK(has(r.err, "old server unavailable"));
}

TEST_CASE("mailferry transport on stdin: routes, then PERM for broken netstrings") {
    Setup s;
    auto r = s.run("transport", ns("transport mia@example.com") + ns("transport anna@example.com") +
                                    ns("transport MIA@Example.COM") + ns("transport example.com") +
                                    ns("transport x@other.example") +
                                    ns("aliases mia@example.com") + ns("nospace"));
    INFO(r.out, r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == ns("OK lmtp:inet:127.0.0.1:24") + ns("OK smtp:[127.0.0.1]:9") +
                       ns("OK lmtp:inet:127.0.0.1:24") + ns("NOTFOUND ") + ns("NOTFOUND ") +
                       ns("PERM unknown map \"aliases\" (this one is \"transport\")") +
                       ns("PERM request is not \"name key\""));
    for (const std::string& garbage : {std::string("hello"), std::string("5:abc"),
                                       std::string("99999:"), std::string("3:abc;")}) {
        CAPTURE(garbage);
        auto g = s.run("transport", ns("transport mia@example.com") + garbage);
        CHECK(has(g.out, ns("OK lmtp:inet:127.0.0.1:24")));
        const bool cut = garbage == "5:abc"; // only ends early: the client hung up
        CHECK(g.exit_code == 1);
        CHECK(has(g.err, cut ? "connection closed inside a request" : "malformed request"));
        if (!cut) {
            CHECK(has(g.out, "PERM malformed request"));
        }
    }
}

TEST_CASE("a busy store: a hold that cannot be recorded is DEFER_IF_PERMIT, not HOLD") {
    Setup s;
    mft::StoreLockHolder lock(s.db);
    auto p = s.run("policy", request("RCPT", "carl@example.com"));
    INFO(p.out, p.err);
    CHECK(p.out == "action=DEFER_IF_PERMIT 4.3.0 mailferry: temporary failure, try again\n\n");
    CHECK(has(p.err, "not recorded"));
}

TEST_CASE("a store that fails: TEMP from the transport map, no answer from the policy") {
    Setup s;
    // The schema version still reads right, but every account look-up fails.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(s.db.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "ALTER TABLE accounts RENAME TO gone", nullptr, nullptr, nullptr) ==
            SQLITE_OK);
    sqlite3_close(db);
    auto t = s.run("transport", ns("transport mia@example.com") + ns("transport x@other.example"));
    INFO(t.out, t.err);
    CHECK(t.exit_code == 0);
    CHECK(t.out.rfind("TEMP ", t.out.find(':') + 1) == t.out.find(':') + 1);
    CHECK(has(t.out, ns("NOTFOUND "))); // not our domain: no store needed
    // The policy service cannot open such a store at all: it exits 75 without a word, and
    // Postfix answers its smtpd_policy_service_default_action (451, a deferral).
    auto p = s.run("policy", request("RCPT", "mia@example.com"));
    CHECK(p.exit_code == 75);
    CHECK(p.out.empty());
    CHECK(has(p.err, "policy: "));
}
