// password_make_test.cpp — make_hash round trips (checked by Dovecot's own `doveadm pw
// -t`, a real independent verifier), needs_rehash decisions, bad costs and passwords,
// and verification from many threads at once.
//
// Argon2 costs are kept small here (1 pass, 8 MiB) so the tests stay fast under ASan.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/password.hpp"

#include <atomic>
#include <fcntl.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

mf::HashConfig small_argon2() {
    mf::HashConfig cfg;
    cfg.scheme = mf::HashScheme::argon2id;
    cfg.argon2_ops = 1;
    cfg.argon2_memory_kib = 8192;
    return cfg;
}

mf::HashConfig sha512(unsigned rounds) {
    mf::HashConfig cfg;
    cfg.scheme = mf::HashScheme::sha512_crypt;
    cfg.sha512_rounds = rounds;
    return cfg;
}

mf::HashConfig yescrypt(unsigned cost) {
    mf::HashConfig cfg;
    cfg.scheme = mf::HashScheme::yescrypt;
    cfg.yescrypt_cost = cost;
    return cfg;
}

// Exit status of `doveadm pw -t STORED -p PASSWORD` (0 = Dovecot verifies it). The
// password is test data; argv is fine for it.
int doveadm_verifies(const std::string& stored, const std::string& password) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        const int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execlp("doveadm", "doveadm", "pw", "-t", stored.c_str(), "-p", password.c_str(),
               static_cast<char*>(nullptr));
        _exit(127);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    REQUIRE_MESSAGE(rc != 127, "doveadm not found (./setup.sh deps installs dovecot)");
    return rc;
}

std::string made(const mf::Secret& pw, const mf::HashConfig& cfg) {
    auto h = mf::make_hash(pw, cfg);
    REQUIRE_MESSAGE(h.ok(), (h.ok() ? std::string() : h.error().message()));
    return *h;
}

std::vector<std::string> passwords() {
    return {
        "secret",
        "pa ss word",
        "it's \"quoted\" \\ 100% %s",
        "pässwörd€ пароль 🔑",
        std::string(200, 'L'),
    };
}

