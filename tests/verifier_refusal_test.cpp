// verifier_refusal_test.cpp — the refusal judge (plugin/verifier_refusal.cpp) against the
// refusal texts real servers send, one row per text, each with where it was found: the
// server's source file, a document, or our own run of the real server. Pure table, no
// network. A row is in here only when its text was found; servers whose texts we could
// not find are left out rather than guessed.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "verifier_refusal.hpp"

#include <string>
#include <vector>

using mf::Protocol;
using mf::VerifyStatus;

namespace {

constexpr auto kNo = VerifyStatus::rejected;      // a wrong password (or unknown user)
constexpr auto kTemp = VerifyStatus::unavailable; // not a verdict: TEMPFAIL

struct Row {
    Protocol protocol;
    const char* line; // as the verifier hands it over (tag "A002" where IMAP has one)
    VerifyStatus want;
    const char* source;
};

// clang-format off
const std::vector<Row> kRealServers = {
    // Dovecot 2.x: src/login-common/login-common.h AUTH_FAILED_MSG / AUTH_TEMP_FAILED_MSG
    // with RFC 5530 / RFC 3206 codes; each line seen from Dovecot 2.3.19 in our tests
    // (verifier_imap/pop3/smtp_test.cpp, verifier_refusal_engine_test.cpp).
    {Protocol::imap, "A002 NO [AUTHENTICATIONFAILED] Authentication failed.", kNo, "Dovecot 2.3 imap-login"},
    {Protocol::imap, "A002 NO [UNAVAILABLE] Temporary authentication failure. [host:2026-12-07 19:40:01]", kTemp, "Dovecot 2.3 imap-login, passdb failing"},
    {Protocol::pop3, "-ERR [AUTH] Authentication failed.", kNo, "Dovecot 2.3 pop3-login"},
    {Protocol::pop3, "-ERR [SYS/TEMP] Temporary authentication failure. [host:2026-12-07 19:40:01]", kTemp, "Dovecot 2.3 pop3-login, passdb failing"},
    {Protocol::pop3, "-ERR [IN-USE] Mailbox is locked by another POP3 session.", kTemp, "Dovecot 2.3 pop3, pop3_lock_session = yes"},
    {Protocol::smtp, "535 5.7.8 Authentication failed", kNo, "Dovecot 2.3 submission-login"},
    {Protocol::smtp, "454 4.7.0 Temporary authentication failure", kTemp, "Dovecot 2.3 submission-login, passdb failing"},
    // Dovecot 1.x: imap-login/client-authenticate.c and imap-proxy.c send
    // "NO "AUTH_FAILED_MSG and "NO "AUTH_TEMP_FAILED_MSG, without codes.
    {Protocol::imap, "A002 NO Authentication failed.", kNo, "Dovecot 1.x imap-login"},
    {Protocol::imap, "A002 NO Temporary authentication failure.", kTemp, "Dovecot 1.x imap-login"},
    // Courier: imaplogin (the string in Debian's courier-imap binary, courier 1.0.16, and
    // seen from it in verifier_refusal_engine_test.cpp); pop3login.c (courier-imap source):
    // "-ERR Login failed." and, when authdaemond fails, "-ERR Temporary problem, please try
    // again later" (imaplogin: "* BYE Temporary problem, please try again later").
    {Protocol::imap, "A002 NO Login failed.", kNo, "Courier-IMAP imaplogin"},
    {Protocol::imap, "* BYE Temporary problem, please try again later", kTemp, "Courier-IMAP imaplogin"},
    {Protocol::pop3, "-ERR Login failed.", kNo, "Courier pop3login.c"},
    {Protocol::pop3, "-ERR Temporary problem, please try again later", kTemp, "Courier pop3login.c"},
    // Cyrus IMAP 3.6.1 (Debian bookworm): AUTHENTICATE answers with Cyrus SASL's
    // sasl_errstring(SASL_BADAUTH) — seen for a wrong password and an unknown user in
    // verifier_refusal_engine_test.cpp; LOGIN uses "%s NO Login failed: %s" (imapd binary).
    // With its saslauthd down, the right password gets SASL_FAIL's words (seen there too).
    {Protocol::imap, "A002 NO authentication failure", kNo, "Cyrus IMAP 3.6 AUTHENTICATE"},
    {Protocol::imap, "A002 NO Login failed: authentication failure", kNo, "Cyrus IMAP 3.6 LOGIN"},
    {Protocol::imap, "A002 NO generic failure", kTemp, "Cyrus IMAP 3.6 AUTHENTICATE, saslauthd down: the RIGHT password"},
    {Protocol::imap, "A002 NO Login failed: generic failure", kTemp, "Cyrus LOGIN, SASL_FAIL (not a wrong password)"},
    // Exchange: "aYKG NO LOGIN failed." (Exchange 2013 Test-ImapConnectivity output, Clint
    // Boessen's blog, 2018-03); "4 NO AUTHENTICATE failed." (Exchange, AUTHENTICATE PLAIN;
    // Christian Weiske, "IMAP with Exchange").
    {Protocol::imap, "aYKG NO LOGIN failed.", kNo, "Exchange 2013 IMAP4"},
    {Protocol::imap, "4 NO AUTHENTICATE failed.", kNo, "Exchange IMAP4 AUTHENTICATE"},
    // Microsoft 365 SMTP AUTH switched off for the tenant: every password alike.
    {Protocol::smtp, "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.", kTemp, "Microsoft 365 SMTP"},
    {Protocol::smtp, "535 5.7.139 Authentication unsuccessful, the user credentials were incorrect", kNo, "Microsoft 365 SMTP"},
    // Zimbra: zm-mailbox src/java/com/zimbra/cs/imap/ImapHandler.java (2005-2010 versions),
    // sendNO(tag, "LOGIN failed") for an unknown account; "account does not have IMAP access
    // enabled" is the account's state, not the password.
    {Protocol::imap, "A002 NO LOGIN failed", kNo, "Zimbra ImapHandler.java"},
    {Protocol::imap, "A002 NO account does not have IMAP access enabled", kTemp, "Zimbra ImapHandler.java"},
    // qpopper: pop_pass.c — 2.x/3.x pwerrmsg without a code, 4.x (Qualcomm 2003) ERRMSG_PW
    // with [AUTH]; pop_dropcopy.c "Maildrop lock busy!  Is another session active?" with
    // [IN-USE] only when the client sent CAPA, else without a code.
    {Protocol::pop3, "-ERR Password supplied for \"anna\" is incorrect.", kNo, "qpopper 2.x/3.x pop_pass.c"},
    {Protocol::pop3, "-ERR [AUTH] Password supplied for \"anna\" is incorrect.", kNo, "qpopper 4.x pop_pass.c"},
    {Protocol::pop3, "-ERR [AUTH] \"anna\": password expired.", kNo, "qpopper 4.x pop_pass.c"},
    {Protocol::pop3, "-ERR Maildrop lock busy!  Is another session active?", kTemp, "qpopper pop_dropcopy.c (no CAPA)"},
    {Protocol::pop3, "-ERR [IN-USE] Maildrop lock busy!  Is another session active?", kTemp, "qpopper pop_dropcopy.c (after CAPA)"},
    // UW ipop3d.c: "-ERR Bad login" ("vague error message to confuse crackers"), and
    // "-ERR Too many login failures" before it hangs up.
    {Protocol::pop3, "-ERR Bad login", kNo, "UW ipop3d.c"},
    {Protocol::pop3, "-ERR Too many login failures", kTemp, "UW ipop3d.c"},
    // CommuniGate Pro: error 515 "incorrect password or account name", as its SMTP module
    // answers AUTH ("535 (515) incorrect password or account name", quoted by a client's
    // error table); the same text is CommuniGate's XIMSS errorText for errorNum 515.
    {Protocol::smtp, "535 (515) incorrect password or account name", kNo, "CommuniGate Pro SMTP"},
};

// The codes themselves (RFC 5530, RFC 2449, RFC 3206, RFC 4954): the code decides, the
// text after it is ours and says nothing.
const std::vector<Row> kCodes = {
    {Protocol::imap, "A002 NO [AUTHORIZATIONFAILED] x", kNo, "RFC 5530"},
    {Protocol::imap, "A002 NO [EXPIRED] x", kNo, "RFC 5530: this passphrase no longer gives access"},
    {Protocol::imap, "A002 NO [UNAVAILABLE] x", kTemp, "RFC 5530"},
    {Protocol::imap, "A002 NO [SERVERBUG] x", kTemp, "RFC 5530"},
    {Protocol::imap, "A002 NO [INUSE] x", kTemp, "RFC 5530"},
    {Protocol::imap, "A002 NO [LIMIT] x", kTemp, "RFC 5530"},
    {Protocol::imap, "A002 NO [CONTACTADMIN] x", kTemp, "RFC 5530: the account, not the password"},
    {Protocol::imap, "A002 NO [PRIVACYREQUIRED] x", kTemp, "RFC 5530: our TLS setting"},
    {Protocol::imap, "A002 NO [X-SOMETHING arg] Login failed.", kTemp, "an unknown code is not a verdict"},
    {Protocol::imap, "A002 NO [ALERT] Login failed.", kNo, "ALERT is for a person: the words decide"},
    {Protocol::imap, "a002 no [authenticationfailed] x", kNo, "case does not matter"},
    {Protocol::pop3, "-ERR [LOGIN-DELAY] x", kTemp, "RFC 2449"},
    {Protocol::pop3, "-ERR [SYS/PERM] x", kTemp, "RFC 3206: the system, not the password"},
    {Protocol::smtp, "534 5.7.9 Authentication mechanism is too weak", kTemp, "RFC 4954"},
    {Protocol::smtp, "538 5.7.11 Encryption required for requested authentication mechanism", kTemp, "RFC 4954"},
    {Protocol::smtp, "530 5.7.0 Authentication required", kTemp, "RFC 4954"},
    {Protocol::smtp, "432 4.7.12 A password transition is needed", kTemp, "RFC 4954"},
};

// Bad input: what is not a refusal, or is cut short, is never a rejection.
const std::vector<Row> kBadInput = {
    {Protocol::imap, "", kTemp, "empty"},
    {Protocol::imap, "A002", kTemp, "a tag alone"},
    {Protocol::imap, "A002 NO", kTemp, "NO without text"},
    {Protocol::imap, "A002 OK Logged in", kTemp, "not a refusal"},
    {Protocol::imap, "A002 BAD Login failed.", kTemp, "BAD is not a verdict"},
    {Protocol::imap, "A002 NO [AUTHENTICATIONFAILED", kTemp, "unclosed code: text unknown"},
    {Protocol::imap, "A002 NO Login failed: System I/O error", kTemp, "a known wording must match whole"},
    {Protocol::imap, "A002 NO Login failed, try again later", kTemp, "passing trouble"},
    {Protocol::imap, "A002 NO   LOGIN    FAILED . ", kNo, "blanks and the final dot do not matter"},
    {Protocol::pop3, "+OK Logged in.", kTemp, "not a refusal"},
    {Protocol::pop3, "-ERR", kTemp, "-ERR without text"},
    {Protocol::pop3, "-ERR maildrop locked", kTemp, "the issue's example"},
    {Protocol::pop3, "-ERR Password supplied for is incorrect", kTemp, "the pattern needs its user part"},
    {Protocol::pop3, "-ERR [AUTH", kTemp, "unclosed code"},
    {Protocol::smtp, "", kTemp, "empty"},
    {Protocol::smtp, "235 2.7.0 Authentication successful", kTemp, "not a refusal"},
    {Protocol::smtp, "53", kTemp, "cut short"},
};
// clang-format on

void check(const std::vector<Row>& rows) {
    for (const auto& r : rows) {
        auto v = mf::refusal::judge(r.protocol, r.line);
        CAPTURE(std::string(r.line));
        CAPTURE(std::string(r.source));
        CHECK_MESSAGE(v.status == r.want, v.reason);
        CHECK_FALSE(v.reason.empty());
    }
}

} // namespace

TEST_CASE("real servers' refusals: wrong password or not a verdict") {
    check(kRealServers);
}

TEST_CASE("response codes decide; unknown codes are not a verdict") {
    check(kCodes);
}

TEST_CASE("bad input and near misses are never a rejection") {
    check(kBadInput);
}

TEST_CASE("a codeless refusal in unknown words is TEMPFAIL, with a reason that says so") {
    auto v = mf::refusal::judge(Protocol::pop3, "-ERR maildrop locked");
    CHECK(v.status == VerifyStatus::unavailable);
    CHECK(v.reason.find("lock") != std::string::npos);
    v = mf::refusal::judge(Protocol::imap, "A002 NO Sorry");
    CHECK(v.status == VerifyStatus::unavailable);
    CHECK(v.reason.find("not known") != std::string::npos);
}
