// verifier_smtp_test.cpp — the SMTP AUTH verifier against Dovecot's submission service on
// loopback: STARTTLS, implicit TLS and clear text, both mechanisms, wrong and unknown
// users, hard passwords, certificates, a server that offers no AUTH, 454.
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

// Submission with an extra implicit-TLS listener ("submissions", RFC 8314) on `smtps`.
mft::DovecotOptions submission_only(mft::DovecotOptions o, std::uint16_t smtps = 0) {
    o.imap = o.imaps = o.pop3 = o.pop3s = false;
    if (smtps != 0) {
        o.extra_config += "service submission-login {\n  inet_listener submissions {\n    port = " +
                          std::to_string(smtps) + "\n    ssl = yes\n  }\n}\n";
    }
    return o;
}

mf::ProviderConfig smtp(std::uint16_t port, TlsMode tls, const std::string& ca,
                        SaslMech mech = SaslMech::automatic) {
    return vt::provider(Protocol::smtp, port, tls, ca, mech);
}

std::uint16_t shared_smtps_port() {
    static const std::uint16_t port = mft::free_port();
    return port;
}

// One old server for the test cases that do not need a special one (started on first use,
// stopped at exit), with an implicit-TLS listener too; a test that stops it starts it again.
mft::DovecotServer& shared_old() {
    static mft::DovecotServer old(submission_only(vt::old_server("vsmtp"), shared_smtps_port()));
    return old;
}

} // namespace

TEST_CASE("smtp: right password is ok over STARTTLS, implicit TLS and clear text") {
    mft::DovecotServer& old = shared_old();
    const std::uint16_t smtps = shared_smtps_port();
    REQUIRE(mft::wait_for_port(smtps, 10s));
    struct Mode {
        std::uint16_t port;
        TlsMode tls;
    };
    for (Mode m :
         {Mode{old.submission_port(), TlsMode::none},
          Mode{old.submission_port(), TlsMode::starttls}, Mode{smtps, TlsMode::implicit}}) {
        for (SaslMech mech : {SaslMech::automatic, SaslMech::plain, SaslMech::login}) {
            CAPTURE(std::string(mf::to_string(m.tls)));
            CAPTURE(std::string(mf::to_string(mech)));
            auto p = smtp(m.port, m.tls, old.ca_file(), mech);
            auto r = verify(p, "anna@old.example", vt::kAnnaPw);
            CHECK_MESSAGE(r.status == VerifyStatus::ok, r.detail);
            CHECK(r.detail.find("235") != std::string::npos);
            r = verify(p, "anna@old.example", "anna's PW");
            CHECK_MESSAGE(r.status == VerifyStatus::rejected, r.detail);
            CHECK(r.detail.find("535") != std::string::npos);
        }
    }
}

TEST_CASE("smtp: wrong password and unknown user are rejected at once, detail has no secret") {
    mft::DovecotServer& old = shared_old();
    auto p = smtp(old.submission_port(), TlsMode::starttls, old.ca_file());
    auto t0 = std::chrono::steady_clock::now();
    auto r = verify(p, "anna@old.example", "Sekr1t-guess");
    CHECK(r.status == VerifyStatus::rejected);
    CHECK(r.detail.find("Sekr1t") == std::string::npos);
    r = verify(p, "nobody@old.example", "Sekr1t-guess");
    CHECK(r.status == VerifyStatus::rejected);
    CHECK(r.detail.find("Sekr1t") == std::string::npos);
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
}

