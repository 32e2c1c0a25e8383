// verifier_pop3.cpp — is this password right at the old POP3 server?
//
// A -ERR to AUTH or PASS is judged by verifier_refusal.cpp: -ERR [AUTH] (RFC 3206), or a
// codeless -ERR worded as a known server words a wrong password (Courier "Login failed.",
// UW "Bad login", qpopper, CommuniGate), is a rejection; [IN-USE], [LOGIN-DELAY],
// [SYS/TEMP], [SYS/PERM] or any other code, or a codeless -ERR in other words ("maildrop
// locked"), is not. A dropped connection, TLS trouble, a timeout or anything unexpected
// mean we could not decide. Success needs the +OK to our login.
// Mechanisms: SASL PLAIN, then LOGIN; USER/PASS only when the server offers no SASL at all
// and no APOP (curl would try APOP first, which fails for users stored with a hash).
// Must never: call a -ERR to APOP or to a challenge-response mechanism a rejection.
#include "mailferry/verifier.hpp"

#include "verifier_curl.hpp"
#include "verifier_refusal.hpp"

#include <algorithm>
#include <chrono>

namespace mf {
namespace {

bool starts_with(const std::string& s, const char* prefix) {
    return s.rfind(prefix, 0) == 0;
}

// The mechanisms of the CAPA "SASL …" line (empty if none).
std::vector<std::string> sasl_mechanisms(const curl::Attempt& a) {
    for (const auto& l : a.lines) {
        auto words = curl::words_after(l, "SASL ");
        if (!words.empty()) {
            return words;
        }
    }
    return {};
}

// RFC 1939: a greeting with a <timestamp> offers APOP.
bool offers_apop(const curl::Attempt& a) {
    if (a.lines.empty() || !starts_with(a.lines.front(), "+OK")) {
        return false;
    }
    const std::string& g = a.lines.front();
    auto open = g.find('<');
    return open != std::string::npos && g.find('>', open) != std::string::npos;
}

// Where the login exchange begins in the server's lines: after the greeting, the reply to
// CAPA (+OK, capabilities, "." — or a lone -ERR from a server without CAPA) and, with
// STARTTLS, the +OK to STLS and the second CAPA. A -ERR before that point was not about
// our credentials.
std::size_t login_start(const curl::Attempt& a, TlsMode tls) {
    const auto& l = a.lines;
    std::size_t i = 1;
    auto skip_capa = [&] {
        if (i < l.size() && starts_with(l[i], "+OK")) {
            while (++i < l.size() && l[i] != ".") {
            }
        }
        ++i; // the "." or the -ERR
    };
    skip_capa();
    if (tls == TlsMode::starttls) {
        ++i; // +OK to STLS
        skip_capa();
    }
    return std::min(i, l.size());
}

class Pop3Verifier final : public Verifier {
  public:
    explicit Pop3Verifier(ProviderConfig p) : p_(std::move(p)) {}

    VerifyOutcome verify(const std::string& login, const Secret& password) override {
        if (auto refused = curl::refuse_unsendable(login, password)) {
            return *refused;
        }
        const auto start = std::chrono::steady_clock::now();
        auto a = attempt(login, password, curl::sasl_options(p_.mechanism), p_.timeout);
        if (!no_mechanism(a)) {
            return judge(a);
        }
        auto mechs = sasl_mechanisms(a);
        const std::string offered = mechs.empty() ? "none" : curl::join(mechs);
        if (p_.mechanism != SaslMech::automatic) {
            return curl::undecided(a, p_,
                                   std::string("server does not offer SASL ") +
                                       curl::wanted_mechanisms(p_.mechanism) +
                                       " (it offers: " + offered + ")");
        }
        if (!mechs.empty()) {
            return curl::undecided(a, p_,
                                   "server offers only SASL mechanisms that cannot check a plain "
                                   "password (" +
                                       offered + ")");
        }
        if (offers_apop(a)) {
            return curl::undecided(a, p_,
                                   "server offers no SASL PLAIN or LOGIN, and APOP would "
                                   "be used before USER/PASS");
        }
        const Millis left = curl::remaining(p_, start);
        if (left.count() == 0) {
            return curl::undecided(a, p_, "timed out after " + format_duration(p_.timeout));
        }
        return judge(attempt(login, password, curl::kAnyMethod, left)); // USER / PASS
    }

  private:
    curl::Attempt attempt(const std::string& login, const Secret& password, const char* options,
                          Millis budget) {
        return curl::login(p_, "pop3", "pop3s", login, password, options, budget);
    }

    // Nothing after the CAPA replies: curl found nothing it was allowed to use and sent no
    // credentials.
    bool no_mechanism(const curl::Attempt& a) const {
        return curl::denied(a) && !a.truncated && login_start(a, p_.tls) >= a.lines.size();
    }

    VerifyOutcome judge(const curl::Attempt& a) const {
        const std::string reply = curl::last_line(a);
        const bool answered = !a.truncated && login_start(a, p_.tls) < a.lines.size();
        if (a.code == 0) {
            if (answered && starts_with(reply, "+OK")) {
                return {VerifyStatus::ok, "server said: " + reply};
            }
            return curl::undecided(a, p_, "no +OK to our login");
        }
        if (!curl::denied(a)) {
            return curl::undecided(a, p_, "");
        }
        if (!answered || !starts_with(reply, "-ERR")) {
            return curl::undecided(
                a, p_, "server offers no SASL PLAIN or LOGIN and no USER (TLS required first?)");
        }
        auto verdict = refusal::judge(Protocol::pop3, reply);
        if (verdict.status == VerifyStatus::rejected) {
            return {VerifyStatus::rejected, "server said: " + reply + " (" + verdict.reason + ")"};
        }
        return curl::undecided(a, p_, verdict.reason);
    }

    ProviderConfig p_;
};

} // namespace

std::unique_ptr<Verifier> make_pop3_verifier(const ProviderConfig& p) {
    return std::make_unique<Pop3Verifier>(p);
}

} // namespace mf
