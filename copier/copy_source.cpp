// copy_source.cpp — the pieces copy_local.cpp and copy_maildir.cpp share (copy_source.hpp).
#include "copy_source.hpp"

#include "mutf7.hpp"
#include "source_imap.hpp"
#include "source_maildir.hpp"
#include "source_mbox.hpp"
#include "source_pop3.hpp"

#include <algorithm>

namespace mf::copy::detail {

Result<std::unique_ptr<source::Source>> open_source(const Endpoint& from, const Options& opts,
                                                    State& state, std::int64_t account,
                                                    bool read_only) {
    if (from.pop3) {
        return source::open_pop3(from, [&state, account, read_only](const std::string& key) {
            return read_only ? state.peek_uid_for_key(account, key)
                             : state.uid_for_key(account, key);
        });
    }
    const std::string& spec = from.local;
    if (spec.empty()) {
        return source::open_imap(from, opts);
    }
    if (spec.rfind("maildir:", 0) == 0 && spec.size() > 8) {
        return source::open_maildir(spec.substr(8), opts.follow_symlinks);
    }
    for (auto [scheme, q] : {std::pair{"mbox:", source::MboxQuoting::none},
                             std::pair{"mboxrd:", source::MboxQuoting::mboxrd},
                             std::pair{"mboxo:", source::MboxQuoting::mboxo}}) {
        std::string_view sv(scheme);
        if (spec.rfind(sv, 0) == 0 && spec.size() > sv.size()) {
            return source::open_mbox(spec.substr(sv.size()), q, opts.follow_symlinks);
        }
    }
    return make_error("open source \"" + spec + "\"",
                      "expected maildir:/path, mbox:/path, mboxrd:/path or mboxo:/path",
                      Scope::config);
}

std::string wire_name(const std::vector<std::string>& parts, char delim) {
    std::string wire;
    for (const auto& part : parts) {
        if (!wire.empty()) {
            wire += delim;
        }
        auto w = imap::mutf7_encode(part);
        wire += w ? *w : part;
    }
    return wire;
}

Result<BodyDigest> digest_message(source::Source& src, const source::Folder& f,
                                  const source::Message& m, bool nul_as_0x80) {
    Hasher h(nul_as_0x80);
    BodyDigest out;
    auto r = src.read(f, m, [&](std::string_view chunk) -> Result<void> {
        h.update(chunk);
        out.size += chunk.size();
        return {};
    });
    if (!r) {
        return r.error();
    }
    out.digest = h.finish();
    return out;
}

Listing source_listing(const std::vector<source::Folder>& folders,
                       std::map<std::string, const source::Folder*>& by_wire) {
    Listing list;
    list.delim = '/';
    for (const auto& f : folders) {
        Mailbox m;
        m.wire = wire_name(f.parts, '/');
        m.utf8 = f.name();
        m.parts = f.parts;
        m.noselect = f.noselect;
        m.subscribed = f.subscribed;
        by_wire[m.wire] = &f;
        list.boxes.push_back(std::move(m));
    }
    std::sort(list.boxes.begin(), list.boxes.end(),
              [](const Mailbox& a, const Mailbox& b) { return a.wire < b.wire; });
    return list;
}

Result<void> assign_stable_uids(State& state, std::int64_t account, const FolderPlan& plan,
                                source::FolderContents& c, bool read_only) {
    bool keyed = std::any_of(c.messages.begin(), c.messages.end(),
                             [](const source::Message& m) { return !m.key.empty(); });
    if (!keyed) {
        return {};
    }
    if (!read_only) {
        if (auto b = state.begin(); !b) {
            return b;
        }
    }
    for (auto& m : c.messages) {
        if (m.key.empty()) {
            if (!read_only) {
                state.rollback();
            }
            return make_error("read " + plan.name, "a message without a stable name",
                              Scope::folder);
        }
        const std::string key = plan.src.wire + "\n" + m.key;
        auto uid =
            read_only ? state.peek_uid_for_key(account, key) : state.uid_for_key(account, key);
        if (!uid) {
            if (!read_only) {
                state.rollback();
            }
            return uid.error();
        }
        m.uid = *uid;
    }
    if (!read_only) {
        if (auto r = state.commit(); !r) {
            return r;
        }
    }
    std::sort(c.messages.begin(), c.messages.end(),
              [](const source::Message& a, const source::Message& b) { return a.uid < b.uid; });
    c.uidvalidity = 1;
    return {};
}

bool outside_dates(const Filters& f, const source::Message& m) {
    return m.when && ((f.after && *m.when < *f.after) || (f.before && *m.when >= *f.before));
}

Result<void> finish_folder(State& state, FolderRow& row, const Options& opts, source::Source& src,
                           const source::Folder& f, const source::FolderContents& c,
                           const std::map<std::uint32_t, MessageRow>& rows, Summary& sum) {
    row.complete = true;
    if (auto r = state.update_folder(row); !r) {
        return r;
    }
    if (!opts.pop3_delete) {
        return {};
    }
    std::vector<source::Message> copied;
    for (const auto& m : c.messages) {
        auto it = rows.find(m.uid);
        if (it != rows.end() && it->second.state == 1 && it->second.dst_uid != 0) {
            copied.push_back(m);
        }
    }
    if (copied.empty()) {
        return {};
    }
    auto n = src.remove(f, copied);
    if (!n) {
        return n.error();
    }
    sum.messages_deleted_at_source += *n;
    return {};
}

} // namespace mf::copy::detail
