// copy_maildir.cpp — copy_account() into a Maildir tree of ours (Endpoint::local =
// "maildir:/path" as the target; target_maildir.hpp writes it as Dovecot would), from any
// Source: IMAP (source_imap.hpp), POP3, a Maildir or mbox tree.
//
// What makes this target worth having: messages keep the UIDs and UIDVALIDITY clients of
// the old server know them by (Message::keep_uid), where the target folder allows it (see
// MaildirFolder::commit), so a client switched to the new server downloads nothing again.
//
// Per folder, as copy_local.cpp does for an IMAP target: a message whose source UID is
// mapped in the state file is not stored again, but changed flags are carried (the file
// renamed); new ones are staged in tmp/ a group at a time (Options::group, at most 16 MB),
// hashed while staged, and their intents — with those SHA-256s — committed before the group
// is renamed into cur/ and listed in dovecot-uidlist; then their target UIDs are committed.
// A run killed in between leaves intents whose digests are found among the target's new
// files on the next run: nothing lost, nothing stored twice. A changed UIDVALIDITY on
// either side is settled by content over the whole target folder.
//
// Must never: store a message without a committed intent, or map a source message to a
// target file whose bytes differ.
#include "copy_folder.hpp"
#include "copy_source.hpp"
#include "mutf7.hpp"
#include "target_maildir.hpp"

#include "file_util.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <fcntl.h>
#include <fnmatch.h>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace mf::copy {

using namespace detail;

namespace {

constexpr std::uint64_t kGroupBytes = 16u << 20;

// SHA-256 and size of a file's bytes (a target message is stored exactly as the source
// gave it, so this is comparable with the digest taken while staging).
Result<BodyDigest> digest_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return make_error("read " + path, errno_text(errno), Scope::message);
    }
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    Hasher h;
    BodyDigest out;
    std::array<char, 65536> buf{};
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return make_error("read " + path, errno_text(errno), Scope::message);
        }
        if (n == 0) {
            break;
        }
        h.update(std::string_view(buf.data(), static_cast<std::size_t>(n)));
        out.size += static_cast<std::uint64_t>(n);
    }
    out.digest = h.finish();
    return out;
}

struct AccountRun {
    const Endpoint& from;
    const Options& opts;
    State& state;
    Summary& sum;
    SharedProgress& progress;
    const std::atomic<bool>* cancel;
    std::int64_t account;

    [[nodiscard]] bool canceled() const { return cancel != nullptr && cancel->load(); }
    void add(std::uint64_t total_msgs, std::uint64_t total_bytes, std::uint64_t done_msgs,
             std::uint64_t done_bytes, const std::string& folder) {
        std::lock_guard lock(progress.mu);
        progress.p.messages_total += total_msgs;
        progress.p.bytes_total += total_bytes;
        progress.p.messages_done += done_msgs;
        progress.p.bytes_done += done_bytes;
        progress.p.folder = folder;
        if (progress.fn != nullptr && *progress.fn) {
            (*progress.fn)(progress.p);
        }
    }
};

class MaildirFolderCopy {
  public:
    MaildirFolderCopy(AccountRun& run, source::Source& src, const source::Folder& f,
                      const FolderPlan& plan, FolderRow& row, target::MaildirFolder& dst)
        : run_(run), src_(src), f_(f), plan_(plan), row_(row), dst_(dst) {}

