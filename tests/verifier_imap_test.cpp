// verifier_imap_test.cpp — the IMAP verifier against a real Dovecot on loopback: every TLS
// mode and mechanism, wrong and unknown users, hard passwords, certificates, mechanisms a
// plain password cannot be checked with, and servers that cannot decide.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "verifier_util.hpp"

using namespace std::chrono_literals;
using mf::Protocol;
using mf::SaslMech;
using mf::TlsMode;
using mf::VerifyStatus;
using vt::verify;

namespace {

mft::DovecotOptions imap_only(mft::DovecotOptions o) {
    o.pop3 = o.pop3s = o.submission = false;
    return o;
}

mf::ProviderConfig imap(std::uint16_t port, TlsMode tls, const std::string& ca,
                        SaslMech mech = SaslMech::automatic) {
    return vt::provider(Protocol::imap, port, tls, ca, mech);
}

// One old server for the test cases that do not need a special one (started on first use,
// stopped at exit); a test that stops it starts it again.
mft::DovecotServer& shared_old() {
    static mft::DovecotServer old(imap_only(vt::old_server("vimap")));
    return old;
}

} // namespace

TEST_CASE("imap: right password is ok in every TLS mode and with every mechanism") {
    mft::DovecotServer& old = shared_old();
    struct Mode {
        std::uint16_t port;
        TlsMode tls;
    };
    for (Mode m : {Mode{old.imap_port(), TlsMode::none}, Mode{old.imap_port(), TlsMode::starttls},
                   Mode{old.imaps_port(), TlsMode::implicit}}) {
        for (SaslMech mech : {SaslMech::automatic, SaslMech::plain, SaslMech::login}) {
            CAPTURE(std::string(mf::to_string(m.tls)));
            CAPTURE(std::string(mf::to_string(mech)));
            auto p = imap(m.port, m.tls, old.ca_file(), mech);
            auto r = verify(p, "anna@old.example", vt::kAnnaPw);
            CHECK_MESSAGE(r.status == VerifyStatus::ok, r.detail);
            CHECK(r.detail.find("OK") != std::string::npos);
            r = verify(p, "anna@old.example", "anna's PW");
            CHECK_MESSAGE(r.status == VerifyStatus::rejected, r.detail);
        }
    }
}

TEST_CASE("imap: wrong password and unknown user are rejected at once, detail has no secret") {
    mft::DovecotServer& old = shared_old();
    auto p = imap(old.imaps_port(), TlsMode::implicit, old.ca_file());
    auto t0 = std::chrono::steady_clock::now();
    auto r = verify(p, "anna@old.example", "Sekr1t-guess");
    CHECK(r.status == VerifyStatus::rejected);
    CHECK(r.detail.find("AUTHENTICATIONFAILED") != std::string::npos); // the server's words
    CHECK(r.detail.find("Sekr1t") == std::string::npos);
    r = verify(p, "nobody@old.example", "Sekr1t-guess");
    CHECK(r.status == VerifyStatus::rejected);
    CHECK(r.detail.find("Sekr1t") == std::string::npos);
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
    // The verifier object is reusable and keeps no state between calls.
    auto v = mf::make_verifier(p);
    CHECK(v->verify("anna@old.example", mf::Secret("x")).status == VerifyStatus::rejected);
    CHECK(v->verify("anna@old.example", mf::Secret(vt::kAnnaPw)).status == VerifyStatus::ok);
    CHECK(v->verify("anna@old.example", mf::Secret("y")).status == VerifyStatus::rejected);
}

TEST_CASE("imap: hard passwords verify with PLAIN and LOGIN") {
    mft::DovecotServer& old = shared_old();
    auto hard = vt::hard_passwords();
    // auto picks PLAIN at Dovecot; LOGIN encodes differently (user and password apart).
    for (SaslMech mech : {SaslMech::automatic, SaslMech::login}) {
        auto p = imap(old.imaps_port(), TlsMode::implicit, old.ca_file(), mech);
        for (std::size_t i = 0; i < hard.size(); ++i) {
            CAPTURE(i);
            CAPTURE(std::string(mf::to_string(mech)));
            const std::string user = "h" + std::to_string(i) + "@old.example";
            auto r = verify(p, user, hard[i]);
            CHECK_MESSAGE(r.status == VerifyStatus::ok, r.detail);
            std::string off = hard[i]; // one byte off is a different password
            off.back() = off.back() == 'x' ? 'y' : 'x';
            r = verify(p, user, off);
            CHECK_MESSAGE(r.status == VerifyStatus::rejected, r.detail);
        }
    }
}

TEST_CASE("imap: certificates — wrong CA is unavailable, verify_certificate=false accepts") {
    mft::DovecotServer& old = shared_old();
    for (auto [port, tls] : {std::pair{old.imaps_port(), TlsMode::implicit},
                             std::pair{old.imap_port(), TlsMode::starttls}}) {
        CAPTURE(std::string(mf::to_string(tls)));
        auto p = imap(port, tls, mft::other_ca_file());
        auto r = verify(p, "anna@old.example", vt::kAnnaPw);
        CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
        CHECK(r.detail.find("TLS") != std::string::npos);
        r = verify(p, "anna@old.example", "wrong"); // never "rejected" over a TLS failure
        CHECK(r.status == VerifyStatus::unavailable);
        p.verify_certificate = false;
        r = verify(p, "anna@old.example", vt::kAnnaPw);
        CHECK_MESSAGE(r.status == VerifyStatus::ok, r.detail);
        // The name is checked too: the certificate names localhost and 127.0.0.1 only.
        p = imap(port, tls, old.ca_file());
        p.host = "localhost";
        r = verify(p, "anna@old.example", vt::kAnnaPw);
        CHECK_MESSAGE(r.status == VerifyStatus::ok, r.detail);
        p.ca_file = "/nonexistent/ca.pem";
        r = verify(p, "anna@old.example", vt::kAnnaPw);
        CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
    }
    // TLS required but the server has none: never fall back to clear text.
    auto o = imap_only(vt::old_server("vimap-notls"));
    o.tls = false;
    mft::DovecotServer plain(o);
    for (TlsMode tls : {TlsMode::starttls, TlsMode::implicit}) {
        auto r = verify(imap(plain.imap_port(), tls, ""), "anna@old.example", vt::kAnnaPw);
        CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
    }
}

