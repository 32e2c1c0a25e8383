// copier_hostile_test.cpp — the copier against scripted servers that misbehave in ways a
// real Dovecot will not on demand: a 4 GB literal, a connection cut inside a literal,
// garbage (random bytes, a 2 MB line, unbalanced parentheses), BYE in the middle of the
// second folder, a reply under another command's tag, and silence (after the greeting,
// mid-FETCH). The scripted server is the source; the target is a real Dovecot.
//
// Every case checks: no crash (ASan/UBSan in CI), nothing half-stored (the target holds
// only whole source messages, byte for byte, none twice), a clear error naming the server
// (host:port) and the folder, the outcome class (skipped → exit 1, temporary → 75), and
// that a re-run against the healed server completes the copy without duplicates.
// Must never: wait on a server without the short timeout set here (2 s), or pass a
// password to mailferry-copy by argv or environment.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_util.hpp"
#include "scripted_imap.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <random>

using namespace std::chrono_literals;
using si::Point;
using si::Then;

namespace {

const std::string kPw = "pw";

// One Dovecot for all cases (starting one per case costs seconds); each case its own user.
mft::DovecotServer& target() {
    static mft::DovecotServer dst([] {
        mft::DovecotOptions o;
        o.label = "hostile-dst";
        for (int i = 1; i <= 32; ++i) {
            o.users.push_back({"u" + std::to_string(i) + "@new.example", kPw});
        }
        o.tls = o.imaps = o.pop3 = o.pop3s = o.submission = false;
        o.extra_config = cu::target_config();
        return o;
    }());
    return dst;
}

std::string next_user() {
    static int n = 0;
    return "u" + std::to_string(++n) + "@new.example";
}

// INBOX with four messages, Work with three: INBOX is copied first (biggest first), so
// a fault in Work strikes the second folder.
std::vector<si::Folder> account() {
    std::vector<si::Folder> f(2);
    f[0].name = "INBOX";
    f[1].name = "Work";
    f[1].uidvalidity = 9;
    for (std::uint32_t u = 1; u <= 4; ++u) {
        f[0].messages.push_back({u, cu::mail("inbox-" + std::to_string(u), 3000), "\\Seen"});
    }
    for (std::uint32_t u = 1; u <= 3; ++u) {
        f[1].messages.push_back({u, cu::mail("work-" + std::to_string(u), 3000), ""});
    }
    return f;
}

std::string body(const std::vector<si::Folder>& f, const std::string& folder, std::uint32_t uid) {
    for (const auto& x : f) {
        for (const auto& m : x.messages) {
            if (x.name == folder && m.uid == uid) {
                return m.body;
            }
        }
    }
    throw std::runtime_error("no such message");
}

bool at_body(const Point& p, const char* folder, std::uint32_t uid) {
    return p.at == Point::At::body && p.folder == folder && p.uid == uid;
}

std::string pre(const Point& p) {
    return "* " + std::to_string(p.uid) + " FETCH (UID " + std::to_string(p.uid) + " BODY[] ";
}

struct Case {
    explicit Case(si::Fault fault, std::chrono::milliseconds timeout = 2s)
        : src(account(), std::move(fault)), user(next_user()), tmp("copier-hostile") {
        target();
        from = cu::endpoint(src.port(), "old@old.example", kPw);
        from.timeout = timeout;
        opts.state_path = tmp.file("state.db");
        opts.connections = 1; // folders in a fixed order: INBOX, then Work
    }
    mf::copy::Endpoint to() const { return cu::endpoint(target().imap_port(), user, kPw); }
    mf::Result<mf::copy::Summary> copy() {
        auto t0 = std::chrono::steady_clock::now();
        auto r = mf::copy::copy_account(from, to(), opts);
        took = std::chrono::steady_clock::now() - t0;
        if (!r) {
            MESSAGE("copy failed: " << r.error().message());
        } else {
            for (const auto& s : r->skipped) {
                MESSAGE("skipped " << s.folder << " UID " << s.uid << ": " << s.reason);
            }
        }
        return r;
    }
    // The target holds only whole source messages, none twice; how many per folder.
    std::map<std::string, std::size_t> check_target() const {
        auto d = cu::snapshot(target().imap_port(), user, kPw);
        std::map<std::string, std::size_t> n;
        for (const auto& [name, msgs] : d.folders) {
            std::set<std::string> seen;
            for (const auto& m : msgs) {
                bool known = false;
                for (const auto& f : src.folders()) {
                    for (const auto& sm : f.messages) {
                        known = known || (f.name == name && sm.body == m.body);
                    }
                }
                CHECK_MESSAGE(known, name << ": a message that is no whole source message ("
                                          << m.body.size() << " bytes)");
                CHECK_MESSAGE(seen.insert(m.body).second, name << ": a message stored twice");
            }
            n[name] = msgs.size();
        }
        return n;
    }
    // Healed, the server gets everything copied, exactly once; nothing stored before is
    // copied again.
    void rerun_good() {
        auto before = check_target();
        std::size_t had = 0;
        for (const auto& [k, v] : before) {
            had += v;
        }
        src.heal();
        auto r = copy();
        REQUIRE_MESSAGE(r, r.error().message());
        CHECK(r->exact());
        CHECK(r->messages_copied + r->messages_recovered == 7 - had);
        auto after = check_target();
        CHECK(after["INBOX"] == 4);
        CHECK(after["Work"] == 3);
    }
    si::ScriptedImap src;
    std::string user;
    mft::TempDir tmp;
    mf::copy::Endpoint from;
    mf::copy::Options opts;
    std::chrono::steady_clock::duration took{};
};

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// Garbage in `folder` the server repeats on every connection: either the account stops
// (an error naming the server; temporary, or final when the answers are unusable), or
// the folder (or message) is skipped and listed with a reason naming the server while the
// rest goes on. Which one is the copier's policy; both must say where it happened.
void check_garbage_outcome(const mf::Result<mf::copy::Summary>& r, const Case& c,
                           const std::string& folder, const std::string& why) {
    if (!r) {
        CHECK(has(r.error().message(), c.src.where()));
        CHECK(has(r.error().message(), why));
        return;
    }
    REQUIRE_FALSE(r->skipped.empty());
    for (const auto& k : r->skipped) {
        CHECK(k.folder == folder);
        CHECK(has(k.reason, c.src.where()));
    }
    CHECK(std::any_of(r->skipped.begin(), r->skipped.end(),
                      [&](const mf::copy::Skipped& k) { return has(k.reason, why); }));
}

} // namespace

