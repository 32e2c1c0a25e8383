// copy_names.cpp — which folders exist, and what each is called on the target.
//
// Lists the source (and target) with LIST and the subscription list, then plans every
// folder: filters (skip patterns, subscribed-only), the rename map (a folder and its
// subtree), special-use mapping (\Sent goes to the target's \Sent folder), hierarchy
// delimiter translation, and name sanitizing for what Dovecot-like targets refuse
// (leading '.', top-level leading '~', '/', control characters, trailing '.', names over
// 250 encoded bytes). Must never give two source folders the same target name.
#include "copy_internal.hpp"
#include "mutf7.hpp"

#include <algorithm>
#include <cctype>
#include <fnmatch.h>
#include <map>
#include <set>

namespace mf::copy::detail {

namespace {

bool is_inbox(std::string_view s) {
    return s.size() == 5 && imap::upper(s) == "INBOX";
}

std::vector<std::string> split(const std::string& s, char delim) {
    std::vector<std::string> out;
    if (delim == '\0') {
        out.push_back(s);
        return out;
    }
    std::size_t start = 0;
    for (;;) {
        std::size_t pos = s.find(delim, start);
        out.push_back(s.substr(start, pos - start));
        if (pos == std::string::npos) {
            break;
        }
        start = pos + 1;
    }
    return out;
}

std::string join(const std::vector<std::string>& parts, char delim) {
    std::string out;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (i > 0) {
            out.push_back(delim);
        }
        out += parts[i];
    }
    return out;
}

const char* kSpecialUses[] = {"\\All",  "\\Archive", "\\Drafts", "\\Flagged",
                              "\\Junk", "\\Sent",    "\\Trash",  "\\Important"};

// Cuts a UTF-8 string to at most `max` bytes without splitting a character.
void cut_utf8(std::string& s, std::size_t max) {
    if (s.size() <= max) {
        return;
    }
    std::size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) {
        --n;
    }
    s.resize(n);
}

void sanitize(std::vector<std::string>& parts, char dst_delim) {
    for (std::size_t i = 0; i < parts.size(); ++i) {
        std::string& p = parts[i];
        if (i == 0 && is_inbox(p)) {
            p = "INBOX";
            continue;
        }
        for (char& c : p) {
            auto u = static_cast<unsigned char>(c);
            if (u < 0x20 || u == 0x7f || c == '/' || (dst_delim != '\0' && c == dst_delim)) {
                c = '_';
            }
        }
        if (p.empty()) {
            p = "_";
        }
        if (p[0] == '.' || (i == 0 && p[0] == '~')) {
            p[0] = '_';
        }
        if (p.back() == '.') {
            p.back() = '_';
        }
    }
}

} // namespace

