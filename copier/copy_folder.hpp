// copy_folder.hpp — the per-account copy context and the per-folder sync.
//
// CopyContext holds the two sessions (reconnected on demand), the state file, the running
// summary and progress. FolderSync brings one target folder up to date with one source
// folder: UIDVALIDITY checks, open intents resolved from the target's content, flag
// changes carried, new messages streamed FETCH → APPEND with both sides pipelined.
//
// Must never: send an APPEND whose intent is not committed, complete an APPEND with bytes
// that did not come from the source (a broken source closes the target mid-literal), or
// record a target UID it did not get from the target.
// Errors: run() fails with Retry::later for connection trouble (the caller reconnects
// and runs the folder again; progress is kept); message-level problems go to the summary.
#pragma once

#include "copy_internal.hpp"

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <utility>

namespace mf::copy::detail {

// Progress of one account, shared by its worker threads.
struct SharedProgress {
    std::mutex mu;
    Progress p;
    const ProgressFn* fn = nullptr;
};

struct CopyContext {
    const Endpoint& from;
    const Endpoint& to;
    const Options& opts;
    State& state;
    Summary& summary;
    SharedProgress& progress;
    const std::atomic<bool>* cancel;
    std::atomic<bool>* stop = nullptr; // set by a sibling worker that hit a fatal error
    // How long to wait for a free per-server connection slot (default: the timeout).
    std::optional<std::chrono::milliseconds> slot_wait;

    std::unique_ptr<imap::Client> src;
    std::unique_ptr<imap::Client> dst;
    std::string dst_selected; // wire name selected on the target connection

    // Messages that failed in this run (source UID per folder id) and why: not retried
    // again in this run, reported in the summary once.
    std::map<std::pair<std::int64_t, std::uint32_t>, std::string> poisoned;
    // The message being fetched when a source connection broke, and how often.
    std::map<std::pair<std::int64_t, std::uint32_t>, int> suspects;

    CopyContext(const Endpoint& f, const Endpoint& t, const Options& o, State& s, Summary& sum,
                SharedProgress& p, const std::atomic<bool>* c)
        : from(f), to(t), opts(o), state(s), summary(sum), progress(p), cancel(c) {}

    Result<void> ensure_src();
    Result<void> ensure_dst();
    void drop_src() { src.reset(); }
    void drop_dst() {
        dst.reset();
        dst_selected.clear();
    }
    [[nodiscard]] bool canceled() const {
        return (cancel != nullptr && cancel->load()) || (stop != nullptr && stop->load());
    }
    void add_total(std::uint64_t msgs, std::uint64_t bytes) {
        std::lock_guard lock(progress.mu);
        progress.p.messages_total += msgs;
        progress.p.bytes_total += bytes;
    }
    void add_done(std::uint64_t msgs, std::uint64_t bytes, const std::string* folder = nullptr,
                  std::size_t folders = 0) {
        std::lock_guard lock(progress.mu);
        progress.p.messages_done += msgs;
        progress.p.bytes_done += bytes;
        progress.p.folders_done += folders;
        if (folder != nullptr) {
            progress.p.folder = *folder;
        }
        if (progress.fn != nullptr && *progress.fn) {
            (*progress.fn)(progress.p);
        }
    }
};

// CREATEs the planned folders the target lacks (parents first) and SUBSCRIBEs what the
// source subscribes, pipelined. A refused CREATE turns the plan's copy off and is listed
// in sum.skipped; a refused SUBSCRIBE is a note.
Result<void> create_and_subscribe(CopyContext& ctx, std::vector<FolderPlan>& plans, Summary& sum);

} // namespace mf::copy::detail

namespace mf::copy {
// copy_account() for Endpoint::local sources (copy_local.cpp).
Result<Summary> copy_local(const Endpoint& from, const Endpoint& to, const Options& opts,
                           const ProgressFn& progress, const std::atomic<bool>* cancel);
// copy_account() to a Maildir of ours (Endpoint::local = "maildir:/path"; copy_maildir.cpp).
Result<Summary> copy_to_maildir(const Endpoint& from, const Endpoint& to, const Options& opts,
                                const ProgressFn& progress, const std::atomic<bool>* cancel);
// verify_account() when the source or the target is not IMAP (copy_verify_sources.cpp).
Result<VerifyReport> verify_sources(const Endpoint& from, const Endpoint& to, const Options& opts,
                                    const ProgressFn& progress, const std::atomic<bool>* cancel);
} // namespace mf::copy

namespace mf::copy::detail {

// Records a mismatch of the folder being checked: source UID, target UID, what.
using MismatchFn = std::function<void(std::uint32_t, std::uint32_t, const char*)>;
using FolderCheck =
    std::function<Result<void>(const FolderPlan&, const MismatchFn&, Progress& prog)>;

// The folder loop both verify paths share: `check` for every folder the copy takes, with
// progress reported and `cancel` polled between folders (`check` may add message progress
// to `prog`); its first error ends the loop.
Result<void> verify_folders(const std::vector<FolderPlan>& plans, VerifyReport& rep,
                            const ProgressFn& progress, const std::atomic<bool>* cancel,
                            const FolderCheck& check);

class FolderSync {
  public:
    FolderSync(CopyContext& ctx, const FolderPlan& plan, FolderRow& row)
        : ctx_(ctx), plan_(plan), row_(row) {}

    Result<void> run();

  private:
    Result<void> load_source(bool& remap);
    Result<void> settle_target();
    Result<void> sweep();
    Result<void> reconcile(std::vector<std::uint32_t> src_uids, std::uint32_t dst_floor,
                           bool whole_target);
    Result<void> carry_flags();
    Result<void> copy_new(std::vector<const MsgMeta*> todo, bool single_only = false);
    Result<void> select_dst();
    // Asks the target what it stored for the messages appended this run and notes every
    // one it changed (a date it would not take, bytes it dropped).
    Result<void> check_stored(const std::vector<std::uint32_t>& sent);
    void skip(std::uint32_t uid, std::uint64_t size, const std::string& reason);

    CopyContext& ctx_;
    const FolderPlan& plan_;
    FolderRow& row_;
    BoxStatus src_status_;
    BoxStatus dst_status_;
    std::map<std::uint32_t, MessageRow> rows_;
    std::map<std::uint32_t, MsgMeta> meta_; // source messages seen in this run
    bool full_meta_ = false;                // meta_ holds every source message
    bool failures_ = false;                 // something in this folder was skipped
    std::uint32_t dropped_floor_ = 0;       // lowest floor of intents appended again
};

} // namespace mf::copy::detail
