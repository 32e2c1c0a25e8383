// verifier_pop3.cpp — is this password right at an old POP3 server?
//
// -ERR to PASS or AUTH is a rejection unless it carries a response code that says the
// server, not the password, is the problem (RFC 2449 [IN-USE], RFC 3206 [SYS/TEMP],
// [SYS/PERM]): those, a dropped connection or anything unexpected mean TEMPFAIL.
#include "mailferry/verifier.hpp"

#include "verifier_curl.hpp"

namespace mf {
namespace {

class Pop3Verifier final : public Verifier {
  public:
    explicit Pop3Verifier(ProviderConfig p)
        : p_(std::move(p)), url_(curl::url_for(p_, "pop3", "pop3s")) {}

    VerifyOutcome verify(const std::string& login, const Secret& password) override {
        if (curl::unsendable(password)) {
            return {VerifyStatus::rejected, "password holds CR, LF or NUL"};
        }
        auto a = curl::login(p_, url_, login, password, curl::login_options(p_.mechanism));
        std::string reply = curl::last_line(a);
        if (a.code == 0) {
            if (reply.rfind("+OK", 0) == 0) {
                return {VerifyStatus::ok, reply};
            }
            return {VerifyStatus::unavailable, "no +OK after login: " + reply};
        }
        if (!curl::is_login_denied(a.code)) {
            return curl::transport_failure(a, p_);
        }
        if (reply.rfind("-ERR", 0) == 0) {
            for (const char* code : {"[IN-USE]", "[SYS/TEMP]", "[SYS/PERM]", "[LOGIN-DELAY]"}) {
                if (reply.find(code) != std::string::npos) {
                    return {VerifyStatus::unavailable, "server said: " + reply};
                }
            }
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

std::unique_ptr<Verifier> make_pop3_verifier(const ProviderConfig& p) {
    return std::make_unique<Pop3Verifier>(p);
}

} // namespace mf
