// copy_common.cpp — sessions, mailbox selection, message metadata, dates, flags and
// streamed digests shared by the copy and the verification.
//
// Must never: treat a malformed INTERNALDATE as a date, pass a flag we could not send
// back verbatim, or hold a message body in memory (digests are computed while the
// literal streams by). Errors name the server and the mailbox.
#include "copy_internal.hpp"

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <set>
#include <strings.h>

namespace mf::copy {

std::string Endpoint::label() const {
    if (!local.empty()) {
        return local;
    }
    return std::string(pop3 ? "pop3:" : "") + user + "@" + host + ":" + std::to_string(port);
}

} // namespace mf::copy

namespace mf::copy::detail {

namespace {

// Process-wide count of open connections per server, so parallel folders and parallel
// accounts together never exceed Options::max_connections_per_server.
struct SlotTable {
    std::mutex mu;
    std::condition_variable cv;
    std::map<std::string, std::size_t> used;
};

SlotTable& slots() {
    static SlotTable t;
    return t;
}

Result<std::shared_ptr<void>> acquire_slot(const std::string& key, std::size_t limit,
                                           std::chrono::milliseconds wait) {
    SlotTable& t = slots();
    std::unique_lock lock(t.mu);
    if (!t.cv.wait_for(lock, wait, [&] { return t.used[key] < std::max<std::size_t>(limit, 1); })) {
        return make_error("connect to " + key,
                          "all " + std::to_string(limit) + " connections to this server are busy",
                          Scope::server, Retry::later);
    }
    ++t.used[key];
    return std::shared_ptr<void>(nullptr, [key](void*) {
        SlotTable& tt = slots();
        {
            std::lock_guard l(tt.mu);
            --tt.used[key];
        }
        tt.cv.notify_all();
    });
}

} // namespace

Result<std::unique_ptr<imap::Client>>
open_session(const Endpoint& ep, const Options& opts, const std::string& role,
             std::optional<std::chrono::milliseconds> slot_wait) {
    auto slot = acquire_slot(ep.host + ":" + std::to_string(ep.port),
                             opts.max_connections_per_server, slot_wait.value_or(ep.timeout));
    if (!slot) {
        Error e = slot.error();
        e.what = role + ": " + e.what;
        return e;
    }
    imap::ConnectOptions co;
    co.host = ep.host;
    co.port = ep.port;
    co.tls = ep.tls;
    co.tls_opts.ca_file = ep.ca_file;
    co.tls_opts.verify = ep.verify_cert;
    co.timeout = ep.timeout;
    co.limits.max_stream_literal = opts.max_message_size;
    auto c = imap::Client::connect(co);
    if (!c) {
        Error e = c.error();
        e.what = role + ": " + e.what;
        return e;
    }
    (*c)->set_guard(std::move(*slot));
    if (auto r = (*c)->login(ep.user, ep.password, ep.auth_user); !r) {
        Error e = r.error();
        e.what = role + ": " + e.what;
        return e;
    }
    if (auto r = (*c)->identify(); !r) {
        Error e = r.error();
        e.what = role + ": " + e.what;
        return e;
    }
    return c;
}

std::optional<std::int64_t> parse_internaldate(std::string_view s) {
    // date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
    if (!s.empty() && s[0] == ' ') {
        s.remove_prefix(1);
    }
    auto digits = [](std::string_view v, std::size_t n, int& out) {
        if (v.size() < n) {
            return false;
        }
        out = 0;
        for (std::size_t i = 0; i < n; ++i) {
            if (v[i] < '0' || v[i] > '9') {
                return false;
            }
            out = out * 10 + (v[i] - '0');
        }
        return true;
    };
    int day = 0;
    std::size_t dlen = s.size() > 1 && s[1] == '-' ? 1 : 2;
    if (!digits(s, dlen, day) || s.size() < dlen + 1 || s[dlen] != '-') {
        return std::nullopt;
    }
    s.remove_prefix(dlen + 1);
    static constexpr std::array<const char*, 12> kMonths = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (s.size() < 4 || s[3] != '-') {
        return std::nullopt;
    }
    int month = -1;
    for (int i = 0; i < 12; ++i) {
        if (strncasecmp(s.data(), kMonths[static_cast<std::size_t>(i)], 3) == 0) {
            month = i + 1;
        }
    }
    if (month < 0) {
        return std::nullopt;
    }
    s.remove_prefix(4);
    int year = 0;
    int hh = 0;
    int mm = 0;
    int ss = 0;
    int zh = 0;
    int zm = 0;
    if (!digits(s, 4, year) || s.size() != 4 + 1 + 8 + 1 + 5 || s[4] != ' ' ||
        !digits(s.substr(5), 2, hh) || s[7] != ':' || !digits(s.substr(8), 2, mm) || s[10] != ':' ||
        !digits(s.substr(11), 2, ss) || s[13] != ' ' || (s[14] != '+' && s[14] != '-') ||
        !digits(s.substr(15), 2, zh) || !digits(s.substr(17), 2, zm)) {
        return std::nullopt;
    }
    if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || zm > 59) {
        return std::nullopt;
    }
    // days_from_civil (Howard Hinnant's algorithm).
    int y = year - (month <= 2 ? 1 : 0);
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int mp = (month + 9) % 12;
    int doy = (153 * mp + 2) / 5 + day - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    std::int64_t days = static_cast<std::int64_t>(era) * 146097 + doe - 719468;
    std::int64_t t = days * 86400 + hh * 3600 + mm * 60 + ss;
    std::int64_t zone = (zh * 3600 + zm * 60) * (s[14] == '-' ? -1 : 1);
    return t - zone;
}

