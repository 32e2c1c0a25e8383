// provisioner_http_test.cpp — the http provisioner against a real HTTP server.
//
// The peer is tests/support/http_admin_api.py (Python's http.server, plain or TLS with a
// certificate made here by openssl) started per test on a free loopback port. It checks
// the bearer token, records accounts (with a SHA-256 of the password) in a JSON file, and
// answers 201, 409, 401, 500, 307 or late, as the test case needs.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/provisioner.hpp"
#include "support/test_env.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <memory>
#include <nlohmann/json.hpp>
#include <sodium.h>
#include <spawn.h>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace {

constexpr const char* kToken = "tok-3f9a1c7e5d";

mf::Identity ident(const std::string& local, const std::string& domain) {
    mf::Identity id;
    id.local = local;
    id.domain = domain;
    id.canonical = local + "@" + domain;
    id.old_address = id.canonical;
    id.old_login = id.canonical;
    return id;
}

std::string sha256_hex(const std::string& s) {
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, reinterpret_cast<const unsigned char*>(s.data()), s.size());
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned char c : d) {
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    return out;
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

// A self-signed certificate for 127.0.0.1 / localhost.
void make_cert(const std::string& cert, const std::string& key) {
    auto r = mft::run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                       "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days",
                       "2", "-subj", "/CN=mailferry test admin api", "-addext",
                       "subjectAltName=IP:127.0.0.1,DNS:localhost"},
                      {}, std::chrono::seconds(30));
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
}

// tests/support/http_admin_api.py on a free port, stopped by PID when this dies.
class AdminApi {
  public:
    AdminApi(const mft::TempDir& dir, bool tls) : accounts_(dir.file("accounts.json")) {
        mft::write_file(dir.file("server-token"), std::string(kToken) + "\n", 0600);
        port_ = mft::free_port();
        const std::string script = MF_SOURCE_DIR "/tests/support/http_admin_api.py";
        std::vector<std::string> args = {"python3",      script,
                                         "--port",       std::to_string(port_),
                                         "--token-file", dir.file("server-token"),
                                         "--accounts",   accounts_};
        if (tls) {
            cert_ = dir.file("server.crt");
            make_cert(cert_, dir.file("server.key"));
            args.insert(args.end(), {"--cert", cert_, "--key", dir.file("server.key")});
        }
        std::vector<char*> argv;
        argv.reserve(args.size() + 1);
        for (auto& a : args) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        REQUIRE(::posix_spawnp(&pid_, "python3", nullptr, nullptr, argv.data(), environ) == 0);
        // A constructor that fails never runs the destructor: stop the child before failing.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
        bool up = false;
        while (!up && pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1; // it died (bad arguments, broken script): its stderr says why
                break;
            }
            up = mft::wait_for_port(port_, std::chrono::milliseconds(100));
        }
        if (!up) {
            stop();
        }
        REQUIRE_MESSAGE(up, "http_admin_api.py did not start");
    }
    ~AdminApi() { stop(); }
    AdminApi(const AdminApi&) = delete;
    AdminApi& operator=(const AdminApi&) = delete;

    void stop() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            int status = 0;
            ::waitpid(pid_, &status, 0);
            pid_ = -1;
        }
    }
    [[nodiscard]] std::uint16_t port() const { return port_; }
    [[nodiscard]] const std::string& cert() const { return cert_; }
    [[nodiscard]] nlohmann::json accounts() const {
        if (!exists(accounts_)) {
            return nlohmann::json::object();
        }
        return nlohmann::json::parse(mft::read_file(accounts_));
    }

  private:
    std::string accounts_;
    std::string cert_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
};

// One plain and one TLS server for the whole program: starting Python costs more than
// every request made here. Test cases use distinct users.
AdminApi& shared_api(bool tls) {
    if (tls) {
        static mft::TempDir tls_dir("mf-http-api-tls");
        static AdminApi tls_api(tls_dir, true);
        return tls_api;
    }
    static mft::TempDir plain_dir("mf-http-api");
    static AdminApi plain_api(plain_dir, false);
    return plain_api;
}

bool recorded(const AdminApi& api, const std::string& local) {
    return api.accounts().contains(local + "@new.example");
}

mf::ProvisionerConfig http_config(const mft::TempDir& dir, const std::string& url,
                                  const std::string& token = std::string(kToken) + "\n") {
    mft::write_file(dir.file("token"), token, 0600);
    mf::ProvisionerConfig c;
    c.type = mf::ProvisionerType::http;
    c.url = url;
    c.token_file = dir.file("token");
    c.timeout = mf::Millis(5000);
    return c;
}

std::string plain_url(const AdminApi& api, const std::string& path = "/accounts") {
    return "http://127.0.0.1:" + std::to_string(api.port()) + path;
}