    Result<void> run() {
        auto contents = src_.messages(f_);
        if (!contents) {
            return contents.error();
        }
        // What clients of the old server know, taken before keyed sources get state UIDs.
        const bool keeps = std::any_of(contents->messages.begin(), contents->messages.end(),
                                       [](const source::Message& m) { return m.keep_uid != 0; });
        keep_validity_ = keeps ? contents->uidvalidity : 0;
        keep_next_ = contents->uidnext;
        if (auto r = assign_stable_uids(run_.state, run_.account, plan_, *contents); !r) {
            return r;
        }
        for (const auto& p : contents->problems) {
            run_.sum.skipped.push_back(Skipped{plan_.name, 0, 0, p});
        }
        if (auto r = refresh_box(); !r) {
            return r;
        }
        auto rows = run_.state.messages(row_.id);
        if (!rows) {
            return rows.error();
        }
        rows_ = std::move(*rows);
        const bool remap = row_.src_uidvalidity != contents->uidvalidity ||
                           row_.dst_uidvalidity != box_.uidvalidity;
        const bool intents = std::any_of(rows_.begin(), rows_.end(),
                                         [](const auto& kv) { return kv.second.state == 0; });
        if (remap || intents) {
            if (auto r = settle_by_content(*contents, remap); !r) {
                return r;
            }
        }
        row_.src_uidvalidity = contents->uidvalidity;
        row_.dst_uidvalidity = box_.uidvalidity;
        if (auto r = run_.state.update_folder(row_); !r) {
            return r;
        }
        std::vector<const source::Message*> todo;
        std::uint64_t todo_bytes = 0;
        std::vector<FlagTodo> flags_todo;
        for (const auto& m : contents->messages) {
            if (outside_dates(run_.opts.filters, m)) {
                ++run_.sum.messages_filtered;
                continue;
            }
            auto it = rows_.find(m.uid);
            if (it != rows_.end() && it->second.state != 0) {
                if (it->second.flags != m.flags && it->second.dst_uid != 0) {
                    flags_todo.push_back({&it->second, &m});
                }
                continue;
            }
            if (m.size > run_.opts.max_message_size) {
                run_.sum.skipped.push_back(Skipped{plan_.name, m.uid, m.size,
                                                   "message of " + std::to_string(m.size) +
                                                       " bytes: larger than the limit"});
                continue;
            }
            todo.push_back(&m);
            todo_bytes += m.size;
        }
        if (auto r = carry_flags(flags_todo); !r) {
            return r;
        }
        run_.add(todo.size(), todo_bytes, 0, 0, plan_.name);
        // Old UIDs in ascending order, then what has none: each group can then keep its UIDs
        // above the last group's, and the source's next UID is applied once, at the end.
        std::stable_sort(todo.begin(), todo.end(),
                         [](const source::Message* a, const source::Message* b) {
                             return std::pair(a->keep_uid == 0, a->keep_uid) <
                                    std::pair(b->keep_uid == 0, b->keep_uid);
                         });
        std::vector<const source::Message*> group;
        std::uint64_t group_bytes = 0;
        for (std::size_t i = 0; i < todo.size(); ++i) {
            if (run_.canceled()) {
                return make_error("copy " + run_.from.label(), "canceled", Scope::account,
                                  Retry::later);
            }
            const source::Message* m = todo[i];
            group.push_back(m);
            group_bytes += m->size;
            const bool last = i + 1 == todo.size();
            if (last || group.size() >= std::max<std::size_t>(run_.opts.group, 1) ||
                group_bytes >= kGroupBytes) {
                if (auto r = store(group, last || m->keep_uid == 0); !r) {
                    return r;
                }
                group.clear();
                group_bytes = 0;
            }
        }
        return finish_folder(run_.state, row_, run_.opts, src_, f_, *contents, rows_, run_.sum);
    }

  private:
    Result<void> refresh_box() {
        auto box = dst_.status();
        if (!box) {
            return box.error();
        }
        box_ = *box;
        return {};
    }

