// copy_local.cpp — copy_account() for a Source other than IMAP (Endpoint::local: a
// Maildir or mbox; or Endpoint::pop3):
// folders, subscriptions and messages read through the Source interface, appended to the
// IMAP target one message at a time with the same state file and intents as IMAP→IMAP.
//
// Per folder: a message whose source UID is mapped (state done/appended) is not sent
// again, but changed flags are carried with UID STORE; new messages get committed
// intents before their APPEND, which is one MULTIAPPEND per group of Options::group
// messages (at most 16 MB) when the target offers MULTIAPPEND and LITERAL+. Open intents of a
// killed run, or a changed source UIDVALIDITY, are settled by content: the target's messages are
// digested and a source message whose bytes are already there is mapped, not appended again.
//
// Must never: append without a committed intent, or send bytes that are not exactly the
// source file's (a short or grown file closes the target connection mid-literal).
#include "copy_folder.hpp"
#include "copy_source.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <set>

namespace mf::copy {

using namespace detail;

namespace {

std::string imap_date(std::int64_t t) {
    static const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    ::gmtime_r(&tt, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%02d-%s-%04d %02d:%02d:%02d +0000", tm.tm_mday,
                  months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

class LocalFolder {
  public:
    LocalFolder(CopyContext& ctx, source::Source& src, const source::Folder& f,
                const FolderPlan& plan, FolderRow& row, std::int64_t account)
        : ctx_(ctx), src_(src), f_(f), plan_(plan), row_(row), account_(account) {}

    Result<void> run() {
        auto contents = src_.messages(f_);
        if (!contents) {
            return contents.error();
        }
        if (auto r = assign_stable_uids(ctx_.state, account_, plan_, *contents); !r) {
            return r;
        }
        for (const auto& p : contents->problems) {
            ctx_.summary.skipped.push_back(Skipped{plan_.name, 0, 0, p});
        }
        auto st = select_box(*ctx_.dst, plan_.dst_wire, false, false);
        if (!st) {
            return st.error();
        }
        dst_ = *st;
        auto rows = ctx_.state.messages(row_.id);
        if (!rows) {
            return rows.error();
        }
        rows_ = std::move(*rows);
        bool settle = row_.src_uidvalidity != contents->uidvalidity ||
                      row_.dst_uidvalidity != dst_.uidvalidity;
        for (const auto& [uid, r] : rows_) {
            settle = settle || r.state == 0;
        }
        if (settle) {
            if (auto r = settle_by_content(*contents); !r) {
                return r;
            }
        }
        row_.src_uidvalidity = contents->uidvalidity;
        row_.dst_uidvalidity = dst_.uidvalidity;
        if (auto r = ctx_.state.update_folder(row_); !r) {
            return r;
        }
        std::vector<FlagCarry> flag_changes;
        for (const auto& m : contents->messages) {
            if (ctx_.canceled()) {
                return make_error("copy " + ctx_.from.label(), "canceled", Scope::account,
                                  Retry::later);
            }
            if (outside_dates(ctx_.opts.filters, m)) {
                ++ctx_.summary.messages_filtered;
                continue;
            }
            auto it = rows_.find(m.uid);
            if (it != rows_.end() && it->second.state != 0) {
                if (it->second.flags != m.flags && it->second.dst_uid != 0) {
                    flag_changes.push_back({m.uid, it->second.dst_uid, it->second.flags, m.flags});
                }
                continue;
            }
            if (!groupable(m)) {
                if (auto r = flush_group(); !r) {
                    return r;
                }
                if (auto r = append_or_skip(m); !r) {
                    return r;
                }
                continue;
            }
            group_.push_back(&m);
            group_bytes_ += m.size;
            if (group_.size() >= ctx_.opts.group || group_bytes_ >= kGroupBytes) {
                if (auto r = flush_group(); !r) {
                    return r;
                }
            }
        }
        if (auto r = flush_group(); !r) {
            return r;
        }
        if (auto r = carry_flags(flag_changes); !r) {
            return r;
        }
        return finish_folder(ctx_.state, row_, ctx_.opts, src_, f_, *contents, rows_, ctx_.summary);
    }

  private:
    static constexpr std::uint64_t kGroupBytes = 16u << 20;

    // The target's answer tagged `tag`; untagged ones on the way say nothing we need here.
    Result<imap::Response> tagged_reply(const std::string& tag) {
        for (;;) {
            auto r = ctx_.dst->read();
            if (!r) {
                return r.error();
            }
            if (r->type == imap::Response::Type::tagged && r->tag == tag) {
                return std::move(*r);
            }
        }
    }

    // The row committed before a message's APPEND: state 0, "may or may not be there".
    [[nodiscard]] MessageRow intent(const source::Message& m) const {
        MessageRow row;
        row.src_uid = m.uid;
        row.size = m.size;
        row.dst_floor = dst_.uidnext;
        row.state = 0;
        return row;
    }

    // MULTIAPPEND needs LITERAL+ (no round trip per message) and a non-empty literal.
    [[nodiscard]] bool groupable(const source::Message& m) const {
        return ctx_.opts.group > 1 && ctx_.dst->caps().has("MULTIAPPEND") && m.size > 0 &&
               m.size <= ctx_.opts.max_message_size && ctx_.dst->can_literal_plus(m.size);
    }

    // A message-scoped failure is listed and the copy goes on; anything else stops it.
    Result<void> append_or_skip(const source::Message& m) {
        if (auto r = append(m); !r) {
            if (r.error().scope != Scope::message) {
                return r;
            }
            ctx_.summary.skipped.push_back(Skipped{plan_.name, m.uid, m.size, r.error().message()});
        }
        return {};
    }

    // The gathered messages in one MULTIAPPEND: their intents in one state transaction
    // before it, their target UIDs in one after, one target transaction — instead of two
    // fsyncs here and one there per message. All or nothing on the target, so a group it
    // refuses, or a source file that fails mid-stream, is sent again message by message.
    Result<void> flush_group() {
        std::vector<const source::Message*> ms;
        ms.swap(group_);
        group_bytes_ = 0;
        if (ms.empty()) {
            return {};
        }
        if (ms.size() == 1) {
            return append_or_skip(*ms.front());
        }
        auto box = imap::quote(plan_.dst_wire);
        if (!box) {
            return make_error("append to \"" + plan_.dst_utf8 + "\"", "name cannot be quoted",
                              Scope::folder);
        }
        std::vector<MessageRow> intents;
        for (const auto* m : ms) {
            intents.push_back(intent(*m));
        }
        if (auto r = ctx_.state.put_messages(row_.id, intents); !r) {
            return r;
        }
        imap::Client& dst = *ctx_.dst;
        std::string tag = dst.begin_command("APPEND " + *box);
        std::vector<Digest> digests;
        for (const auto* m : ms) {
            std::string args = " (" + m->flags + ")";
            if (m->when) {
                args += " \"" + imap_date(*m->when) + "\"";
            }
            dst.queue(args + " {" + std::to_string(m->size) + "+}\r\n");
            Hasher h;
            auto rd = src_.read(f_, *m, [&](std::string_view chunk) -> Result<void> {
                h.update(chunk);
                dst.queue(chunk);
                return dst.queued() >= 256u * 1024 ? dst.flush() : Result<void>{};
            });
            if (!rd) {
                // An unfinished command: dropping the connection makes the target discard it.
                // Sent alone, the failing message is then skipped as append() skips it (a
                // POP3 source reconnects for the next one).
                ctx_.drop_dst();
                return one_by_one(ms, true);
            }
            digests.push_back(h.finish());
        }
        dst.queue("\r\n");
        if (auto f = dst.flush(); !f) {
            return f;
        }
        auto r = tagged_reply(tag);
        if (!r) {
            return r.error();
        }
        if (r->keyword != "OK") {
            return one_by_one(ms, false);
        }
        std::vector<std::uint32_t> uids;
        unsigned long long v = 0;
        char set[4096] = {0};
        if (r->code == "APPENDUID" &&
            std::sscanf(r->code_args.c_str(), "%llu %4095s", &v, set) == 2 &&
            v == dst_.uidvalidity) {
            uids = parse_uid_set(set, ms.size());
        }
        const bool known = uids.size() == ms.size();
        for (std::size_t i = 0; i < ms.size(); ++i) {
            MessageRow& row = intents[i];
            row.state = known ? 1 : 2;
            row.dst_uid = known ? uids[i] : 0;
            row.digest = digests[i];
            row.flags = ms[i]->flags;
        }
        if (auto r = ctx_.state.put_messages(row_.id, intents); !r) {
            return r;
        }
        for (const auto& row : intents) {
            rows_[row.src_uid] = row;
        }
        for (const auto* m : ms) {
            ++ctx_.summary.messages_copied;
            ctx_.summary.bytes_copied += m->size;
            ctx_.add_done(1, m->size, &plan_.name);
        }
        return {};
    }

    // Nothing of the group is on the target: forget its intents and send each alone, so
    // the one message that spoiled it is the only one skipped.
    Result<void> one_by_one(const std::vector<const source::Message*>& ms, bool reconnect) {
        for (const auto* m : ms) {
            if (auto d = ctx_.state.drop_message(row_.id, m->uid); !d) {
                return d;
            }
        }
        if (reconnect) {
            if (auto e = ctx_.ensure_dst(); !e) {
                return e;
            }
            if (auto s = select_box(*ctx_.dst, plan_.dst_wire, false, false); !s) {
                return s.error();
            }
        }
        for (const auto* m : ms) {
            if (auto r = append_or_skip(*m); !r) {
                return r;
            }
        }
        return {};
    }

    // Maps every source message whose bytes the target folder already holds.
    Result<void> settle_by_content(const source::FolderContents& c) {
        std::vector<std::uint32_t> dst_uids;
        if (dst_.messages > 0) {
            auto r = ctx_.dst->run_ok(
                "UID SEARCH ALL", "search target folder", [&](imap::Response& u) -> Result<void> {
                    if (u.keyword == "SEARCH") {
                        for (const auto& v : u.data) {
                            dst_uids.push_back(static_cast<std::uint32_t>(v.num));
                        }
                    }
                    return {};
                });
            if (!r) {
                return r.error();
            }
        }
        auto have = fetch_digests(*ctx_.dst, dst_uids, ctx_.opts.batch);
        if (!have) {
            return have.error();
        }
        std::map<std::pair<std::uint64_t, std::string>, std::vector<std::uint32_t>> by_digest;
        std::set<std::uint64_t> sizes; // only a source message of one of these sizes is read
        for (const auto& [uid, d] : *have) {
            by_digest[{d.size, hex(d.digest)}].push_back(uid);
            sizes.insert(d.size);
        }
        std::set<std::uint32_t> taken;
        for (const auto& [uid, r] : rows_) {
            if (r.state == 1 && r.dst_uid != 0) {
                taken.insert(r.dst_uid);
            }
        }
        std::map<std::uint32_t, MessageRow> kept;
        for (const auto& m : c.messages) {
            auto old = rows_.find(m.uid);
            bool same_box =
                row_.src_uidvalidity == c.uidvalidity && row_.dst_uidvalidity == dst_.uidvalidity;
            if (same_box && old != rows_.end() && old->second.state != 0) {
                kept[m.uid] = old->second;
                continue;
            }
            if (sizes.count(m.size) == 0) {
                continue;
            }
            auto d = digest_message(src_, f_, m);
            if (!d) {
                continue; // reported when the append is tried
            }
            auto it = by_digest.find({m.size, hex(d->digest)});
            if (it == by_digest.end()) {
                continue;
            }
            auto free = std::find_if(it->second.begin(), it->second.end(),
                                     [&](std::uint32_t u) { return taken.count(u) == 0; });
            if (free == it->second.end()) {
                continue;
            }
            MessageRow row;
            row.src_uid = m.uid;
            row.dst_uid = *free;
            row.size = m.size;
            row.state = 1;
            row.flags = kFlagsUnknown; // carry_flags sets the source's flags
            taken.insert(*free);
            kept[m.uid] = row;
            ++ctx_.summary.messages_recovered;
        }
        if (auto r = ctx_.state.replace_messages(row_.id, kept); !r) {
            return r;
        }
        rows_ = std::move(kept);
        return {};
    }

    // All of the folder's flag changes at once: pipelined, grouped UID STOREs.
    Result<void> carry_flags(const std::vector<FlagCarry>& changes) {
        if (changes.empty()) {
            return {};
        }
        auto applied = carry_flag_changes(*ctx_.dst, ctx_.state, row_.id, changes, plan_.name,
                                          ctx_.summary.notes);
        if (!applied) {
            return applied.error();
        }
        for (auto i : *applied) {
            rows_[changes[i].src_uid].flags = changes[i].now;
            ++ctx_.summary.messages_flag_updates;
        }
        return {};
    }

    Result<void> append(const source::Message& m) {
        if (m.size > ctx_.opts.max_message_size) {
            return make_error("message of " + std::to_string(m.size) + " bytes",
                              "larger than the limit", Scope::message);
        }
        auto box = imap::quote(plan_.dst_wire);
        if (!box) {
            return make_error("append to \"" + plan_.dst_utf8 + "\"", "name cannot be quoted",
                              Scope::folder);
        }
        MessageRow row = intent(m);
        if (auto r = ctx_.state.put_message(row_.id, row); !r) {
            return r;
        }
        imap::Client& dst = *ctx_.dst;
        const bool plus = dst.can_literal_plus(m.size);
        std::string args = " (" + m.flags + ")";
        if (m.when) {
            args += " \"" + imap_date(*m.when) + "\"";
        }
        args += " {" + std::to_string(m.size) + (plus ? "+}" : "}");
        std::string tag = dst.command("APPEND " + *box + args);
        if (!plus) {
            auto r = dst.read();
            if (!r) {
                return r.error();
            }
            if (r->type != imap::Response::Type::continuation) {
                return make_error("append source UID " + std::to_string(m.uid),
                                  "target refused: " + r->summary(), Scope::message);
            }
        }
        Hasher h;
        auto rd = src_.read(f_, m, [&](std::string_view chunk) -> Result<void> {
            h.update(chunk);
            dst.queue(chunk);
            if (dst.queued() >= ctx_.opts.chunk) {
                return dst.flush();
            }
            return {};
        });
        if (!rd) {
            // The literal cannot be completed with the right bytes: dropping the connection
            // makes the target discard the unfinished APPEND, so the intent can go too.
            ctx_.drop_dst();
            if (auto d = ctx_.state.drop_message(row_.id, m.uid); !d) {
                return d;
            }
            if (auto e = ctx_.ensure_dst(); !e) {
                return e;
            }
            if (auto s = select_box(*ctx_.dst, plan_.dst_wire, false, false); !s) {
                return s.error();
            }
            return make_error(rd.error().what, rd.error().detail, Scope::message);
        }
        dst.queue("\r\n");
        auto r = tagged_reply(tag);
        if (!r) {
            return r.error();
        }
        if (r->keyword != "OK") {
            (void)ctx_.state.drop_message(row_.id, m.uid);
            return make_error("append source UID " + std::to_string(m.uid),
                              "target refused APPEND: " + r->summary(), Scope::message);
        }
        unsigned long long v = 0;
        unsigned long long uid = 0;
        if (r->code == "APPENDUID" &&
            std::sscanf(r->code_args.c_str(), "%llu %llu", &v, &uid) == 2 &&
            v == dst_.uidvalidity) {
            row.dst_uid = static_cast<std::uint32_t>(uid);
            row.state = 1;
        } else {
            row.state = 2;
        }
        row.digest = h.finish();
        row.flags = m.flags;
        ++ctx_.summary.messages_copied;
        ctx_.summary.bytes_copied += m.size;
        ctx_.add_done(1, m.size, &plan_.name);
        if (auto p = ctx_.state.put_message(row_.id, row); !p) {
            return p;
        }
        rows_[m.uid] = row;
        return {};
    }

    CopyContext& ctx_;
    source::Source& src_;
    const source::Folder& f_;
    const FolderPlan& plan_;
    FolderRow& row_;
    BoxStatus dst_;
    std::map<std::uint32_t, MessageRow> rows_;
    std::int64_t account_;
    std::vector<const source::Message*> group_; // waiting for flush_group()
    std::uint64_t group_bytes_ = 0;
};

} // namespace

Result<Summary> copy_local(const Endpoint& from, const Endpoint& to, const Options& opts,
                           const ProgressFn& progress, const std::atomic<bool>* cancel) {
    Summary sum;
    auto opened = State::open_account(opts.state_path, from.label(), to.label());
    if (!opened) {
        return opened.error();
    }
    State& state = *opened->state;
    const AccountRow& acct = opened->account;
    auto src = open_source(from, opts, state, acct.id);
    if (!src) {
        return src.error();
    }
    auto folders = (*src)->folders();
    if (!folders) {
        return folders.error();
    }
    for (const auto& p : (*src)->tree_problems()) { // links not followed: reported, not lost
        sum.skipped.push_back(Skipped{p.folder, 0, 0, p.reason});
    }
    std::map<std::string, const source::Folder*> by_wire;
    Listing list = source_listing(*folders, by_wire);
    SharedProgress shared;
    shared.fn = &progress;
    CopyContext ctx(from, to, opts, state, sum, shared, cancel);
    if (auto r = ctx.ensure_dst(); !r) {
        return r.error();
    }
    auto dst_list = list_mailboxes(*ctx.dst);
    if (!dst_list) {
        return dst_list.error();
    }
    auto plans = plan_folders(list, &*dst_list, dst_list->delim, opts, sum.notes);
    sum.folders = plans.size();
    if (auto r = create_and_subscribe(ctx, plans, sum); !r) {
        return r.error();
    }
    for (const auto& p : plans) {
        if (!p.copy) {
            if (!p.skip_reason.empty()) {
                sum.notes.push_back(p.name + ": " + p.skip_reason);
            }
            continue;
        }
        auto row = ctx.state.folder(acct.id, p.src.wire, p.dst_wire);
        if (!row) {
            return row.error();
        }
        if (auto r = ctx.ensure_dst(); !r) {
            return r.error();
        }
        LocalFolder lf(ctx, **src, *by_wire.at(p.src.wire), p, *row, acct.id);
        if (auto r = lf.run(); !r) {
            if (folder_own_failure(r.error())) {
                sum.skipped.push_back(Skipped{p.name, 0, 0, r.error().message()});
                continue;
            }
            return r.error();
        }
        ++shared.p.folders_done;
    }
    (void)ctx.dst->logout();
    return sum;
}

} // namespace mf::copy