TEST_CASE("imap: a stopped server and a silent one are unavailable within the timeout") {
    mft::DovecotServer& old = shared_old();
    auto p = imap(old.imaps_port(), TlsMode::implicit, old.ca_file());
    old.stop();
    auto r = verify(p, "anna@old.example", vt::kAnnaPw);
    CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
    r = verify(p, "anna@old.example", "wrong");
    CHECK(r.status == VerifyStatus::unavailable);
    old.start();
    r = verify(p, "anna@old.example", vt::kAnnaPw);
    CHECK_MESSAGE(r.status == VerifyStatus::ok, r.detail);

    mft::SilentServer silent;
    for (TlsMode tls : {TlsMode::implicit, TlsMode::none}) { // hang in TLS / at the greeting
        auto s = imap(silent.port(), tls, old.ca_file());
        s.timeout = 1s;
        auto t0 = std::chrono::steady_clock::now();
        r = verify(s, "anna@old.example", vt::kAnnaPw);
        auto took = std::chrono::steady_clock::now() - t0;
        CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
        CHECK(r.detail.find("timed out") != std::string::npos);
        CHECK(took >= 900ms);
        CHECK(took < 3s);
    }
}

TEST_CASE("imap: challenge-response mechanisms are never used to judge a plain password") {
    // cara's password is stored hashed, so CRAM-MD5 cannot work for her: choosing it (as
    // libcurl would by default) would turn a right password into "rejected".
    mft::TempDir dir;
    mft::DovecotServer both(
        imap_only(vt::hashed_user_server("vimap-cram", dir, "plain login cram-md5 digest-md5")));
    auto p = imap(both.imaps_port(), TlsMode::implicit, both.ca_file());
    auto r = verify(p, "cara@old.example", "crypt pw");
    CHECK_MESSAGE(r.status == VerifyStatus::ok, r.detail);
    r = verify(p, "cara@old.example", "crypt PW");
    CHECK_MESSAGE(r.status == VerifyStatus::rejected, r.detail);

    // SASL LOGIN only: auto finds it.
    mft::TempDir dir2;
    mft::DovecotServer login_only(imap_only(vt::hashed_user_server("vimap-login", dir2, "login")));
    p = imap(login_only.imaps_port(), TlsMode::implicit, login_only.ca_file());
    CHECK(verify(p, "cara@old.example", "crypt pw").status == VerifyStatus::ok);
    CHECK(verify(p, "cara@old.example", "crypt PW").status == VerifyStatus::rejected);
    p.mechanism = SaslMech::plain; // configured PLAIN, not offered: cannot decide
    r = verify(p, "cara@old.example", "crypt pw");
    CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
    CHECK(r.detail.find("LOGIN") != std::string::npos); // says what the server offers

    // Only CRAM-MD5: nothing we may use, whatever the password.
    mft::TempDir dir3;
    mft::DovecotServer cram_only(
        imap_only(vt::hashed_user_server("vimap-cram1", dir3, "cram-md5")));
    for (SaslMech mech : {SaslMech::automatic, SaslMech::plain, SaslMech::login}) {
        CAPTURE(std::string(mf::to_string(mech)));
        p = imap(cram_only.imaps_port(), TlsMode::implicit, cram_only.ca_file(), mech);
        for (const char* pw : {"crypt pw", "crypt PW"}) {
            r = verify(p, "cara@old.example", pw);
            CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
            CHECK(r.detail.find("CRAM-MD5") != std::string::npos);
        }
    }
}

TEST_CASE("imap: LOGINDISABLED before TLS, and a server that cannot decide, are unavailable") {
    mft::DovecotServer strict(imap_only(vt::strict_server("vimap-strict")));
    auto p = imap(strict.imap_port(), TlsMode::none, "");
    p.host = strict.address();
    for (const char* pw : {vt::kAnnaPw, "wrong"}) {
        auto r = verify(p, "anna@old.example", pw);
        CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
        CHECK(r.detail.find("LOGINDISABLED") != std::string::npos);
    }
    // Over TLS the same server decides (the certificate does not name 127.0.0.2).
    p.tls = TlsMode::starttls;
    p.verify_certificate = false;
    CHECK(verify(p, "anna@old.example", vt::kAnnaPw).status == VerifyStatus::ok);
    CHECK(verify(p, "anna@old.example", "wrong").status == VerifyStatus::rejected);

    // NO [UNAVAILABLE] is not a verdict on the password.
    mft::TempDir dir;
    mft::DovecotServer broken(imap_only(vt::broken_passdb_server("vimap-broken", dir)));
    p = imap(broken.imaps_port(), TlsMode::implicit, broken.ca_file());
    auto r = verify(p, "anna@old.example", vt::kAnnaPw);
    CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
    CHECK(r.detail.find("[UNAVAILABLE]") != std::string::npos);
}