// ---- a 4 GB literal ----------------------------------------------------------------------

TEST_CASE("a 4 GB literal: refused before any allocation, the message skipped, rest copied") {
    Case c([](si::Session& s, const Point& p) {
        if (at_body(p, "INBOX", 2)) {
            s.send(pre(p) + "{4294967296}\r\n" + std::string(1000, 'x'));
            s.stall(); // and then nothing: the announcement alone must be enough
            return Then::hang_up;
        }
        return Then::normal;
    });
    auto r = c.copy();
    REQUIRE(r);
    REQUIRE(r->skipped.size() == 1);
    const auto& k = r->skipped[0];
    CHECK(k.folder == "INBOX");
    CHECK(k.uid == 2);
    CHECK(has(k.reason, "4294967296"));
    CHECK(has(k.reason, c.src.where()));
    CHECK(c.took < 10s); // no waiting for bytes that will never come
    auto n = c.check_target();
    CHECK(n["INBOX"] == 3);
    CHECK(n["Work"] == 3);
    c.rerun_good();
}

TEST_CASE("a 4 GB literal within the size limit: streamed, cut off, nothing stored") {
    Case c([](si::Session& s, const Point& p) {
        if (at_body(p, "INBOX", 2)) {
            s.send(pre(p) + "{4294967296}\r\n" + std::string(300000, 'x'));
            s.stall(); // silent: the 2 s timeout ends it
            return Then::hang_up;
        }
        return Then::normal;
    });
    c.opts.max_message_size = 8ull << 30;
    auto r = c.copy();
    REQUIRE(r);
    REQUIRE(r->skipped.size() == 1);
    CHECK(r->skipped[0].uid == 2);
    CHECK(has(r->skipped[0].reason, c.src.where()));
    auto n = c.check_target();
    CHECK(n["INBOX"] == 3);
    CHECK(n["Work"] == 3);
    c.rerun_good();
}

// ---- a connection cut inside a literal -----------------------------------------------------

TEST_CASE("cut inside a literal once: the message comes over a new connection, same run") {
    Case c([](si::Session& s, const Point& p) {
        if (at_body(p, "Work", 2) && p.connection == 1) {
            s.send(pre(p) + "{3000}\r\n" + std::string(1200, 'w'));
            return Then::hang_up;
        }
        return Then::normal;
    });
    auto r = c.copy();
    REQUIRE(r);
    CHECK(r->exact());
    CHECK(c.src.connections() >= 2);
    auto n = c.check_target();
    CHECK(n["INBOX"] == 4);
    CHECK(n["Work"] == 3);
    c.rerun_good();
}

