// dovecot_server.hpp — a real, throw-away Dovecot (Debian's packages) for tests.
//
// Each instance gets its own base_dir, config, log, Maildirs and free loopback ports,
// runs rootless as the `mfvmail` user (created by ./setup.sh deps), and is stopped by the
// PID in base_dir/master.pid when the object dies. TLS listeners use a CA and a server
// certificate (SAN: DNS:localhost, IP:127.0.0.1) made per test run with openssl.
// Failed logins are answered at once (no auth penalty, no 0.5 s failure batching), and
// stop() kills what is left after a short grace, so it takes well under a second.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mft {

struct TestUser {
    std::string name;     // full address, e.g. "anna@old.example"
    std::string password; // any bytes but NUL (stored base64-encoded in the passwd-file)
    // (Dovecot itself refuses TAB, CR, LF and \001 in a password at login.)
};

struct DovecotOptions {
    std::string label = "dovecot"; // instance_name suffix and temp dir prefix
    std::vector<TestUser> users;
    bool imap = true;       // plain IMAP (STARTTLS offered when tls)
    bool imaps = true;      // implicit TLS IMAP
    bool pop3 = true;       // plain POP3 (STLS offered when tls)
    bool pop3s = true;      // implicit TLS POP3
    bool submission = true; // SMTP submission with AUTH (STARTTLS offered when tls)
    bool lmtp = false;      // LMTP on a TCP port (deliveries into the users' Maildirs)
    bool tls = true;
    // Replaces the passdb/userdb blocks (the NEW server authenticating through mailferry:
    // checkpassword, PAM). Empty: a passwd-file passdb+userdb with `users`.
    std::string auth_config;
    std::string extra_config; // appended verbatim to dovecot.conf
    // Where the users' mail lives, relative to their home (mail_dir's parent directory).
    std::string mail_location = "maildir:~/Maildir";
    bool performance_login = false; // service imap-login { service_count = 0 }
    // Listen address. Dovecot treats a client whose address equals the server's as
    // "secured" (plaintext allowed); "127.0.0.2" makes loopback clients (127.0.0.1) remote.
    std::string address = "127.0.0.1";
};

class DovecotServer {
  public:
    // Starts Dovecot and waits until every enabled port accepts. Throws std::runtime_error
    // with the tail of Dovecot's log when it cannot start.
    explicit DovecotServer(DovecotOptions opts);
    ~DovecotServer();
    DovecotServer(const DovecotServer&) = delete;
    DovecotServer& operator=(const DovecotServer&) = delete;

    void stop();  // kill by PID, wait for exit; ports become closed
    void start(); // start again on the same ports and data

    [[nodiscard]] bool running() const;
    [[nodiscard]] const std::string& address() const; // DovecotOptions::address
    [[nodiscard]] std::uint16_t imap_port() const;
    [[nodiscard]] std::uint16_t imaps_port() const;
    [[nodiscard]] std::uint16_t pop3_port() const;
    [[nodiscard]] std::uint16_t pop3s_port() const;
    [[nodiscard]] std::uint16_t submission_port() const;
    [[nodiscard]] std::uint16_t lmtp_port() const; // 0 without DovecotOptions::lmtp

    [[nodiscard]] const std::string& ca_file() const;     // PEM of the CA that signed the cert
    [[nodiscard]] const std::string& config_path() const; // dovecot.conf
    [[nodiscard]] const std::string& dir() const;         // instance root (0755, owned by mfvmail)
    [[nodiscard]] std::string mail_dir(const std::string& user) const; // user's Maildir
    [[nodiscard]] std::string log_tail(std::size_t lines = 40) const;

    // Adds a user to the passwd-file. Dovecot rereads it at most once a second, so this
    // returns only after the next second has begun (up to 1 s): the user works at once then.
    void add_user(const TestUser& user);

    // `doveadm -c CONF args…`; returns the exit code, output in *out if given.
    int doveadm(const std::vector<std::string>& args, std::string* out = nullptr,
                const std::string& stdin_data = {}) const;

    // Delivers one message into a folder (created if needed) with `doveadm save`.
    void save_message(const std::string& user, const std::string& folder,
                      const std::string& rfc822) const;

  private:
    struct State;
    State* state_; // owned; raw only to keep this header free of heavy includes
};

// A second, unrelated CA (for "wrong CA" tests): returns the path of its PEM.
std::string other_ca_file();

} // namespace mft
