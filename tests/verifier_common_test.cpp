// verifier_common_test.cpp — what holds for every protocol: passwords and logins no
// protocol line can carry are refused without a connection, verify() is safe from many
// threads at once, and the status names are stable.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "verifier_util.hpp"

#include <atomic>
#include <thread>

using namespace std::chrono_literals;
using mf::Protocol;
using mf::SaslMech;
using mf::TlsMode;
using mf::VerifyStatus;
using vt::verify;

TEST_CASE("CR, LF or NUL in the password, or a bad login, are rejected without connecting") {
    // A silent server would hold any connection for the whole 5 s timeout: an answer well
    // under that proves nothing was sent.
    mft::SilentServer silent;
    const std::vector<std::string> bad_passwords = {"a\rb", "a\nb", std::string("a\0b", 3),
                                                    "pw\r\nA002 LOGOUT", std::string(1, '\0')};
    for (Protocol proto : {Protocol::imap, Protocol::pop3, Protocol::smtp}) {
        for (TlsMode tls : {TlsMode::none, TlsMode::starttls, TlsMode::implicit}) {
            CAPTURE(std::string(mf::to_string(proto)));
            CAPTURE(std::string(mf::to_string(tls)));
            auto p = vt::provider(proto, silent.port(), tls, "");
            p.timeout = 5s;
            auto t0 = std::chrono::steady_clock::now();
            for (const auto& pw : bad_passwords) {
                auto r = verify(p, "anna@old.example", pw);
                CHECK_MESSAGE(r.status == VerifyStatus::rejected, r.detail);
                CHECK(r.detail.find("CR, LF or NUL") != std::string::npos);
            }
            for (const std::string& login :
                 {std::string(), std::string("anna\r\n"), std::string("an\0na", 5)}) {
                auto r = verify(p, login, "pw");
                CHECK_MESSAGE(r.status == VerifyStatus::rejected, r.detail);
            }
            CHECK(std::chrono::steady_clock::now() - t0 < 1s);
        }
    }
}

TEST_CASE("20 threads verifying at once, every protocol, all get the right answer") {
    auto o = vt::old_server("vthreads");
    for (int i = 0; i < 20; ++i) {
        o.users.push_back({"t" + std::to_string(i) + "@old.example", "pw \"" + std::to_string(i)});
    }
    mft::DovecotServer old(o);
    const std::vector<mf::ProviderConfig> providers = {
        vt::provider(Protocol::imap, old.imaps_port(), TlsMode::implicit, old.ca_file()),
        vt::provider(Protocol::imap, old.imap_port(), TlsMode::starttls, old.ca_file()),
        vt::provider(Protocol::pop3, old.pop3s_port(), TlsMode::implicit, old.ca_file()),
        vt::provider(Protocol::smtp, old.submission_port(), TlsMode::starttls, old.ca_file())};
    // One verifier per provider, shared by all threads: verify() must be reentrant.
    std::vector<std::unique_ptr<mf::Verifier>> verifiers;
    for (const auto& p : providers) {
        verifiers.push_back(mf::make_verifier(p));
    }
    constexpr int kThreads = 20;
    constexpr int kRounds = 3;
    std::atomic<int> wrong_answers{0};
    std::atomic<int> done{0};
    std::vector<std::string> failures(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            const std::string user = "t" + std::to_string(t) + "@old.example";
            const std::string right = "pw \"" + std::to_string(t);
            for (int round = 0; round < kRounds; ++round) {
                auto& v = *verifiers[static_cast<std::size_t>((t + round) % verifiers.size())];
                const bool use_right = (t + round) % 2 == 0;
                auto r = v.verify(user, mf::Secret(use_right ? right : right + "!"));
                auto want = use_right ? VerifyStatus::ok : VerifyStatus::rejected;
                if (r.status != want) {
                    ++wrong_answers;
                    failures[static_cast<std::size_t>(t)] = r.detail;
                }
                ++done;
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    CHECK(done == kThreads * kRounds);
    CHECK(wrong_answers == 0);
    for (const auto& f : failures) {
        CHECK_MESSAGE(f.empty(), f);
    }
}

TEST_CASE("status names") {
    CHECK(std::string(mf::to_string(VerifyStatus::ok)) == "ok");
    CHECK(std::string(mf::to_string(VerifyStatus::rejected)) == "rejected");
    CHECK(std::string(mf::to_string(VerifyStatus::unavailable)) == "unavailable");
}

TEST_CASE("an unresolvable host is unavailable, with the reason") {
    auto p = vt::provider(Protocol::imap, 993, TlsMode::implicit, "");
    p.host = "nonexistent.invalid";
    p.timeout = 3s;
    auto r = verify(p, "anna@old.example", "pw");
    CHECK(r.status == VerifyStatus::unavailable);
    CHECK_MESSAGE(r.detail.find("resolve") != std::string::npos, r.detail);
}