// Runs first, so the first use of the OpenSSL legacy provider (MD4) and of libsodium
// happens on several threads at once.
TEST_CASE("verification from many threads at once") {
    const mf::Secret pw("pä ss");
    struct Case {
        std::string stored;
        mf::HashMatch want;
    };
    std::vector<Case> cases;
    cases.push_back({made(pw, small_argon2()), mf::HashMatch::match});
    cases.push_back({made(pw, yescrypt(1)), mf::HashMatch::match});
    cases.push_back({made(pw, sha512(1000)), mf::HashMatch::match});
    // Real tools, password "pä ss":
    //   printf %s 'pä ss' | iconv -t UTF-16LE | openssl dgst -md4 -provider legacy
    cases.push_back({"{NTLM}f44cc645da3cd005dc4cad48feaf4232", mf::HashMatch::match});
    //   doveadm pw -s SSHA / -s SCRAM-SHA-256 -p 'pä ss'; mkpasswd -m bcrypt
    cases.push_back({"{SSHA}13/8Vo4vGn6fSkeC/3ZrEufH8OcEX+tG", mf::HashMatch::match});
    cases.push_back({"{SCRAM-SHA-256}4096,SJUuJwsIMAj2sGpc+6prlQ==,"
                     "j9zWKI9iQk1kvE1MYyMhkZ5vsxkH9Nz05ss4n63KZO0=,"
                     "dHM6J87vGIRFFPR0m67vYHUdkuTAWoNwgi7zf6TX8+M=",
                     mf::HashMatch::match});
    cases.push_back(
        {"$2b$05$AL/X1AX5GWMqAV5/sV4qIuvIrZ0wJAqE8KoQk1WWtaUPLgYHyDbn2", mf::HashMatch::match});
    cases.push_back({"{NOPE}x", mf::HashMatch::unsupported});

    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    threads.reserve(4);
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&cases, &wrong, t] {
            const mf::Secret mine("pä ss");
            const mf::Secret other("pä sS");
            for (std::size_t i = 0; i < cases.size(); ++i) {
                const auto& c = cases[(static_cast<std::size_t>(t) + i) % cases.size()];
                const auto want_other =
                    c.want == mf::HashMatch::match ? mf::HashMatch::mismatch : c.want;
                if (mf::verify_hash(c.stored, mine).result != c.want ||
                    mf::verify_hash(c.stored, other).result != want_other) {
                    ++wrong;
                }
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    CHECK(wrong.load() == 0);
}

TEST_CASE("make_hash argon2id: {ARGON2ID}, round trip, Dovecot agrees") {
    for (const auto& p : passwords()) {
        CAPTURE(p);
        const mf::Secret pw(p);
        const std::string h = made(pw, small_argon2());
        CHECK(h.starts_with("{ARGON2ID}$argon2id$v=19$m=8192,t=1,p=1$"));
        CHECK(mf::verify_hash(h, pw).result == mf::HashMatch::match);
        CHECK(mf::verify_hash(h, mf::Secret("x" + p)).result == mf::HashMatch::mismatch);
        CHECK(mf::hash_supported(h));
        CHECK(doveadm_verifies(h, p) == 0);
        CHECK(doveadm_verifies(h, "x" + p) != 0);
    }
    // Fresh salt each time.
    const mf::Secret pw("same");
    CHECK(made(pw, small_argon2()) != made(pw, small_argon2()));
}

TEST_CASE("make_hash sha512_crypt: {SHA512-CRYPT}$6$, rounds, Dovecot agrees") {
    for (const auto& p : passwords()) {
        CAPTURE(p);
        const mf::Secret pw(p);
        const std::string h = made(pw, sha512(5000));
        CHECK(h.starts_with("{SHA512-CRYPT}$6$"));
        CHECK(h.find("rounds=") == std::string::npos); // 5000 is the default, left out
        CHECK(mf::verify_hash(h, pw).result == mf::HashMatch::match);
        CHECK(mf::verify_hash(h, mf::Secret("x" + p)).result == mf::HashMatch::mismatch);
        CHECK(doveadm_verifies(h, p) == 0);
        CHECK(doveadm_verifies(h, "x" + p) != 0);
    }
    const mf::Secret pw("rounds");
    const std::string h = made(pw, sha512(6000));
    CHECK(h.starts_with("{SHA512-CRYPT}$6$rounds=6000$"));
    CHECK(mf::verify_hash(h, pw).result == mf::HashMatch::match);
    CHECK(doveadm_verifies(h, "rounds") == 0);
}

TEST_CASE("make_hash yescrypt: {CRYPT}$y$, cost, Dovecot agrees") {
    for (const auto& p : passwords()) {
        CAPTURE(p);
        const mf::Secret pw(p);
        const std::string h = made(pw, yescrypt(3));
        CHECK(h.starts_with("{CRYPT}$y$j7T$")); // libxcrypt's params for cost 3
        CHECK(mf::verify_hash(h, pw).result == mf::HashMatch::match);
        CHECK(mf::verify_hash(h, mf::Secret("x" + p)).result == mf::HashMatch::mismatch);
        CHECK(doveadm_verifies(h, p) == 0);
        CHECK(doveadm_verifies(h, "x" + p) != 0);
    }
    CHECK(made(mf::Secret("c5"), yescrypt(5)).starts_with("{CRYPT}$y$j9T$"));
}

TEST_CASE("make_hash refuses bad costs and passwords it cannot hash") {
    const mf::Secret pw("secret");
    auto cfg = small_argon2();
    cfg.argon2_ops = 0;
    auto r = mf::make_hash(pw, cfg);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().scope == mf::Scope::config);
    CHECK(r.error().message().find("argon2_ops") != std::string::npos);

    cfg = small_argon2();
    cfg.argon2_memory_kib = 4; // below libsodium's 8 KiB
    r = mf::make_hash(pw, cfg);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("argon2_memory_kib") != std::string::npos);

    cfg.argon2_memory_kib = ~0ULL; // would overflow when turned into bytes
    r = mf::make_hash(pw, cfg);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().scope == mf::Scope::config);

    for (unsigned cost : {0U, 12U}) {
        r = mf::make_hash(pw, yescrypt(cost));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().scope == mf::Scope::config);
        CHECK(r.error().message().find("yescrypt_cost") != std::string::npos);
    }

    r = mf::make_hash(mf::Secret(), small_argon2());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("empty") != std::string::npos);

    // crypt(3) takes C strings of at most 511 bytes; argon2 takes any bytes.
    const mf::Secret with_nul(std::string("ab\0cd", 5));
    r = mf::make_hash(with_nul, sha512(5000));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("NUL") != std::string::npos);
    const mf::Secret long_pw(std::string(600, 'a'));
    r = mf::make_hash(long_pw, yescrypt(1));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("511") != std::string::npos);

    const std::string h = made(with_nul, small_argon2());
    CHECK(mf::verify_hash(h, with_nul).result == mf::HashMatch::match);
    CHECK(mf::verify_hash(h, mf::Secret("ab")).result == mf::HashMatch::mismatch);
    const std::string h2 = made(long_pw, small_argon2());
    CHECK(mf::verify_hash(h2, long_pw).result == mf::HashMatch::match);

    // The error never carries the password.
    const mf::Secret marked(std::string("MARK\0ER", 7));
    r = mf::make_hash(marked, sha512(5000));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("MARK") == std::string::npos);
}

