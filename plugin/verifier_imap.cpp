// verifier_imap.cpp — is this password right at an old IMAP server?
//
// Maps the tagged reply to LOGIN / AUTHENTICATE (RFC 3501, RFC 5530 response codes), as
// Dovecot's passdb-imap does: NO without a code, or with [AUTHENTICATIONFAILED] /
// [AUTHORIZATIONFAILED] / [EXPIRED], is a rejection; NO [UNAVAILABLE], any other code,
// BAD, a BYE or a dropped connection means we could not decide (TEMPFAIL).
#include "mailferry/verifier.hpp"

#include "verifier_curl.hpp"

#include <regex>

namespace mf {
namespace {

// The last tagged (not "*" or "+") reply line.
std::string tagged_reply(const curl::Attempt& a) {
    for (auto it = a.server_lines.rbegin(); it != a.server_lines.rend(); ++it) {
        if (!it->empty() && (*it)[0] != '*' && (*it)[0] != '+') {
            return *it;
        }
    }
    return {};
}

class ImapVerifier final : public Verifier {
  public:
    explicit ImapVerifier(ProviderConfig p)
        : p_(std::move(p)), url_(curl::url_for(p_, "imap", "imaps")) {}

    VerifyOutcome verify(const std::string& login, const Secret& password) override {
        if (curl::unsendable(password)) {
            return {VerifyStatus::rejected, "password holds CR, LF or NUL"};
        }
        auto a = curl::login(p_, url_, login, password, curl::login_options(p_.mechanism));
        std::string reply = tagged_reply(a);
        if (a.code == 0) {
            // Positive evidence only: a tagged OK to our login.
            if (reply.find(" OK") != std::string::npos) {
                return {VerifyStatus::ok, reply};
            }
            return {VerifyStatus::unavailable, "no tagged OK after login: " + reply};
        }
        if (!curl::is_login_denied(a.code)) {
            return curl::transport_failure(a, p_);
        }
        static const std::regex no_reply(R"(^\S+ NO(?: \[([A-Za-z-]+)[^\]]*\])?( .*)?$)",
                                         std::regex::icase);
        std::smatch m;
        if (std::regex_match(reply, m, no_reply)) {
            std::string code = m[1].str();
            for (auto& ch : code) {
                ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
            }
            if (code.empty() || code == "AUTHENTICATIONFAILED" || code == "AUTHORIZATIONFAILED" ||
                code == "EXPIRED") {
                return {VerifyStatus::rejected, "server said: " + reply};
            }
        }
        return {VerifyStatus::unavailable, "login not decided: server said: " +
                                               (reply.empty() ? sanitize_reply(a.error) : reply)};
    }

  private:
    ProviderConfig p_;
    std::string url_;
};

} // namespace

std::unique_ptr<Verifier> make_imap_verifier(const ProviderConfig& p) {
    return std::make_unique<ImapVerifier>(p);
}

} // namespace mf
