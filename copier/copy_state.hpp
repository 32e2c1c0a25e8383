// copy_state.hpp — the copier's memory in SQLite: accounts, folders, and per message the
// source UID → target UID map with size, SHA-256, the flags last carried over, and open
// append intents.
//
// Tables (all prefixed copy_, so they can share a file with the engine's store):
//   copy_account(id, src, dst, list_digest, dst_delim)
//   copy_folder(id, account, src_name, dst_name, src_uidvalidity, src_uidnext, src_modseq,
//               dst_uidvalidity, complete, sweep_floor, sweep_until)
//   copy_message(folder, src_uid, dst_uid, size, digest, flags, dst_floor, state)
//   copy_source_key(account, key, uid): UIDs given to POP3 UIDLs and Maildir base names
//   copy_failure(account, folder, uid, size, reason, streak, first_seen, last_seen): what
//     the last run could not copy, and how many runs in a row failed on it that way
// state 0 = intent (APPEND may or may not have happened), 1 = done (dst_uid known),
// 2 = appended, target UID unknown (server without UIDPLUS).
//
// The file is WAL with synchronous=FULL: an intent that was committed survives a power
// cut, which is what makes "never duplicate" hold. Writes are batched by the caller
// with begin()/commit().
// Must never: store a password or message contents. Errors name the file and statement.
#pragma once

#include "mailferry/error.hpp"

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace mf::copy {

using Digest = std::array<unsigned char, 32>;

struct FolderRow {
    std::int64_t id = 0;
    std::string src_name; // source wire name
    std::string dst_name; // target wire name
    std::uint32_t src_uidvalidity = 0;
    std::uint32_t src_uidnext = 0;
    std::uint64_t src_modseq = 0;
    std::uint32_t dst_uidvalidity = 0;
    bool complete = false;
    // Intents of a killed run that were not found on the target and were appended again:
    // a late save of the old APPEND may still show up at or above this UID until
    // sweep_until (unix time); such a twin is removed (see FolderSync::sweep).
    std::uint32_t sweep_floor = 0;
    std::int64_t sweep_until = 0;
};

struct MessageRow {
    std::uint32_t src_uid = 0;
    std::uint32_t dst_uid = 0; // 0: unknown
    std::uint64_t size = 0;
    std::optional<Digest> digest;
    std::string flags; // space-separated, sorted: what the target was last given
    std::uint32_t dst_floor = 0;
    int state = 0; // 0 intent, 1 done, 2 appended (UID unknown)
};

// A message (uid > 0) or folder (uid 0) the last run skipped.
struct FailureRow {
    std::string folder; // UTF-8 source name
    std::uint32_t uid = 0;
    std::uint64_t size = 0;
    std::string reason;
    unsigned streak = 1;         // runs in a row that skipped it for this reason
    std::int64_t first_seen = 0; // unix time of the first of those runs
    std::int64_t last_seen = 0;
};

struct AccountRow {
    std::int64_t id = 0;
    std::string list_digest;
    char dst_delim = '\0';
};

class State {
  public:
    ~State();
    State(const State&) = delete;
    State& operator=(const State&) = delete;

    static Result<std::unique_ptr<State>> open(const std::string& path);
    // For a reader that must leave the file as it is (verify): nothing created, no schema
    // or pragma written; a file that does not exist fails (Scope::config). Writes fail.
    static Result<std::unique_ptr<State>> open_read_only(const std::string& path);

    struct Opened;
    // The file at `path` and the account row of this source and target (Endpoint labels).
    static Result<Opened> open_account(const std::string& path, const std::string& src,
                                       const std::string& dst);

    Result<AccountRow> account(const std::string& src, const std::string& dst);
    // account() without creating the row: nullopt when nothing was copied for this pair.
    Result<std::optional<AccountRow>> find_account(const std::string& src, const std::string& dst);
    Result<void> set_account_list(std::int64_t account, const std::string& digest, char delim);

    Result<std::map<std::string, FolderRow>> folders(std::int64_t account); // by src_name
    // Inserts or returns the folder row; a changed dst_name drops the folder's messages.
    Result<FolderRow> folder(std::int64_t account, const std::string& src_name,
                             const std::string& dst_name);
    Result<void> update_folder(const FolderRow& f);

    Result<std::map<std::uint32_t, MessageRow>> messages(std::int64_t folder);
    Result<void> put_message(std::int64_t folder, const MessageRow& m);
    Result<void> set_flags(std::int64_t folder, std::uint32_t src_uid, const std::string& flags);
    Result<void> drop_message(std::int64_t folder, std::uint32_t src_uid);
    Result<void> drop_messages(std::int64_t folder);
    // These rows, in one transaction (one fsync for a whole group).
    Result<void> put_messages(std::int64_t folder, const std::vector<MessageRow>& rows);
    // The folder's rows become exactly these, in one transaction.
    Result<void> replace_messages(std::int64_t folder,
                                  const std::map<std::uint32_t, MessageRow>& rows);

    // A stable UID for a source that has none (a POP3 UIDL, a Maildir base name): the same
    // key always gets the same UID in this account, a new key the next free one (UIDs are
    // never reused, so callers that key by folder too get unique UIDs per folder).
    Result<std::uint32_t> uid_for_key(std::int64_t account, const std::string& key);
    // uid_for_key() for a reader that must not write (verify): a key never seen gets the
    // UIDs uid_for_key() would give next, remembered in this object only — above every
    // UID given out, so no row of the state file can match it.
    Result<std::uint32_t> peek_uid_for_key(std::int64_t account, const std::string& key);

    // The account's failure list becomes this run's, in one transaction: an item skipped
    // again for the same reason continues its streak, anything else starts at 1, and what
    // this run did not skip is forgotten. Returns `now` with streak and first_seen filled.
    Result<std::vector<FailureRow>> record_failures(std::int64_t account,
                                                    std::vector<FailureRow> now);
    // What the last run skipped (empty for a file written before failures were kept).
    Result<std::vector<FailureRow>> failures(std::int64_t account);

    Result<void> begin();
    Result<void> commit();
    void rollback();

    [[nodiscard]] const std::string& path() const { return path_; }

  private:
    State() = default;
    Result<void> exec(const char* sql);
    // The UID the file gave this key; nullopt when it has none yet.
    Result<std::optional<std::uint32_t>> stored_uid(std::int64_t account, const std::string& key);
    Result<sqlite3_stmt*> prepare(const char* sql);
    Error db_error(const std::string& what) const;

    sqlite3* db_ = nullptr;
    std::string path_;
    std::map<const char*, sqlite3_stmt*> stmts_;
    bool in_tx_ = false;
    std::map<std::pair<std::int64_t, std::string>, std::uint32_t> peeked_;
    std::map<std::int64_t, std::uint32_t> peek_next_; // highest UID peeked, per account
};

struct State::Opened {
    std::unique_ptr<State> state;
    AccountRow account;
};

// SHA-256 while streaming.
class Hasher {
  public:
    Hasher();
    // `nul_as_0x80`: hash each NUL byte as 0x80. Dovecot's BODY[] shows a stored NUL that
    // way, so two servers holding the same bytes can only be compared through it.
    explicit Hasher(bool nul_as_0x80);
    ~Hasher();
    Hasher(const Hasher&) = delete;
    Hasher& operator=(const Hasher&) = delete;
    void update(std::string_view data);
    Digest finish(); // resets for the next message

  private:
    void* ctx_; // EVP_MD_CTX*
    bool nul_as_0x80_ = false;
    std::string mapped_;
};

std::string hex(const Digest& d);

} // namespace mf::copy
