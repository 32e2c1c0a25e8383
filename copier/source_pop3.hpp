// source_pop3.hpp — a POP3 mailbox (RFC 1939) as a copier Source: one folder, INBOX.
//
// TLS as the endpoint says (implicit, or STLS required, or none on loopback tests) with
// the same certificate checks as the IMAP client; AUTH PLAIN, falling back to USER/PASS
// when the server refuses AUTH. Messages are named by UIDL; `uid_of` turns a UIDL into
// a UID that stays the same across runs (the state file keeps them), so the copy is
// incremental. A UIDL that occurs twice keeps both messages (the second as UIDL + "#2").
// Bytes are RETR's, dot-unstuffed, lines ending CRLF; LIST's size is checked against
// them. POP3 has no flags, folders or dates: flags are empty, the target sets the date.
// A dropped connection is reopened (and the UIDL list read again) for the next message.
//
// Must never: send the password before TLS when TLS was asked for, or DELE anything but
// through remove() (Options::pop3_delete: messages the target holds, committed by QUIT).
// Errors: login refused → scope account; network trouble → scope server, retry later;
// a message whose size differs from LIST → scope message.
#pragma once

#include "mailferry/copier.hpp"
#include "source.hpp"

#include <functional>
#include <memory>

namespace mf::copy::source {

using UidOf = std::function<Result<std::uint32_t>(const std::string& uidl)>;

std::unique_ptr<Source> open_pop3(const Endpoint& ep, UidOf uid_of);

} // namespace mf::copy::source
