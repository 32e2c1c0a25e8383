// imap_io.hpp — bytes in and out of an IMAP connection: TCP or TLS with deadlines, and a
// bounded buffered reader.
//
// Transport is a blocking-looking socket over Boost.Asio: every read and write is an
// asynchronous operation run on the object's own io_context for at most the configured
// timeout, so a peer that stops talking costs a deadline, never a hang. TLS (implicit or
// after STARTTLS) verifies the certificate chain against a CA file (or the system store)
// and the host name or IP address we dialled, unless verification was turned off.
//
// Input sits on any ByteSource (a Transport, or a string in the unit tests) and hands out
// CRLF-terminated lines no longer than a caller-given limit and exact byte counts in
// chunks, never reading more than its fixed buffer ahead.
//
// Must never: block without a deadline, accept a certificate that fails verification when
// verification is on, or grow a buffer beyond the limit it was given.
// Errors: mf::Error with scope server and retry later for network trouble and timeouts;
// retry never for a certificate that does not verify (a configuration problem).
#pragma once

#include "mailferry/error.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mf::imap {

// Anything bytes can be read from. read_some returns at least one byte, or an Error (EOF
// is an error: an IMAP server never closes mid-response politely).
class ByteSource {
  public:
    virtual ~ByteSource() = default;
    virtual Result<std::size_t> read_some(char* buf, std::size_t len) = 0;
};

struct TlsOptions {
    std::string ca_file;     // PEM bundle; empty: the system's default store
    bool verify = true;      // certificate chain and host name / IP address
    std::string server_name; // what to verify against (and SNI); default: the host dialled
};

class Transport final : public ByteSource {
  public:
    ~Transport() override;
    Transport(const Transport&) = delete;
    Transport& operator=(const Transport&) = delete;

    // Resolves host, connects within `timeout`. `what` prefixes errors ("connect to …").
    static Result<std::unique_ptr<Transport>> connect(const std::string& host, std::uint16_t port,
                                                      std::chrono::milliseconds timeout);

    // Performs the TLS handshake on the connected socket (implicit TLS, or after STARTTLS).
    Result<void> start_tls(const TlsOptions& opts);

    Result<std::size_t> read_some(char* buf, std::size_t len) override;
    Result<void> write(std::string_view data);

    void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }
    [[nodiscard]] bool tls() const;
    [[nodiscard]] const std::string& peer() const { return peer_; } // "host:port" for errors
    void close();

  private:
    Transport();
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::chrono::milliseconds timeout_{60000};
    std::string peer_;
};

// Buffered reading with hard limits. Views returned stay valid until the next call.
class Input {
  public:
    explicit Input(ByteSource& src, std::size_t buffer_size = std::size_t{64} * 1024);

    // One line without its CRLF (a bare LF is accepted as the end too). A line longer than
    // max_len, or holding a NUL byte, is an error: we stop trusting the stream.
    Result<std::string_view> line(std::size_t max_len);

    // Up to `max` bytes of whatever is buffered or arrives next (at least one byte).
    Result<std::string_view> some(std::size_t max);

    // Bytes already buffered (for tests and for draining).
    [[nodiscard]] std::size_t buffered() const { return end_ - begin_; }

  private:
    Result<void> fill(); // reads more after end_, compacting or growing up to the limit

    ByteSource& src_;
    std::vector<char> buf_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
    std::size_t base_size_;
};

// A ByteSource over a fixed string, chunked on purpose (tests, replayed transcripts).
class StringSource final : public ByteSource {
  public:
    explicit StringSource(std::string data, std::size_t chunk = 7)
        : data_(std::move(data)), chunk_(chunk) {}
    Result<std::size_t> read_some(char* buf, std::size_t len) override;

  private:
    std::string data_;
    std::size_t pos_ = 0;
    std::size_t chunk_;
};

} // namespace mf::imap
