// imap_client.hpp — one IMAP client connection: greeting, STARTTLS or implicit TLS,
// capabilities, LOGIN / AUTHENTICATE PLAIN (with an authorization id for a master user),
// ID, and tagged commands that may be pipelined.
//
// Commands are queued into an output buffer and sent when the caller reads (or flushes),
// so a caller can put many commands on the wire before waiting for the first answer. The
// client does not interpret mailbox state; the copier reads untagged data itself.
//
// Must never: send a password before TLS when TLS was asked for, log or keep a password
// beyond the login call (the output buffer is wiped after it), or continue after the
// parser reported a broken stream.
// Errors: network and protocol trouble → scope server, retry later; authentication
// refused → scope account, retry never; TLS verification failure → retry never.
#pragma once

#include "imap_io.hpp"
#include "imap_parser.hpp"
#include "mailferry/config.hpp"
#include "mailferry/secret.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>

namespace mf::imap {

struct ConnectOptions {
    std::string host;
    std::uint16_t port = 143;
    TlsMode tls = TlsMode::implicit;
    TlsOptions tls_opts;
    std::chrono::milliseconds timeout{60000};
    Limits limits;
};

class Capabilities {
  public:
    void set(const std::string& words);                 // space-separated, replaces
    [[nodiscard]] bool has(std::string_view cap) const; // case-insensitive
    [[nodiscard]] std::string text() const;

  private:
    std::set<std::string> caps_; // upper-cased
};

class Client {
  public:
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Connects, reads the greeting, does TLS as configured, learns capabilities.
    static Result<std::unique_ptr<Client>> connect(const ConnectOptions& opts);

    // Logs in as `user`. With `auth_user` non-empty, authenticates as that (master) user
    // with `password` and asks to act as `user` (AUTHENTICATE PLAIN authzid).
    Result<void> login(const std::string& user, const Secret& password,
                       const std::string& auth_user = {});

    // Sends ID (if offered) and ENABLE for the extensions we use. Best effort.
    Result<void> identify();

    [[nodiscard]] const Capabilities& caps() const { return caps_; }
    [[nodiscard]] const std::string& peer() const { return transport_->peer(); }

    // ---- pipelining primitives ----
    // Queues "TAG command\r\n" and returns TAG. Nothing is sent until flush() or read().
    std::string command(std::string_view cmd);
    // Queues "TAG command" without the CRLF: the caller continues the line (MULTIAPPEND).
    std::string begin_command(std::string_view cmd);
    // Queues raw bytes (literal data, the CRLF that ends an APPEND).
    void queue(std::string_view bytes) { out_.append(bytes); }
    [[nodiscard]] std::size_t queued() const { return out_.size(); }
    Result<void> flush();
    // Flushes, then reads one response (BYE is remembered for later error messages).
    Result<Response> read(const LiteralHook& hook = {});

    // Sends one command and reads until its completion; untagged responses go to
    // `on_untagged` (may be empty). Returns the tagged response, OK or not.
    Result<Response> run(std::string_view cmd,
                         const std::function<Result<void>(Response&)>& on_untagged = {},
                         const LiteralHook& hook = {});
    // As run(), but a NO or BAD becomes an Error naming `what` and the server's reply.
    Result<Response> run_ok(std::string_view cmd, const std::string& what,
                            const std::function<Result<void>(Response&)>& on_untagged = {},
                            const LiteralHook& hook = {});

    // Sends a string argument: quoted when possible, else a literal (non-synchronizing
    // with LITERAL+, or LITERAL- when short enough; otherwise waits for the continuation).
    // Used for mailbox names that are not 7-bit after encoding and for LOGIN.
    Result<void> command_with_args(const std::string& tag, std::string_view verb,
                                   const std::vector<std::string_view>& args,
                                   std::string_view tail = {});

    // True when a literal of `size` may be sent without waiting for "+".
    [[nodiscard]] bool can_literal_plus(std::uint64_t size) const;

    Result<void> logout(); // best effort, then close
    void close();

    // Keeps `guard` alive as long as the connection (a per-server connection slot).
    void set_guard(std::shared_ptr<void> guard) { slot_guard_ = std::move(guard); }

    Input& input() { return *input_; }
    Parser& parser() { return *parser_; }

    // The hierarchy delimiter (from LIST "" ""), '\0' for a flat namespace.
    Result<char> delimiter();

  private:
    Client() = default;
    Result<void> read_greeting();
    Result<void> starttls(const ConnectOptions& opts);
    Result<void> refresh_caps();
    Error protocol_error(const std::string& what, const Response& r) const;

    std::shared_ptr<void> slot_guard_; // declared first: released after the socket closes
    std::unique_ptr<Transport> transport_;
    std::unique_ptr<Input> input_;
    std::unique_ptr<Parser> parser_;
    Capabilities caps_;
    std::string out_;
    bool out_sensitive_ = false;
    std::uint64_t next_tag_ = 1;
    std::string bye_;
    std::optional<char> delimiter_;
};

// Standard base64 (SASL PLAIN for IMAP and POP3).
std::string base64(std::string_view in);

} // namespace mf::imap
