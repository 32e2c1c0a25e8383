// cgpauth_server.hpp — the CommuniGate Pro helper's loop: read lines, answer in any order.
//
// One reader (this thread) splits stdin into lines of at most 4096 bytes and answers the
// cheap requests (INTF, QUIT, malformed or unsupported lines) at once; VRFY and NEW go to
// a fixed pool of workers, so one slow old server never stalls the others. At most
// `max_pending` requests wait or run; beyond that the reader stops reading (CGP's pipe
// fills and it waits) instead of growing without bound.
//
// Exactly one answer per request line received: a line CGP re-sends with the same
// number and the same bytes while the first copy is still running is not run again —
// it joins the running one and gets its own copy of the answer. (The engine makes a
// re-sent request after a helper restart harmless: the account is found in the store.)
//
// Every line goes out with one write() under one mutex, so answers, log lines ("* …")
// and other threads' output never interleave. At EOF or QUIT the requests in flight
// finish and are answered before the loop returns (QUIT's own OK comes last).
//
// Must never: echo a request's arguments, write a line longer than 4096 bytes, run a
// request whose line was cut short (over-long, or stdin closed before its LF).
// Errors: a broken stdout (CGP gone) stops reading; serve() then returns 1.
#pragma once

#include "cgpauth_proto.hpp"

#include <functional>
#include <mutex>
#include <string>
#include <string_view>

namespace mf::cgp {

// Writes whole lines to CGP: one write() per line, serialized, and remembers a failure.
class LineWriter {
  public:
    explicit LineWriter(int fd) : fd_(fd) {}
    void write_line(std::string_view line); // `line` ends with LF
    void info(std::string_view text) { write_line(info_line(text)); }
    [[nodiscard]] bool broken() const;

  private:
    int fd_;
    mutable std::mutex mu_;
    bool broken_ = false; // guarded by mu_
};

struct Answer {
    std::string word; // "OK" or "ERROR"
    std::string text; // for ERROR: the reason CGP logs (and may show); no secrets
};

// Decides a VRFY or NEW request. Called on worker threads, concurrently; must not throw
// (an exception is answered "ERROR internal error").
using Handler = std::function<Answer(const Request&)>;

struct ServerOptions {
    unsigned workers = 8;
    std::size_t max_pending = 256;
};

// Runs the protocol on in_fd until QUIT or EOF. Returns 0, or 1 when `out` broke.
int serve(int in_fd, LineWriter& out, const Handler& handler, const ServerOptions& opts);

} // namespace mf::cgp
