// copier_session_test.cpp — a small account's folders share the one session already logged
// in at each server; helper connections (a login at both servers each) open only when the
// messages left to copy can pay for them (Options::messages_per_connection). Counted from
// the real Dovecots' login log lines. Also: 0 (always parallel) and an absurdly large value
// (never) still copy everything exactly.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_util.hpp"

namespace {

const std::string kSrcUser = "sam@old.example";
const std::string kSrcPw = "sam-old-pw";
const std::string kDstUser = "sam@new.example";
const std::string kDstPw = "sam-new-pw";

mft::DovecotOptions opts(const std::string& label, const std::string& user, const std::string& pw,
                         const std::string& extra) {
    mft::DovecotOptions o;
    o.label = label;
    o.users = {{user, pw}};
    o.pop3 = o.pop3s = o.submission = o.imaps = false;
    o.tls = false;
    o.extra_config = extra;
    return o;
}

// Logins of `user` in the server's log so far.
int logins(const mft::DovecotServer& srv, const std::string& user) {
    std::string log = srv.log_tail(100000);
    std::string needle = "Login: user=<" + user + ">";
    int n = 0;
    for (auto p = log.find(needle); p != std::string::npos; p = log.find(needle, p + 1)) {
        ++n;
    }
    return n;
}

struct Pair {
    mft::DovecotServer src{opts("sess-src", kSrcUser, kSrcPw, cu::source_config())};
    mft::DovecotServer dst{opts("sess-dst", kDstUser, kDstPw, cu::target_config())};
    mft::TempDir tmp{"copier-session"};

    Pair(int folders, int per_folder) {
        for (int f = 0; f < folders; ++f) {
            for (int i = 0; i < per_folder; ++i) {
                cu::put(src, kSrcUser, "Box" + std::to_string(f),
                        cu::mail("s" + std::to_string(f) + "-" + std::to_string(i), 400), "");
            }
        }
    }
    mf::Result<mf::copy::Summary> copy(std::size_t per_connection) {
        mf::copy::Options o;
        o.state_path = tmp.file("state.db");
        o.connections = 4;
        o.messages_per_connection = per_connection;
        return mf::copy::copy_account(cu::endpoint(src.imap_port(), kSrcUser, kSrcPw),
                                      cu::endpoint(dst.imap_port(), kDstUser, kDstPw), o);
    }
};

} // namespace

TEST_CASE("a small account: all folders on the one session at each server") {
    Pair p(4, 10);
    auto sum = p.copy(250);
    REQUIRE_MESSAGE(sum.ok(), sum.error().message());
    CHECK(sum->exact());
    CHECK(sum->messages_copied == 40);
    CHECK(logins(p.src, kSrcUser) == 1);
    CHECK(logins(p.dst, kDstUser) == 1);
}

TEST_CASE("messages_per_connection = 0: the folders run in parallel, one login per pair") {
    Pair p(4, 10);
    auto sum = p.copy(0);
    REQUIRE_MESSAGE(sum.ok(), sum.error().message());
    CHECK(sum->messages_copied == 40);
    CHECK(logins(p.dst, kDstUser) >= 2);
    CHECK(logins(p.dst, kDstUser) <= 4);
}

TEST_CASE("enough messages to pay for it: helper connections are opened") {
    Pair p(3, 60); // 180 messages: three pairs at 60 per pair
    auto sum = p.copy(60);
    REQUIRE_MESSAGE(sum.ok(), sum.error().message());
    CHECK(sum->messages_copied == 180);
    CHECK(logins(p.dst, kDstUser) >= 2);
    // A resync with nothing new logs in once at the source and not at all at the target.
    int before = logins(p.dst, kDstUser);
    auto again = p.copy(60);
    REQUIRE_MESSAGE(again.ok(), again.error().message());
    CHECK(again->messages_copied == 0);
    CHECK(logins(p.dst, kDstUser) == before);
}

TEST_CASE("an absurd messages_per_connection: one session, everything still copied") {
    Pair p(3, 20);
    auto sum = p.copy(SIZE_MAX);
    REQUIRE_MESSAGE(sum.ok(), sum.error().message());
    CHECK(sum->exact());
    CHECK(sum->messages_copied == 60);
    CHECK(logins(p.dst, kDstUser) == 1);
}
