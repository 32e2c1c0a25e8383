// copy_verify_sources.cpp — verify_account() when a side is not IMAP: a POP3 or local
// source, or a Maildir target of ours.
//
// Both sides are read through the Source interface — the source as the copy read it
// (open_source()), an IMAP target with source::open_imap(), a Maildir target with
// source::open_maildir(), whose dovecot-uidlist UIDs are the target UIDs the copy recorded
// — and compared through the state file's map as copy_verify.cpp compares IMAP→IMAP. The
// folder rows give the target folder each source folder went to, so a target is never
// listed through the copier's writer (target_maildir.hpp creates what it opens). Bodies
// are read side by side in bulk: a folder's source side, then its target side, each with
// one prefetch() hint, so an IMAP side streams one UID FETCH instead of a round trip per
// message.
//
// Must never: change either side or the state file (opened read-only; keyed sources are
// numbered with State::peek_uid_for_key), or hold a whole message in memory.
#include "copy_folder.hpp"
#include "copy_source.hpp"
#include "source_imap.hpp"
#include "source_maildir.hpp"

#include <algorithm>
#include <optional>
#include <set>

namespace mf::copy {

using namespace detail;

namespace {

// The target's folders by the wire name copy_local.cpp / copy_maildir.cpp stored in the
// folder rows: the server's own for IMAP; for our Maildir, modified UTF-7 with '.' between
// levels ("INBOX" for the root), as the copy's tree listing names them.
Result<std::map<std::string, source::Folder>> target_folders(source::Source& dst, bool maildir) {
    auto folders = dst.folders();
    if (!folders) {
        return folders.error();
    }
    std::map<std::string, source::Folder> out;
    for (auto& f : *folders) {
        std::string wire = maildir ? wire_name(f.parts, '.') : f.locator;
        if (!f.noselect) {
            out.emplace(std::move(wire), std::move(f));
        }
    }
    return out;
}

// A source message and the target message the state file maps it to, same size: their
// bytes are compared once both sides have been read.
struct BodyPair {
    const source::Message* src;
    const source::Message* dst;
    std::uint32_t dst_uid;
};

// Digests of `ms`, read in ascending UID order after one prefetch() of them all: an IMAP
// side answers with one UID FETCH streamed in that order instead of a round trip per
// message. A message that cannot be read maps to nullopt; any other failure ends it.
Result<std::map<const source::Message*, std::optional<BodyDigest>>>
digest_all(source::Source& side, const source::Folder& f, std::vector<const source::Message*> ms,
           bool nul_as_0x80, const std::atomic<bool>* cancel) {
    std::sort(ms.begin(), ms.end(), [](const auto* a, const auto* b) { return a->uid < b->uid; });
    ms.erase(std::unique(ms.begin(), ms.end()), ms.end());
    side.prefetch(f, ms);
    std::map<const source::Message*, std::optional<BodyDigest>> out;
    for (const auto* m : ms) {
        if (cancel != nullptr && cancel->load()) {
            return make_error("verify", "canceled", Scope::account, Retry::later);
        }
        auto d = digest_message(side, f, *m, nul_as_0x80);
        if (!d && d.error().scope != Scope::message) {
            return d.error();
        }
        out.emplace(m, d ? std::optional<BodyDigest>(*d) : std::nullopt);
    }
    return out;
}

// Compares the bytes of each pair: the whole source side first, then the whole target
// side, each in its own UID order, so neither waits on the other per message.
Result<void> compare_bodies(source::Source& src, const source::Folder& sf, source::Source& dst,
                            const source::Folder& df, const std::vector<BodyPair>& pairs,
                            bool nul_as_0x80, const MismatchFn& add,
                            const std::atomic<bool>* cancel) {
    std::vector<const source::Message*> s_ms;
    std::vector<const source::Message*> d_ms;
    for (const auto& p : pairs) {
        s_ms.push_back(p.src);
        d_ms.push_back(p.dst);
    }
    auto s_dig = digest_all(src, sf, std::move(s_ms), nul_as_0x80, cancel);
    if (!s_dig) {
        return s_dig.error();
    }
    auto d_dig = digest_all(dst, df, std::move(d_ms), nul_as_0x80, cancel);
    if (!d_dig) {
        return d_dig.error();
    }
    for (const auto& p : pairs) {
        const auto& sd = s_dig->at(p.src);
        const auto& dd = d_dig->at(p.dst);
        if (!sd) {
            add(p.src->uid, p.dst_uid, "unreadable"); // changed or gone under us on the source
        } else if (!dd) {
            add(p.src->uid, p.dst_uid, "missing");
        } else if (sd->size != dd->size) {
            add(p.src->uid, p.dst_uid, "size");
        } else if (sd->digest != dd->digest) {
            add(p.src->uid, p.dst_uid, "sha256");
        }
    }
    return {};
}

} // namespace

Result<VerifyReport> verify_sources(const Endpoint& from, const Endpoint& to, const Options& opts,
                                    const ProgressFn& progress, const std::atomic<bool>* cancel) {
    VerifyReport rep;
    auto state = State::open_read_only(opts.state_path);
    if (!state) {
        return state.error();
    }
    auto acct = (*state)->find_account(from.label(), to.label());
    if (!acct) {
        return acct.error();
    }
    // No row: nothing was copied for this pair, so every message is "missing".
    const std::int64_t account = *acct ? (*acct)->id : -1;
    auto folder_rows = (*state)->folders(account);
    if (!folder_rows) {
        return folder_rows.error();
    }
    auto src = open_source(from, opts, **state, account, true);
    if (!src) {
        return src.error();
    }
    const bool to_maildir = !to.local.empty();
    std::unique_ptr<source::Source> dst;
    if (to_maildir) {
        if (to.local.rfind("maildir:", 0) != 0 || to.local.size() <= 8) {
            return make_error("verify target \"" + to.local + "\"", "expected maildir:/path",
                              Scope::config);
        }
        dst = source::open_maildir(to.local.substr(8));
    } else {
        auto d = source::open_imap(to, opts);
        if (!d) {
            return d.error();
        }
        dst = std::move(*d);
    }
    auto src_folders = (*src)->folders();
    if (!src_folders) {
        return src_folders.error();
    }
    std::map<std::string, const source::Folder*> by_wire;
    Listing list = source_listing(*src_folders, by_wire);
    auto dst_folders = target_folders(*dst, to_maildir);
    if (!dst_folders) {
        return dst_folders.error();
    }
    // Only which folders the copy takes matters here; where they went is in the folder rows.
    std::vector<std::string> notes;
    auto plans = plan_folders(list, nullptr, '\0', opts, notes);
    auto each = verify_folders(
        plans, rep, progress, cancel,
        [&](const FolderPlan& p, const MismatchFn& add, Progress& prog) -> Result<void> {
            const source::Folder& sf = *by_wire.at(p.src.wire);
            auto s_all = (*src)->messages(sf);
            if (!s_all) {
                return s_all.error();
            }
            if (auto r = assign_stable_uids(**state, account, p, *s_all, true); !r) {
                return r.error();
            }
            std::map<std::uint32_t, MessageRow> rows;
            const source::Folder* df = nullptr;
            auto fit = folder_rows->find(p.src.wire);
            if (fit != folder_rows->end()) {
                auto r = (*state)->messages(fit->second.id);
                if (!r) {
                    return r.error();
                }
                rows = std::move(*r);
                auto dit = dst_folders->find(fit->second.dst_name);
                df = dit != dst_folders->end() ? &dit->second : nullptr;
            }
            std::map<std::uint32_t, const source::Message*> d_all;
            source::FolderContents d_contents;
            if (df != nullptr) {
                auto r = dst->messages(*df);
                if (!r) {
                    return r.error();
                }
                d_contents = std::move(*r);
                // A file our Maildir does not list yet has only a guessed UID, above all listed.
                for (const auto& m : d_contents.messages) {
                    d_all[m.keep_uid != 0 ? m.keep_uid : m.uid] = &m;
                }
            }
            std::set<std::uint32_t> referenced;
            std::vector<BodyPair> same_size;
            for (const auto& m : s_all->messages) {
                if (outside_dates(opts.filters, m)) {
                    continue;
                }
                auto rit = rows.find(m.uid);
                if (rit == rows.end() || rit->second.dst_uid == 0) {
                    add(m.uid, 0, "missing");
                    continue;
                }
                const std::uint32_t duid = rit->second.dst_uid;
                auto dit = d_all.find(duid);
                if (dit == d_all.end()) {
                    add(m.uid, duid, "missing");
                    continue;
                }
                referenced.insert(duid);
                const source::Message& d = *dit->second;
                ++rep.messages_compared;
                rep.bytes_compared += m.size;
                if (m.size != d.size) {
                    add(m.uid, duid, "size");
                } else {
                    same_size.push_back(BodyPair{&m, &d, duid});
                }
                // POP3 has neither: what the target shows is the user's doing since.
                if (!from.pop3 && m.flags != d.flags) {
                    add(m.uid, duid, "flags");
                }
                if (m.when && (!d.when || *m.when != *d.when)) {
                    add(m.uid, duid, "date");
                }
                prog.messages_done += 1;
                prog.bytes_done += m.size;
            }
            // An IMAP target is read with BODY[], which shows a NUL as 0x80 on Dovecot:
            // compare both sides that way.
            if (!same_size.empty()) {
                if (auto r =
                        compare_bodies(**src, sf, *dst, *df, same_size, !to_maildir, add, cancel);
                    !r) {
                    return r;
                }
            }
            for (const auto& [duid, d] : d_all) {
                if (referenced.count(duid) == 0) {
                    ++rep.extra_on_target;
                    add(0, duid, "extra");
                }
            }
            return {};
        });
    if (!each) {
        return each.error();
    }
    return rep;
}

} // namespace mf::copy
