// verifier_imap.cpp — is this password right at the old IMAP server?
//
// A tagged NO to AUTHENTICATE / LOGIN is judged by verifier_refusal.cpp: [AUTHENTICATIONFAILED],
// [AUTHORIZATIONFAILED] or [EXPIRED] (RFC 5530), or a codeless NO worded as a known server
// words a wrong password (Courier "Login failed.", …), is a rejection; NO [UNAVAILABLE] or
// any other code, or a codeless NO in other words, is not. BAD, BYE, a dropped connection,
// TLS trouble or a timeout mean we could not decide.
// Mechanisms: AUTHENTICATE PLAIN, then LOGIN (SASL); the LOGIN command only when the
// server offers no SASL mechanism at all (it cannot carry more than ~1 KiB at Dovecot).
// Must never: call a PREAUTH greeting, or an ending without a tagged OK, a success.
#include "mailferry/verifier.hpp"

#include "verifier_curl.hpp"
#include "verifier_refusal.hpp"

#include <chrono>

#include <algorithm>
#include <cctype>

namespace mf {
namespace {

struct Tagged {
    std::string line;   // the whole line, sanitized
    std::string status; // OK, NO, BAD (upper-cased); empty if none came
};

std::string upper(std::string s) {
    for (auto& c : s) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return s;
}

// The last tagged (not "*", not "+") line: with CONNECT_ONLY, the reply to our login when
// curl tried one, else to CAPABILITY or STARTTLS.
Tagged last_tagged(const curl::Attempt& a) {
    Tagged t;
    auto it = std::find_if(a.lines.rbegin(), a.lines.rend(), [](const std::string& l) {
        return !l.empty() && l[0] != '*' && l[0] != '+';
    });
    if (it == a.lines.rend()) {
        return t;
    }
    t.line = *it;
    auto sp = t.line.find(' ');
    if (sp == std::string::npos) {
        return t;
    }
    auto rest = t.line.substr(sp + 1);
    t.status = upper(rest.substr(0, rest.find(' ')));
    return t;
}

std::vector<std::string> capabilities(const curl::Attempt& a) {
    for (auto it = a.lines.rbegin(); it != a.lines.rend(); ++it) {
        auto words = curl::words_after(*it, "* CAPABILITY ");
        if (!words.empty()) {
            return words;
        }
    }
    return {};
}

std::vector<std::string> sasl_mechanisms(const std::vector<std::string>& caps) {
    std::vector<std::string> mechs;
    for (const auto& c : caps) {
        if (c.rfind("AUTH=", 0) == 0) {
            mechs.push_back(c.substr(5));
        }
    }
    return mechs;
}

bool contains(const std::vector<std::string>& words, const std::string& w) {
    return std::find(words.begin(), words.end(), w) != words.end();
}

class ImapVerifier final : public Verifier {
  public:
    explicit ImapVerifier(ProviderConfig p) : p_(std::move(p)) {}

    VerifyOutcome verify(const std::string& login, const Secret& password) override {
        if (auto refused = curl::refuse_unsendable(login, password)) {
            return *refused;
        }
        const auto start = std::chrono::steady_clock::now();
        auto a = attempt(login, password, curl::sasl_options(p_.mechanism), p_.timeout);
        if (!no_mechanism(a)) {
            return judge(a);
        }
        // The server offers neither AUTH=PLAIN nor AUTH=LOGIN (or not the one configured).
        auto caps = capabilities(a);
        auto mechs = sasl_mechanisms(caps);
        const std::string offered = mechs.empty() ? "none" : curl::join(mechs);
        if (p_.mechanism != SaslMech::automatic) {
            return curl::undecided(a, p_,
                                   std::string("server does not offer AUTH=") +
                                       curl::wanted_mechanisms(p_.mechanism) +
                                       " (it offers: " + offered + ")");
        }
        if (contains(caps, "LOGINDISABLED")) {
            return curl::undecided(a, p_,
                                   "server refuses LOGIN (LOGINDISABLED) and offers no "
                                   "AUTH=PLAIN or AUTH=LOGIN (it offers: " +
                                       offered + ")");
        }
        if (!mechs.empty()) {
            // curl would pick one of these before the LOGIN command; none can check a
            // password the server keeps hashed, so a NO would not mean "wrong password".
            return curl::undecided(a, p_,
                                   "server offers only SASL mechanisms that cannot check a plain "
                                   "password (" +
                                       offered + ")");
        }
        const Millis left = curl::remaining(p_, start);
        if (left.count() == 0) {
            return curl::undecided(a, p_, "timed out after " + format_duration(p_.timeout));
        }
        return judge(attempt(login, password, curl::kAnyMethod, left)); // the LOGIN command
    }

  private:
    curl::Attempt attempt(const std::string& login, const Secret& password, const char* options,
                          Millis budget) {
        return curl::login(p_, "imap", "imaps", login, password, options, budget);
    }

    // Denied although the last tagged reply is an OK (to CAPABILITY): curl found nothing
    // it was allowed to use and sent no credentials.
    static bool no_mechanism(const curl::Attempt& a) {
        return curl::denied(a) && last_tagged(a).status == "OK";
    }

    VerifyOutcome judge(const curl::Attempt& a) const {
        Tagged t = last_tagged(a);
        if (a.code == 0) {
            if (!a.lines.empty() && upper(a.lines.front()).rfind("* PREAUTH", 0) == 0) {
                return curl::undecided(a, p_, "server pre-authenticates: password not checked");
            }
            if (t.status == "OK") {
                return {VerifyStatus::ok, "server said: " + t.line};
            }
            return curl::undecided(a, p_, "no tagged OK after login");
        }
        if (!curl::denied(a)) {
            return curl::undecided(a, p_, "");
        }
        if (t.status == "NO") {
            auto verdict = refusal::judge(Protocol::imap, t.line);
            if (verdict.status == VerifyStatus::rejected) {
                return {VerifyStatus::rejected,
                        "server said: " + t.line + " (" + verdict.reason + ")"};
            }
            return curl::undecided(a, p_, verdict.reason);
        }
        if (no_mechanism(a)) {
            return curl::undecided(a, p_, "server offers no usable login (TLS required first?)");
        }
        return curl::undecided(a, p_, "login not decided");
    }

    ProviderConfig p_;
};

} // namespace

std::unique_ptr<Verifier> make_imap_verifier(const ProviderConfig& p) {
    return std::make_unique<ImapVerifier>(p);
}

} // namespace mf
