// mailflow_socketmap.cpp — `mailferry transport`: Postfix's transport_maps over the
// socketmap protocol (socketmap_table(5)): one netstring request "name key", one
// netstring reply "OK data", "NOTFOUND ", "TEMP reason" or "PERM reason".
//
// Never: answer OK with anything but a configured transport, or NOTFOUND for an address
// of a provider's domain (Postfix would deliver it by its default route, which during a
// migration is neither server on purpose).
#include "mailflow_private.hpp"

#include "mailferry/log.hpp"

#include <charconv>

namespace mf::mailflow {
namespace {

constexpr std::string_view kMapName = "transport";

} // namespace

Netstring parse_netstring(std::string_view buf, std::size_t max_payload) {
    Netstring n;
    std::size_t digits = 0;
    while (digits < buf.size() && buf[digits] >= '0' && buf[digits] <= '9') {
        ++digits;
    }
    const std::size_t max_digits = std::to_string(max_payload).size();
    if (digits > max_digits) {
        n.status = ParseStatus::bad;
        n.error = "netstring length longer than " + std::to_string(max_payload) + " bytes";
        return n;
    }
    if (digits == buf.size()) {
        return n; // incomplete: only digits so far
    }
    if (digits == 0 || buf[digits] != ':' || (digits > 1 && buf[0] == '0')) {
        n.status = ParseStatus::bad;
        n.error = "not a netstring (expected LENGTH:)";
        return n;
    }
    std::size_t len = 0;
    std::from_chars(buf.data(), buf.data() + digits, len);
    if (len > max_payload) {
        n.status = ParseStatus::bad;
        n.error = "netstring of " + std::to_string(len) + " bytes, the limit is " +
                  std::to_string(max_payload);
        return n;
    }
    const std::size_t end = digits + 1 + len; // index of the ','
    if (buf.size() <= end) {
        return n;
    }
    if (buf[end] != ',') {
        n.status = ParseStatus::bad;
        n.error = "netstring does not end with ','";
        return n;
    }
    n.status = ParseStatus::complete;
    n.payload = std::string(buf.substr(digits + 1, len));
    n.consumed = end + 1;
    return n;
}

std::string netstring(std::string_view payload) {
    return std::to_string(payload.size()) + ":" + std::string(payload) + ",";
}

std::string transport_reply(const Config& cfg, Store& store, const IdentityMap& map,
                            std::string_view request) {
    auto space = request.find(' ');
    if (space == std::string_view::npos) {
        return "PERM request is not \"name key\"";
    }
    std::string_view name = request.substr(0, space);
    std::string_view key = request.substr(space + 1);
    if (name != kMapName) {
        return "PERM unknown map \"" + detail::loggable(name) + "\" (this one is \"transport\")";
    }
    // Domain-only keys, "*" and the like: Postfix asks those after an address lookup we
    // did not answer; the addresses of our domains are all answered.
    if (key.find('@') == std::string_view::npos || key.find_first_of(" \t\r\n") != key.npos) {
        return "NOTFOUND ";
    }
    auto r = detail::resolve_recipient(map, store, key);
    if (!r) {
        log::warning("transport(" + detail::loggable(key) + "): " + r.error().message());
        return "TEMP " + sanitize_reply(r.error().message(), 200);
    }
    if (!r->ours) {
        return "NOTFOUND ";
    }
    if (r->account && is_migrated(r->account->state)) {
        return "OK " + cfg.mailflow.local_transport;
    }
    return "OK " + r->id.provider->relay_transport;
}

int serve_socketmap(const Config& cfg, Store& store, int in_fd, int out_fd) {
    auto map = IdentityMap::create(cfg);
    if (!map) {
        log::error("transport: " + map.error().message());
        return 75;
    }
    const std::size_t max_buffer = kMaxSocketmapRequest + 16;
    return detail::pump(in_fd, out_fd, max_buffer, [&](std::string_view buf, bool eof) {
        detail::Step s;
        if (buf.empty()) {
            return s;
        }
        Netstring n = parse_netstring(buf);
        if (n.status == ParseStatus::complete) {
            std::string reply = transport_reply(cfg, store, *map, n.payload);
            log::debug("transport(" + detail::loggable(n.payload) + "): " + reply);
            s.reply = netstring(reply);
            s.consumed = n.consumed;
            return s;
        }
        if (n.status == ParseStatus::bad) {
            log::warning("transport: malformed request, closing: " + n.error + ": \"" +
                         detail::loggable(buf) + "\"");
            s.reply = netstring("PERM malformed request: " + n.error);
            s.close = true;
        } else if (eof) {
            log::warning("transport: connection closed inside a request: \"" +
                         detail::loggable(buf) + "\"");
            s.close = true;
        }
        return s;
    });
}

} // namespace mf::mailflow
