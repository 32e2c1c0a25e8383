// copy_state.cpp — SQLite persistence of the copier's UID maps and intents.
//
// One connection per State, statements prepared once. Durability: WAL + synchronous=FULL
// (an intent committed before an APPEND must survive a crash). Busy databases are waited
// out for 10 s, then the call fails with Retry::later. Must never hold message bytes or
// secrets. Errors read "sqlite <file>: <what>: <sqlite message>".
#include "copy_state.hpp"

#include "file_util.hpp"

#include <algorithm>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mf::copy {

namespace {

constexpr const char* kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS copy_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS copy_account(
  id INTEGER PRIMARY KEY,
  src TEXT NOT NULL,
  dst TEXT NOT NULL,
  list_digest TEXT NOT NULL DEFAULT '',
  dst_delim INTEGER NOT NULL DEFAULT 0,
  UNIQUE(src, dst));
CREATE TABLE IF NOT EXISTS copy_folder(
  id INTEGER PRIMARY KEY,
  account INTEGER NOT NULL REFERENCES copy_account(id),
  src_name TEXT NOT NULL,
  dst_name TEXT NOT NULL,
  src_uidvalidity INTEGER NOT NULL DEFAULT 0,
  src_uidnext INTEGER NOT NULL DEFAULT 0,
  src_modseq INTEGER NOT NULL DEFAULT 0,
  dst_uidvalidity INTEGER NOT NULL DEFAULT 0,
  complete INTEGER NOT NULL DEFAULT 0,
  sweep_floor INTEGER NOT NULL DEFAULT 0,
  sweep_until INTEGER NOT NULL DEFAULT 0,
  UNIQUE(account, src_name));
CREATE TABLE IF NOT EXISTS copy_message(
  folder INTEGER NOT NULL REFERENCES copy_folder(id),
  src_uid INTEGER NOT NULL,
  dst_uid INTEGER,
  size INTEGER NOT NULL,
  digest BLOB,
  flags TEXT NOT NULL DEFAULT '',
  dst_floor INTEGER NOT NULL DEFAULT 0,
  state INTEGER NOT NULL,
  PRIMARY KEY(folder, src_uid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS copy_source_key(
  account INTEGER NOT NULL REFERENCES copy_account(id),
  key TEXT NOT NULL,
  uid INTEGER NOT NULL,
  PRIMARY KEY(account, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS copy_source_key_uid ON copy_source_key(account, uid);
CREATE TABLE IF NOT EXISTS copy_failure(
  account INTEGER NOT NULL REFERENCES copy_account(id),
  folder TEXT NOT NULL,
  uid INTEGER NOT NULL,
  size INTEGER NOT NULL,
  reason TEXT NOT NULL,
  streak INTEGER NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  PRIMARY KEY(account, folder, uid)) WITHOUT ROWID;
INSERT OR IGNORE INTO copy_meta(key, value) VALUES('schema', '1');
)SQL";

} // namespace

State::~State() {
    for (auto& [k, s] : stmts_) {
        sqlite3_finalize(s);
    }
    if (db_ != nullptr) {
        sqlite3_close(db_);
    }
}

Error State::db_error(const std::string& what) const {
    int code = db_ != nullptr ? sqlite3_errcode(db_) : SQLITE_ERROR;
    bool busy = code == SQLITE_BUSY || code == SQLITE_LOCKED;
    return make_error("sqlite " + path_ + ": " + what,
                      db_ != nullptr ? sqlite3_errmsg(db_) : "cannot open", Scope::internal,
                      busy ? Retry::later : Retry::never);
}

Result<std::unique_ptr<State>> State::open(const std::string& path) {
    std::unique_ptr<State> s(new State());
    s->path_ = path;
    // Create the file 0600 ourselves: sqlite would use the umask.
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        return make_error("open state file " + path, errno_text(errno), Scope::config,
                          Retry::never);
    }
    ::close(fd);
    if (sqlite3_open_v2(path.c_str(), &s->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
        return s->db_error("open");
    }
    sqlite3_busy_timeout(s->db_, 10000);
    for (const char* pragma :
         {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
        if (auto r = s->exec(pragma); !r) {
            return r.error();
        }
    }
    // One transaction: on a new file each CREATE would otherwise commit (and fsync the WAL)
    // on its own — a dozen fsyncs, a fixed cost of every first copy of an account.
    if (auto r = s->exec("BEGIN IMMEDIATE"); !r) {
        return r.error();
    }
    if (auto r = s->exec(kSchema); !r) {
        (void)s->exec("ROLLBACK");
        return r.error();
    }
    if (auto r = s->exec("COMMIT"); !r) {
        (void)s->exec("ROLLBACK");
        return r.error();
    }
    return s;
}

Result<std::unique_ptr<State>> State::open_read_only(const std::string& path) {
    std::unique_ptr<State> s(new State());
    s->path_ = path;
    if (::access(path.c_str(), F_OK) != 0) {
        return make_error("open state file " + path, errno_text(errno), Scope::config,
                          Retry::never);
    }
    if (sqlite3_open_v2(path.c_str(), &s->db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
        return s->db_error("open read-only");
    }
    sqlite3_busy_timeout(s->db_, 10000);
    return s;
}

Result<void> State::exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err != nullptr ? err : "?";
        sqlite3_free(err);
        Error e = db_error(std::string("exec ") + std::string(sql).substr(0, 40));
        e.detail = msg;
        return e;
    }
    return {};
}

Result<sqlite3_stmt*> State::prepare(const char* sql) {
    auto it = stmts_.find(sql);
    if (it != stmts_.end()) {
        sqlite3_reset(it->second);
        sqlite3_clear_bindings(it->second);
        return it->second;
    }
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK) {
        return db_error(std::string("prepare ") + std::string(sql).substr(0, 40));
    }
    stmts_[sql] = st;
    return st;
}

Result<State::Opened> State::open_account(const std::string& path, const std::string& src,
                                          const std::string& dst) {
    auto state = open(path);
    if (!state) {
        return state.error();
    }
    auto acct = (*state)->account(src, dst);
    if (!acct) {
        return acct.error();
    }
    return Opened{std::move(*state), *acct};
}

Result<void> State::put_messages(std::int64_t folder, const std::vector<MessageRow>& rows) {
    if (auto b = begin(); !b) {
        return b;
    }
    for (const auto& row : rows) {
        if (auto p = put_message(folder, row); !p) {
            rollback();
            return p;
        }
    }
    return commit();
}

Result<void> State::replace_messages(std::int64_t folder,
                                     const std::map<std::uint32_t, MessageRow>& rows) {
    if (auto b = begin(); !b) {
        return b;
    }
    if (auto r = drop_messages(folder); !r) {
        rollback();
        return r;
    }
    for (const auto& [uid, row] : rows) {
        if (auto p = put_message(folder, row); !p) {
            rollback();
            return p;
        }
    }
    return commit();
}

Result<void> State::begin() {
    if (in_tx_) {
        return {};
    }
    if (auto r = exec("BEGIN IMMEDIATE"); !r) {
        return r;
    }
    in_tx_ = true;
    return {};
}

Result<void> State::commit() {
    if (!in_tx_) {
        return {};
    }
    in_tx_ = false;
    return exec("COMMIT");
}

void State::rollback() {
    if (in_tx_) {
        in_tx_ = false;
        (void)exec("ROLLBACK");
    }
}

namespace {

// Runs a prepared statement to completion (no rows expected).
bool step_done(sqlite3_stmt* st) {
    return sqlite3_step(st) == SQLITE_DONE;
}

std::string col_text(sqlite3_stmt* st, int i) {
    const unsigned char* t = sqlite3_column_text(st, i);
    return t != nullptr ? reinterpret_cast<const char*>(t) : "";
}

} // namespace

Result<AccountRow> State::account(const std::string& src, const std::string& dst) {
    static const char* ins = "INSERT OR IGNORE INTO copy_account(src, dst) VALUES(?, ?)";
    auto st = prepare(ins);
    if (!st) {
        return st.error();
    }
    sqlite3_bind_text(*st, 1, src.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(*st, 2, dst.c_str(), -1, SQLITE_TRANSIENT);
    if (!step_done(*st)) {
        return db_error("insert account");
    }
    auto found = find_account(src, dst);
    if (!found) {
        return found.error();
    }
    if (!*found) {
        return make_error("read account row from " + path_, "the row just written is missing",
                          Scope::internal);
    }
    return **found;
}

Result<std::optional<AccountRow>> State::find_account(const std::string& src,
                                                      const std::string& dst) {
    static const char* sel =
        "SELECT id, list_digest, dst_delim FROM copy_account WHERE src = ? AND dst = ?";
    auto q = prepare(sel);
    if (!q) {
        return q.error();
    }
    sqlite3_bind_text(*q, 1, src.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(*q, 2, dst.c_str(), -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(*q);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(*q);
        return std::optional<AccountRow>{};
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(*q);
        return db_error("select account");
    }
    AccountRow a;
    a.id = sqlite3_column_int64(*q, 0);
    a.list_digest = col_text(*q, 1);
    a.dst_delim = static_cast<char>(sqlite3_column_int(*q, 2));
    sqlite3_reset(*q);
    return std::optional<AccountRow>{a};
}

Result<void> State::set_account_list(std::int64_t account, const std::string& digest, char delim) {
    static const char* sql = "UPDATE copy_account SET list_digest = ?, dst_delim = ? WHERE id = ?";
    auto st = prepare(sql);
    if (!st) {
        return st.error();
    }
    sqlite3_bind_text(*st, 1, digest.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(*st, 2, static_cast<unsigned char>(delim));
    sqlite3_bind_int64(*st, 3, account);
    if (!step_done(*st)) {
        return db_error("update account");
    }
    return {};
}

namespace {

FolderRow read_folder(sqlite3_stmt* q) {
    FolderRow f;
    f.id = sqlite3_column_int64(q, 0);
    f.src_name = col_text(q, 1);
    f.dst_name = col_text(q, 2);
    f.src_uidvalidity = static_cast<std::uint32_t>(sqlite3_column_int64(q, 3));
    f.src_uidnext = static_cast<std::uint32_t>(sqlite3_column_int64(q, 4));
    f.src_modseq = static_cast<std::uint64_t>(sqlite3_column_int64(q, 5));
    f.dst_uidvalidity = static_cast<std::uint32_t>(sqlite3_column_int64(q, 6));
    f.complete = sqlite3_column_int(q, 7) != 0;
    f.sweep_floor = static_cast<std::uint32_t>(sqlite3_column_int64(q, 8));
    f.sweep_until = sqlite3_column_int64(q, 9);
    return f;
}

constexpr const char* kFolderCols =
    "id, src_name, dst_name, src_uidvalidity, src_uidnext, "
    "src_modseq, dst_uidvalidity, complete, sweep_floor, sweep_until";

} // namespace

Result<std::map<std::string, FolderRow>> State::folders(std::int64_t account) {
    static const std::string sql =
        std::string("SELECT ") + kFolderCols + " FROM copy_folder WHERE account = ?";
    auto q = prepare(sql.c_str());
    if (!q) {
        return q.error();
    }
    sqlite3_bind_int64(*q, 1, account);
    std::map<std::string, FolderRow> out;
    int rc = 0;
    while ((rc = sqlite3_step(*q)) == SQLITE_ROW) {
        FolderRow f = read_folder(*q);
        out[f.src_name] = f;
    }
    if (rc != SQLITE_DONE) {
        return db_error("select folders");
    }
    return out;
}

Result<FolderRow> State::folder(std::int64_t account, const std::string& src_name,
                                const std::string& dst_name) {
    static const std::string sel = std::string("SELECT ") + kFolderCols +
                                   " FROM copy_folder WHERE account = ? AND src_name = ?";
    auto q = prepare(sel.c_str());
    if (!q) {
        return q.error();
    }
    sqlite3_bind_int64(*q, 1, account);
    sqlite3_bind_text(*q, 2, src_name.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(*q) == SQLITE_ROW) {
        FolderRow f = read_folder(*q);
        sqlite3_reset(*q);
        if (f.dst_name == dst_name) {
            return f;
        }
        // The folder now goes somewhere else (rename map changed): start it afresh.
        if (auto r = drop_messages(f.id); !r) {
            return r.error();
        }
        f.dst_name = dst_name;
        f.src_uidvalidity = f.src_uidnext = f.dst_uidvalidity = 0;
        f.src_modseq = 0;
        f.complete = false;
        if (auto r = update_folder(f); !r) {
            return r.error();
        }
        return f;
    }
    sqlite3_reset(*q);
    static const char* ins = "INSERT INTO copy_folder(account, src_name, dst_name) VALUES(?, ?, ?)";
    auto st = prepare(ins);
    if (!st) {
        return st.error();
    }
    sqlite3_bind_int64(*st, 1, account);
    sqlite3_bind_text(*st, 2, src_name.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(*st, 3, dst_name.c_str(), -1, SQLITE_TRANSIENT);
    if (!step_done(*st)) {
        return db_error("insert folder");
    }
    FolderRow f;
    f.id = sqlite3_last_insert_rowid(db_);
    f.src_name = src_name;
    f.dst_name = dst_name;
    return f;
}

Result<void> State::update_folder(const FolderRow& f) {
    static const char* sql =
        "UPDATE copy_folder SET dst_name = ?, src_uidvalidity = ?, src_uidnext = ?, "
        "src_modseq = ?, dst_uidvalidity = ?, complete = ?, sweep_floor = ?, sweep_until = ? "
        "WHERE id = ?";
    auto st = prepare(sql);
    if (!st) {
        return st.error();
    }
    sqlite3_bind_text(*st, 1, f.dst_name.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(*st, 2, f.src_uidvalidity);
    sqlite3_bind_int64(*st, 3, f.src_uidnext);
    sqlite3_bind_int64(*st, 4, static_cast<sqlite3_int64>(f.src_modseq));
    sqlite3_bind_int64(*st, 5, f.dst_uidvalidity);
    sqlite3_bind_int(*st, 6, f.complete ? 1 : 0);
    sqlite3_bind_int64(*st, 7, f.sweep_floor);
    sqlite3_bind_int64(*st, 8, f.sweep_until);
    sqlite3_bind_int64(*st, 9, f.id);
    if (!step_done(*st)) {
        return db_error("update folder");
    }
    return {};
}

Result<std::map<std::uint32_t, MessageRow>> State::messages(std::int64_t folder) {
    static const char* sql = "SELECT src_uid, dst_uid, size, digest, flags, dst_floor, state "
                             "FROM copy_message WHERE folder = ?";
    auto q = prepare(sql);
    if (!q) {
        return q.error();
    }
    sqlite3_bind_int64(*q, 1, folder);
    std::map<std::uint32_t, MessageRow> out;
    int rc = 0;
    while ((rc = sqlite3_step(*q)) == SQLITE_ROW) {
        MessageRow m;
        m.src_uid = static_cast<std::uint32_t>(sqlite3_column_int64(*q, 0));
        m.dst_uid = static_cast<std::uint32_t>(sqlite3_column_int64(*q, 1));
        m.size = static_cast<std::uint64_t>(sqlite3_column_int64(*q, 2));
        if (sqlite3_column_bytes(*q, 3) == 32) {
            Digest d;
            std::memcpy(d.data(), sqlite3_column_blob(*q, 3), 32);
            m.digest = d;
        }
        m.flags = col_text(*q, 4);
        m.dst_floor = static_cast<std::uint32_t>(sqlite3_column_int64(*q, 5));
        m.state = sqlite3_column_int(*q, 6);
        out[m.src_uid] = std::move(m);
    }
    if (rc != SQLITE_DONE) {
        return db_error("select messages");
    }
    return out;
}

Result<void> State::put_message(std::int64_t folder, const MessageRow& m) {
    static const char* sql =
        "INSERT OR REPLACE INTO copy_message(folder, src_uid, dst_uid, size, digest, flags, "
        "dst_floor, state) VALUES(?, ?, ?, ?, ?, ?, ?, ?)";
    auto st = prepare(sql);
    if (!st) {
        return st.error();
    }
    sqlite3_bind_int64(*st, 1, folder);
    sqlite3_bind_int64(*st, 2, m.src_uid);
    if (m.dst_uid != 0) {
        sqlite3_bind_int64(*st, 3, m.dst_uid);
    } else {
        sqlite3_bind_null(*st, 3);
    }
    sqlite3_bind_int64(*st, 4, static_cast<sqlite3_int64>(m.size));
    if (m.digest) {
        sqlite3_bind_blob(*st, 5, m.digest->data(), 32, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_null(*st, 5);
    }
    sqlite3_bind_text(*st, 6, m.flags.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(*st, 7, m.dst_floor);
    sqlite3_bind_int(*st, 8, m.state);
    if (!step_done(*st)) {
        return db_error("write message row");
    }
    return {};
}

Result<void> State::set_flags(std::int64_t folder, std::uint32_t src_uid,
                              const std::string& flags) {
    static const char* sql = "UPDATE copy_message SET flags = ? WHERE folder = ? AND src_uid = ?";
    auto st = prepare(sql);
    if (!st) {
        return st.error();
    }
    sqlite3_bind_text(*st, 1, flags.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(*st, 2, folder);
    sqlite3_bind_int64(*st, 3, src_uid);
    if (!step_done(*st)) {
        return db_error("update flags");
    }
    return {};
}

Result<void> State::drop_message(std::int64_t folder, std::uint32_t src_uid) {
    static const char* sql = "DELETE FROM copy_message WHERE folder = ? AND src_uid = ?";
    auto st = prepare(sql);
    if (!st) {
        return st.error();
    }
    sqlite3_bind_int64(*st, 1, folder);
    sqlite3_bind_int64(*st, 2, src_uid);
    if (!step_done(*st)) {
        return db_error("delete message row");
    }
    return {};
}

Result<void> State::drop_messages(std::int64_t folder) {
    static const char* sql = "DELETE FROM copy_message WHERE folder = ?";
    auto st = prepare(sql);
    if (!st) {
        return st.error();
    }
    sqlite3_bind_int64(*st, 1, folder);
    if (!step_done(*st)) {
        return db_error("delete folder messages");
    }
    return {};
}

Result<std::optional<std::uint32_t>> State::stored_uid(std::int64_t account,
                                                       const std::string& key) {
    static const char* get = "SELECT uid FROM copy_source_key WHERE account = ? AND key = ?";
    auto q = prepare(get);
    if (!q) {
        return q.error();
    }
    sqlite3_bind_int64(*q, 1, account);
    sqlite3_bind_text(*q, 2, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
    int rc = sqlite3_step(*q);
    if (rc == SQLITE_ROW) {
        auto uid = static_cast<std::uint32_t>(sqlite3_column_int64(*q, 0));
        sqlite3_reset(*q);
        return std::optional<std::uint32_t>(uid);
    }
    sqlite3_reset(*q);
    if (rc != SQLITE_DONE) {
        return db_error("read source key");
    }
    return std::optional<std::uint32_t>();
}

Result<std::uint32_t> State::uid_for_key(std::int64_t account, const std::string& key) {
    auto stored = stored_uid(account, key);
    if (!stored) {
        return stored.error();
    }
    if (*stored) {
        return **stored;
    }
    static const char* put = "INSERT INTO copy_source_key(account, key, uid) SELECT ?, ?, "
                             "COALESCE(MAX(uid), 0) + 1 FROM copy_source_key WHERE account = ?1";
    auto st = prepare(put);
    if (!st) {
        return st.error();
    }
    sqlite3_bind_int64(*st, 1, account);
    sqlite3_bind_text(*st, 2, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
    if (!step_done(*st)) {
        return db_error("store source key");
    }
    return uid_for_key(account, key);
}

Result<std::uint32_t> State::peek_uid_for_key(std::int64_t account, const std::string& key) {
    auto known = peeked_.find({account, key});
    if (known != peeked_.end()) {
        return known->second;
    }
    auto stored = stored_uid(account, key);
    if (!stored) {
        return stored.error();
    }
    if (*stored) {
        return **stored;
    }
    auto next = peek_next_.find(account);
    if (next == peek_next_.end()) {
        static const char* max =
            "SELECT COALESCE(MAX(uid), 0) FROM copy_source_key WHERE account = ?";
        auto m = prepare(max);
        if (!m) {
            return m.error();
        }
        sqlite3_bind_int64(*m, 1, account);
        if (sqlite3_step(*m) != SQLITE_ROW) {
            sqlite3_reset(*m);
            return db_error("read highest source key UID");
        }
        auto top = static_cast<std::uint32_t>(sqlite3_column_int64(*m, 0));
        sqlite3_reset(*m);
        next = peek_next_.emplace(account, top).first;
    }
    return peeked_[{account, key}] = ++next->second;
}

// ---- Hasher -----------------------------------------------------------------------------

Hasher::Hasher() : Hasher(false) {}

Hasher::Hasher(bool nul_as_0x80) : ctx_(EVP_MD_CTX_new()), nul_as_0x80_(nul_as_0x80) {
    EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
}

Hasher::~Hasher() {
    EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
}

void Hasher::update(std::string_view data) {
    if (nul_as_0x80_ && data.find('\0') != std::string_view::npos) {
        mapped_.assign(data);
        std::replace(mapped_.begin(), mapped_.end(), '\0', '\x80');
        data = mapped_;
    }
    EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
}

Digest Hasher::finish() {
    Digest d{};
    unsigned int n = 0;
    EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), d.data(), &n);
    EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
    return d;
}

std::string hex(const Digest& d) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s;
    s.reserve(64);
    for (unsigned char c : d) {
        s.push_back(kHex[c >> 4]);
        s.push_back(kHex[c & 15]);
    }
    return s;
}

Result<std::vector<FailureRow>> State::failures(std::int64_t account) {
    static const char* sql = "SELECT folder, uid, size, reason, streak, first_seen, last_seen "
                             "FROM copy_failure WHERE account = ? ORDER BY folder, uid";
    std::vector<FailureRow> out;
    auto q = prepare(sql);
    if (!q) {
        // A read-only look at a file from before failures were kept: nothing to report.
        if (q.error().detail.find("no such table") != std::string::npos) {
            return out;
        }
        return q.error();
    }
    sqlite3_bind_int64(*q, 1, account);
    int rc = 0;
    while ((rc = sqlite3_step(*q)) == SQLITE_ROW) {
        FailureRow f;
        f.folder = reinterpret_cast<const char*>(sqlite3_column_text(*q, 0));
        f.uid = static_cast<std::uint32_t>(sqlite3_column_int64(*q, 1));
        f.size = static_cast<std::uint64_t>(sqlite3_column_int64(*q, 2));
        f.reason = reinterpret_cast<const char*>(sqlite3_column_text(*q, 3));
        f.streak = static_cast<unsigned>(sqlite3_column_int64(*q, 4));
        f.first_seen = sqlite3_column_int64(*q, 5);
        f.last_seen = sqlite3_column_int64(*q, 6);
        out.push_back(std::move(f));
    }
    sqlite3_reset(*q);
    if (rc != SQLITE_DONE) {
        return db_error("read skipped items");
    }
    return out;
}

Result<std::vector<FailureRow>> State::record_failures(std::int64_t account,
                                                       std::vector<FailureRow> now) {
    auto before = failures(account);
    if (!before) {
        return before.error();
    }
    std::map<std::pair<std::string, std::uint32_t>, const FailureRow*> old;
    for (const auto& f : *before) {
        old[{f.folder, f.uid}] = &f;
    }
    const std::int64_t t = std::time(nullptr);
    for (auto& f : now) {
        auto it = old.find({f.folder, f.uid});
        const bool again = it != old.end() && it->second->reason == f.reason;
        f.streak = again ? it->second->streak + 1 : 1;
        f.first_seen = again ? it->second->first_seen : t;
        f.last_seen = t;
    }
    static const char* del = "DELETE FROM copy_failure WHERE account = ?";
    static const char* put =
        "INSERT OR REPLACE INTO copy_failure(account, folder, uid, size, reason, streak, "
        "first_seen, last_seen) VALUES(?, ?, ?, ?, ?, ?, ?, ?)";
    if (auto b = begin(); !b) {
        return b.error();
    }
    auto d = prepare(del);
    if (!d) {
        rollback();
        return d.error();
    }
    sqlite3_bind_int64(*d, 1, account);
    if (!step_done(*d)) {
        rollback();
        return db_error("forget skipped items");
    }
    for (const auto& f : now) {
        auto q = prepare(put);
        if (!q) {
            rollback();
            return q.error();
        }
        sqlite3_bind_int64(*q, 1, account);
        sqlite3_bind_text(*q, 2, f.folder.data(), static_cast<int>(f.folder.size()),
                          SQLITE_TRANSIENT);
        sqlite3_bind_int64(*q, 3, f.uid);
        sqlite3_bind_int64(*q, 4, static_cast<std::int64_t>(f.size));
        sqlite3_bind_text(*q, 5, f.reason.data(), static_cast<int>(f.reason.size()),
                          SQLITE_TRANSIENT);
        sqlite3_bind_int64(*q, 6, f.streak);
        sqlite3_bind_int64(*q, 7, f.first_seen);
        sqlite3_bind_int64(*q, 8, f.last_seen);
        if (!step_done(*q)) {
            rollback();
            return db_error("record a skipped item");
        }
    }
    if (auto c = commit(); !c) {
        return c.error();
    }
    return now;
}

} // namespace mf::copy
