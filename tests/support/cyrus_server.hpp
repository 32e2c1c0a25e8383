// cyrus_server.hpp — a real, throw-away Cyrus IMAP 3.6 (Debian's packages) as an old server
// for tests.
//
// Debian's cyrus-common and cyrus-imapd are unpacked by ./setup.sh deps under
// /opt/mailferry-test/cyrus-imapd (cyrus-imapd conflicts with dovecot-imapd). Each instance
// gets its own temp dir, imapd.conf, cyrus.conf, sasldb, spool and a free loopback port;
// its master starts as root and drops to `mfvmail` (cyrus_user); its syslog lines land in
// dir()/syslog.log. Plain IMAP only; LOGIN/AUTHENTICATE PLAIN allowed without TLS.
// Users are local names without '@' (no virtual domains); a user's INBOX is created at
// their first login (autocreate_quota: 0). Must never: leave a master running after the
// object dies, or touch the system's Cyrus (/etc/imapd.conf, /var/lib/cyrus).
#pragma once

#include "support/dovecot_server.hpp" // TestUser

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mft {

struct CyrusOptions {
    std::string label = "cyrus"; // temp dir prefix
    std::vector<TestUser> users; // names without '@'; any password bytes but NUL and LF
    // Debian's imapd.conf: '.' between levels and every folder under INBOX. Cyrus' own
    // defaults since 3.0 are '/' (so '.' may appear in names) and folders beside INBOX.
    bool unix_hierarchy_sep = false;
    bool alt_namespace = false;
    std::string extra_config; // appended verbatim to imapd.conf
};

class CyrusServer {
  public:
    // Starts Cyrus and waits until its port accepts. Throws std::runtime_error with the
    // tail of its syslog and master output when it cannot start.
    explicit CyrusServer(CyrusOptions opts);
    ~CyrusServer();
    CyrusServer(const CyrusServer&) = delete;
    CyrusServer& operator=(const CyrusServer&) = delete;

    void stop();  // SIGTERM to master, then its whole process group; port closed after
    void start(); // again on the same port and data

    [[nodiscard]] bool running() const;
    [[nodiscard]] std::uint16_t imap_port() const;
    [[nodiscard]] const std::string& dir() const;
    [[nodiscard]] const std::string& admin_user() const; // in imapd.conf's `admins`
    [[nodiscard]] const std::string& admin_password() const;
    [[nodiscard]] char separator() const; // '.' or '/'
    [[nodiscard]] std::string log_tail(std::size_t lines = 40) const;

    // Adds a user to the sasldb (saslpasswd2); usable at once.
    void add_user(const TestUser& user);

  private:
    struct State;
    std::unique_ptr<State> state_;
};

} // namespace mft
