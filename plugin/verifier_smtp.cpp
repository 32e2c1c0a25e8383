// verifier_smtp.cpp — is this password right at the old SMTP submission server?
//
// The reply to AUTH is judged by verifier_refusal.cpp: only 535 (RFC 4954: authentication
// credentials invalid) is a rejection. 454 and other 4xx, 530/534/538 (policy: TLS or a
// stronger mechanism required), a server that offers no AUTH or no PLAIN/LOGIN, a dropped
// connection, TLS trouble or a timeout mean we could not decide.
// Must never: count a session without a 235 as verified — libcurl skips AUTH silently when
// the server does not advertise it.
#include "mailferry/verifier.hpp"

#include "verifier_curl.hpp"
#include "verifier_refusal.hpp"

#include <algorithm>

namespace mf {
namespace {

bool starts_with(const std::string& s, const char* prefix) {
    return s.rfind(prefix, 0) == 0;
}

bool said(const curl::Attempt& a, const char* code) {
    return std::any_of(a.lines.begin(), a.lines.end(),
                       [code](const std::string& l) { return starts_with(l, code); });
}

// The mechanisms of the EHLO "AUTH …" line (after STARTTLS, the last one counts).
std::vector<std::string> sasl_mechanisms(const curl::Attempt& a) {
    for (auto it = a.lines.rbegin(); it != a.lines.rend(); ++it) {
        for (const char* prefix : {"250-AUTH ", "250 AUTH ", "250-AUTH=", "250 AUTH="}) {
            auto words = curl::words_after(*it, prefix);
            if (!words.empty()) {
                return words;
            }
        }
    }
    return {};
}

class SmtpVerifier final : public Verifier {
  public:
    explicit SmtpVerifier(ProviderConfig p) : p_(std::move(p)) {}

    VerifyOutcome verify(const std::string& login, const Secret& password) override {
        if (auto refused = curl::refuse_unsendable(login, password)) {
            return *refused;
        }
        auto a = curl::login(p_, "smtp", "smtps", login, password, curl::sasl_options(p_.mechanism),
                             p_.timeout);
        const std::string reply = curl::last_line(a);
        if (a.code == 0) {
            if (said(a, "235")) {
                return {VerifyStatus::ok, "server said: " + reply};
            }
            return curl::undecided(a, p_, "server did not authenticate us (no AUTH offered)");
        }
        if (!curl::denied(a)) {
            return curl::undecided(a, p_, "");
        }
        if (starts_with(reply, "250")) { // denied after EHLO: curl sent no credentials
            auto mechs = sasl_mechanisms(a);
            if (mechs.empty()) {
                return curl::undecided(a, p_, "server offers no AUTH (TLS required first?)");
            }
            return curl::undecided(a, p_,
                                   "server offers AUTH " + curl::join(mechs) + " but not " +
                                       curl::wanted_mechanisms(p_.mechanism));
        }
        auto verdict = refusal::judge(Protocol::smtp, reply);
        if (verdict.status == VerifyStatus::rejected) {
            return {VerifyStatus::rejected, "server said: " + reply + " (" + verdict.reason + ")"};
        }
        return curl::undecided(a, p_, verdict.reason);
    }

  private:
    ProviderConfig p_;
};

} // namespace

std::unique_ptr<Verifier> make_smtp_verifier(const ProviderConfig& p) {
    return std::make_unique<SmtpVerifier>(p);
}

} // namespace mf
