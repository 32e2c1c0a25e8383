// copy_verify.cpp — verify_account(): is the target an exact copy of the source?
//
// For every folder the copy plans, both sides are read in full (UID, FLAGS, INTERNALDATE,
// RFC822.SIZE and the body, hashed with SHA-256 while it streams, so memory stays flat)
// and compared message by message through the state file's UID map. Messages on the
// target that the map does not know are "extra" (a user's new mail): listed, not a
// failure. Must never modify either side (EXAMINE and BODY.PEEK only). A POP3 or local
// source, or a Maildir target, is compared by copy_verify_sources.cpp instead.
#include "copy_folder.hpp"

#include <nlohmann/json.hpp>

namespace mf::copy {

using namespace detail;

bool VerifyReport::ok() const {
    for (const auto& m : mismatches) {
        if (m.what != "extra") {
            return false;
        }
    }
    return true;
}

std::string VerifyReport::to_json() const {
    nlohmann::json j;
    j["ok"] = ok();
    j["folders"] = folders;
    j["messages_compared"] = messages_compared;
    j["bytes_compared"] = bytes_compared;
    j["extra_on_target"] = extra_on_target;
    j["not_copied"] = nlohmann::json::array();
    for (const auto& n : not_copied) {
        j["not_copied"].push_back({{"folder", n.folder},
                                   {"uid", n.uid},
                                   {"size", n.size},
                                   {"reason", n.reason},
                                   {"runs_in_a_row", n.streak}});
    }
    j["mismatches"] = nlohmann::json::array();
    for (const auto& m : mismatches) {
        j["mismatches"].push_back({{"folder", m.folder},
                                   {"src_uid", m.src_uid},
                                   {"dst_uid", m.dst_uid},
                                   {"what", m.what}});
    }
    return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

struct Entry {
    MsgMeta meta;
    BodyDigest body;
};

Result<std::map<std::uint32_t, Entry>> read_all(imap::Client& c, std::size_t chunk) {
    std::map<std::uint32_t, Entry> out;
    Hasher h(true); // both sides as Dovecot shows them: a NUL byte as 0x80
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
    auto r = c.run(
        "UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])",
        [&](imap::Response& u) -> Result<void> {
            if (u.keyword == "FETCH") {
                MsgMeta m = parse_fetch_items(u.data[0].list);
                if (m.uid != 0 && pending) {
                    const std::uint32_t uid = m.uid;
                    out[uid] = Entry{std::move(m), *pending};
                }
            }
            pending.reset();
            return {};
        },
        hook);
    if (!r) {
        return r.error();
    }
    return out;
}

} // namespace

Result<void> detail::verify_folders(const std::vector<FolderPlan>& plans, VerifyReport& rep,
                                    const ProgressFn& progress, const std::atomic<bool>* cancel,
                                    const FolderCheck& check) {
    Progress prog;
    for (const auto& p : plans) {
        prog.folders_total += p.copy ? 1 : 0;
    }
    for (const auto& p : plans) {
        if (!p.copy) {
            continue;
        }
        if (cancel != nullptr && cancel->load()) {
            return make_error("verify", "canceled", Scope::account, Retry::later);
        }
        ++rep.folders;
        prog.folder = p.name;
        if (progress) {
            progress(prog);
        }
        MismatchFn add = [&](std::uint32_t s, std::uint32_t d, const char* what) {
            rep.mismatches.push_back(VerifyMismatch{p.name, s, d, what});
        };
        if (auto r = check(p, add, prog); !r) {
            if (!folder_own_failure(r.error())) {
                return r;
            }
            // This folder's answers cannot be used; the others can still be compared.
            add(0, 0, "unreadable");
        }
        ++prog.folders_done;
        if (progress) {
            progress(prog);
        }
    }
    return {};
}

namespace {

// IMAP to IMAP, on its own pipelined path.
Result<VerifyReport> verify_imap(const Endpoint& from, const Endpoint& to, const Options& opts,
                                 const ProgressFn& progress, const std::atomic<bool>* cancel) {
    VerifyReport rep;
    auto state = State::open(opts.state_path);
    if (!state) {
        return state.error();
    }
    auto acct = (*state)->account(from.label(), to.label());
    if (!acct) {
        return acct.error();
    }
    auto folders = (*state)->folders(acct->id);
    if (!folders) {
        return folders.error();
    }
    auto src = open_session(from, opts, "source");
    if (!src) {
        return src.error();
    }
    auto dst = open_session(to, opts, "target");
    if (!dst) {
        return dst.error();
    }
    auto src_list = list_mailboxes(**src);
    if (!src_list) {
        return src_list.error();
    }
    auto dst_list = list_mailboxes(**dst);
    if (!dst_list) {
        return dst_list.error();
    }
    std::vector<std::string> notes;
    auto plans = plan_folders(*src_list, &*dst_list, dst_list->delim, opts, notes);
    const auto& f = opts.filters;
    auto compare = [&](const FolderPlan& p, const MismatchFn& add, Progress& prog) -> Result<void> {
        auto ss = select_box(**src, p.src.wire, true, false);
        if (!ss) {
            return ss.error();
        }
        std::map<std::uint32_t, Entry> s_all;
        if (ss->messages > 0) {
            auto r = read_all(**src, opts.chunk);
            if (!r) {
                return r.error();
            }
            s_all = std::move(*r);
        }
        std::map<std::uint32_t, Entry> d_all;
        if (p.dst_exists) {
            auto ds = select_box(**dst, p.dst_wire, true, false);
            if (!ds) {
                return ds.error();
            }
            if (ds->messages > 0) {
                auto r = read_all(**dst, opts.chunk);
                if (!r) {
                    return r.error();
                }
                d_all = std::move(*r);
            }
        }
        std::map<std::uint32_t, MessageRow> rows;
        auto fit = folders->find(p.src.wire);
        if (fit != folders->end()) {
            auto r = (*state)->messages(fit->second.id);
            if (!r) {
                return r.error();
            }
            rows = std::move(*r);
        }
        std::set<std::uint32_t> referenced;
        for (const auto& [uid, s] : s_all) {
            const auto& m = s.meta;
            if ((f.after || f.before) && m.when &&
                ((f.after && *m.when < *f.after) || (f.before && *m.when >= *f.before))) {
                continue;
            }
            auto rit = rows.find(uid);
            if (rit == rows.end() || rit->second.dst_uid == 0) {
                add(uid, 0, "missing");
                continue;
            }
            std::uint32_t duid = rit->second.dst_uid;
            auto dit = d_all.find(duid);
            if (dit == d_all.end()) {
                add(uid, duid, "missing");
                continue;
            }
            referenced.insert(duid);
            const Entry& d = dit->second;
            ++rep.messages_compared;
            rep.bytes_compared += s.body.size;
            if (s.body.size != d.body.size) {
                add(uid, duid, "size");
            } else if (s.body.digest != d.body.digest) {
                add(uid, duid, "sha256");
            }
            if (m.flags != d.meta.flags) {
                add(uid, duid, "flags");
            }
            if (m.when && (!d.meta.when || *m.when != *d.meta.when)) {
                add(uid, duid, "date");
            }
            prog.messages_done += 1;
            prog.bytes_done += s.body.size;
        }
        for (const auto& [duid, d] : d_all) {
            if (referenced.count(duid) == 0) {
                ++rep.extra_on_target;
                add(0, duid, "extra");
            }
        }
        return {};
    };
    auto each = verify_folders(
        plans, rep, progress, cancel,
        [&](const FolderPlan& p, const MismatchFn& add, Progress& prog) -> Result<void> {
            auto r = compare(p, add, prog);
            if (!r && folder_own_failure(r.error())) {
                // The stream that broke is of no further use: fresh sessions for the rest.
                src = open_session(from, opts, "source");
                if (!src) {
                    return src.error();
                }
                dst = open_session(to, opts, "target");
                if (!dst) {
                    return dst.error();
                }
            }
            return r;
        });
    if (!each) {
        return each.error();
    }
    (void)(*src)->logout();
    (void)(*dst)->logout();
    return rep;
}

// What the last copy run skipped, from the state file (read-only; none without one).
Result<std::vector<Skipped>> last_skipped(const Endpoint& from, const Endpoint& to,
                                          const Options& opts) {
    std::vector<Skipped> out;
    auto state = State::open_read_only(opts.state_path);
    if (!state) {
        return out;
    }
    auto acct = (*state)->find_account(from.label(), to.label());
    if (!acct) {
        return acct.error();
    }
    if (!*acct) {
        return out;
    }
    auto rows = (*state)->failures((*acct)->id);
    if (!rows) {
        return rows.error();
    }
    for (auto& f : *rows) {
        out.push_back(Skipped{std::move(f.folder), f.uid, f.size, std::move(f.reason), f.streak});
    }
    return out;
}

} // namespace

Result<VerifyReport> verify_account(const Endpoint& from, const Endpoint& to, const Options& opts,
                                    const ProgressFn& progress, const std::atomic<bool>* cancel) {
    Result<VerifyReport> rep = VerifyReport{};
    if (from.pop3 || !from.local.empty() || !to.local.empty()) {
        rep = verify_sources(from, to, opts, progress, cancel);
    } else {
        rep = verify_imap(from, to, opts, progress, cancel);
    }
    if (!rep) {
        return rep;
    }
    auto skipped = last_skipped(from, to, opts);
    if (!skipped) {
        return skipped.error();
    }
    rep->not_copied = std::move(*skipped);
    return rep;
}

} // namespace mf::copy