std::unique_ptr<mf::Provisioner> make(const mf::ProvisionerConfig& c) {
    auto p = mf::make_provisioner(c);
    REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.error().message()));
    return std::move(*p);
}

mf::Result<void> provision(mf::Provisioner& p, const std::string& local,
                           const std::string& password,
                           const std::string& hash = "{ARGON2ID}$argon2id$v=19$m=8,t=1,p=1$x") {
    auto id = ident(local, "new.example");
    mf::Secret pw(password);
    return p.provision(mf::ProvisionRequest{id, pw, hash});
}

} // namespace

TEST_CASE("http: 201 creates the account with the fields the API expects") {
    mft::TempDir dir("mf-http");
    AdminApi& api = shared_api(false);
    auto p = make(http_config(dir, plain_url(api)));
    CHECK(std::string(p->name()) == "http");

    const std::string pw = "Gr\xc3\xbcn \"quoted\" \\ pass";
    auto r = provision(*p, "anna", pw, "{SHA512-CRYPT}$6$s$h");
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));
    auto acc = api.accounts();
    REQUIRE(acc.contains("anna@new.example"));
    const auto& a = acc["anna@new.example"];
    CHECK(a["local"] == "anna");
    CHECK(a["domain"] == "new.example");
    CHECK(a["hash"] == "{SHA512-CRYPT}$6$s$h");
    CHECK(a["password_sha256"] == sha256_hex(pw));
    CHECK(a["content_type"] == "application/json");
}

TEST_CASE("http: 409 for an existing account counts as created") {
    mft::TempDir dir("mf-http");
    AdminApi& api = shared_api(false);
    auto p = make(http_config(dir, plain_url(api)));
    REQUIRE(provision(*p, "dora", "pw1").ok());
    const auto first = api.accounts()["dora@new.example"];
    auto r = provision(*p, "dora", "pw1");
    CHECK_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));
    CHECK(api.accounts()["dora@new.example"] == first);
}

TEST_CASE("http: a wrong token is an error with the status") {
    mft::TempDir dir("mf-http");
    AdminApi& api = shared_api(false);
    auto p = make(http_config(dir, plain_url(api), "not-the-token\n"));
    auto r = provision(*p, "wtok", "pw");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().temporary());
    CHECK(r.error().message().find("HTTP status 401") != std::string::npos);
    CHECK(r.error().message().find("bad or missing bearer token") != std::string::npos);
    CHECK(r.error().message().find(plain_url(api)) != std::string::npos);
    CHECK(r.error().message().find("not-the-token") == std::string::npos);
    CHECK_FALSE(recorded(api, "wtok"));
}

TEST_CASE("http: the token file is read at each call, and must hold one token") {
    mft::TempDir dir("mf-http");
    AdminApi& api = shared_api(false);
    auto cfg = http_config(dir, plain_url(api), "wrong\n");
    auto p = make(cfg);
    CHECK_FALSE(provision(*p, "rot1", "pw").ok());
    mft::write_file(cfg.token_file, std::string(kToken) + "\r\n", 0600); // rotated; CRLF tolerated
    CHECK(provision(*p, "rot1", "pw").ok());

    mft::write_file(cfg.token_file, "\n", 0600);
    auto r = provision(*p, "rot2", "pw");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find(cfg.token_file) != std::string::npos);
    CHECK(r.error().message().find("empty") != std::string::npos);

    mft::write_file(cfg.token_file, std::string(kToken) + "\nX-Injected: yes\n", 0600);
    auto r2 = provision(*p, "rot2", "pw");
    REQUIRE_FALSE(r2.ok());
    CHECK(r2.error().message().find("control characters") != std::string::npos);

    ::unlink(cfg.token_file.c_str());
    auto r3 = provision(*p, "rot2", "pw");
    REQUIRE_FALSE(r3.ok());
    CHECK(r3.error().temporary());
    CHECK(r3.error().message().find(cfg.token_file) != std::string::npos);
    CHECK(recorded(api, "rot1"));
    CHECK_FALSE(recorded(api, "rot2"));
}

TEST_CASE("http: 500 is an error; a body echoing the password is redacted") {
    mft::TempDir dir("mf-http");
    AdminApi& api = shared_api(false);
    auto p = make(http_config(dir, plain_url(api)));
    auto r = provision(*p, "fail500", "Echo-Me-987");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().temporary());
    const std::string m = r.error().message();
    CHECK(m.find("HTTP status 500") != std::string::npos);
    CHECK(m.find("internal error while creating fail500@new.example with password ***") !=
          std::string::npos);
    CHECK(m.find("Echo-Me-987") == std::string::npos);
}