    // Stages the group in tmp/ (a message the source cannot deliver is skipped alone),
    // commits the intents with their digests, moves the group into the folder, commits
    // the target UIDs.
    // `final`: the folder's last group, or one with messages that keep no UID: the target's
    // next UID is then raised to the source's.
    Result<void> store(const std::vector<const source::Message*>& group, bool final) {
        std::vector<target::Staged> staged;
        std::vector<MessageRow> intents;
        src_.prefetch(f_, group);
        for (const auto* m : group) {
            Hasher h;
            auto st =
                dst_.stage(m->keep_uid, m->flags, m->when, m->size, [&](const source::Sink& sink) {
                    return src_.read(f_, *m, [&](std::string_view chunk) {
                        h.update(chunk);
                        return sink(chunk);
                    });
                });
            if (!st) {
                if (st.error().scope != Scope::message) {
                    return st.error();
                }
                run_.sum.skipped.push_back(
                    Skipped{plan_.name, m->uid, m->size, st.error().message()});
                continue;
            }
            staged.push_back(std::move(*st));
            MessageRow row;
            row.src_uid = m->uid;
            row.size = m->size;
            row.digest = h.finish();
            row.flags = m->flags;
            row.dst_floor = box_.next_uid;
            row.state = 0;
            intents.push_back(row);
        }
        if (staged.empty()) {
            return {};
        }
        if (auto r = run_.state.put_messages(row_.id, intents); !r) {
            return r;
        }
        auto uids = dst_.commit(staged, keep_validity_, final ? keep_next_ : 0);
        for (auto& n : dst_.take_notes()) {
            run_.sum.notes.push_back(std::move(n));
        }
        if (!uids) {
            // Nothing of the group is in the folder: the intents go, the next run stages again.
            for (const auto& row : intents) {
                (void)run_.state.drop_message(row_.id, row.src_uid);
            }
            return uids.error();
        }
        std::uint64_t bytes = 0;
        for (std::size_t i = 0; i < intents.size(); ++i) {
            intents[i].dst_uid = (*uids)[i];
            intents[i].state = 1;
            bytes += intents[i].size;
        }
        if (auto r = run_.state.put_messages(row_.id, intents); !r) {
            return r;
        }
        for (const auto& row : intents) {
            rows_[row.src_uid] = row;
        }
        run_.sum.messages_copied += intents.size();
        run_.sum.bytes_copied += bytes;
        run_.add(0, 0, intents.size(), bytes, plan_.name);
        if (box_.fresh || row_.dst_uidvalidity != box_.uidvalidity) {
            // A fresh folder took the source's UIDVALIDITY with this first group.
            if (auto r = refresh_box(); !r) {
                return r;
            }
            row_.dst_uidvalidity = box_.uidvalidity;
            return run_.state.update_folder(row_);
        }
        box_.next_uid = std::max(box_.next_uid, uids->empty() ? 0 : uids->back() + 1);
        return {};
    }

    // Maps source messages to target files with the same bytes: the open intents of a
    // killed run (their digests were committed with them; only files at or above their
    // floor can be theirs), or — when a UIDVALIDITY changed (`remap`) — every message
    // against the whole folder.
    Result<void> settle_by_content(const source::FolderContents& c, bool remap) {
        std::uint32_t from = 1;
        if (!remap) {
            from = UINT32_MAX;
            for (const auto& [uid, r] : rows_) {
                if (r.state == 0) {
                    from = std::min(from, std::max<std::uint32_t>(r.dst_floor, 1));
                }
            }
        }
        auto files = dst_.files(from);
        if (!files) {
            return files.error();
        }
        std::map<std::uint32_t, MessageRow> kept;
        std::set<std::uint32_t> taken;
        if (!remap) {
            for (const auto& [uid, r] : rows_) {
                if (r.state != 0) {
                    kept[uid] = r;
                    taken.insert(r.dst_uid);
                }
            }
        }
        // Target files by size; digested only when a source message of that size asks.
        std::map<std::uint64_t, std::vector<std::uint32_t>> by_size;
        std::map<std::uint32_t, std::string> path_of;
        for (const auto& [uid, path] : *files) {
            struct stat st {};
            if (taken.count(uid) == 0 && ::stat(path.c_str(), &st) == 0) {
                by_size[static_cast<std::uint64_t>(st.st_size)].push_back(uid);
                path_of[uid] = path;
            }
        }
        std::map<std::uint32_t, Digest> digests;
        for (const auto& m : c.messages) {
            auto old = rows_.find(m.uid);
            const bool open = old != rows_.end() && old->second.state == 0;
            if ((!remap && !open) || by_size.count(m.size) == 0) {
                continue;
            }
            std::optional<Digest> want;
            if (open && old->second.digest) {
                want = old->second.digest;
            } else {
                auto d = digest_message(src_, f_, m);
                if (!d) {
                    continue; // reported when it is stored
                }
                want = d->digest;
            }
            for (std::uint32_t uid : by_size[m.size]) {
                if (taken.count(uid) != 0) {
                    continue;
                }
                if (digests.count(uid) == 0) {
                    auto d = digest_file(path_of[uid]);
                    if (!d) {
                        continue;
                    }
                    digests[uid] = d->digest;
                }
                if (digests[uid] != *want) {
                    continue;
                }
                MessageRow row;
                row.src_uid = m.uid;
                row.dst_uid = uid;
                row.size = m.size;
                row.digest = want;
                row.state = 1;
                // Unknown ("\x01"): carry_flags() sets them. A commit finished for a killed
                // run (target_maildir.cpp) moved its files in without flags.
                row.flags = kFlagsUnknown;
                taken.insert(uid);
                kept[m.uid] = row;
                ++run_.sum.messages_recovered;
                break;
            }
        }
        if (auto r = run_.state.replace_messages(row_.id, kept); !r) {
            return r;
        }
        rows_ = std::move(kept);
        return {};
    }