std::string normalize_flags(const imap::Value& list) {
    std::set<std::string> flags;
    for (const auto& f : list.list) {
        // A keyword of digits ("2024") reads as a number; it is still a keyword.
        if ((f.kind == imap::Value::Kind::atom || f.kind == imap::Value::Kind::number) &&
            imap::is_storable_flag(f.str)) {
            flags.insert(f.str);
        }
    }
    std::string out;
    for (const auto& f : flags) {
        out += (out.empty() ? "" : " ") + f;
    }
    return out;
}

std::vector<std::string> split_flags(const std::string& flags) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < flags.size()) {
        std::size_t sp = flags.find(' ', start);
        if (sp == std::string::npos) {
            sp = flags.size();
        }
        if (sp > start) {
            out.push_back(flags.substr(start, sp - start));
        }
        start = sp + 1;
    }
    return out;
}

MsgMeta parse_fetch_items(const std::vector<imap::Value>& items) {
    MsgMeta m;
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
        const auto& k = items[i];
        const auto& v = items[i + 1];
        if (k.is_atom("UID") && v.kind == imap::Value::Kind::number && v.num <= UINT32_MAX) {
            m.uid = static_cast<std::uint32_t>(v.num);
        } else if (k.is_atom("FLAGS") && v.kind == imap::Value::Kind::list) {
            m.flags = normalize_flags(v);
        } else if (k.is_atom("INTERNALDATE") && v.kind == imap::Value::Kind::string) {
            m.date = v.str;
            m.when = parse_internaldate(v.str);
        } else if (k.is_atom("RFC822.SIZE") && v.kind == imap::Value::Kind::number) {
            m.size = v.num;
            m.have_size = true;
        }
    }
    return m;
}

std::string uid_set(const std::vector<std::uint32_t>& uids) {
    std::string out;
    std::size_t i = 0;
    while (i < uids.size()) {
        std::size_t j = i;
        while (j + 1 < uids.size() && uids[j + 1] == uids[j] + 1) {
            ++j;
        }
        if (!out.empty()) {
            out.push_back(',');
        }
        out += std::to_string(uids[i]);
        if (j > i) {
            out.push_back(':');
            out += std::to_string(uids[j]);
        }
        i = j + 1;
    }
    return out;
}

std::vector<std::uint32_t> parse_uid_set(std::string_view set, std::size_t max) {
    std::vector<std::uint32_t> out;
    auto num = [](std::string_view t, std::uint32_t& v) {
        if (t.empty() || t.size() > 10) {
            return false;
        }
        std::uint64_t x = 0;
        for (char c : t) {
            if (c < '0' || c > '9') {
                return false;
            }
            x = x * 10 + static_cast<std::uint64_t>(c - '0');
        }
        if (x == 0 || x > UINT32_MAX) {
            return false;
        }
        v = static_cast<std::uint32_t>(x);
        return true;
    };
    while (!set.empty()) {
        std::size_t comma = set.find(',');
        std::string_view part = set.substr(0, comma);
        set = comma == std::string_view::npos ? std::string_view() : set.substr(comma + 1);
        std::size_t colon = part.find(':');
        std::uint32_t a = 0;
        std::uint32_t b = 0;
        if (!num(part.substr(0, colon), a) ||
            (colon != std::string_view::npos && !num(part.substr(colon + 1), b))) {
            return {};
        }
        if (colon == std::string_view::npos) {
            b = a;
        }
        // A range may be written either way round; UIDs are assigned ascending.
        std::uint32_t lo = std::min(a, b);
        std::uint32_t hi = std::max(a, b);
        if (out.size() + (hi - lo) >= max + 1) {
            return {};
        }
        for (std::uint32_t u = lo; u <= hi; ++u) {
            out.push_back(u);
        }
    }
    return out;
}