TEST_CASE("smtp: hard passwords verify with both mechanisms") {
    mft::DovecotServer& old = shared_old();
    auto hard = vt::hard_passwords();
    for (SaslMech mech : {SaslMech::plain, SaslMech::login}) {
        auto p = smtp(old.submission_port(), TlsMode::starttls, old.ca_file(), mech);
        for (std::size_t i = 0; i < hard.size(); ++i) {
            CAPTURE(i);
            CAPTURE(std::string(mf::to_string(mech)));
            const std::string user = "h" + std::to_string(i) + "@old.example";
            auto r = verify(p, user, hard[i]);
            CHECK_MESSAGE(r.status == VerifyStatus::ok, r.detail);
            std::string off = hard[i];
            off.back() = off.back() == 'x' ? 'y' : 'x';
            r = verify(p, user, off);
            CHECK_MESSAGE(r.status == VerifyStatus::rejected, r.detail);
        }
    }
}

TEST_CASE("smtp: certificates, a stopped and a silent server are unavailable") {
    mft::DovecotServer& old = shared_old();
    auto p = smtp(old.submission_port(), TlsMode::starttls, mft::other_ca_file());
    auto r = verify(p, "anna@old.example", vt::kAnnaPw);
    CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
    CHECK(verify(p, "anna@old.example", "wrong").status == VerifyStatus::unavailable);
    p.verify_certificate = false;
    CHECK(verify(p, "anna@old.example", vt::kAnnaPw).status == VerifyStatus::ok);

    p = smtp(old.submission_port(), TlsMode::starttls, old.ca_file());
    old.stop();
    r = verify(p, "anna@old.example", vt::kAnnaPw);
    CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
    old.start();
    CHECK(verify(p, "anna@old.example", vt::kAnnaPw).status == VerifyStatus::ok);

    mft::SilentServer silent;
    for (TlsMode tls : {TlsMode::implicit, TlsMode::none}) { // hang in TLS / at the greeting
        auto s = smtp(silent.port(), tls, old.ca_file());
        s.timeout = 1s;
        auto t0 = std::chrono::steady_clock::now();
        r = verify(s, "anna@old.example", vt::kAnnaPw);
        auto took = std::chrono::steady_clock::now() - t0;
        CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
        CHECK(took >= 900ms);
        CHECK(took < 3s);
    }
}

TEST_CASE("smtp: no AUTH offered, no usable mechanism, or 454 are unavailable") {
    // Plaintext refused before TLS: Dovecot offers no AUTH at all, and libcurl then ends
    // the session "successfully" without authenticating. That is not a verified password.
    mft::DovecotServer strict(submission_only(vt::strict_server("vsmtp-strict")));
    auto p = smtp(strict.submission_port(), TlsMode::none, "");
    p.host = strict.address();
    for (const char* pw : {vt::kAnnaPw, "wrong"}) {
        auto r = verify(p, "anna@old.example", pw);
        CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
        CHECK_MESSAGE(r.detail.find("no AUTH") != std::string::npos, r.detail);
    }
    p.tls = TlsMode::starttls;
    p.verify_certificate = false;
    CHECK(verify(p, "anna@old.example", vt::kAnnaPw).status == VerifyStatus::ok);
    CHECK(verify(p, "anna@old.example", "wrong").status == VerifyStatus::rejected);

    mft::TempDir dir;
    mft::DovecotServer cram_only(
        submission_only(vt::hashed_user_server("vsmtp-cram1", dir, "cram-md5")));
    for (SaslMech mech : {SaslMech::automatic, SaslMech::plain, SaslMech::login}) {
        CAPTURE(std::string(mf::to_string(mech)));
        p = smtp(cram_only.submission_port(), TlsMode::starttls, cram_only.ca_file(), mech);
        auto r = verify(p, "cara@old.example", "crypt pw");
        CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
        CHECK(r.detail.find("CRAM-MD5") != std::string::npos);
    }

    mft::TempDir dir2;
    mft::DovecotServer broken(submission_only(vt::broken_passdb_server("vsmtp-broken", dir2)));
    p = smtp(broken.submission_port(), TlsMode::starttls, broken.ca_file());
    auto r = verify(p, "anna@old.example", vt::kAnnaPw);
    CHECK_MESSAGE(r.status == VerifyStatus::unavailable, r.detail);
    CHECK(r.detail.find("454") != std::string::npos);
}