    // A copied message whose flags changed at the source since.
    struct FlagTodo {
        MessageRow* row;
        const source::Message* msg;
    };

    // All of the folder's flag changes in one call to the target (one lock, one listing).
    Result<void> carry_flags(const std::vector<FlagTodo>& todo) {
        if (todo.empty()) {
            return {};
        }
        std::vector<target::MaildirFolder::FlagChange> changes;
        for (const auto& t : todo) {
            changes.push_back({t.row->dst_uid, t.msg->flags});
        }
        auto outcomes = dst_.set_flags(changes);
        if (!outcomes) {
            return outcomes.error();
        }
        // One state transaction for the folder, as the target did one fsync for it.
        if (auto b = run_.state.begin(); !b) {
            return b;
        }
        for (std::size_t i = 0; i < todo.size(); ++i) {
            auto& o = (*outcomes)[i];
            const source::Message& m = *todo[i].msg;
            if (o.error) {
                // Deleted on the new server meanwhile: the user's choice stands.
                run_.sum.notes.push_back(plan_.name + ": flags of source UID " +
                                         std::to_string(m.uid) +
                                         " not carried: " + o.error->message());
                continue;
            }
            for (auto& n : o.notes) {
                run_.sum.notes.push_back(std::move(n));
            }
            ++run_.sum.messages_flag_updates;
            todo[i].row->flags = m.flags;
            if (auto r = run_.state.set_flags(row_.id, m.uid, m.flags); !r) {
                run_.state.rollback();
                return r;
            }
        }
        return run_.state.commit();
    }

    AccountRun& run_;
    source::Source& src_;
    const source::Folder& f_;
    const FolderPlan& plan_;
    FolderRow& row_;
    target::MaildirFolder& dst_;
    target::MaildirBox box_;
    std::map<std::uint32_t, MessageRow> rows_;
    std::uint32_t keep_validity_ = 0;
    std::uint32_t keep_next_ = 0;
};

// The tree's folders as plan_folders() wants a target listing ('.' between levels, as
// Dovecot's Maildir++ namespace has it).
Result<Listing> tree_listing(target::MaildirTree& tree) {
    auto names = tree.folders();
    if (!names) {
        return names.error();
    }
    auto subs = tree.subscriptions();
    if (!subs) {
        return subs.error();
    }
    Listing out;
    out.delim = '.';
    for (const auto& wire : *names) {
        Mailbox m;
        m.wire = wire;
        auto utf8 = imap::mutf7_decode(wire);
        m.utf8 = utf8 ? *utf8 : wire;
        std::size_t start = 0;
        for (;;) {
            std::size_t dot = m.utf8.find('.', start);
            m.parts.push_back(m.utf8.substr(start, dot - start));
            if (dot == std::string::npos) {
                break;
            }
            start = dot + 1;
        }
        m.subscribed = subs->count(wire) != 0;
        out.boxes.push_back(std::move(m));
    }
    std::sort(out.boxes.begin(), out.boxes.end(),
              [](const Mailbox& a, const Mailbox& b) { return a.wire < b.wire; });
    return out;
}

