// courier_server.hpp — a real, throw-away Courier-IMAP as an old server for tests, reached
// over TCP with a LOGIN through Courier's own login path.
//
// couriertcpd (from courier-base) accepts on a free loopback port and runs Courier's
// imaplogin per connection; imaplogin checks the LOGIN with authdaemond (courier-authlib,
// module authuserdb, a userdb of our own) and execs imapd as `mfvmail` in the user's
// Maildir. The programs are Debian's, unpacked under /opt/mailferry-test/courier-imap by
// ./setup.sh deps (courier-imap conflicts with dovecot-imapd). Plain IMAP only. Folders
// live under "INBOX." as Courier always keeps them. Must never: leave couriertcpd,
// authdaemond or an imapd running after the object dies, or use the system's
// /etc/courier or authdaemon socket (see server_process.hpp).
#pragma once

#include "support/dovecot_server.hpp" // TestUser

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mft {

struct CourierOptions {
    std::string label = "courier"; // temp dir prefix
    std::vector<TestUser> users;   // any name without TAB, '|', LF; password without LF
};

class CourierServer {
  public:
    // Starts authdaemond and couriertcpd and waits until the port accepts. Throws
    // std::runtime_error with the tail of their log when they cannot start.
    explicit CourierServer(CourierOptions opts);
    ~CourierServer();
    CourierServer(const CourierServer&) = delete;
    CourierServer& operator=(const CourierServer&) = delete;

    void stop();  // both process groups; the port is closed after
    void start(); // again on the same port and data

    [[nodiscard]] bool running() const;
    [[nodiscard]] std::uint16_t imap_port() const;
    [[nodiscard]] const std::string& dir() const;
    [[nodiscard]] std::string maildir(const std::string& user) const;
    [[nodiscard]] std::string log_tail(std::size_t lines = 40) const;

    // Adds a user to the userdb (rebuilt with makeuserdb); usable at once.
    void add_user(const TestUser& user);

  private:
    struct State;
    std::unique_ptr<State> state_;
};

} // namespace mft