Result<BoxStatus> select_box(imap::Client& c, const std::string& wire, bool read_only,
                             bool condstore) {
    auto q = imap::quote(wire);
    if (!q) {
        return make_error("select \"" + sanitize_reply(wire) + "\"", "name cannot be quoted",
                          Scope::folder, Retry::never);
    }
    std::string cmd =
        std::string(read_only ? "EXAMINE " : "SELECT ") + *q + (condstore ? " (CONDSTORE)" : "");
    BoxStatus st;
    auto r = c.run(cmd, [&st](imap::Response& u) -> Result<void> {
        if (u.keyword == "EXISTS" && u.number) {
            st.messages = *u.number;
        } else if (u.keyword == "OK" && !u.code.empty()) {
            auto num = [&u]() -> std::uint64_t {
                return std::strtoull(u.code_args.c_str(), nullptr, 10);
            };
            if (u.code == "UIDVALIDITY") {
                st.uidvalidity = static_cast<std::uint32_t>(num());
            } else if (u.code == "UIDNEXT") {
                st.uidnext = static_cast<std::uint32_t>(num());
            } else if (u.code == "HIGHESTMODSEQ") {
                st.modseq = num();
            }
        }
        return {};
    });
    if (!r) {
        return r.error();
    }
    if (r->keyword != "OK") {
        return make_error(std::string(read_only ? "examine" : "select") + " \"" +
                              sanitize_reply(wire) + "\" at " + c.peer(),
                          "server replied " + r->summary(), Scope::folder, Retry::never);
    }
    if (st.uidvalidity == 0) {
        return make_error("select \"" + sanitize_reply(wire) + "\" at " + c.peer(),
                          "the server sent no UIDVALIDITY", Scope::folder, Retry::never);
    }
    return st;
}

Result<std::map<std::uint32_t, BodyDigest>>
fetch_digests(imap::Client& c, const std::vector<std::uint32_t>& uids, std::size_t chunk) {
    std::map<std::uint32_t, BodyDigest> out;
    Hasher h;
    std::optional<BodyDigest> pending;
    imap::LiteralHook hook = [&](const imap::LiteralContext& ctx, std::uint64_t size,
                                 imap::LiteralReader& rd) -> Result<bool> {
        if (ctx.depth != 1 || ctx.siblings.empty() || !ctx.siblings.back().is_atom("BODY[]")) {
            return false;
        }
        for (;;) {
            auto ch = rd.next(chunk);
            if (!ch) {
                return ch.error();
            }
            if (ch->empty()) {
                break;
            }
            h.update(*ch);
        }
        pending = BodyDigest{size, h.finish()};
        return true;
    };
    for (std::size_t i = 0; i < uids.size(); i += 500) {
        std::vector<std::uint32_t> part(uids.begin() + static_cast<long>(i),
                                        uids.begin() +
                                            static_cast<long>(std::min(i + 500, uids.size())));
        auto r = c.run(
            "UID FETCH " + uid_set(part) + " (UID BODY.PEEK[])",
            [&](imap::Response& u) -> Result<void> {
                if (u.keyword == "FETCH" && pending) {
                    MsgMeta m = parse_fetch_items(u.data[0].list);
                    if (m.uid != 0) {
                        out[m.uid] = *pending;
                    }
                }
                pending.reset();
                return {};
            },
            hook);
        if (!r) {
            return r.error();
        }
        if (r->keyword != "OK") {
            return make_error("fetch messages at " + c.peer(), "server replied " + r->summary(),
                              Scope::folder, Retry::later);
        }
    }
    return out;
}

} // namespace mf::copy::detail