Result<Listing> list_mailboxes(imap::Client& c) {
    const bool ext = c.caps().has("LIST-EXTENDED");
    const std::string list_cmd = ext && c.caps().has("SPECIAL-USE")
                                     ? "LIST \"\" \"*\" RETURN (SPECIAL-USE)"
                                     : "LIST \"\" \"*\"";
    std::string t1 = c.command(list_cmd);
    // LIST-EXTENDED's subscribed listing also names subscriptions to folders that are gone
    // (\NonExistent \Subscribed), which some servers (Cyrus) leave out of LSUB.
    std::string t2 = c.command(ext ? "LIST (SUBSCRIBED) \"\" \"*\"" : "LSUB \"\" \"*\"");
    std::map<std::string, Mailbox> boxes;
    Listing out;
    std::set<std::string> subscribed;
    int open = 2;
    Error failed;
    bool bad = false;
    while (open > 0) {
        auto r = c.read();
        if (!r) {
            return r.error();
        }
        if (r->type == imap::Response::Type::tagged) {
            if (r->tag != t1 && r->tag != t2) {
                return make_error("list folders at " + c.peer(), "unexpected tag", Scope::server,
                                  Retry::later);
            }
            if (r->keyword != "OK" && !bad) {
                bad = true;
                failed = make_error("list folders at " + c.peer(), "server replied " + r->summary(),
                                    Scope::account, Retry::later);
            }
            --open;
            continue;
        }
        if ((r->keyword != "LIST" && r->keyword != "LSUB") || r->data.size() < 3 ||
            r->data[0].kind != imap::Value::Kind::list || !r->data[2].is_astring()) {
            continue;
        }
        std::string wire = r->data[2].str;
        if (is_inbox(wire)) {
            wire = "INBOX";
        }
        if (r->data[1].kind == imap::Value::Kind::string && r->data[1].str.size() == 1) {
            out.delim = r->data[1].str[0];
        }
        if (r->keyword == "LSUB") {
            subscribed.insert(wire);
            continue;
        }
        bool sub = false;
        bool nonexistent = false;
        for (const auto& a : r->data[0].list) {
            sub = sub || a.is_atom("\\SUBSCRIBED");
            nonexistent = nonexistent || a.is_atom("\\NONEXISTENT");
        }
        if (sub) {
            subscribed.insert(wire);
            if (nonexistent) {
                // Only the subscription: the plain LIST names the folder if it is a
                // hierarchy node (\NonExistent \HasChildren there), else it is gone.
                continue;
            }
        }
        Mailbox& m = boxes[wire];
        m.wire = wire;
        for (const auto& a : r->data[0].list) {
            std::string u = imap::upper(a.str);
            if (u == "\\NOSELECT" || u == "\\NONEXISTENT") {
                m.noselect = true;
            }
            for (const char* su : kSpecialUses) {
                if (u == imap::upper(su)) {
                    m.special_use = su;
                }
            }
        }
    }
    if (bad) {
        return failed;
    }
    for (const auto& s : subscribed) {
        auto it = boxes.find(s);
        if (it == boxes.end()) {
            Mailbox m;
            m.wire = s;
            m.noselect = true;
            m.listed = false;
            it = boxes.emplace(s, m).first;
        }
        it->second.subscribed = true;
    }
    Hasher h;
    for (auto& [wire, m] : boxes) {
        auto dec = imap::mutf7_decode(wire);
        m.utf8 = dec ? *dec : wire; // not valid modified UTF-7: keep the bytes, sanitize later
        m.parts = split(m.utf8, out.delim);
        h.update(wire);
        h.update(std::string_view("\0", 1));
        h.update(m.noselect ? "N" : "S");
        h.update(m.subscribed ? "s" : "u");
        h.update(m.listed ? "l" : "x");
        h.update(m.special_use);
        h.update("\n");
        out.boxes.push_back(m);
    }
    h.update(std::string(1, out.delim));
    out.digest = hex(h.finish());
    return out;
}

