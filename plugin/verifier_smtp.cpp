// verifier_smtp.cpp — is this password right at an old SMTP submission server?
//
// Only 535 (RFC 4954: authentication credentials invalid) is a rejection. 454 and other
// 4xx, 534/538 (mechanism or encryption policy), a server that offers no AUTH at all, or
// a dropped connection mean TEMPFAIL. Success needs a 235 reply: libcurl skips AUTH when
// the server does not advertise it, and that must never count as a verified password.
#include "mailferry/verifier.hpp"

#include "verifier_curl.hpp"

namespace mf {
namespace {

bool has_reply(const curl::Attempt& a, const char* code) {
    for (const auto& l : a.server_lines) {
        if (l.rfind(code, 0) == 0) {
            return true;
        }
    }
    return false;
}

class SmtpVerifier final : public Verifier {
  public:
    explicit SmtpVerifier(ProviderConfig p)
        : p_(std::move(p)), url_(curl::url_for(p_, "smtp", "smtps")) {}

    VerifyOutcome verify(const std::string& login, const Secret& password) override {
        if (curl::unsendable(password)) {
            return {VerifyStatus::rejected, "password holds CR, LF or NUL"};
        }
        auto a = curl::login(p_, url_, login, password, curl::login_options(p_.mechanism));
        std::string reply = curl::last_line(a);
        if (a.code == 0) {
            if (has_reply(a, "235")) {
                return {VerifyStatus::ok, reply};
            }
            return {VerifyStatus::unavailable,
                    "server did not authenticate us (no AUTH offered?): " + reply};
        }
        if (!curl::is_login_denied(a.code)) {
            return curl::transport_failure(a, p_);
        }
        if (reply.rfind("535", 0) == 0) {
            return {VerifyStatus::rejected, "server said: " + reply};
        }
        return {VerifyStatus::unavailable,
                "login not decided: " + (reply.empty() ? sanitize_reply(a.error) : reply)};
    }

  private:
    ProviderConfig p_;
    std::string url_;
};

} // namespace

std::unique_ptr<Verifier> make_smtp_verifier(const ProviderConfig& p) {
    return std::make_unique<SmtpVerifier>(p);
}

} // namespace mf
