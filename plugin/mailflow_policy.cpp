// mailflow_policy.cpp — `mailferry policy`: Postfix's policy delegation protocol
// (SMTPD_POLICY_README): "name=value" lines, an empty line ends a request, the answer
// is "action=…" and an empty line. One process per smtpd connection, many requests.
//
// Never: REJECT unless the old server itself refused the address with a 5xx; lose a HOLD
// (it is written to the store before HOLD is answered; a failed write is DEFER_IF_PERMIT).
#include "mailflow_private.hpp"

#include "mailferry/log.hpp"
#include "mailferry/probe_rcpt.hpp"

namespace mf::mailflow {
namespace {

constexpr const char* kDefer = "DEFER_IF_PERMIT 4.3.0 mailferry: temporary failure, try again";

std::string attr(const std::map<std::string, std::string>& a, const std::string& name) {
    auto it = a.find(name);
    return it == a.end() ? std::string() : it->second;
}

PolicyAnswer defer(std::string why) {
    return {kDefer, std::move(why)};
}

// The old server's refusal as Postfix's answer: its own code and text when it is a
// clean 5xx line, else a plain REJECT quoting it.
std::string reject_action(const std::string& line) {
    bool coded = line.size() > 4 && line[0] == '5' &&
                 std::isdigit(static_cast<unsigned char>(line[1])) &&
                 std::isdigit(static_cast<unsigned char>(line[2])) && line[3] == ' ';
    return coded ? line : "REJECT " + line;
}

PolicyAnswer unmigrated(const Config& cfg, Store& store, const detail::Recipient& r) {
    if (cfg.mailflow.unmigrated == Unmigrated::relay) {
        return {"DUNNO", "not migrated: relayed to " + r.id.provider->name};
    }
    const ProviderConfig& p = *r.id.provider;
    rcpt::ProbeTarget t;
    t.lmtp = p.mail_protocol == MailProtocol::lmtp;
    t.host = p.mail_host;
    t.port = p.mail_port;
    t.helo = cfg.mailflow.probe_helo;
    t.timeout = cfg.mailflow.probe_timeout;
    rcpt::ProbeOutcome out = rcpt::probe_recipient(t, r.id.old_address);
    switch (out.status) {
    case rcpt::ProbeStatus::exists:
        if (auto k = store.record_known_recipient(r.id.canonical, p.name, now_unix()); !k) {
            log::warning("policy: could not record " + r.id.canonical +
                         " as known: " + k.error().message());
        }
        return {"DUNNO", "not migrated, known at the old server: " + out.detail};
    case rcpt::ProbeStatus::unknown:
        return {reject_action(out.reply_line), "unknown at the old server: " + out.detail};
    case rcpt::ProbeStatus::unavailable:
        break;
    }
    return {"DEFER_IF_PERMIT 4.4.3 mailferry: the old mail server could not be asked, try again "
            "later",
            "old server unavailable: " + out.detail};
}

PolicyAnswer at_rcpt(const Config& cfg, Store& store, const IdentityMap& map,
                     const std::map<std::string, std::string>& a) {
    const std::string rcpt = attr(a, "recipient");
    if (rcpt.empty()) {
        return defer("RCPT request without a recipient attribute");
    }
    auto r = detail::resolve_recipient(map, store, rcpt);
    if (!r) {
        return defer("store: " + r.error().message());
    }
    if (!r->ours) {
        return {"DUNNO", "not a domain of ours"};
    }
    if (!r->account || !is_migrated(r->account->state)) {
        return unmigrated(cfg, store, *r);
    }
    if (r->account->state != AccountState::held) {
        return {"DUNNO", "migrated"};
    }
    const std::string& account = r->account->name;
    const std::string instance = attr(a, "instance");
    const std::string queue_id = attr(a, "queue_id");
    if (instance.empty() && queue_id.empty()) {
        return defer("HOLD needed for " + account + " but the request has no instance");
    }
    if (auto h = store.note_held_mail(account, instance, queue_id, now_unix()); !h) {
        return defer("HOLD needed for " + account + ", not recorded: " + h.error().message());
    }
    return {"HOLD mailferry: " + account + " is in its final copy round",
            "held (final round)" + (queue_id.empty() ? "" : ", queue id " + queue_id)};
}

} // namespace

PolicyRequest parse_policy_request(std::string_view buf) {
    PolicyRequest req;
    std::size_t pos = 0;
    for (;;) {
        auto lf = buf.find('\n', pos);
        if (lf == std::string_view::npos) {
            if (buf.size() - pos > kMaxPolicyLine) {
                req.status = ParseStatus::bad;
                req.error = "line longer than " + std::to_string(kMaxPolicyLine) + " bytes";
            }
            return req;
        }
        std::string_view line = buf.substr(pos, lf - pos);
        pos = lf + 1;
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        if (line.size() > kMaxPolicyLine) {
            req.status = ParseStatus::bad;
            req.error = "line longer than " + std::to_string(kMaxPolicyLine) + " bytes";
            return req;
        }
        if (line.empty()) {
            req.status = req.attrs.empty() ? ParseStatus::bad : ParseStatus::complete;
            req.error = req.attrs.empty() ? "empty request" : "";
            req.consumed = pos;
            return req;
        }
        auto eq = line.find('=');
        if (eq == std::string_view::npos || eq == 0 || line.find('\0') != line.npos) {
            req.status = ParseStatus::bad;
            req.error = "not a name=value line: \"" + detail::loggable(line) + "\"";
            req.consumed = pos;
            return req;
        }
        if (req.attrs.size() >= kMaxPolicyAttributes) {
            req.status = ParseStatus::bad;
            req.error = "more than " + std::to_string(kMaxPolicyAttributes) + " attributes";
            req.consumed = pos;
            return req;
        }
        req.attrs[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
    }
}

std::string policy_reply(std::string_view action) {
    std::string a(action);
    for (char& c : a) {
        if (c == '\r' || c == '\n' || c == '\0') {
            c = ' ';
        }
    }
    return "action=" + a + "\n\n";
}

PolicyAnswer policy_answer(const Config& cfg, Store& store, const IdentityMap& map,
                           const std::map<std::string, std::string>& a) {
    if (attr(a, "request") != "smtpd_access_policy") {
        return defer("unknown request type \"" + detail::loggable(attr(a, "request")) + "\"");
    }
    const std::string state = attr(a, "protocol_state");
    if (state == "RCPT") {
        return at_rcpt(cfg, store, map, a);
    }
    if (state == "END-OF-MESSAGE" || state == "DATA") {
        const std::string instance = attr(a, "instance");
        const std::string queue_id = attr(a, "queue_id");
        if (instance.empty() || queue_id.empty()) {
            return {"DUNNO", "no instance or queue id"};
        }
        auto held = store.bind_held_mail(instance, queue_id);
        if (!held) {
            // The HOLD stands; release_held_mail() finds it in the hold queue instead.
            log::warning("policy: queue id " + queue_id +
                         " not recorded: " + held.error().message());
            return {"DUNNO", "queue id not recorded"};
        }
        return {"DUNNO", *held == 0 ? "" : "queue id " + queue_id + " held"};
    }
    if (state.empty()) {
        return defer("request without protocol_state");
    }
    return {"DUNNO", ""};
}

int serve_policy(const Config& cfg, Store& store, int in_fd, int out_fd) {
    auto map = IdentityMap::create(cfg);
    if (!map) {
        log::error("policy: " + map.error().message());
        return 75;
    }
    const std::size_t max_buffer = (kMaxPolicyLine + 2) * (kMaxPolicyAttributes + 1);
    return detail::pump(in_fd, out_fd, max_buffer, [&](std::string_view buf, bool eof) {
        detail::Step s;
        if (buf.empty()) {
            return s;
        }
        PolicyRequest req = parse_policy_request(buf);
        if (req.status == ParseStatus::complete) {
            PolicyAnswer ans = policy_answer(cfg, store, *map, req.attrs);
            const std::string who = attr(req.attrs, "recipient");
            std::string line = "policy(" + detail::loggable(who) + "): " + ans.action;
            if (!ans.why.empty()) {
                line += " (" + ans.why + ")";
            }
            (ans.action.rfind("DUNNO", 0) == 0 ? log::debug : log::info)(line);
            s.reply = policy_reply(ans.action);
            s.consumed = req.consumed;
            return s;
        }
        if (req.status == ParseStatus::bad) {
            // Where this request ends is unknown: answering and reading on could pair a
            // later answer with the wrong request. Postfix reconnects for the next one.
            log::warning("policy: malformed request, answered DEFER_IF_PERMIT and closing: " +
                         req.error);
            s.reply = policy_reply(kDefer);
            s.close = true;
        } else if (eof) {
            log::warning("policy: connection closed inside a request (no empty line): \"" +
                         detail::loggable(buf) + "\"");
            s.close = true;
        }
        return s;
    });
}

} // namespace mf::mailflow