TEST_CASE("cut inside the same literal every time: skipped after a second try, rest copied") {
    Case c([](si::Session& s, const Point& p) {
        if (at_body(p, "Work", 2)) {
            s.send(pre(p) + "{3000}\r\n" + std::string(1200, 'w'));
            return Then::hang_up;
        }
        return Then::normal;
    });
    auto r = c.copy();
    REQUIRE(r);
    REQUIRE(r->skipped.size() == 1);
    CHECK(r->skipped[0].folder == "Work");
    CHECK(r->skipped[0].uid == 2);
    CHECK(has(r->skipped[0].reason, c.src.where()));
    auto n = c.check_target();
    CHECK(n["INBOX"] == 4);
    CHECK(n["Work"] == 2);
    c.rerun_good();
}

// ---- garbage -----------------------------------------------------------------------------

TEST_CASE("random bytes instead of a FETCH response") {
    Case c([](si::Session& s, const Point& p) {
        if (at_body(p, "Work", 2)) {
            std::mt19937 rng(42);
            std::string junk(8192, '\0');
            for (auto& ch : junk) {
                ch = static_cast<char>(rng());
            }
            s.send(junk);
            s.stall();
            return Then::hang_up;
        }
        return Then::normal;
    });
    auto r = c.copy();
    check_garbage_outcome(r, c, "Work", "NUL byte");
    auto n = c.check_target();
    CHECK(n["INBOX"] == 4);
    CHECK(n["Work"] <= 2);
    c.rerun_good();
}

TEST_CASE("a 2 MB line without CRLF in the message list: the folder is not copied, the rest is") {
    Case c([](si::Session& s, const Point& p) {
        if (p.at == Point::At::command && p.folder == "Work" && has(p.command, "RFC822.SIZE")) {
            s.send("* 1 FETCH (UID 1 FLAGS (" + std::string(2u << 20, 'x'));
            s.stall();
            return Then::hang_up;
        }
        return Then::normal;
    });
    auto r = c.copy();
    // Work cannot be listed, on every connection.
    check_garbage_outcome(r, c, "Work", "longer than");
    auto n = c.check_target();
    CHECK(n["INBOX"] == 4);
    CHECK(n["Work"] == 0);
    c.rerun_good();
}

// The literal is whole, the response around it is not closed: UID 2's bytes were streamed
// into an APPEND that must not complete.
si::Fault unbalanced(bool first_connection_only) {
    return [first_connection_only](si::Session& s, const Point& p) {
        if (at_body(p, "Work", 2) && (!first_connection_only || p.connection == 1)) {
            const std::string b = body(account(), "Work", 2);
            s.send(pre(p) + "{" + std::to_string(b.size()) + "}\r\n" + b + "\r\n");
            return Then::next;
        }
        return Then::normal;
    };
}

TEST_CASE("unbalanced parentheses after a message body, every time: nothing half-stored") {
    Case c(unbalanced(false));
    auto r = c.copy();
    check_garbage_outcome(r, c, "Work", "response ends inside a list");
    auto n = c.check_target();
    CHECK(n["INBOX"] == 4);
    CHECK(n["Work"] <= 2);
    c.rerun_good();
}

// ---- BYE, a wrong tag, silence -----------------------------------------------------------

// BYE after Work's first body, and from then on every greeting is a BYE (shutting down).
si::Fault bye_then_down() {
    auto down = std::make_shared<std::atomic<bool>>(false);
    return [down](si::Session& s, const Point& p) {
        if ((p.at == Point::At::greeting && down->load()) || at_body(p, "Work", 2)) {
            s.send("* BYE server shutting down\r\n");
            *down = true;
            return Then::hang_up;
        }
        return Then::normal;
    };
}

TEST_CASE("BYE between the FETCH responses of the second folder, then the server is down") {
    Case c(bye_then_down());
    auto r = c.copy();
    REQUIRE_FALSE(r);
    CHECK(r.error().retry == mf::Retry::later);
    CHECK(has(r.error().message(), c.src.where()));
    CHECK(has(r.error().message(), "BYE server shutting down"));
    auto n = c.check_target();
    CHECK(n["INBOX"] == 4);
    CHECK(n["Work"] <= 1);
    c.rerun_good();
}

si::Fault wrong_tag() {
    return [](si::Session& s, const Point& p) {
        if (at_body(p, "Work", 3)) {
            s.send("M1 OK fetched\r\n"); // the tag of the first command of the session
            s.stall();
            return Then::hang_up;
        }
        return Then::normal;
    };
}

