// store_guard_test.cpp — the guard's attempt calls on the SQLite store: pending rows
// written with the count in one transaction, settled as failures or dropped, stale ones
// counted, nothing written when the decision says no or the store is locked. (The rules
// built on them are tested end to end in engine_guard_test.)
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/store.hpp"
#include "support/store_lock.hpp"
#include "support/test_env.hpp"

using namespace mf;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<Store> open(const mft::TempDir& dir, Millis busy = Millis{2000}) {
    auto s = open_sqlite_store(dir.file("mf.db"), busy);
    REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message()));
    return std::move(*s);
}

GuardAttempt attempt(UnixTime now, std::vector<std::string> keys) {
    GuardAttempt a;
    a.count = keys;
    a.record = std::move(keys);
    a.now = now;
    a.since = now - 900;
    a.stale_before = now - 300;
    a.account = "a@x";
    a.digest = "d1";
    return a;
}

// Begins an attempt that always goes ahead; returns what the store counted.
GuardTally begin(Store& s, const GuardAttempt& a, std::vector<std::int64_t>* rows = nullptr) {
    GuardTally seen;
    auto r = s.begin_guard_attempt(a, [&](const GuardTally& t) {
        seen = t;
        return true;
    });
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));
    if (rows != nullptr) {
        *rows = *r;
    }
    return seen;
}

// What an attempt would count, writing nothing (the decision says no).
GuardTally peek(Store& s, const GuardAttempt& a) {
    GuardTally seen;
    auto r = s.begin_guard_attempt(a, [&](const GuardTally& t) {
        seen = t;
        return false;
    });
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));
    CHECK(r->empty());
    return seen;
}

} // namespace

TEST_CASE("pending rows: not counted in flight, failures once failed, gone once ended") {
    mft::TempDir dir;
    auto s = open(dir);
    const UnixTime t = 1'700'000'000;
    std::vector<std::int64_t> first;
    auto tally = begin(*s,
                       attempt(t, {"pair:a@x\x1f"
                                   "1.2.3.4",
                                   "ip:1.2.3.4"}),
                       &first);
    CHECK(tally.failures == std::vector<std::int64_t>{0, 0});
    CHECK(first.size() == 2);
    // A second attempt while the first is in flight does not see it.
    std::vector<std::int64_t> second;
    tally = begin(*s,
                  attempt(t, {"pair:a@x\x1f"
                              "1.2.3.4",
                              "ip:1.2.3.4"}),
                  &second);
    CHECK(tally.failures == std::vector<std::int64_t>{0, 0});

    REQUIRE(s->fail_guard_attempt(first, "a@x", "", 0).ok());
    REQUIRE(s->end_guard_attempt(second, "").ok());
    tally = begin(*s, attempt(t + 1, {"pair:a@x\x1f"
                                      "1.2.3.4",
                                      "ip:1.2.3.4"}));
    CHECK(tally.failures == std::vector<std::int64_t>{1, 1});
    CHECK_FALSE(tally.negative);
    CHECK(*s->count_failures("ip:1.2.3.4", 0) == 1); // the one-key count agrees

    // Settling twice changes nothing; ending a failed attempt does not undo it.
    REQUIRE(s->fail_guard_attempt(first, "a@x", "", 0).ok());
    REQUIRE(s->end_guard_attempt(first, "").ok());
    CHECK(*s->count_failures("ip:1.2.3.4", 0) == 1);

    // end with a clear key: the client's bucket goes, the address's stays.
    REQUIRE(s->end_guard_attempt({}, "pair:a@x\x1f"
                                     "1.2.3.4")
                .ok());
    CHECK(*s->count_failures("pair:a@x\x1f"
                             "1.2.3.4",
                             0) == 0);
    CHECK(*s->count_failures("ip:1.2.3.4", 0) == 1);
}

TEST_CASE("a pending row never settled counts once stale; the window still applies") {
    mft::TempDir dir;
    auto s = open(dir);
    const UnixTime t = 1'700'000'000;
    begin(*s, attempt(t, {"acct:a@x"})); // never settled (a crash)
    CHECK(peek(*s, attempt(t + 300, {"acct:a@x"})).failures == std::vector<std::int64_t>{0});
    CHECK(peek(*s, attempt(t + 301, {"acct:a@x"})).failures == std::vector<std::int64_t>{1});
    auto outside = attempt(t + 901, {"acct:a@x"});
    outside.since = t + 1;
    CHECK(peek(*s, outside).failures == std::vector<std::int64_t>{0});
}

TEST_CASE("a failed attempt with a digest feeds the negative cache; a no writes nothing") {
    mft::TempDir dir;
    auto s = open(dir);
    const UnixTime t = 1'700'000'000;
    std::vector<std::int64_t> rows;
    begin(*s, attempt(t, {"acct:a@x"}), &rows);
    REQUIRE(s->fail_guard_attempt(rows, "a@x", "d1", t + 60).ok());
    CHECK(peek(*s, attempt(t + 1, {"acct:a@x"})).negative);
    CHECK_FALSE(peek(*s, attempt(t + 61, {"acct:a@x"})).negative);
    // The peeks above wrote nothing: even once stale there is only the one failure.
    CHECK(peek(*s, attempt(t + 400, {"acct:a@x"})).failures == std::vector<std::int64_t>{1});
}

TEST_CASE("a locked store: the attempt fails with Retry::later and writes nothing") {
    mft::TempDir dir;
    auto s = open(dir, Millis{200});
    const UnixTime t = 1'700'000'000;
    {
        mft::StoreLockHolder lock(dir.file("mf.db"));
        bool asked = false;
        auto r = s->begin_guard_attempt(attempt(t, {"k"}), [&](const GuardTally&) {
            asked = true;
            return true;
        });
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().retry == Retry::later);
        CHECK_FALSE(asked);
    }
    CHECK(peek(*s, attempt(t + 400, {"k"})).failures == std::vector<std::int64_t>{0});
}
