// postfix_server.hpp — a real, throw-away Postfix (Debian's package) for tests.
//
// Each instance has its own config_directory, queue_directory and data_directory in a
// temp dir, listens with smtpd on a free 127.0.0.1 port, logs to a file of its own
// (maillog_file), and is stopped by the master's PID (queue_directory/pid/master.pid).
// main.cf and master.cf are written by the test: a base that delivers nowhere by itself,
// plus what the caller adds (transport maps, policy services, `spawn` services). The
// system instance (/etc/postfix, /var/spool/postfix) is never read, written or started.
// Needs root: `postfix start` and postsuper refuse anybody else here.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mft {

struct PostfixOptions {
    std::string label = "postfix";
    std::string main_cf_extra;   // appended to main.cf (later settings win)
    std::string master_cf_extra; // appended to master.cf (extra services)
};

// One message of `postqueue -j`.
struct QueuedMessage {
    std::string queue_id;
    std::string queue_name; // "active", "deferred", "hold", "incoming", "maildrop"
    std::vector<std::string> recipients;
    std::vector<std::string> delay_reasons; // one per recipient, may be empty
};

class PostfixServer {
  public:
    // Writes the config, starts Postfix and waits until smtpd accepts. Throws
    // std::runtime_error with the tail of the mail log when it cannot start.
    explicit PostfixServer(PostfixOptions opts);
    ~PostfixServer();
    PostfixServer(const PostfixServer&) = delete;
    PostfixServer& operator=(const PostfixServer&) = delete;

    void stop(); // SIGTERM to the master by PID, then wait for it and its children
    void start();
    [[nodiscard]] bool running() const;

    [[nodiscard]] std::uint16_t smtp_port() const;
    [[nodiscard]] const std::string& dir() const;        // instance root (0755)
    [[nodiscard]] const std::string& config_dir() const; // main.cf, master.cf
    [[nodiscard]] const std::string& queue_dir() const;
    [[nodiscard]] std::string log_tail(std::size_t lines = 60) const;
    [[nodiscard]] std::string log() const; // the whole mail log

    // `postqueue -c DIR -j`, parsed. Throws when postqueue fails.
    [[nodiscard]] std::vector<QueuedMessage> queue() const;
    // Polls queue() until `pred` holds or `limit` passes; returns the last listing.
    template <typename Pred>
    std::vector<QueuedMessage> wait_queue(Pred pred, std::chrono::milliseconds limit) const {
        auto end = std::chrono::steady_clock::now() + limit;
        for (;;) {
            auto q = queue();
            if (pred(q) || std::chrono::steady_clock::now() > end) {
                return q;
            }
            pause_briefly();
        }
    }

  private:
    static void pause_briefly();
    struct State;
    State* state_; // owned; raw only to keep this header light (as DovecotServer)
};

// The outcome of one SMTP transaction: the first reply that was not 2xx/3xx (its stage
// and text), or the final 250 after the data.
struct SmtpOutcome {
    bool accepted = false;
    std::string stage; // "connect", "greeting", "EHLO", "MAIL", "RCPT", "DATA", "end"
    int code = 0;
    std::string reply; // the last reply's text, all lines
};

// Sends one message over SMTP to 127.0.0.1:port: EHLO, MAIL FROM, a RCPT TO per
// recipient (any refused recipient ends the transaction there), DATA, QUIT. `body` is the
// message without the final dot; lines are sent with CRLF and dot-stuffed.
// `before_data`, if set, runs after the last RCPT was accepted and before DATA (a test
// kills or stops something mid-transaction there).
SmtpOutcome send_mail(std::uint16_t port, const std::string& from,
                      const std::vector<std::string>& recipients, const std::string& body,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30),
                      const std::function<void()>& before_data = {});

} // namespace mft
