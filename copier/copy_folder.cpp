// copy_folder.cpp — bring one target folder up to date with one source folder.
//
// Order of work: examine the source, STATUS the target; decide whether the UID map still
// holds (UIDVALIDITY on both sides; an empty map against a non-empty target means the
// map was lost); read source metadata (all of it, or with CONDSTORE only what changed
// and what is new); resolve open intents and lost maps by content (size, then SHA-256);
// carry flag changes; then stream new messages: UID FETCH batches on the source (two in
// flight), each body literal piped chunk by chunk into an APPEND on the target (LITERAL+
// when offered; up to `group` messages per MULTIAPPEND command, one target transaction,
// a refused group retried message by message; up to `window` messages in flight),
// intents committed per batch before its FETCH is sent, results committed as APPENDUIDs
// arrive. After a killed run, intents are resolved only once the target has settled, and
// a late-saved twin of an APPEND we had to repeat is removed by sweep().
//
// Must never: append without a committed intent, finish an APPEND whose source literal
// broke off (the caller drops the target connection, which aborts it), or map a source
// message to a target message whose bytes differ.
#include "copy_folder.hpp"

#include "mailferry/log.hpp"

#include <algorithm>
#include <ctime>
#include <deque>
#include <thread>

namespace mf::copy::detail {

Result<void> CopyContext::ensure_src() {
    if (src) {
        return {};
    }
    auto c = open_session(from, opts, "source", slot_wait);
    if (!c) {
        return c.error();
    }
    src = std::move(*c);
    return {};
}

Result<void> CopyContext::ensure_dst() {
    if (dst) {
        return {};
    }
    auto c = open_session(to, opts, "target", slot_wait);
    if (!c) {
        return c.error();
    }
    dst = std::move(*c);
    dst_selected.clear();
    return {};
}

void FolderSync::skip(std::uint32_t uid, std::uint64_t size, const std::string& reason) {
    failures_ = true;
    auto key = std::make_pair(row_.id, uid);
    if (ctx_.poisoned.count(key) != 0) {
        return;
    }
    ctx_.poisoned[key] = reason;
    ctx_.summary.skipped.push_back(Skipped{plan_.name, uid, size, reason});
    log::warning("copy: " + sanitize_reply(plan_.name, 100) + " UID " + std::to_string(uid) +
                 " skipped: " + reason);
}

Result<void> FolderSync::select_dst() {
    if (ctx_.dst_selected == plan_.dst_wire) {
        return {};
    }
    auto st = select_box(*ctx_.dst, plan_.dst_wire, false, false);
    if (!st) {
        return st.error();
    }
    ctx_.dst_selected = plan_.dst_wire;
    if (st->uidvalidity != dst_status_.uidvalidity) {
        return make_error("select target folder \"" + sanitize_reply(plan_.dst_utf8) + "\"",
                          "UIDVALIDITY changed while we worked on it", Scope::folder, Retry::later);
    }
    return {};
}

Result<void> FolderSync::run() {
    if (auto r = ctx_.ensure_src(); !r) {
        return r;
    }
    if (auto r = ctx_.ensure_dst(); !r) {
        return r;
    }
    imap::Client& src = *ctx_.src;
    imap::Client& dst = *ctx_.dst;
    const bool condstore = src.caps().has("CONDSTORE");

    auto st = select_box(src, plan_.src.wire, true, condstore);
    if (!st) {
        return st.error();
    }
    src_status_ = *st;

    // Target status. STATUS on the selected mailbox is allowed; nothing else needed.
    auto q = imap::quote(plan_.dst_wire);
    if (!q) {
        return make_error("status target folder", "name cannot be quoted", Scope::folder,
                          Retry::never);
    }
    bool got_status = false;
    auto sr = dst.run_ok("STATUS " + *q + " (UIDVALIDITY UIDNEXT MESSAGES)",
                         "STATUS \"" + sanitize_reply(plan_.dst_utf8) + "\" on the target",
                         [&](imap::Response& u) -> Result<void> {
                             if (u.keyword != "STATUS" || u.data.size() < 2 ||
                                 u.data[1].kind != imap::Value::Kind::list) {
                                 return {};
                             }
                             const auto& l = u.data[1].list;
                             for (std::size_t i = 0; i + 1 < l.size(); i += 2) {
                                 auto n = static_cast<std::uint32_t>(l[i + 1].num);
                                 if (l[i].is_atom("UIDVALIDITY")) {
                                     dst_status_.uidvalidity = n;
                                     got_status = true;
                                 } else if (l[i].is_atom("UIDNEXT")) {
                                     dst_status_.uidnext = n;
                                 } else if (l[i].is_atom("MESSAGES")) {
                                     dst_status_.messages = n;
                                 }
                             }
                             return {};
                         });
    if (!sr) {
        Error e = sr.error();
        e.scope = Scope::folder;
        return e;
    }
    if (!got_status || dst_status_.uidnext == 0) {
        return make_error("STATUS target folder \"" + sanitize_reply(plan_.dst_utf8) + "\"",
                          "no UIDVALIDITY/UIDNEXT in the reply", Scope::folder, Retry::later);
    }

    auto rows = ctx_.state.messages(row_.id);
    if (!rows) {
        return rows.error();
    }
    rows_ = std::move(*rows);

    bool remap = false;
    if (row_.src_uidvalidity != 0 && row_.src_uidvalidity != src_status_.uidvalidity) {
        remap = true;
        ctx_.summary.notes.push_back("folder \"" + sanitize_reply(plan_.name) +
                                     "\": source UIDVALIDITY changed, matched again by content");
    }
    if (row_.dst_uidvalidity != 0 && row_.dst_uidvalidity != dst_status_.uidvalidity) {
        remap = true;
        ctx_.summary.notes.push_back("folder \"" + sanitize_reply(plan_.name) +
                                     "\": target UIDVALIDITY changed, matched again by content");
    }
    if (rows_.empty() && dst_status_.messages > 0) {
        remap = true; // nothing remembered but the target has mail: never copy blindly
    }
    if (auto r = load_source(remap); !r) {
        return r;
    }

    if (remap) {
        rows_.clear();
        if (auto r = ctx_.state.drop_messages(row_.id); !r) {
            return r;
        }
        std::vector<std::uint32_t> all;
        for (const auto& [uid, m] : meta_) {
            all.push_back(uid);
        }
        if (auto r = reconcile(all, 1, true); !r) {
            return r;
        }
    } else {
        std::vector<std::uint32_t> open;
        std::uint32_t floor = UINT32_MAX;
        for (const auto& [uid, m] : rows_) {
            if (m.state != 1) {
                open.push_back(uid);
                floor = std::min(floor, std::max<std::uint32_t>(m.dst_floor, 1));
            }
        }
        if (!open.empty()) {
            if (auto r = settle_target(); !r) {
                return r;
            }
            if (auto r = reconcile(open, floor, false); !r) {
                return r;
            }
        }
    }

    if (auto r = carry_flags(); !r) {
        return r;
    }

    std::vector<const MsgMeta*> todo;
    const auto& f = ctx_.opts.filters;
    for (const auto& [uid, m] : meta_) {
        if (!m.have_size || rows_.count(uid) != 0) {
            continue;
        }
        if (!full_meta_ && uid < row_.src_uidnext) {
            continue; // "N:*" also returns the last message when nothing is new
        }
        if ((f.after || f.before) && m.when) {
            if ((f.after && *m.when < *f.after) || (f.before && *m.when >= *f.before)) {
                ++ctx_.summary.messages_filtered;
                continue;
            }
        }
        auto pk = std::make_pair(row_.id, uid);
        if (ctx_.poisoned.count(pk) != 0) {
            failures_ = true;
            continue;
        }
        if (m.size > ctx_.opts.max_message_size) {
            skip(uid, m.size,
                 "larger than the limit of " + std::to_string(ctx_.opts.max_message_size) +
                     " bytes");
            continue;
        }
        todo.push_back(&m);
    }
    std::vector<std::uint32_t> sent;
    for (const MsgMeta* m : todo) {
        sent.push_back(m->uid);
    }
    if (auto r = copy_new(std::move(todo)); !r) {
        return r;
    }

    // Without UIDPLUS the target UIDs of what we appended are found by content.
    std::vector<std::uint32_t> unknown;
    std::uint32_t floor = UINT32_MAX;
    for (const auto& [uid, m] : rows_) {
        if (m.state == 2) {
            unknown.push_back(uid);
            floor = std::min(floor, std::max<std::uint32_t>(m.dst_floor, 1));
        }
    }
    if (!unknown.empty()) {
        if (auto r = reconcile(unknown, floor, false); !r) {
            return r;
        }
    }

    if (auto r = check_stored(sent); !r) {
        return r;
    }

    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    if (dropped_floor_ != 0) {
        row_.sweep_floor =
            row_.sweep_floor == 0 ? dropped_floor_ : std::min(row_.sweep_floor, dropped_floor_);
        row_.sweep_until = now + 30;
    }
    if (row_.sweep_floor != 0) {
        if (auto r = sweep(); !r) {
            return r;
        }
        if (now >= row_.sweep_until) {
            row_.sweep_floor = 0;
        }
    }

    row_.src_uidvalidity = src_status_.uidvalidity;
    row_.src_uidnext = src_status_.uidnext;
    row_.src_modseq = failures_ ? 0 : src_status_.modseq;
    row_.dst_uidvalidity = dst_status_.uidvalidity;
    row_.complete = !failures_;
    for (const auto& [uid, m] : rows_) {
        if (m.state != 1) {
            row_.complete = false;
            row_.src_modseq = 0;
        }
    }
    return ctx_.state.update_folder(row_);
}

Result<void> FolderSync::check_stored(const std::vector<std::uint32_t>& sent) {
    std::map<std::uint32_t, std::uint32_t> src_of; // target UID → source UID
    for (auto uid : sent) {
        auto it = rows_.find(uid);
        if (it != rows_.end() && it->second.state == 1 && it->second.dst_uid != 0) {
            src_of[it->second.dst_uid] = uid;
        }
    }
    std::vector<std::uint32_t> dst_uids;
    for (const auto& [d, s] : src_of) {
        dst_uids.push_back(d);
    }
    if (dst_uids.empty()) {
        return {};
    }
    if (auto r = select_dst(); !r) { // APPEND needed no selected folder; FETCH does
        return r;
    }
    const std::string where = "folder \"" + sanitize_reply(plan_.name) + "\" UID ";
    for (std::size_t i = 0; i < dst_uids.size(); i += 500) {
        std::vector<std::uint32_t> part(dst_uids.begin() + static_cast<long>(i),
                                        dst_uids.begin() +
                                            static_cast<long>(std::min(i + 500, dst_uids.size())));
        auto r = ctx_.dst->run_ok(
            "UID FETCH " + uid_set(part) + " (UID RFC822.SIZE INTERNALDATE)",
            "ask the target what it stored in \"" + sanitize_reply(plan_.dst_utf8) + "\"",
            [&](imap::Response& u) -> Result<void> {
                if (u.keyword != "FETCH") {
                    return {};
                }
                MsgMeta got = parse_fetch_items(u.data[0].list);
                auto s = src_of.find(got.uid);
                if (s == src_of.end()) {
                    return {};
                }
                const MsgMeta& want = meta_.at(s->second);
                const std::uint64_t size = rows_.at(s->second).size;
                const std::string uid = std::to_string(s->second);
                if (got.have_size && got.size != size) {
                    ctx_.summary.notes.push_back(where + uid + ": the target stored " +
                                                 std::to_string(got.size) + " of its " +
                                                 std::to_string(size) + " bytes");
                }
                if (want.when && got.when && *want.when != *got.when) {
                    // Dovecot, for one, stores the time of the APPEND for a date more than
                    // two hours in the future.
                    const bool future = *want.when > std::time(nullptr);
                    ctx_.summary.notes.push_back(
                        where + uid + ": the target set the date " + got.date + " instead of " +
                        want.date +
                        (future ? " (a date in the future, which it did not take)" : ""));
                }
                return {};
            });
        if (!r) {
            return r.error();
        }
    }
    return {};
}

Result<void> FolderSync::load_source(bool& remap) {
    imap::Client& src = *ctx_.src;
    bool has_open = std::any_of(rows_.begin(), rows_.end(),
                                [](const auto& kv) { return kv.second.state != 1; });
    full_meta_ = remap || has_open || src_status_.modseq == 0 || row_.src_modseq == 0 ||
                 !row_.complete || row_.src_uidnext == 0;
    if (src_status_.messages == 0) {
        full_meta_ = true;
        return {};
    }
    std::vector<std::string> tags;
    if (full_meta_) {
        tags.push_back(src.command("UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE)"));
    } else {
        if (src_status_.modseq != row_.src_modseq) {
            tags.push_back(src.command("UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE " +
                                       std::to_string(row_.src_modseq) + ")"));
        }
        if (src_status_.uidnext != row_.src_uidnext) {
            tags.push_back(src.command("UID FETCH " + std::to_string(row_.src_uidnext) +
                                       ":* (UID FLAGS INTERNALDATE RFC822.SIZE)"));
        }
    }
    std::size_t open = tags.size();
    while (open > 0) {
        auto r = src.read();
        if (!r) {
            return r.error();
        }
        if (r->type == imap::Response::Type::tagged) {
            if (std::find(tags.begin(), tags.end(), r->tag) == tags.end()) {
                return make_error("fetch message list", "unexpected tag", Scope::server,
                                  Retry::later);
            }
            if (r->keyword != "OK") {
                return make_error("fetch the message list of \"" + sanitize_reply(plan_.name) +
                                      "\" at " + src.peer(),
                                  "server replied " + r->summary(), Scope::folder, Retry::later);
            }
            --open;
            continue;
        }
        if (r->keyword != "FETCH") {
            continue;
        }
        MsgMeta m = parse_fetch_items(r->data[0].list);
        if (m.uid == 0) {
            continue;
        }
        auto& slot = meta_[m.uid];
        if (m.have_size) {
            slot = std::move(m);
        } else if (!slot.have_size) {
            slot.uid = m.uid;
            slot.flags = std::move(m.flags);
        } else {
            slot.flags = std::move(m.flags);
        }
    }
    return {};
}

// A killed run's last APPENDs may still sit in the target's input buffer and be saved
// after we reconnect. Resolving intents before they land would copy them twice, so wait
// until the target folder's UIDNEXT holds still (0.3 s, at most 15 s). A save that
// lands later still is caught by sweep() at the end of the folder.
Result<void> FolderSync::settle_target() {
    imap::Client& dst = *ctx_.dst;
    const std::string cmd = "STATUS " + *imap::quote(plan_.dst_wire) + " (UIDNEXT)";
    std::uint32_t last = 0;
    int stable = 0;
    for (int i = 0; i < 150 && stable < 3; ++i) {
        std::uint32_t now = 0;
        auto r = dst.run_ok(cmd, "STATUS on the target", [&now](imap::Response& u) -> Result<void> {
            if (u.keyword == "STATUS" && u.data.size() >= 2 &&
                u.data[1].kind == imap::Value::Kind::list) {
                const auto& l = u.data[1].list;
                for (std::size_t k = 0; k + 1 < l.size(); k += 2) {
                    if (l[k].is_atom("UIDNEXT")) {
                        now = static_cast<std::uint32_t>(l[k + 1].num);
                    }
                }
            }
            return {};
        });
        if (!r) {
            return r.error();
        }
        if (now == last) {
            ++stable;
        } else {
            stable = 0;
            last = now;
        }
        if (stable < 3) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
    if (last > dst_status_.uidnext) {
        dst_status_.uidnext = last;
    }
    return {};
}

Result<void> FolderSync::reconcile(std::vector<std::uint32_t> src_uids, std::uint32_t dst_floor,
                                   bool whole_target) {
    imap::Client& dst = *ctx_.dst;
    if (auto r = select_dst(); !r) {
        return r;
    }
    // Target candidates: UIDs at or above the floor that no source message claims yet.
    std::set<std::uint32_t> mapped;
    for (const auto& [uid, m] : rows_) {
        if (m.state == 1 && m.dst_uid != 0) {
            mapped.insert(m.dst_uid);
        }
    }
    std::map<std::uint32_t, MsgMeta> cands;
    auto r = dst.run("UID FETCH " + (whole_target ? std::string("1") : std::to_string(dst_floor)) +
                         ":* (UID RFC822.SIZE FLAGS)",
                     [&](imap::Response& u) -> Result<void> {
                         if (u.keyword == "FETCH") {
                             MsgMeta m = parse_fetch_items(u.data[0].list);
                             if (m.uid >= dst_floor && m.have_size && mapped.count(m.uid) == 0) {
                                 cands[m.uid] = std::move(m);
                             }
                         }
                         return {};
                     });
    if (!r) {
        return r.error();
    }
    if (r->keyword != "OK" && r->code != "NONEXISTENT") {
        // An empty mailbox may answer "1:*" with NO/BAD on some servers.
        if (dst_status_.messages != 0) {
            return make_error("list target messages", "server replied " + r->summary(),
                              Scope::folder, Retry::later);
        }
    }
    std::multimap<std::uint64_t, std::uint32_t> by_size;
    for (const auto& [uid, m] : cands) {
        by_size.emplace(m.size, uid);
    }
    std::sort(src_uids.begin(), src_uids.end());
    std::vector<std::uint32_t> need_src;
    std::set<std::uint32_t> need_dst;
    for (auto uid : src_uids) {
        auto mit = meta_.find(uid);
        auto rit = rows_.find(uid);
        std::uint64_t size = mit != meta_.end() && mit->second.have_size
                                 ? mit->second.size
                                 : (rit != rows_.end() ? rit->second.size : 0);
        auto range = by_size.equal_range(size);
        if (range.first == range.second) {
            continue;
        }
        if (rit == rows_.end() || !rit->second.digest) {
            if (mit != meta_.end()) {
                need_src.push_back(uid);
            }
        }
        for (auto it = range.first; it != range.second; ++it) {
            need_dst.insert(it->second);
        }
    }
    std::map<std::uint32_t, BodyDigest> src_d;
    std::map<std::uint32_t, BodyDigest> dst_d;
    if (!need_src.empty()) {
        auto d = fetch_digests(*ctx_.src, need_src, ctx_.opts.chunk);
        if (!d) {
            return d.error();
        }
        src_d = std::move(*d);
    }
    if (!need_dst.empty()) {
        auto d = fetch_digests(dst, std::vector<std::uint32_t>(need_dst.begin(), need_dst.end()),
                               ctx_.opts.chunk);
        if (!d) {
            return d.error();
        }
        dst_d = std::move(*d);
    }
    std::set<std::uint32_t> claimed;
    if (auto b = ctx_.state.begin(); !b) {
        return b;
    }
    for (auto uid : src_uids) {
        auto rit = rows_.find(uid);
        std::optional<BodyDigest> mine;
        if (rit != rows_.end() && rit->second.digest) {
            mine = BodyDigest{rit->second.size, *rit->second.digest};
        } else if (auto sit = src_d.find(uid); sit != src_d.end()) {
            mine = sit->second;
        }
        std::uint32_t match = 0;
        if (mine) {
            auto range = by_size.equal_range(mine->size);
            for (auto it = range.first; it != range.second && match == 0; ++it) {
                auto dit = dst_d.find(it->second);
                if (claimed.count(it->second) == 0 && dit != dst_d.end() &&
                    dit->second.digest == mine->digest) {
                    match = it->second;
                }
            }
        }
        if (match != 0) {
            claimed.insert(match);
            MessageRow row;
            row.src_uid = uid;
            row.dst_uid = match;
            row.size = mine->size;
            row.digest = mine->digest;
            row.flags = cands[match].flags;
            row.state = 1;
            if (auto p = ctx_.state.put_message(row_.id, row); !p) {
                ctx_.state.rollback();
                return p;
            }
            rows_[uid] = row;
            ++ctx_.summary.messages_recovered;
        } else if (rit != rows_.end()) {
            // The APPEND never happened (or the target refused it): copy it afresh. If it
            // did happen and is only late, sweep() removes the twin.
            if (rit->second.state == 0 && rit->second.dst_floor != 0) {
                dropped_floor_ = dropped_floor_ == 0
                                     ? rit->second.dst_floor
                                     : std::min(dropped_floor_, rit->second.dst_floor);
            }
            if (auto p = ctx_.state.drop_message(row_.id, uid); !p) {
                ctx_.state.rollback();
                return p;
            }
            rows_.erase(rit);
        }
    }
    return ctx_.state.commit();
}

// Removes target messages at or above sweep_floor that no source message maps to and that
// are byte-identical to one we did map there: the late-saved twin of an APPEND a killed
// run sent, whose intent we could not confirm and appended again.
Result<void> FolderSync::sweep() {
    if (auto r = select_dst(); !r) {
        return r;
    }
    imap::Client& dst = *ctx_.dst;
    const std::uint32_t floor = row_.sweep_floor;
    std::map<std::uint32_t, const MessageRow*> mapped;
    std::set<std::uint64_t> sizes;
    for (const auto& [uid, m] : rows_) {
        if (m.state == 1 && m.dst_uid != 0) {
            mapped[m.dst_uid] = &m;
            if (m.dst_uid >= floor && m.digest) {
                sizes.insert(m.size);
            }
        }
    }
    std::vector<std::uint32_t> cands;
    auto r = dst.run("UID FETCH " + std::to_string(floor) + ":* (UID RFC822.SIZE)",
                     [&](imap::Response& u) -> Result<void> {
                         if (u.keyword == "FETCH") {
                             MsgMeta m = parse_fetch_items(u.data[0].list);
                             if (m.uid >= floor && mapped.count(m.uid) == 0 &&
                                 sizes.count(m.size) != 0) {
                                 cands.push_back(m.uid);
                             }
                         }
                         return {};
                     });
    if (!r) {
        return r.error();
    }
    if (cands.empty()) {
        return {};
    }
    auto d = fetch_digests(dst, cands, ctx_.opts.chunk);
    if (!d) {
        return d.error();
    }
    std::vector<std::uint32_t> twins;
    for (const auto& [uid, bd] : *d) {
        for (const auto& [duid, row] : mapped) {
            if (duid >= floor && row->digest && row->size == bd.size && *row->digest == bd.digest) {
                twins.push_back(uid);
                break;
            }
        }
    }
    if (twins.empty()) {
        return {};
    }
    std::sort(twins.begin(), twins.end());
    if (!dst.caps().has("UIDPLUS")) {
        ctx_.summary.notes.push_back("folder \"" + sanitize_reply(plan_.name) +
                                     "\": " + std::to_string(twins.size()) +
                                     " message(s) saved twice by an interrupted run; the target "
                                     "lacks UIDPLUS, so they were left: UIDs " +
                                     uid_set(twins));
        return {};
    }
    const std::string set = uid_set(twins);
    auto st = dst.run_ok("UID STORE " + set + " +FLAGS.SILENT (\\Deleted)", "mark twins deleted");
    if (!st) {
        return st.error();
    }
    auto ex = dst.run_ok("UID EXPUNGE " + set, "expunge twins");
    if (!ex) {
        return ex.error();
    }
    ctx_.summary.notes.push_back("folder \"" + sanitize_reply(plan_.name) + "\": removed " +
                                 std::to_string(twins.size()) +
                                 " twin(s) of messages an interrupted run had appended");
    return {};
}

Result<void> FolderSync::carry_flags() {
    std::vector<FlagCarry> changes;
    for (const auto& [uid, m] : meta_) {
        auto it = rows_.find(uid);
        if (it == rows_.end() || it->second.state != 1 || it->second.dst_uid == 0 ||
            it->second.flags == m.flags) {
            continue;
        }
        changes.push_back(FlagCarry{uid, it->second.dst_uid, it->second.flags, m.flags});
    }
    if (changes.empty()) {
        return {};
    }
    if (auto r = select_dst(); !r) {
        return r;
    }
    auto applied =
        carry_flag_changes(*ctx_.dst, ctx_.state, row_.id, changes, plan_.name, ctx_.summary.notes);
    if (!applied) {
        return applied.error();
    }
    for (auto i : *applied) {
        rows_[changes[i].src_uid].flags = changes[i].now;
        ++ctx_.summary.messages_flag_updates;
    }
    return {};
}

Result<void> FolderSync::copy_new(std::vector<const MsgMeta*> todo, bool single_only) {
    if (todo.empty()) {
        return {};
    }
    std::sort(todo.begin(), todo.end(),
              [](const MsgMeta* a, const MsgMeta* b) { return a->uid < b->uid; });
    imap::Client& src = *ctx_.src;
    imap::Client& dst = *ctx_.dst;
    std::uint64_t todo_bytes = 0;
    for (const auto* m : todo) {
        todo_bytes += m->size;
    }
    ctx_.add_total(todo.size(), todo_bytes);
    const std::string box = *imap::quote(plan_.dst_wire);
    const std::uint32_t floor = dst_status_.uidnext;
    // Messages whose APPEND result is outstanding; a MULTIAPPEND counts all it carries.
    const std::size_t window = std::max<std::size_t>(ctx_.opts.window, 1) - 1;

    struct Batch {
        std::string tag;
        std::vector<std::uint32_t> uids;
        std::set<std::uint32_t> got;
    };
    struct Item {
        std::uint32_t uid;
        std::uint64_t size;
        Digest digest;
        std::string flags;
    };
    // One APPEND command: one message, or several (MULTIAPPEND, one target transaction).
    struct Inflight {
        std::string tag;
        std::vector<Item> items;
        std::uint64_t bytes = 0;
    };
    std::deque<Batch> batches;
    std::deque<Inflight> inflight;
    std::size_t inflight_msgs = 0;
    std::optional<Inflight> group; // a MULTIAPPEND still being written
    // MULTIAPPEND is one transaction per command: far fewer index updates and fsyncs on
    // the target. It is all-or-nothing, so a refused group is retried message by message.
    const bool use_multi = !single_only && ctx_.opts.group > 1 && dst.caps().has("MULTIAPPEND");
    std::vector<const MsgMeta*> retry_single;
    std::vector<MessageRow> done;       // to commit
    std::vector<std::uint32_t> refused; // intents to drop
    std::size_t next = 0;
    std::uint32_t streaming = 0; // the message whose body is on the wire right now
    // The message whose body the FETCH response being read carried: a response that breaks
    // after the body is still that message's, not the next one's.
    std::uint32_t in_response = 0;
    Hasher hasher;

    auto commit = [&]() -> Result<void> {
        if (done.empty() && refused.empty()) {
            return {};
        }
        if (auto b = ctx_.state.begin(); !b) {
            return b;
        }
        for (const auto& row : done) {
            if (auto p = ctx_.state.put_message(row_.id, row); !p) {
                ctx_.state.rollback();
                return p;
            }
            rows_[row.src_uid] = row;
        }
        for (auto uid : refused) {
            if (auto p = ctx_.state.drop_message(row_.id, uid); !p) {
                ctx_.state.rollback();
                return p;
            }
            rows_.erase(uid);
        }
        done.clear();
        refused.clear();
        return ctx_.state.commit();
    };

    auto send_batch = [&]() -> Result<void> {
        if (next >= todo.size() || ctx_.canceled()) {
            return {};
        }
        Batch b;
        std::uint64_t bytes = 0;
        while (next < todo.size() && b.uids.size() < ctx_.opts.batch &&
               (b.uids.empty() || bytes < (32u << 20))) {
            b.uids.push_back(todo[next]->uid);
            bytes += todo[next]->size;
            ++next;
        }
        // The intent is durable before the FETCH (and so any APPEND) is sent.
        if (auto r = ctx_.state.begin(); !r) {
            return r;
        }
        for (auto uid : b.uids) {
            const MsgMeta& m = meta_.at(uid);
            MessageRow row;
            row.src_uid = uid;
            row.size = m.size;
            row.flags = m.flags;
            row.dst_floor = floor;
            row.state = 0;
            if (auto p = ctx_.state.put_message(row_.id, row); !p) {
                ctx_.state.rollback();
                return p;
            }
            rows_[uid] = row;
        }
        if (auto r = ctx_.state.commit(); !r) {
            return r;
        }
        b.tag = src.command("UID FETCH " + uid_set(b.uids) + " (UID BODY.PEEK[])");
        batches.push_back(std::move(b));
        return {};
    };

    auto on_target = [&](const imap::Response& r) -> Result<void> {
        if (r.type != imap::Response::Type::tagged) {
            return {};
        }
        auto it = std::find_if(inflight.begin(), inflight.end(),
                               [&](const Inflight& f) { return f.tag == r.tag; });
        if (it == inflight.end()) {
            return make_error("read APPEND replies from " + dst.peer(),
                              "unexpected tag " + sanitize_reply(r.tag), Scope::server,
                              Retry::later);
        }
        if (r.keyword == "OK") {
            // APPENDUID uidvalidity uid-set, in the order the messages were sent.
            std::vector<std::uint32_t> uids;
            if (r.code == "APPENDUID") {
                unsigned long long v = 0;
                char set[4096] = {0};
                if (std::sscanf(r.code_args.c_str(), "%llu %4095s", &v, set) == 2 &&
                    v == dst_status_.uidvalidity) {
                    uids = parse_uid_set(set, it->items.size());
                }
            }
            bool known = uids.size() == it->items.size();
            for (std::size_t i = 0; i < it->items.size(); ++i) {
                const Item& m = it->items[i];
                MessageRow row;
                row.src_uid = m.uid;
                row.size = m.size;
                row.digest = m.digest;
                row.flags = m.flags;
                row.dst_floor = floor;
                row.state = known ? 1 : 2;
                row.dst_uid = known ? uids[i] : 0;
                done.push_back(row);
                ++ctx_.summary.messages_copied;
                ctx_.summary.bytes_copied += m.size;
            }
        } else if (it->items.size() > 1) {
            // Nothing of the group was saved; which message spoiled it we learn one by one.
            for (const Item& m : it->items) {
                refused.push_back(m.uid);
                retry_single.push_back(&meta_.at(m.uid));
            }
        } else {
            const Item& m = it->items.front();
            refused.push_back(m.uid);
            skip(m.uid, m.size, "target refused APPEND: " + r.summary());
        }
        inflight_msgs -= it->items.size();
        inflight.erase(it);
        return {};
    };

    auto drain_target = [&](std::size_t keep) -> Result<void> {
        while (!inflight.empty() && inflight_msgs > keep) {
            auto r = dst.read();
            if (!r) {
                return r.error();
            }
            if (auto h = on_target(*r); !h) {
                return h;
            }
        }
        return {};
    };

    auto close_group = [&]() -> Result<void> {
        if (!group) {
            return {};
        }
        dst.queue("\r\n");
        inflight_msgs += group->items.size();
        inflight.push_back(std::move(*group));
        group.reset();
        return drain_target(window);
    };

    imap::LiteralHook hook = [&](const imap::LiteralContext& lc, std::uint64_t size,
                                 imap::LiteralReader& rd) -> Result<bool> {
        if (lc.depth != 1 || lc.siblings.empty() || !lc.siblings.back().is_atom("BODY[]") ||
            batches.empty()) {
            return false;
        }
        std::uint32_t uid = 0;
        for (std::size_t i = 0; i + 1 < lc.siblings.size(); i += 2) {
            if (lc.siblings[i].is_atom("UID") && lc.siblings[i + 1].num <= UINT32_MAX) {
                uid = static_cast<std::uint32_t>(lc.siblings[i + 1].num);
            }
        }
        // Dovecot may run pipelined FETCHes concurrently: the body can belong to any
        // batch still open, not only the oldest.
        auto bit = std::find_if(batches.begin(), batches.end(), [uid](const Batch& b) {
            return std::find(b.uids.begin(), b.uids.end(), uid) != b.uids.end();
        });
        if (uid == 0 || bit == batches.end() || bit->got.count(uid) != 0) {
            return true; // not ours, or sent twice: the parser skips the bytes
        }
        bit->got.insert(uid);
        streaming = uid;
        in_response = uid;
        const MsgMeta& m = meta_.at(uid);
        std::string args = " (" + m.flags + ") ";
        if (m.when) {
            args += *imap::quote(m.date) + " ";
        } else if (!m.date.empty()) {
            ctx_.summary.notes.push_back("folder \"" + sanitize_reply(plan_.name) + "\" UID " +
                                         std::to_string(uid) + ": unusable INTERNALDATE \"" +
                                         sanitize_reply(m.date, 40) + "\", target sets its own");
        }
        const bool plus = dst.can_literal_plus(size);
        const bool multi = use_multi && plus && size > 0;
        if (!multi) {
            if (auto c = close_group(); !c) {
                return c.error();
            }
        }
        args += "{" + std::to_string(size) + (plus ? "+}" : "}");
        std::string tag;
        if (multi) {
            if (!group) {
                group.emplace();
                group->tag = dst.begin_command("APPEND " + box);
            }
            tag = group->tag;
            dst.queue(args);
            dst.queue("\r\n");
        } else {
            tag = dst.command("APPEND " + box + args);
        }
        if (!plus) {
            // Synchronizing literal: the target answers "+" or refuses at once.
            for (;;) {
                auto r = dst.read();
                if (!r) {
                    return r.error();
                }
                if (r->type == imap::Response::Type::continuation) {
                    break;
                }
                if (r->type == imap::Response::Type::tagged && r->tag == tag) {
                    refused.push_back(uid);
                    skip(uid, size, "target refused APPEND: " + r->summary());
                    return true;
                }
                if (auto h = on_target(*r); !h) {
                    return h.error();
                }
            }
        }
        for (;;) {
            auto ch = rd.next(ctx_.opts.chunk);
            if (!ch) {
                return ch.error();
            }
            if (ch->empty()) {
                break;
            }
            hasher.update(*ch);
            dst.queue(*ch);
            if (dst.queued() >= 256 * 1024) {
                if (auto f = dst.flush(); !f) {
                    return f.error();
                }
            }
        }
        streaming = 0;
        Item item{uid, size, hasher.finish(), m.flags};
        ctx_.add_done(1, size);
        if (multi) {
            group->items.push_back(std::move(item));
            group->bytes += size;
            if (group->items.size() >= ctx_.opts.group || group->bytes >= (16u << 20)) {
                if (auto c = close_group(); !c) {
                    return c.error();
                }
            }
        } else {
            dst.queue("\r\n");
            Inflight one;
            one.tag = tag;
            one.bytes = size;
            one.items.push_back(std::move(item));
            inflight.push_back(std::move(one));
            ++inflight_msgs;
            if (auto d = drain_target(window); !d) {
                return d.error();
            }
        }
        return true;
    };

    if (auto r = send_batch(); !r) {
        return r;
    }
    if (auto r = send_batch(); !r) {
        return r;
    }
    while (!batches.empty()) {
        auto r = src.read(hook);
        if (!r) {
            // Which message broke the source? The one being streamed, else the first
            // not yet received.
            std::uint32_t suspect = streaming != 0 ? streaming : in_response;
            for (auto uid : batches.front().uids) {
                if (suspect == 0 && batches.front().got.count(uid) == 0) {
                    suspect = uid;
                }
            }
            if (suspect != 0) {
                // A protocol violation is the message's own; a broken connection gets a
                // second chance before we blame the message.
                int& n = ctx_.suspects[{row_.id, suspect}];
                bool protocol = !r.error().temporary(); // an answer we cannot use
                if (++n >= 2 || protocol) {
                    skip(suspect, meta_.at(suspect).size,
                         "source failed while sending it: " + r.error().message());
                }
            }
            return r.error();
        }
        in_response = 0;
        if (r->type != imap::Response::Type::tagged) {
            continue;
        }
        auto bit = std::find_if(batches.begin(), batches.end(),
                                [&](const Batch& x) { return x.tag == r->tag; });
        if (bit == batches.end()) {
            return make_error("read FETCH replies from " + src.peer(),
                              "unexpected tag " + sanitize_reply(r->tag), Scope::server,
                              Retry::later);
        }
        Batch& b = *bit;
        for (auto uid : b.uids) {
            if (b.got.count(uid) == 0) {
                refused.push_back(uid);
                skip(uid, meta_.at(uid).size,
                     r->keyword == "OK" ? "source returned no body (expunged meanwhile?)"
                                        : "source refused FETCH: " + r->summary());
            }
        }
        batches.erase(bit);
        if (auto c = close_group(); !c) {
            return c;
        }
        if (auto s = send_batch(); !s) {
            return s;
        }
        if (auto c = commit(); !c) {
            return c;
        }
    }
    if (auto c = close_group(); !c) {
        return c;
    }
    if (auto d = drain_target(0); !d) {
        return d;
    }
    if (auto c = commit(); !c) {
        return c;
    }
    if (!retry_single.empty() && !ctx_.canceled()) {
        if (auto r = copy_new(std::move(retry_single), true); !r) {
            return r;
        }
    }
    if (ctx_.canceled()) {
        return make_error("copy " + sanitize_reply(plan_.name), "canceled", Scope::account,
                          Retry::later);
    }
    return {};
}

} // namespace mf::copy::detail
