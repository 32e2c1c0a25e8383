// verifier.cpp — the verifier registry by protocol, and the libcurl session they share.
//
// One easy handle per verify() call, so calls from many threads share nothing but
// libcurl's global state, initialised once. The debug callback keeps incoming lines only
// (CURLINFO_HEADER_IN); outgoing lines carry the password and are never read.
// Must never: log, store or echo the password; note that libcurl keeps its own copy of it
// inside the handle and frees it without wiping — we cannot reach that copy.
// Errors: none thrown; failures become VerifyOutcome{unavailable} with curl's reason.
#include "mailferry/verifier.hpp"

#include "verifier_curl.hpp"

#include <algorithm>
#include <array>
#include <cctype>
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
    return make_imap_verifier(provider); // unreachable: the switch covers the enum
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
    return "unknown";
}

namespace curl {
namespace {

constexpr std::size_t kMaxLines = 200;    // greeting + the most recent lines
constexpr std::size_t kMaxLineLen = 1000; // capability lines can be long

struct EasyDeleter {
    void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;

// Only CURLINFO_HEADER_IN: the server's protocol lines, one per call. Everything else —
// above all CURLINFO_HEADER_OUT, which carries our credentials — is ignored unread.
int on_debug(CURL* /*handle*/, curl_infotype type, char* data, size_t size, void* user) {
    if (type != CURLINFO_HEADER_IN) {
        return 0;
    }
    auto* a = static_cast<Attempt*>(user);
    if (a->lines.size() >= kMaxLines) {
        a->lines.erase(a->lines.begin() + 1); // keep the greeting, drop the oldest after it
        a->truncated = true;
    }
    a->lines.push_back(sanitize_reply(std::string_view(data, size), kMaxLineLen));
    return 0;
}

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string url_for(const ProviderConfig& p, const char* plain_scheme, const char* tls_scheme) {
    const char* scheme = p.tls == TlsMode::implicit ? tls_scheme : plain_scheme;
    std::string host = p.host;
    if (host.find(':') != std::string::npos && host.front() != '[') {
        host = "[" + host + "]"; // IPv6 literal
    }
    return std::string(scheme) + "://" + host + ":" + std::to_string(p.effective_port()) + "/";
}

bool has_line_breaks(std::string_view s) {
    return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

} // namespace

const char* sasl_options(SaslMech m) {
    switch (m) {
    case SaslMech::automatic:
        return "AUTH=PLAIN;AUTH=LOGIN";
    case SaslMech::plain:
        return "AUTH=PLAIN";
    case SaslMech::login:
        return "AUTH=LOGIN";
    }
    return "AUTH=PLAIN";
}

const char* wanted_mechanisms(SaslMech m) {
    switch (m) {
    case SaslMech::automatic:
        return "PLAIN or LOGIN";
    case SaslMech::plain:
        return "PLAIN";
    case SaslMech::login:
        return "LOGIN";
    }
    return "PLAIN";
}

std::optional<VerifyOutcome> refuse_unsendable(const std::string& login, const Secret& password) {
    if (login.empty()) {
        return VerifyOutcome{VerifyStatus::rejected, "empty login name: not sent to the server"};
    }
    if (has_line_breaks(login)) {
        return VerifyOutcome{VerifyStatus::rejected,
                             "login name holds CR, LF or NUL: not sent to the server"};
    }
    if (has_line_breaks(password.view())) {
        return VerifyOutcome{VerifyStatus::rejected,
                             "password holds CR, LF or NUL: not sent to the server"};
    }
    return std::nullopt;
}

Attempt login(const ProviderConfig& p, const char* plain_scheme, const char* tls_scheme,
              const std::string& user, const Secret& password, const char* options, Millis budget) {
    global_init();
    Attempt a;
    Easy e(curl_easy_init());
    if (!e) {
        a.code = CURLE_FAILED_INIT;
        a.error = "curl_easy_init failed";
        return a;
    }
    CURL* h = e.get();
    std::array<char, CURL_ERROR_SIZE> errbuf{};
    const std::string url = url_for(p, plain_scheme, tls_scheme);
    const long ms = std::max(1L, static_cast<long>(budget.count()));
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf.data());
    set_transport(h, p, url, ms);
    curl_easy_setopt(h, CURLOPT_USERNAME, user.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, password.empty() ? "" : password.data());
    curl_easy_setopt(h, CURLOPT_LOGIN_OPTIONS, options);
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, &a);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L); // feeds on_debug; nothing is printed
    a.code = curl_easy_perform(h);
    a.error = errbuf[0] != '\0' ? errbuf.data() : curl_easy_strerror(static_cast<CURLcode>(a.code));
    return a;
}

void set_transport(CURL* h, const ProviderConfig& p, const std::string& url, long ms) {
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); // no SIGALRM in a threaded host
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(h, CURLOPT_USE_SSL,
                     p.tls == TlsMode::none ? static_cast<long>(CURLUSESSL_NONE)
                                            : static_cast<long>(CURLUSESSL_ALL));
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, p.verify_certificate ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, p.verify_certificate ? 2L : 0L);
    if (!p.ca_file.empty()) {
        curl_easy_setopt(h, CURLOPT_CAINFO, p.ca_file.c_str());
    }
}

Millis remaining(const ProviderConfig& p, std::chrono::steady_clock::time_point start) {
    auto used = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - start);
    return used >= p.timeout ? Millis{0} : p.timeout - used;
}

bool denied(const Attempt& a) {
    return a.code == CURLE_LOGIN_DENIED;
}

VerifyOutcome undecided(const Attempt& a, const ProviderConfig& p, const std::string& why) {
    std::string what;
    switch (a.code) {
    case CURLE_OPERATION_TIMEDOUT:
        what = "timed out after " + format_duration(p.timeout);
        break;
    case CURLE_COULDNT_CONNECT:
        what = "cannot connect";
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        what = "cannot resolve host";
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_USE_SSL_FAILED:
        what = "TLS failed";
        break;
    default:
        break;
    }
    std::string detail = why;
    if (a.code != CURLE_OK && a.code != CURLE_LOGIN_DENIED) {
        detail += (detail.empty() ? "" : ": ") + (what.empty() ? "" : what + ": ") +
                  sanitize_reply(a.error);
    }
    if (auto l = last_line(a); !l.empty()) {
        detail += "; server said: " + l;
    }
    return VerifyOutcome{VerifyStatus::unavailable, detail};
}

std::string last_line(const Attempt& a) {
    return a.lines.empty() ? std::string() : a.lines.back();
}

std::vector<std::string> words_after(const std::string& line, const std::string& prefix) {
    std::vector<std::string> words;
    if (line.size() < prefix.size() ||
        !std::equal(prefix.begin(), prefix.end(), line.begin(), [](char x, char y) {
            return std::toupper(static_cast<unsigned char>(x)) ==
                   std::toupper(static_cast<unsigned char>(y));
        })) {
        return words;
    }
    std::string word;
    for (std::size_t i = prefix.size(); i <= line.size(); ++i) {
        char c = i < line.size() ? line[i] : ' ';
        if (c == ' ') {
            if (!word.empty()) {
                words.push_back(word);
                word.clear();
            }
        } else {
            word += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
    }
    return words;
}

std::string join(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) {
        out += (out.empty() ? "" : " ") + w;
    }
    return out;
}

} // namespace curl
} // namespace mf
