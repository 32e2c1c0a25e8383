// provisioner_http.cpp — the "http" provisioner: POST the new account to an admin API.
//
// Sends {"user", "local", "domain", "password", "hash"} as JSON to cfg.url with
// `Authorization: Bearer <token>`, the token read from cfg.token_file at each call (so it
// can be rotated without a restart). 2xx means created; 409 means it exists already,
// which is success too (provisioning is idempotent). TLS peers are verified against
// cfg.ca_file (or the system's CAs) unless verify_certificate is off; redirects are not
// followed; plain http:// is accepted for loopback only, because the body holds the
// password.
//
// Must never: send the password anywhere but cfg.url; log or return the token or the
// password (a reply body that echoes the password is redacted); keep the serialized
// body, the token or the Authorization header in memory after the call (they are wiped;
// copies libcurl makes internally while sending are beyond our reach).
//
// Errors (all Retry::later): token file unreadable or empty, a value JSON cannot carry
// (not UTF-8), connection and TLS failures (curl's reason), any status other than 2xx
// and 409 (with the status and the first 200 bytes of the body, sanitized).
#include "provisioner_impl.hpp"

#include "file_util.hpp"

#include <curl/curl.h>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

namespace mf::prov {
namespace {

constexpr std::size_t kMaxTokenBytes = 16384;
constexpr std::size_t kMaxBodyKeep = 65536;

struct CurlDeleter {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;

struct CurlUrlDeleter {
    void operator()(CURLU* u) const { curl_url_cleanup(u); }
};

// Header list whose strings are wiped before libcurl frees them (one holds the token).
class Headers {
  public:
    Headers() = default;
    ~Headers() {
        for (curl_slist* n = list_; n != nullptr; n = n->next) {
            wipe(n->data, std::char_traits<char>::length(n->data));
        }
        curl_slist_free_all(list_);
    }
    Headers(const Headers&) = delete;
    Headers& operator=(const Headers&) = delete;
    bool add(const char* line) {
        curl_slist* l = curl_slist_append(list_, line);
        if (l == nullptr) {
            return false;
        }
        list_ = l;
        return true;
    }
    [[nodiscard]] curl_slist* get() const { return list_; }

  private:
    curl_slist* list_ = nullptr;
};

// A std::string that is wiped when it goes out of scope.
struct WipedString {
    std::string s;
    WipedString() = default;
    ~WipedString() { wipe(s.data(), s.size()); }
    WipedString(const WipedString&) = delete;
    WipedString& operator=(const WipedString&) = delete;
};

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t collect_body(char* data, size_t size, size_t nmemb, void* user) {
    auto* body = static_cast<std::string*>(user);
    std::size_t n = size * nmemb;
    std::size_t room = kMaxBodyKeep - std::min(body->size(), kMaxBodyKeep);
    body->append(data, std::min(n, room));
    return n; // read and drop the rest: a long error page is not a transfer failure
}

bool header_safe(std::string_view v) {
    for (char c : v) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f) {
            return false;
        }
    }
    return !v.empty();
}

class HttpProvisioner final : public Provisioner {
  public:
    explicit HttpProvisioner(const ProvisionerConfig& cfg)
        : url_(cfg.url), token_file_(cfg.token_file), ca_file_(cfg.ca_file),
          verify_(cfg.verify_certificate), timeout_(cfg.timeout) {}