TEST_CASE("the FETCH answered under another command's tag: nothing half-stored") {
    Case c(wrong_tag());
    auto r = c.copy();
    check_garbage_outcome(r, c, "Work", "unexpected tag M1");
    auto n = c.check_target();
    CHECK(n["INBOX"] == 4);
    c.rerun_good();
}

si::Fault silent_after_greeting() {
    return [](si::Session& s, const Point& p) {
        if (p.at == Point::At::command) {
            s.stall();
            return Then::hang_up;
        }
        return Then::normal;
    };
}

TEST_CASE("silence after the greeting: a timeout, temporary") {
    Case c(silent_after_greeting());
    auto r = c.copy();
    REQUIRE_FALSE(r);
    CHECK(r.error().retry == mf::Retry::later);
    CHECK(has(r.error().message(), c.src.where()));
    CHECK(has(r.error().message(), "timed out"));
    CHECK(c.took < 10s);
    auto n = c.check_target();
    CHECK(n["INBOX"] + n["Work"] == 0);
    c.rerun_good();
}

TEST_CASE("silence mid-FETCH: a timeout; after a second one the message is skipped") {
    Case c([](si::Session& s, const Point& p) {
        if (at_body(p, "Work", 2)) {
            s.stall();
            return Then::hang_up;
        }
        return Then::normal;
    });
    auto r = c.copy();
    // Two timeouts at the same message make the copier blame the message (skipped, exit
    // 1) and carry on; an error would have to be temporary.
    if (r) {
        REQUIRE(r->skipped.size() == 1);
        CHECK(r->skipped[0].folder == "Work");
        CHECK(r->skipped[0].uid == 2);
        CHECK(has(r->skipped[0].reason, c.src.where()));
        CHECK(has(r->skipped[0].reason, "timed out"));
    } else {
        CHECK(r.error().retry == mf::Retry::later);
    }
    auto n = c.check_target();
    CHECK(n["INBOX"] == 4);
    CHECK(n["Work"] >= 1);
    CHECK(c.took < 20s);
    c.rerun_good();
}

// ---- through mailferry-copy ----------------------------------------------------------------

namespace {

mft::RunResult run_cli(Case& c) {
    mft::write_file(c.tmp.file("pw"), kPw + "\n", 0600);
    // With ASan, an allocation anywhere near an announced size aborts the program.
    const char* asan = std::getenv("ASAN_OPTIONS");
    std::string asan_opts = std::string(asan != nullptr ? asan : "") +
                            (asan != nullptr && *asan != '\0' ? ":" : "") +
                            "max_allocation_size_mb=256";
    auto r = mft::run(
        {mft::program_path("copier", "mailferry-copy"), "--from",
         "imap+plain://old@old.example@" + c.src.where(), "--from-password-file", c.tmp.file("pw"),
         "--to", "imap+plain://" + c.user + "@127.0.0.1:" + std::to_string(target().imap_port()),
         "--to-password-file", c.tmp.file("pw"), "--state", c.tmp.file("state.db"), "--timeout",
         "2", "--connections", "1", "--quiet"},
        {}, 60s, {{"ASAN_OPTIONS", asan_opts}});
    MESSAGE("exit " << r.exit_code << ", stderr:\n" << r.err);
    return r;
}

} // namespace

TEST_CASE("mailferry-copy: a 4 GB literal exits 1 and lists the message with the server") {
    Case c([](si::Session& s, const Point& p) {
        if (at_body(p, "INBOX", 2)) {
            s.send(pre(p) + "{4294967296}\r\n" + std::string(1000, 'x'));
            s.stall();
            return Then::hang_up;
        }
        return Then::normal;
    });
    auto r = run_cli(c);
    CHECK(r.exit_code == 1);
    CHECK(has(r.err, "skipped: INBOX UID 2 ("));
    CHECK(has(r.err, "4294967296"));
    CHECK(has(r.err, c.src.where()));
    CHECK_FALSE(has(r.err, "AddressSanitizer"));
    auto n = c.check_target();
    CHECK(n["INBOX"] == 3);
    CHECK(n["Work"] == 3);
    c.src.heal();
    auto again = run_cli(c);
    CHECK(again.exit_code == 0);
    CHECK(c.check_target()["INBOX"] == 4);
}

