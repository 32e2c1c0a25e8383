// verifier.cpp — shared libcurl session for the verifiers, and the registry by protocol.
#include "mailferry/verifier.hpp"

#include "verifier_curl.hpp"

#include <curl/curl.h>
#include <memory>
#include <mutex>

namespace mf {

std::unique_ptr<Verifier> make_imap_verifier(const ProviderConfig& p);
std::unique_ptr<Verifier> make_pop3_verifier(const ProviderConfig& p);
std::unique_ptr<Verifier> make_smtp_verifier(const ProviderConfig& p);

std::unique_ptr<Verifier> make_verifier(const ProviderConfig& provider) {
    switch (provider.protocol) {
    case Protocol::imap:
        return make_imap_verifier(provider);
    case Protocol::pop3:
        return make_pop3_verifier(provider);
    case Protocol::smtp:
        return make_smtp_verifier(provider);
    }
    return make_imap_verifier(provider);
}

const char* to_string(VerifyStatus s) {
    switch (s) {
    case VerifyStatus::ok:
        return "ok";
    case VerifyStatus::rejected:
        return "rejected";
    case VerifyStatus::unavailable:
        return "unavailable";
    }
    return "?";
}

namespace curl {
namespace {

struct Easy {
    CURL* h = curl_easy_init();
    ~Easy() { curl_easy_cleanup(h); }
    Easy() = default;
    Easy(const Easy&) = delete;
    Easy& operator=(const Easy&) = delete;
};

// Only CURLINFO_HEADER_IN: the server's protocol lines. Outgoing data is never looked at.
int on_debug(CURL*, curl_infotype type, char* data, size_t size, void* user) {
    if (type != CURLINFO_HEADER_IN) {
        return 0;
    }
    auto* lines = static_cast<std::vector<std::string>*>(user);
    if (lines->size() < 64) {
        lines->push_back(sanitize_reply(std::string_view(data, size), 300));
    }
    return 0;
}

std::once_flag g_init;

} // namespace

const char* login_options(SaslMech m) {
    switch (m) {
    case SaslMech::automatic:
        return "";
    case SaslMech::plain:
        return "AUTH=PLAIN";
    case SaslMech::login:
        return "AUTH=LOGIN";
    }
    return "";
}

bool unsendable(const Secret& password) {
    for (char c : password.view()) {
        if (c == '\r' || c == '\n' || c == '\0') {
            return true;
        }
    }
    return false;
}

std::string url_for(const ProviderConfig& p, const char* plain_scheme, const char* tls_scheme) {
    const char* scheme = p.tls == TlsMode::implicit ? tls_scheme : plain_scheme;
    std::string host = p.host;
    if (host.find(':') != std::string::npos && host.front() != '[') {
        host = "[" + host + "]"; // IPv6 literal
    }
    return std::string(scheme) + "://" + host + ":" + std::to_string(p.effective_port()) + "/";
}

Attempt login(const ProviderConfig& p, const std::string& url, const std::string& login,
              const Secret& password, const std::string& login_options) {
    std::call_once(g_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    Attempt a;
    Easy e;
    if (e.h == nullptr) {
        a.code = CURLE_FAILED_INIT;
        a.error = "curl_easy_init failed";
        return a;
    }
    char errbuf[CURL_ERROR_SIZE] = {};
    curl_easy_setopt(e.h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e.h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e.h, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(e.h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e.h, CURLOPT_USERNAME, login.c_str());
    curl_easy_setopt(e.h, CURLOPT_PASSWORD, password.data());
    if (!login_options.empty()) {
        curl_easy_setopt(e.h, CURLOPT_LOGIN_OPTIONS, login_options.c_str());
    }
    auto ms = static_cast<long>(p.timeout.count());
    curl_easy_setopt(e.h, CURLOPT_CONNECTTIMEOUT_MS, ms);
    curl_easy_setopt(e.h, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(e.h, CURLOPT_USE_SSL,
                     p.tls == TlsMode::none ? static_cast<long>(CURLUSESSL_NONE)
                                            : static_cast<long>(CURLUSESSL_ALL));
    curl_easy_setopt(e.h, CURLOPT_SSL_VERIFYPEER, p.verify_certificate ? 1L : 0L);
    curl_easy_setopt(e.h, CURLOPT_SSL_VERIFYHOST, p.verify_certificate ? 2L : 0L);
    if (!p.ca_file.empty()) {
        curl_easy_setopt(e.h, CURLOPT_CAINFO, p.ca_file.c_str());
    }
    curl_easy_setopt(e.h, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(e.h, CURLOPT_DEBUGDATA, &a.server_lines);
    curl_easy_setopt(e.h, CURLOPT_VERBOSE, 1L); // feeds the debug callback; nothing printed
    a.code = curl_easy_perform(e.h);
    a.error = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(static_cast<CURLcode>(a.code));
    // Note: libcurl keeps its own copy of the password and frees it without wiping when
    // the handle goes; our copy (the Secret) is wiped by its owner.
    return a;
}

bool is_login_denied(int code) {
    return code == CURLE_LOGIN_DENIED;
}

VerifyOutcome transport_failure(const Attempt& a, const ProviderConfig& p) {
    std::string what;
    switch (a.code) {
    case CURLE_OPERATION_TIMEDOUT:
        what = "timed out after " + std::to_string(p.timeout.count()) + " ms";
        break;
    case CURLE_COULDNT_CONNECT:
        what = "connection refused";
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        what = "cannot resolve host";
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_USE_SSL_FAILED:
        what = "TLS failed";
        break;
    default:
        what = "error";
        break;
    }
    std::string detail = what + ": " + sanitize_reply(a.error);
    if (auto l = last_line(a); !l.empty()) {
        detail += "; server said: " + l;
    }
    return VerifyOutcome{VerifyStatus::unavailable, detail};
}

std::string last_line(const Attempt& a) {
    return a.server_lines.empty() ? std::string() : a.server_lines.back();
}

} // namespace curl
} // namespace mf