std::vector<FolderPlan> plan_folders(const Listing& src, const Listing* dst, char dst_delim,
                                     const Options& opts, std::vector<std::string>& notes) {
    const char out_delim = dst_delim != '\0' ? dst_delim : '.';
    std::map<std::string, const Mailbox*> dst_by_wire;
    std::map<std::string, const Mailbox*> dst_by_use;
    if (dst != nullptr) {
        for (const auto& m : dst->boxes) {
            dst_by_wire[m.wire] = &m;
            if (!m.special_use.empty() && !m.noselect && dst_by_use.count(m.special_use) == 0) {
                dst_by_use[m.special_use] = &m;
            }
        }
    }
    std::set<std::string> used_uses;
    std::set<std::string> taken; // target wire names already planned
    std::vector<FolderPlan> plans;
    for (const auto& m : src.boxes) {
        FolderPlan p;
        p.src = m;
        p.name = join(m.parts, '/');
        if (m.noselect) {
            p.copy = false;
            p.skip_reason = "not selectable";
        }
        for (const auto& pat : opts.filters.skip) {
            if (p.copy && ::fnmatch(pat.c_str(), p.name.c_str(), 0) == 0) {
                p.copy = false;
                p.skip_reason = "skipped by pattern " + pat;
            }
        }
        if (p.copy && opts.filters.subscribed_only && !m.subscribed) {
            p.copy = false;
            p.skip_reason = "not subscribed";
        }

        std::vector<std::string> parts = m.parts;
        if (!parts.empty() && is_inbox(parts[0])) {
            parts[0] = "INBOX";
        }
        bool renamed = false;
        // Longest matching rename rule wins; it moves the whole subtree.
        std::size_t best = 0;
        const std::string* best_to = nullptr;
        for (const auto& [from, to] : opts.filters.rename) {
            auto fparts = split(from, '/');
            if (fparts.size() > parts.size() || fparts.size() <= best) {
                continue;
            }
            if (std::equal(fparts.begin(), fparts.end(), parts.begin())) {
                best = fparts.size();
                best_to = &to;
            }
        }
        if (best_to != nullptr) {
            std::vector<std::string> np = split(*best_to, '/');
            np.insert(np.end(), parts.begin() + static_cast<long>(best), parts.end());
            parts = std::move(np);
            renamed = true;
        }
        bool use_existing = false;
        if (!renamed && opts.map_special_use && !m.special_use.empty() &&
            used_uses.count(m.special_use) == 0) {
            auto it = dst_by_use.find(m.special_use);
            if (it != dst_by_use.end()) {
                used_uses.insert(m.special_use);
                p.dst_wire = it->second->wire;
                p.dst_utf8 = it->second->utf8;
                use_existing = true;
            }
        }
        if (!use_existing) {
            if (opts.sanitize_names) {
                sanitize(parts, dst_delim);
            }
            p.dst_utf8 = join(parts, out_delim);
            if (opts.sanitize_names) {
                // Dovecot refuses names of more than about 254 encoded bytes.
                for (int guard = 0; guard < 64; ++guard) {
                    auto enc = imap::mutf7_encode(p.dst_utf8);
                    if (!enc || enc->size() <= 250 || parts.empty()) {
                        break;
                    }
                    cut_utf8(parts.back(), parts.back().size() > 8 ? parts.back().size() - 8 : 1);
                    p.dst_utf8 = join(parts, out_delim);
                }
            }
            auto enc = imap::mutf7_encode(p.dst_utf8);
            if (!enc) {
                p.copy = false;
                p.skip_reason = "name is not valid UTF-8 and cannot be encoded";
                p.dst_wire.clear();
            } else {
                p.dst_wire = *enc;
            }
            // Two source folders must never land in one target folder.
            std::string base_utf8 = p.dst_utf8;
            for (int n = 2; !p.dst_wire.empty() && taken.count(p.dst_wire) != 0; ++n) {
                p.dst_utf8 = base_utf8 + "_" + std::to_string(n);
                auto e2 = imap::mutf7_encode(p.dst_utf8);
                p.dst_wire = e2 ? *e2 : std::string();
            }
        }
        if (!p.dst_wire.empty()) {
            taken.insert(p.dst_wire);
            auto it = dst_by_wire.find(p.dst_wire);
            if (it != dst_by_wire.end()) {
                p.dst_exists = !it->second->noselect;
                p.dst_known = true;
                p.dst_subscribed = it->second->subscribed;
            }
        }
        std::string src_as_dst = join(m.parts, out_delim);
        if (p.copy && p.dst_utf8 != src_as_dst &&
            !(is_inbox(src_as_dst) && p.dst_utf8 == "INBOX")) {
            notes.push_back("folder \"" + sanitize_reply(p.name, 120) + "\" is copied to \"" +
                            sanitize_reply(p.dst_utf8, 120) + "\"");
        }
        plans.push_back(std::move(p));
    }
    return plans;
}

} // namespace mf::copy::detail