    Result<void> provision(const ProvisionRequest& req) override {
        const Identity& id = req.identity;
        const std::string what = "provision " + sanitize_reply(id.canonical, 64) + ": POST " + url_;

        WipedString auth;
        {
            auto token = read_token();
            if (!token) {
                return token.error();
            }
            auth.s.reserve(22 + token->size());
            auth.s = "Authorization: Bearer ";
            auth.s.append(token->view());
        }

        WipedString body;
        {
            nlohmann::json j = nlohmann::json::object();
            j["user"] = id.canonical;
            j["local"] = id.local;
            j["domain"] = id.domain;
            j["hash"] = req.hash;
            // One copy of the password, made straight into the json's own string, wiped below.
            j["password"] = std::string();
            auto& pw = j["password"].get_ref<std::string&>();
            pw.reserve(req.password.size());
            pw.assign(req.password.view());
            try {
                body.s = j.dump();
            } catch (const nlohmann::json::exception&) {
                // The exception text quotes the offending byte: do not pass it on.
                wipe(pw.data(), pw.size());
                return fail(what,
                            "the password or the user name is not valid UTF-8, which "
                            "JSON cannot carry",
                            Scope::account);
            }
            wipe(pw.data(), pw.size());
        }

        global_init();
        CurlPtr curl(curl_easy_init());
        if (!curl) {
            return fail(what, "curl_easy_init failed");
        }
        Headers headers;
        if (!headers.add("Content-Type: application/json") || !headers.add("Accept: */*") ||
            !headers.add("Expect:") || !headers.add(auth.s.c_str())) {
            return fail(what, "out of memory building headers");
        }
        wipe(auth.s.data(), auth.s.size());

        std::string reply;
        char errbuf[CURL_ERROR_SIZE] = {};
        CURL* c = curl.get();
        curl_easy_setopt(c, CURLOPT_URL, url_.c_str());
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); // we run in many threads of a mail server
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_.count()));
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.s.data()); // not copied by libcurl
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.s.size()));
        curl_easy_setopt(c, CURLOPT_USERAGENT, "mailferry");
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, verify_ ? 1L : 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, verify_ ? 2L : 0L);
        if (!ca_file_.empty()) {
            curl_easy_setopt(c, CURLOPT_CAINFO, ca_file_.c_str());
        }
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);

        CURLcode rc = curl_easy_perform(c);
        wipe(body.s.data(), body.s.size());
        if (rc != CURLE_OK) {
            std::string why = curl_easy_strerror(rc);
            if (errbuf[0] != '\0') {
                why += ": " + sanitize_reply(errbuf);
            }
            wipe(reply.data(), reply.size());
            return fail(what, why);
        }
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if ((status >= 200 && status < 300) || status == 409) {
            wipe(reply.data(), reply.size());
            return {};
        }
        redact(reply, req.password.view());
        std::string shown = sanitize_reply(reply, 200);
        wipe(reply.data(), reply.size());
        return fail(what, "HTTP status " + std::to_string(status) +
                              (shown.empty() ? std::string{} : ": " + shown));
    }

    [[nodiscard]] const char* name() const override { return "http"; }

  private:
    Result<Secret> read_token() const {
        auto raw = read_file(token_file_, kMaxTokenBytes);
        if (!raw) {
            return fail("read HTTP token", raw.error().message(), Scope::config);
        }
        std::string& t = *raw;
        std::size_t len = t.size();
        while (len > 0 && (t[len - 1] == '\n' || t[len - 1] == '\r')) {
            --len;
        }
        std::string_view token(t.data(), len);
        bool ok = header_safe(token);
        Secret out(ok ? token : std::string_view{});
        wipe(t.data(), t.size());
        if (!ok) {
            return fail("read HTTP token",
                        token_file_ + " is empty or holds spaces or control characters "
                                      "(one token on one line expected)",
                        Scope::config);
        }
        return out;
    }

    std::string url_;
    std::string token_file_;
    std::string ca_file_;
    bool verify_;
    Millis timeout_;
};

// Scheme and host of the URL, checked at start-up rather than at a user's first login.
Result<void> check_url(const std::string& url) {
    const std::string key = "provisioner.url";
    std::unique_ptr<CURLU, CurlUrlDeleter> u(curl_url());
    if (!u) {
        return config_error(key, "curl_url failed");
    }
    if (curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
        return config_error(key, "\"" + sanitize_reply(url, 200) + "\" is not a valid URL");
    }
    char* scheme = nullptr;
    char* host = nullptr;
    curl_url_get(u.get(), CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u.get(), CURLUPART_HOST, &host, 0);
    std::string s = scheme != nullptr ? scheme : "";
    std::string h = host != nullptr ? host : "";
    curl_free(scheme);
    curl_free(host);
    if (s == "https") {
        return {};
    }
    if (s == "http") {
        if (h == "127.0.0.1" || h == "[::1]" || h == "localhost") {
            return {};
        }
        return config_error(key, "http:// would send passwords in clear to " + h +
                                     "; use https:// (plain http is allowed to loopback only)");
    }
    return config_error(key, "scheme must be https (or http to loopback), not \"" + s + "\"");
}

} // namespace

Result<std::unique_ptr<Provisioner>> make_http(const ProvisionerConfig& cfg) {
    if (cfg.url.empty()) {
        return config_error("provisioner.url", "required for the http provisioner");
    }
    if (auto r = check_url(cfg.url); !r) {
        return r.error();
    }
    if (cfg.token_file.empty()) {
        return config_error("provisioner.token_file",
                            "required for the http provisioner (a file holding the bearer token)");
    }
    if (cfg.timeout.count() <= 0) {
        return config_error("provisioner.timeout", "must be positive");
    }
    global_init();
    return std::unique_ptr<Provisioner>(std::make_unique<HttpProvisioner>(cfg));
}

} // namespace mf::prov
