// copy_account.cpp — copy_account(): one account, every folder, in order.
//
// 1. Log in at the source, list folders and subscriptions, STATUS every folder in one
//    pipelined burst. If the folder list and options are what the last complete run saw
//    and every folder's UIDVALIDITY/UIDNEXT/HIGHESTMODSEQ is unchanged, stop: the target
//    is not even contacted.
// 2. Otherwise log in at the target, plan names, CREATE missing folders and SUBSCRIBE
//    (pipelined), then sync each changed folder; a folder whose connection breaks is run
//    again on fresh connections (bounded), the message that broke it skipped and reported.
//    Up to `connections` sessions per server copy folders in parallel, but only as many
//    as the messages left to copy can use (useful_connections): a small account's folders
//    share the one session already logged in.
//
// Must never: report an exact copy when anything was skipped; store the list digest (the
// no-op shortcut) after a run that left anything undone.
#include "copy_folder.hpp"

#include "mailferry/log.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

namespace mf::copy {

using namespace detail;

namespace {

std::string options_digest(const Options& o) {
    Hasher h;
    for (const auto& s : o.filters.skip) {
        h.update("skip:" + s + "\n");
    }
    for (const auto& [a, b] : o.filters.rename) {
        h.update("rename:" + a + "\t" + b + "\n");
    }
    h.update(o.filters.subscribed_only ? "sub\n" : "all\n");
    h.update("after:" + (o.filters.after ? std::to_string(*o.filters.after) : "-") + "\n");
    h.update("before:" + (o.filters.before ? std::to_string(*o.filters.before) : "-") + "\n");
    h.update(o.sanitize_names ? "sanitize\n" : "raw\n");
    h.update(o.map_special_use ? "special\n" : "plain\n");
    return hex(h.finish());
}

// STATUS for every folder we copy, pipelined; result by source wire name.
Result<std::map<std::string, BoxStatus>> status_all(imap::Client& c,
                                                    const std::vector<FolderPlan>& plans) {
    const bool condstore = c.caps().has("CONDSTORE");
    std::map<std::string, BoxStatus> out;
    std::size_t open = 0;
    for (const auto& p : plans) {
        if (!p.copy) {
            continue;
        }
        auto q = imap::quote(p.src.wire);
        if (!q) {
            continue;
        }
        c.command("STATUS " + *q +
                  (condstore ? " (UIDVALIDITY UIDNEXT MESSAGES HIGHESTMODSEQ)"
                             : " (UIDVALIDITY UIDNEXT MESSAGES)"));
        ++open;
    }
    while (open > 0) {
        auto r = c.read();
        if (!r) {
            return r.error();
        }
        if (r->type == imap::Response::Type::tagged) {
            --open; // a NO just leaves the folder without a status: it gets a full sync
            continue;
        }
        if (r->keyword != "STATUS" || r->data.size() < 2 || !r->data[0].is_astring() ||
            r->data[1].kind != imap::Value::Kind::list) {
            continue;
        }
        std::string wire = r->data[0].str;
        if (imap::upper(wire) == "INBOX") {
            wire = "INBOX";
        }
        BoxStatus st;
        const auto& l = r->data[1].list;
        for (std::size_t i = 0; i + 1 < l.size(); i += 2) {
            if (l[i].is_atom("UIDVALIDITY")) {
                st.uidvalidity = static_cast<std::uint32_t>(l[i + 1].num);
            } else if (l[i].is_atom("UIDNEXT")) {
                st.uidnext = static_cast<std::uint32_t>(l[i + 1].num);
            } else if (l[i].is_atom("MESSAGES")) {
                st.messages = static_cast<std::uint32_t>(l[i + 1].num);
            } else if (l[i].is_atom("HIGHESTMODSEQ")) {
                st.modseq = l[i + 1].num;
            }
        }
        out[wire] = st;
    }
    return out;
}

bool unchanged(const FolderRow& row, const BoxStatus& st) {
    return row.complete && row.src_uidvalidity != 0 && st.modseq != 0 &&
           row.src_uidvalidity == st.uidvalidity && row.src_uidnext == st.uidnext &&
           row.src_modseq == st.modseq;
}

// Sends `verb` for every plan `wanted` picks, all pipelined, then hands each tagged answer
// to `answered` with its plan. A tag we did not send means we lost track of the
// conversation: the connection is not trusted further.
Result<void> pipelined(CopyContext& ctx, std::vector<FolderPlan>& plans, const char* verb,
                       const std::function<bool(const FolderPlan&)>& wanted,
                       const std::function<void(const imap::Response&, FolderPlan&)>& answered) {
    std::map<std::string, FolderPlan*> tags;
    for (auto& p : plans) {
        if (wanted(p)) {
            tags[ctx.dst->command(std::string(verb) + " " + *imap::quote(p.dst_wire))] = &p;
        }
    }
    for (std::size_t open = tags.size(); open > 0;) {
        auto r = ctx.dst->read();
        if (!r) {
            return r.error();
        }
        if (r->type != imap::Response::Type::tagged) {
            continue;
        }
        auto it = tags.find(r->tag);
        if (it == tags.end()) {
            return make_error(std::string(verb) + " folders at " + ctx.dst->peer(),
                              "unexpected tag", Scope::server, Retry::later);
        }
        --open;
        answered(*r, *it->second);
    }
    return {};
}

} // namespace

namespace {

// A subscription the source holds to a name that is no folder of its own (a \Noselect
// parent, a folder deleted since) and that the target does not know at all. Servers such
// as Dovecot subscribe only existing folders: CREATE, SUBSCRIBE, DELETE leaves just the
// subscription — done before any child exists, since deleting a Maildir++ parent with
// children would leave an odd half-folder behind.
bool subscription_only(const FolderPlan& p) {
    return p.src.subscribed && p.src.noselect && !p.dst_subscribed && !p.dst_known &&
           !p.dst_wire.empty() && p.skip_reason.rfind("skipped by", 0) != 0;
}

Result<void> subscribe_placeholders(CopyContext& ctx, std::vector<FolderPlan>& plans,
                                    Summary& sum) {
    std::set<const FolderPlan*> made;
    auto note = [&](const FolderPlan& p, const imap::Response& r) {
        sum.notes.push_back("subscription to \"" + sanitize_reply(p.name) +
                            "\" not copied: " + r.summary());
    };
    auto c = pipelined(ctx, plans, "CREATE", subscription_only,
                       [&](const imap::Response& r, FolderPlan& p) {
                           if (r.keyword == "OK") {
                               made.insert(&p);
                           } else {
                               note(p, r);
                           }
                       });
    if (!c) {
        return c;
    }
    auto in_made = [&](const FolderPlan& p) { return made.count(&p) != 0; };
    auto s =
        pipelined(ctx, plans, "SUBSCRIBE", in_made, [&](const imap::Response& r, FolderPlan& p) {
            if (r.keyword == "OK") {
                p.dst_subscribed = true;
                ++sum.subscriptions_added;
            } else {
                note(p, r);
            }
        });
    if (!s) {
        return s;
    }
    // Children are created later, parents first: the name comes back as \Noselect then.
    return pipelined(ctx, plans, "DELETE", in_made, [&](const imap::Response& r, FolderPlan& p) {
        if (r.keyword != "OK") {
            sum.notes.push_back("folder \"" + sanitize_reply(p.name) +
                                "\" was made to carry its subscription and could not be "
                                "removed again: " +
                                r.summary());
        }
    });
}

} // namespace

Result<void> detail::create_and_subscribe(CopyContext& ctx, std::vector<FolderPlan>& plans,
                                          Summary& sum) {
    if (auto r = subscribe_placeholders(ctx, plans, sum); !r) {
        return r;
    }
    // Create what is missing, parents before children (plans are sorted by name).
    auto created = pipelined(
        ctx, plans, "CREATE", [](const FolderPlan& p) { return p.copy && !p.dst_exists; },
        [&](const imap::Response& r, FolderPlan& p) {
            if (r.keyword == "OK" || r.code == "ALREADYEXISTS") {
                p.dst_exists = true;
                sum.folders_created += r.keyword == "OK" ? 1 : 0;
                return;
            }
            p.copy = false;
            sum.skipped.push_back(Skipped{p.name, 0, 0,
                                          "target refused to create \"" +
                                              sanitize_reply(p.dst_utf8) + "\": " + r.summary()});
        });
    if (!created) {
        return created;
    }
    // Every other subscription; what the target refuses, or a name that was never made
    // (filtered out, its parent refused), is noted: nothing is dropped without a word.
    for (const auto& p : plans) {
        if (p.src.subscribed && !p.dst_subscribed && !p.dst_exists && !p.dst_known &&
            !subscription_only(p) && p.skip_reason.rfind("skipped by", 0) != 0) {
            sum.notes.push_back("subscription to \"" + sanitize_reply(p.name) +
                                "\" not copied: the folder is not on the target");
        }
    }
    return pipelined(
        ctx, plans, "SUBSCRIBE",
        [](const FolderPlan& p) {
            return p.src.subscribed && !p.dst_subscribed && !p.dst_wire.empty() &&
                   (p.dst_exists || p.dst_known);
        },
        [&](const imap::Response& r, FolderPlan& p) {
            if (r.keyword == "OK") {
                ++sum.subscriptions_added;
            } else {
                sum.notes.push_back("subscription to \"" + sanitize_reply(p.name) +
                                    "\" not copied: " + r.summary());
            }
        });
}

namespace {

// How many connections the folders left to copy can use. A helper connection costs a
// TLS handshake and a login at each server (at a new server whose logins go through a
// password hash, ~100 ms of its CPU); it pays off only when it has enough messages to copy
// that its share takes longer than that. Below Options::messages_per_connection messages
// per connection, the folders share one session: in a campaign, the worker's parallel
// copies of other accounts already keep both servers busy.
std::size_t useful_connections(std::size_t per_connection,
                               const std::vector<const FolderPlan*>& work,
                               const std::map<std::string, BoxStatus>& status,
                               const std::map<std::string, FolderRow>& rows) {
    std::size_t pending = 0;
    for (const FolderPlan* p : work) {
        auto sit = status.find(p->src.wire);
        if (sit == status.end() || per_connection == 0) {
            return work.size(); // no estimate, or asked for: do not hold the copy back
        }
        auto rit = rows.find(p->src.wire);
        const bool known = rit != rows.end() && rit->second.complete &&
                           rit->second.src_uidvalidity == sit->second.uidvalidity;
        // A folder copied before: its new messages (flag changes are cheap); else all.
        pending += known && sit->second.uidnext >= rit->second.src_uidnext
                       ? sit->second.uidnext - rit->second.src_uidnext
                       : sit->second.messages;
    }
    return std::max<std::size_t>(1, pending / per_connection);
}

// One folder, with reconnects: a broken connection gets fresh ones and the folder runs
// again (progress is kept in the state file); three failures in a row without progress
// end it. Returns an Error only for what stops the whole account.
Result<void> run_folder(CopyContext& ctx, const FolderPlan& p, std::int64_t account,
                        bool& complete) {
    auto row = ctx.state.folder(account, p.src.wire, p.dst_wire);
    if (!row) {
        return row.error();
    }
    Summary& sum = ctx.summary;
    int tries = 0;
    for (;;) {
        // Both servers must answer before the folder is tried: a server that does not is
        // the account's trouble (try later), not this folder's.
        if (auto s = ctx.ensure_src(); !s) {
            return s.error();
        }
        if (auto d = ctx.ensure_dst(); !d) {
            return d.error();
        }
        std::size_t before = sum.messages_copied + sum.skipped.size();
        FolderSync fs(ctx, p, *row);
        auto r = fs.run();
        if (r) {
            break;
        }
        ctx.state.rollback();
        const Error& e = r.error();
        log::warning("copy: folder " + sanitize_reply(p.name, 100) + ": " + e.message());
        ctx.drop_src();
        ctx.drop_dst();
        if (ctx.canceled()) {
            return e;
        }
        if (e.scope == Scope::account || e.scope == Scope::config || e.scope == Scope::internal) {
            return e; // login refused, state file trouble: nothing more to do here
        }
        if (e.scope == Scope::folder && e.retry == Retry::never) {
            sum.skipped.push_back(Skipped{p.name, 0, 0, e.message()});
            complete = false;
            return {};
        }
        bool progress_made = sum.messages_copied + sum.skipped.size() > before;
        tries = progress_made ? 0 : tries + 1;
        if (tries >= 3) {
            // Fresh connections logged in each time and the folder still failed at the
            // same place: it is this folder's (an answer we cannot use, a connection that
            // breaks on it). The rest of the account goes on; the next run tries it again.
            sum.skipped.push_back(Skipped{p.name, 0, 0, e.message()});
            complete = false;
            return {};
        }
    }
    if (!row->complete) {
        complete = false;
    }
    return {};
}

void merge(Summary& into, Summary&& from) {
    into.messages_copied += from.messages_copied;
    into.bytes_copied += from.bytes_copied;
    into.messages_flag_updates += from.messages_flag_updates;
    into.messages_filtered += from.messages_filtered;
    into.messages_recovered += from.messages_recovered;
    for (auto& s : from.skipped) {
        into.skipped.push_back(std::move(s));
    }
    for (auto& n : from.notes) {
        into.notes.push_back(std::move(n));
    }
}

// IMAP to IMAP.
Result<Summary> copy_imap_account(const Endpoint& from, const Endpoint& to, const Options& opts,
                                  const ProgressFn& progress, const std::atomic<bool>* cancel) {
    Summary sum;
    auto opened = State::open_account(opts.state_path, from.label(), to.label());
    if (!opened) {
        return opened.error();
    }
    State& state = *opened->state;
    const AccountRow& acct = opened->account;
    SharedProgress shared;
    shared.fn = &progress;
    CopyContext ctx(from, to, opts, state, sum, shared, cancel);
    if (auto r = ctx.ensure_src(); !r) {
        return r.error();
    }
    auto src_list = list_mailboxes(*ctx.src);
    if (!src_list) {
        return src_list.error();
    }
    const std::string list_digest = src_list->digest + "/" + options_digest(opts);
    auto rows = ctx.state.folders(acct.id);
    if (!rows) {
        return rows.error();
    }

    // Quick check with what we knew last time.
    std::vector<std::string> scratch;
    auto quick_plans = plan_folders(*src_list, nullptr, acct.dst_delim, opts, scratch);
    auto status = status_all(*ctx.src, quick_plans);
    if (!status) {
        return status.error();
    }
    auto is_unchanged = [&](const FolderPlan& p) {
        auto rit = rows->find(p.src.wire);
        auto sit = status->find(p.src.wire);
        return rit != rows->end() && sit != status->end() && rit->second.dst_name == p.dst_wire &&
               unchanged(rit->second, sit->second);
    };
    if (acct.list_digest == list_digest && acct.dst_delim != '\0') {
        bool all = true;
        for (const auto& p : quick_plans) {
            if (p.copy && !is_unchanged(p)) {
                all = false;
                break;
            }
        }
        if (all) {
            for (const auto& p : quick_plans) {
                sum.folders += 1;
                sum.folders_unchanged += p.copy ? 1 : 0;
            }
            (void)ctx.src->logout();
            return sum;
        }
    }

    if (auto r = ctx.ensure_dst(); !r) {
        return r.error();
    }
    auto dst_list = list_mailboxes(*ctx.dst);
    if (!dst_list) {
        return dst_list.error();
    }
    auto plans = plan_folders(*src_list, &*dst_list, dst_list->delim, opts, sum.notes);
    sum.folders = plans.size();
    shared.p.folders_total = static_cast<std::size_t>(
        std::count_if(plans.begin(), plans.end(), [](const FolderPlan& p) { return p.copy; }));

    if (auto r = create_and_subscribe(ctx, plans, sum); !r) {
        return r.error();
    }

    // Folders with nothing to do are settled here in one transaction: unchanged ones, and
    // empty ones that have nothing open (their status is all we need to remember).
    bool complete = true;
    std::vector<const FolderPlan*> work;
    {
        if (auto b = ctx.state.begin(); !b) {
            return b.error();
        }
        for (const auto& p : plans) {
            if (!p.copy) {
                continue;
            }
            if (is_unchanged(p)) {
                ++sum.folders_unchanged;
                ++shared.p.folders_done;
                continue;
            }
            auto sit = status->find(p.src.wire);
            auto rit = rows->find(p.src.wire);
            bool empty_and_new =
                sit != status->end() && sit->second.messages == 0 && sit->second.uidvalidity != 0 &&
                (rit == rows->end() || (rit->second.complete && rit->second.sweep_floor == 0 &&
                                        rit->second.dst_name == p.dst_wire));
            if (!empty_and_new) {
                work.push_back(&p);
                continue;
            }
            auto row = ctx.state.folder(acct.id, p.src.wire, p.dst_wire);
            if (!row) {
                ctx.state.rollback();
                return row.error();
            }
            row->src_uidvalidity = sit->second.uidvalidity;
            row->src_uidnext = sit->second.uidnext;
            row->src_modseq = sit->second.modseq;
            row->complete = true;
            if (auto u = ctx.state.update_folder(*row); !u) {
                ctx.state.rollback();
                return u.error();
            }
            ++shared.p.folders_done;
        }
        if (auto c = ctx.state.commit(); !c) {
            return c.error();
        }
    }
    // Biggest folders first, so parallel workers finish together.
    std::stable_sort(work.begin(), work.end(), [&](const FolderPlan* a, const FolderPlan* b) {
        auto sa = status->find(a->src.wire);
        auto sb = status->find(b->src.wire);
        std::uint32_t na = sa != status->end() ? sa->second.messages : UINT32_MAX;
        std::uint32_t nb = sb != status->end() ? sb->second.messages : UINT32_MAX;
        return na > nb;
    });

    std::mutex queue_mu;
    std::size_t next = 0;
    std::atomic<bool> stop{false};
    ctx.stop = &stop;
    auto take = [&]() -> const FolderPlan* {
        std::lock_guard lock(queue_mu);
        return next < work.size() ? work[next++] : nullptr;
    };
    // Each worker: its own connections and state handle; the first fatal error stops all.
    auto worker = [&](CopyContext& wc, std::optional<Error>& fatal, bool& wcomplete) {
        if (&wc != &ctx) {
            // A helper worker is only worth having with its own connections; if the
            // server's connection budget (shared with other accounts) has no room, or the
            // login fails, it leaves the folders to the others instead of failing them.
            auto s = wc.ensure_src();
            auto d = s ? wc.ensure_dst() : Result<void>(s.error());
            if (!s || !d) {
                log::debug("copy: parallel worker not started: " +
                           (!s ? s.error() : d.error()).message());
                return;
            }
        }
        while (!wc.canceled()) {
            const FolderPlan* p = take();
            if (p == nullptr) {
                break;
            }
            auto r = run_folder(wc, *p, acct.id, wcomplete);
            if (!r) {
                fatal = r.error();
                stop = true;
                break;
            }
            wc.add_done(0, 0, &p->name, 1);
        }
    };

    const std::size_t n_workers = std::max<std::size_t>(
        1, std::min({opts.connections, work.size(), opts.max_connections_per_server,
                     useful_connections(opts.messages_per_connection, work, *status, *rows)}));
    struct Worker {
        std::unique_ptr<State> state;
        Summary sum;
        std::unique_ptr<CopyContext> ctx;
        std::optional<Error> fatal;
        bool complete = true;
    };
    std::vector<Worker> extra(n_workers - 1);
    std::vector<std::thread> threads;
    for (auto& w : extra) {
        auto st = State::open(opts.state_path);
        if (!st) {
            return st.error();
        }
        w.state = std::move(*st);
        w.ctx = std::make_unique<CopyContext>(from, to, opts, *w.state, w.sum, shared, cancel);
        w.ctx->stop = &stop;
        w.ctx->slot_wait = std::chrono::seconds(2);
    }
    for (auto& w : extra) {
        threads.emplace_back([&worker, &w] { worker(*w.ctx, w.fatal, w.complete); });
    }
    std::optional<Error> fatal;
    worker(ctx, fatal, complete);
    for (auto& t : threads) {
        t.join();
    }
    for (auto& w : extra) {
        merge(sum, std::move(w.sum));
        complete = complete && w.complete;
        if (!fatal && w.fatal) {
            fatal = w.fatal;
        }
    }
    if (fatal) {
        return *fatal;
    }
    if (cancel != nullptr && cancel->load()) {
        return make_error("copy " + from.label(), "canceled", Scope::account, Retry::later);
    }
    if (complete && sum.skipped.empty()) {
        if (auto r = ctx.state.set_account_list(acct.id, list_digest, dst_list->delim); !r) {
            return r.error();
        }
    }
    if (ctx.src) {
        (void)ctx.src->logout();
    }
    if (ctx.dst) {
        (void)ctx.dst->logout();
    }
    return sum;
}

// Keeps this run's skipped items in the state file and tells each how many runs in a row
// have skipped it for the same reason.
Result<void> remember_skipped(const Endpoint& from, const Endpoint& to, const Options& opts,
                              Summary& sum) {
    auto opened = State::open_account(opts.state_path, from.label(), to.label());
    if (!opened) {
        return opened.error();
    }
    std::vector<FailureRow> now;
    std::set<std::pair<std::string, std::uint32_t>> seen;
    for (const auto& s : sum.skipped) {
        if (seen.insert({s.folder, s.uid}).second) {
            now.push_back(FailureRow{s.folder, s.uid, s.size, s.reason, 1, 0, 0});
        }
    }
    auto rec = opened->state->record_failures(opened->account.id, std::move(now));
    if (!rec) {
        return rec.error();
    }
    std::map<std::pair<std::string, std::uint32_t>, unsigned> streak;
    for (const auto& f : *rec) {
        streak[{f.folder, f.uid}] = f.streak;
    }
    for (auto& s : sum.skipped) {
        s.streak = streak[{s.folder, s.uid}];
    }
    return {};
}

} // namespace

Result<Summary> copy_account(const Endpoint& from, const Endpoint& to, const Options& opts,
                             const ProgressFn& progress, const std::atomic<bool>* cancel) {
    if (opts.state_path.empty()) {
        return make_error("copy " + from.label(), "no state file given", Scope::config,
                          Retry::never);
    }
    Result<Summary> sum = Summary{};
    if (!to.local.empty()) {
        sum = copy_to_maildir(from, to, opts, progress, cancel);
    } else if (!from.local.empty() || from.pop3) {
        sum = copy_local(from, to, opts, progress, cancel);
    } else {
        sum = copy_imap_account(from, to, opts, progress, cancel);
    }
    if (!sum) {
        return sum;
    }
    if (auto r = remember_skipped(from, to, opts, *sum); !r) {
        return r.error();
    }
    return sum;
}

} // namespace mf::copy