// Whether the target gets this subscription. Dovecot's subscriptions file holds any name,
// as the old server's did, so a subscribed \Noselect parent and a subscription to a folder
// that no longer exists are carried too (they were dropped without a word); a folder the
// filters leave out, or whose directory could not be made, is not subscribed.
bool carry_subscription(const FolderPlan& p, const Options& opts,
                        const std::set<std::string>& unusable) {
    if (!p.src.subscribed || p.dst_subscribed || p.dst_wire.empty() ||
        unusable.count(p.dst_wire) != 0) {
        return false;
    }
    if (p.copy || p.dst_exists) {
        return true;
    }
    if (!p.src.noselect) {
        return false; // filtered out
    }
    return std::none_of(
        opts.filters.skip.begin(), opts.filters.skip.end(),
        [&](const std::string& pat) { return ::fnmatch(pat.c_str(), p.name.c_str(), 0) == 0; });
}

} // namespace

Result<Summary> copy_to_maildir(const Endpoint& from, const Endpoint& to, const Options& opts,
                                const ProgressFn& progress, const std::atomic<bool>* cancel) {
    if (to.local.rfind("maildir:", 0) != 0 || to.local.size() <= 8) {
        return make_error("open target \"" + to.local + "\"", "expected maildir:/path",
                          Scope::config);
    }
    Summary sum;
    auto opened = State::open_account(opts.state_path, from.label(), to.label());
    if (!opened) {
        return opened.error();
    }
    State& state = *opened->state;
    const AccountRow& acct = opened->account;
    auto tree = target::open_maildir_tree(to.local.substr(8), to.timeout);
    if (!tree) {
        return tree.error();
    }
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
    auto dst_list = tree_listing(**tree);
    if (!dst_list) {
        return dst_list.error();
    }
    auto plans = plan_folders(list, &*dst_list, '.', opts, sum.notes);
    sum.folders = plans.size();
    SharedProgress shared;
    shared.fn = &progress;
    shared.p.folders_total = plans.size();
    AccountRun run{from, opts, state, sum, shared, cancel, acct.id};

    std::set<std::string> unusable; // target folders that could not be created
    for (const auto& p : plans) {
        if (!p.copy) {
            if (!p.skip_reason.empty()) {
                sum.notes.push_back(p.name + ": " + p.skip_reason);
            }
            continue;
        }
        if (run.canceled()) {
            return make_error("copy " + from.label(), "canceled", Scope::account, Retry::later);
        }
        auto dst = (*tree)->folder(p.dst_wire, true);
        if (!dst) {
            if (!folder_own_failure(dst.error())) {
                return dst.error();
            }
            sum.skipped.push_back(Skipped{p.name, 0, 0, dst.error().message()});
            unusable.insert(p.dst_wire);
            continue;
        }
        sum.folders_created += p.dst_exists ? 0 : 1;
        auto row = run.state.folder(acct.id, p.src.wire, p.dst_wire);
        if (!row) {
            return row.error();
        }
        MaildirFolderCopy fc(run, **src, *by_wire.at(p.src.wire), p, *row, **dst);
        if (auto r = fc.run(); !r) {
            if (!folder_own_failure(r.error())) {
                return r.error();
            }
            sum.skipped.push_back(Skipped{p.name, 0, 0, r.error().message()});
            continue;
        }
        std::lock_guard lock(shared.mu);
        ++shared.p.folders_done;
    }
    // Subscriptions last, so a folder that could not be created is not subscribed.
    std::vector<std::string> subscribe;
    for (const auto& p : plans) {
        if (carry_subscription(p, opts, unusable)) {
            subscribe.push_back(p.dst_wire);
        }
    }
    auto added = (*tree)->subscribe(subscribe);
    if (!added) {
        sum.notes.push_back("subscriptions not copied: " + added.error().message());
    } else {
        sum.subscriptions_added = *added;
    }
    return sum;
}

} // namespace mf::copy
