// verifier_probe.cpp — reach the old server as the verifiers do, without logging in.
//
// The same libcurl session set-up as curl::login() (verifier.cpp): the provider's URL
// scheme for its TLS mode, CURLOPT_USE_SSL, the CA file and the certificate check. No user
// name is set, so libcurl ends its connect phase before authentication: greeting,
// STARTTLS/STLS and capabilities only. Used by `mailferry dry-run` before a campaign.
// Must never: send a user name or password, or report a server "reachable" when TLS could
// not be set up or its certificate was refused.
// Errors: none thrown; ServerProbe::detail says what failed (curl's reason, the server's
// last line, sanitized).
#include "mailferry/verifier.hpp"
#include "verifier_curl.hpp"

#include <algorithm>
#include <array>
#include <curl/curl.h>
#include <memory>
#include <mutex>

namespace mf {
namespace {

struct EasyDeleter {
    void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;

struct Seen {
    std::string greeting;
    std::string last;
};

// Incoming protocol lines only; we send nothing secret, but keep to the verifiers' habit.
int on_debug(CURL* /*handle*/, curl_infotype type, char* data, size_t size, void* user) {
    if (type != CURLINFO_HEADER_IN) {
        return 0;
    }
    auto* s = static_cast<Seen*>(user);
    std::string line = sanitize_reply(std::string_view(data, size), 200);
    if (s->greeting.empty()) {
        s->greeting = line;
    }
    s->last = std::move(line);
    return 0;
}

const char* scheme_of(const ProviderConfig& p) {
    const bool tls = p.tls == TlsMode::implicit;
    switch (p.protocol) {
    case Protocol::imap:
        return tls ? "imaps" : "imap";
    case Protocol::pop3:
        return tls ? "pop3s" : "pop3";
    case Protocol::smtp:
        return tls ? "smtps" : "smtp";
    }
    return "imap";
}

// The leaf certificate's "Expire date:" from CURLINFO_CERTINFO ("" when unknown).
std::string expiry_of(CURL* h) {
    curl_certinfo* ci = nullptr;
    if (curl_easy_getinfo(h, CURLINFO_CERTINFO, &ci) != CURLE_OK || ci == nullptr ||
        ci->num_of_certs < 1) {
        return {};
    }
    constexpr std::string_view kKey = "Expire date:";
    for (curl_slist* s = ci->certinfo[0]; s != nullptr; s = s->next) {
        std::string_view v = s->data;
        if (v.starts_with(kKey)) {
            return sanitize_reply(v.substr(kKey.size()), 60);
        }
    }
    return {};
}

} // namespace

ServerProbe probe_server(const ProviderConfig& p) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    ServerProbe out;
    Easy e(curl_easy_init());
    if (!e) {
        out.detail = "curl_easy_init failed";
        return out;
    }
    CURL* h = e.get();
    std::string host = p.host;
    if (host.find(':') != std::string::npos && host.front() != '[') {
        host = "[" + host + "]"; // IPv6 literal
    }
    const std::string url =
        std::string(scheme_of(p)) + "://" + host + ":" + std::to_string(p.effective_port()) + "/";
    std::array<char, CURL_ERROR_SIZE> errbuf{};
    Seen seen;
    const long ms = std::max(1L, static_cast<long>(p.timeout.count()));
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf.data());
    curl::set_transport(h, p, url, ms); // no user name: stops before authentication
    curl_easy_setopt(h, CURLOPT_CERTINFO, 1L);
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, &seen);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L); // feeds on_debug; nothing is printed
    const CURLcode rc = curl_easy_perform(h);
    const std::string where =
        std::string(to_string(p.protocol)) + " " + url.substr(0, url.size() - 1);
    if (rc != CURLE_OK) {
        std::string why = errbuf[0] != '\0' ? errbuf.data() : curl_easy_strerror(rc);
        const bool tls_trouble = rc == CURLE_PEER_FAILED_VERIFICATION ||
                                 rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CONNECT_ERROR ||
                                 rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_USE_SSL_FAILED;
        out.detail = where + ": " + (tls_trouble ? "TLS failed: " : "") + sanitize_reply(why);
        if (!seen.last.empty()) {
            out.detail += "; server said: " + seen.last;
        }
        return out;
    }
    out.reachable = true;
    out.detail = where + ": greeting \"" + seen.greeting + "\"";
    if (p.tls == TlsMode::none) {
        out.detail += "; no TLS (tls = \"none\")";
    } else if (!p.verify_certificate) {
        out.detail += "; TLS up, certificate NOT checked (verify_certificate = false)";
    } else {
        std::string exp = expiry_of(h);
        out.detail += "; TLS certificate verified" + (exp.empty() ? "" : ", expires " + exp);
    }
    return out;
}

} // namespace mf