TEST_CASE("mailferry-copy: BYE mid-copy and a server that stays down exit 75") {
    Case c(bye_then_down());
    auto r = run_cli(c);
    CHECK(r.exit_code == 75);
    CHECK(has(r.err, "mailferry-copy: "));
    CHECK(has(r.err, c.src.where()));
    CHECK(has(r.err, "BYE"));
    CHECK(c.check_target()["INBOX"] == 4);
    c.src.heal();
    CHECK(run_cli(c).exit_code == 0);
    auto n = c.check_target();
    CHECK(n["INBOX"] == 4);
    CHECK(n["Work"] == 3);
}

TEST_CASE("mailferry-copy: silence after the greeting exits 75 with the server and a timeout") {
    Case c(silent_after_greeting());
    auto r = run_cli(c);
    CHECK(r.exit_code == 75);
    CHECK(has(r.err, c.src.where()));
    CHECK(has(r.err, "timed out"));
}

// ---- a broken response blames the message it carried ------------------------------------

TEST_CASE("a response broken after a body blames that message, not the next") {
    // UID 2's body arrives whole, then its response is not closed: that is UID 2's
    // answer breaking, so UID 2 is the one skipped (a protocol violation is skipped at
    // once) and UID 3, which the server never got to, is copied on the new connection.
    Case c(unbalanced(true));
    auto r = c.copy();
    REQUIRE(r);
    REQUIRE(r->skipped.size() == 1);
    CHECK(r->skipped[0].folder == "Work");
    CHECK(r->skipped[0].uid == 2);
    auto n = c.check_target();
    CHECK(n["INBOX"] == 4);
    CHECK(n["Work"] == 2);
    c.rerun_good();
}

// ---- one folder's unusable answer never stops the rest ------------------------------------

// Work's message list breaks off inside a quoted string, on every connection.
si::Fault unusable_list() {
    return [](si::Session& s, const Point& p) {
        if (p.at == Point::At::command && p.folder == "Work" &&
            p.command.rfind("UID FETCH", 0) == 0 && has(p.command, "RFC822.SIZE")) {
            s.send("* 1 FETCH (UID 1 FLAGS (\\Seen) INTERNALDATE \"01-Feb-2021\r\n");
            return Then::hang_up;
        }
        return Then::normal;
    };
}

TEST_CASE("an answer the copier cannot use skips its folder, the rest is copied, runs counted") {
    Case c(unusable_list());
    for (unsigned run = 1; run <= 2; ++run) {
        CAPTURE(run);
        auto r = c.copy();
        REQUIRE(r); // not the account's failure
        REQUIRE(r->skipped.size() == 1);
        CHECK(r->skipped[0].folder == "Work");
        CHECK(r->skipped[0].uid == 0);
        CHECK(r->skipped[0].streak == run);
        CHECK(has(r->skipped[0].reason, "quoted string not closed"));
        CHECK(has(r->skipped[0].reason, c.src.where()));
        auto n = c.check_target();
        CHECK(n["INBOX"] == 4);
        CHECK(n["Work"] == 0);
    }
    // The verify report names what the last run could not copy, and why.
    auto rep = mf::copy::verify_account(c.from, c.to(), c.opts);
    REQUIRE_MESSAGE(rep, rep.error().message());
    REQUIRE(rep->not_copied.size() == 1);
    CHECK(rep->not_copied[0].folder == "Work");
    CHECK(rep->not_copied[0].streak == 2);
    CHECK(has(rep->to_json(), "\"runs_in_a_row\": 2"));
    bool unreadable = false;
    for (const auto& m : rep->mismatches) {
        unreadable = unreadable || (m.folder == "Work" && m.what == "unreadable");
    }
    CHECK(unreadable);
    CHECK_FALSE(rep->ok());

    c.rerun_good();
    auto clean = mf::copy::verify_account(c.from, c.to(), c.opts);
    REQUIRE_MESSAGE(clean, clean.error().message());
    CHECK(clean->not_copied.empty());
    // (The scripted server's FLAGS in a combined FETCH are not a real server's: only
    // Work, the folder that was skipped, is looked at here.)
    for (const auto& m : clean->mismatches) {
        CHECK(m.folder != "Work");
    }
}

TEST_CASE("mailferry-copy: a skipped folder exits 1 and is listed on stderr and in JSON") {
    Case c(unusable_list());
    auto r = run_cli(c);
    CHECK(r.exit_code == 1);
    CHECK(has(r.err, "skipped: Work folder: "));
    CHECK(has(r.err, "(1 run in a row)"));
    CHECK(has(r.out, "\"runs_in_a_row\":1"));
    CHECK(has(r.out, "\"messages_copied\":4"));
}
