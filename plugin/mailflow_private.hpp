// mailflow_private.hpp — what the mail-flow files share: the recipient as a login would
// resolve it, and the byte pump both Postfix services run on.
//
// Must never: block without a bound (reads are chunks of at most kChunk bytes; the
// callers cap what they buffer), or log more of a client's bytes than a sanitized prefix.
#pragma once

#include "mailferry/mailflow.hpp"

#include <functional>
#include <optional>
#include <string>

namespace mf::mailflow::detail {

// A recipient address: whether a provider serves its domain, its identity, and the
// account the store has for it (under the name a login would use).
struct Recipient {
    bool ours = false;
    Identity id;
    std::optional<Account> account;
};

// Errors only from the store (Retry::later when busy); an address no provider serves, or
// one the identity map refuses, is `ours = false`.
Result<Recipient> resolve_recipient(const IdentityMap& map, Store& store, std::string_view address);

// What a frame handler says about the buffer it was given.
struct Step {
    std::size_t consumed = 0; // bytes used; 0: need more input
    std::string reply;        // written before reading on
    bool close = false;       // after the reply, stop (the framing is lost)
};
using Framer = std::function<Step(std::string_view buffered, bool eof)>;

// Reads in_fd in chunks, hands the buffer to `frame` until it needs more, writes replies
// to out_fd. Returns 0 at EOF, 1 when `frame` closed, 75 on a read or write error.
int pump(int in_fd, int out_fd, std::size_t max_buffer, const Framer& frame);

// Up to 80 bytes of client input, printable, for a log line.
std::string loggable(std::string_view bytes);

} // namespace mf::mailflow::detail