TEST_CASE("http: redirects are not followed") {
    mft::TempDir dir("mf-http");
    AdminApi& api = shared_api(false);
    auto p = make(http_config(dir, plain_url(api, "/redirect")));
    auto r = provision(*p, "redir", "pw");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("HTTP status 307") != std::string::npos);
    CHECK_FALSE(recorded(api, "redir"));
}

TEST_CASE("http: no server listening is a temporary error") {
    mft::TempDir dir("mf-http");
    const std::uint16_t port = mft::free_port();
    auto p = make(http_config(dir, "http://127.0.0.1:" + std::to_string(port) + "/accounts"));
    auto t0 = std::chrono::steady_clock::now();
    auto r = provision(*p, "anna", "pw");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().temporary());
    CHECK(r.error().message().find("connect") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
}

TEST_CASE("http: a server that does not answer in time is a timeout error") {
    mft::TempDir dir("mf-http");
    AdminApi& api = shared_api(false);
    auto cfg = http_config(dir, plain_url(api));
    cfg.timeout = mf::Millis(500);
    auto p = make(cfg);
    auto t0 = std::chrono::steady_clock::now();
    auto r = provision(*p, "slow", "pw");
    auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().temporary());
    CHECK(r.error().message().find("imeout") != std::string::npos);
    CHECK(took < std::chrono::seconds(3));
}

TEST_CASE("http: TLS is verified against ca_file") {
    mft::TempDir dir("mf-http");
    AdminApi& api = shared_api(true);
    const std::string url = "https://127.0.0.1:" + std::to_string(api.port()) + "/accounts";

    SUBCASE("the right CA: created") {
        auto cfg = http_config(dir, url);
        cfg.ca_file = api.cert();
        auto p = make(cfg);
        auto r = provision(*p, "tls-right", "pw");
        CHECK_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));
        CHECK(recorded(api, "tls-right"));
    }
    SUBCASE("another CA: refused before anything is sent") {
        make_cert(dir.file("other.crt"), dir.file("other.key"));
        auto cfg = http_config(dir, url);
        cfg.ca_file = dir.file("other.crt");
        auto p = make(cfg);
        auto r = provision(*p, "tls-other", "pw");
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().temporary());
        CHECK(r.error().message().find("certificate") != std::string::npos);
        CHECK_FALSE(recorded(api, "tls-other"));
    }
    SUBCASE("the system CAs do not know a self-signed certificate") {
        auto p = make(http_config(dir, url));
        CHECK_FALSE(provision(*p, "tls-system", "pw").ok());
        CHECK_FALSE(recorded(api, "tls-system"));
    }
    SUBCASE("verify_certificate = false: accepted (the admin's explicit choice)") {
        make_cert(dir.file("other.crt"), dir.file("other.key"));
        auto cfg = http_config(dir, url);
        cfg.ca_file = dir.file("other.crt");
        cfg.verify_certificate = false;
        auto p = make(cfg);
        CHECK(provision(*p, "tls-noverify", "pw").ok());
        CHECK(recorded(api, "tls-noverify"));
    }
}

TEST_CASE("http: a password JSON cannot carry is refused before sending") {
    mft::TempDir dir("mf-http");
    AdminApi& api = shared_api(false);
    auto p = make(http_config(dir, plain_url(api)));
    auto r = provision(*p, "latin", "latin1-\xe9t\xe9");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().temporary());
    CHECK(r.error().message().find("UTF-8") != std::string::npos);
    CHECK(r.error().message().find("latin1") == std::string::npos);
    CHECK_FALSE(recorded(api, "latin"));
}

TEST_CASE("http: config mistakes are refused by make_provisioner") {
    mft::TempDir dir("mf-http");
    auto expect_config_error = [](const mf::ProvisionerConfig& c, const std::string& text) {
        auto p = mf::make_provisioner(c);
        REQUIRE_FALSE(p.ok());
        CHECK(p.error().scope == mf::Scope::config);
        CHECK_FALSE(p.error().temporary());
        CHECK_MESSAGE(p.error().message().find(text) != std::string::npos, p.error().message());
    };
    auto base = http_config(dir, "https://admin.example/api/accounts");
    CHECK(mf::make_provisioner(base).ok());
    auto c = base;
    c.url.clear();
    expect_config_error(c, "provisioner.url");
    c.url = "http://admin.example/api";
    expect_config_error(c, "in clear");
    c.url = "ftp://127.0.0.1/x";
    expect_config_error(c, "scheme");
    c.url = "not a url";
    expect_config_error(c, "provisioner.url");
    c = base;
    c.token_file.clear();
    expect_config_error(c, "provisioner.token_file");
    c = base;
    c.timeout = mf::Millis(0);
    expect_config_error(c, "provisioner.timeout");
    c = base;
    c.url = "http://localhost:8080/api";
    CHECK(mf::make_provisioner(c).ok());
}