TEST_CASE("needs_rehash: other scheme or lower cost") {
    const mf::Secret pw("rehash me");
    const auto a = made(pw, small_argon2()); // m=8192, t=1
    CHECK_FALSE(mf::needs_rehash(a, small_argon2()));
    auto more = small_argon2();
    more.argon2_memory_kib = 16384;
    CHECK(mf::needs_rehash(a, more));
    more = small_argon2();
    more.argon2_ops = 2;
    CHECK(mf::needs_rehash(a, more));
    // A stronger stored value is kept (only weaker ones are redone).
    const std::string doveadm_argon2id = // doveadm pw -s ARGON2ID: m=65536, t=3
        "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$SJL3CzNbw/q2lhhue36tgw$"
        "BlmngWaGi1aGVRFuHsnrkMKggZaVXYC2yLgQGps91AA";
    CHECK_FALSE(mf::needs_rehash(doveadm_argon2id, small_argon2()));
    CHECK_FALSE(mf::needs_rehash(doveadm_argon2id.substr(10), small_argon2())); // bare
    mf::HashConfig dflt; // argon2id, t=2, 64 MiB
    CHECK_FALSE(mf::needs_rehash(doveadm_argon2id, dflt));
    // argon2i is another scheme.
    CHECK(mf::needs_rehash("{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$92BgQWItPN5lcZavyjzT0g$"
                           "l4c6r94KpQ8o0nsJVEIqJzCmiAbkgG49OAfmgKyhAF0",
                           small_argon2()));

    const auto s = made(pw, sha512(5000));
    CHECK_FALSE(mf::needs_rehash(s, sha512(5000)));
    CHECK_FALSE(mf::needs_rehash(s, sha512(1000)));
    CHECK(mf::needs_rehash(s, sha512(6000)));
    CHECK(mf::needs_rehash(s, small_argon2()));
    CHECK(mf::needs_rehash(a, sha512(5000)));
    // Rounds below libxcrypt's minimum are raised to 1000 when hashing; the result must
    // not look weaker than the config at every later login.
    CHECK_FALSE(mf::needs_rehash(made(pw, sha512(500)), sha512(500)));
    // The same $6$ value under another label or bare is the same scheme.
    const std::string bare = s.substr(std::string("{SHA512-CRYPT}").size());
    CHECK_FALSE(mf::needs_rehash(bare, sha512(5000)));
    CHECK_FALSE(mf::needs_rehash("{CRYPT}" + bare, sha512(5000)));
    CHECK(mf::needs_rehash("{PLAIN}" + bare, sha512(5000))); // a plain text, not a $6$

    const auto y3 = made(pw, yescrypt(3));
    CHECK_FALSE(mf::needs_rehash(y3, yescrypt(3)));
    CHECK_FALSE(mf::needs_rehash(y3, yescrypt(1)));
    CHECK_FALSE(mf::needs_rehash(y3, yescrypt(2))); // cost 2: 2 MiB < cost 3: 4 MiB
    CHECK(mf::needs_rehash(y3, yescrypt(4)));
    CHECK(mf::needs_rehash(y3, yescrypt(5)));
    CHECK(mf::needs_rehash(y3, sha512(5000)));
    // mkpasswd -m gost-yescrypt: another scheme.
    CHECK(mf::needs_rehash(
        "$gy$j9T$XT/FPeZ2XlSD8OkghzhpZ0$J3vqXVnmP4yE.352d8E5ZjfCVgIZ3zIiOApTU238qJ8", yescrypt(5)));

    // Legacy and unreadable values always want a new hash.
    for (const auto& cfg : {small_argon2(), sha512(5000), yescrypt(5)}) {
        CHECK(mf::needs_rehash("{SHA}U5lVQVt3jUxILaL251beisJ5kRY=", cfg));
        CHECK(mf::needs_rehash("{PLAIN}secret", cfg));
        CHECK(mf::needs_rehash("", cfg));
        CHECK(mf::needs_rehash("{NOPE}x", cfg));
        CHECK(mf::needs_rehash("$1$PUthBqbV$rPIsfTKy9A.hbYFPAaL2t0", cfg));
    }
}

} // namespace
