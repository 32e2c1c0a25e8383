// spool.hpp — the sealed credential spool: passwords for the copier, readable only by it.
//
// After a first login the login side seals the verified password with libsodium's sealed
// box (crypto_box_seal: X25519 + XSalsa20-Poly1305, an ephemeral sender key) to the
// spool's PUBLIC key and writes it as one file per account in the spool directory. Only
// the worker holds the SECRET key (a 0600 file of its own user) and can open an entry; the
// login side can write entries but never read one back. The account name is sealed with
// the password, so an entry copied onto another account's file is refused.
//
// Entry file: "MFS1" | key id (8 bytes, BLAKE2b of the public key) | sealed box of
//             (u16 big-endian account length | account | password).
// Key files:  one line, "mailferry-spool-public-v1 <base64 key>" or
//             "mailferry-spool-secret-v1 <base64 secret key>".
//
// Must never: write a plain password anywhere, keep an opened password outside a Secret,
// return a password for an entry that fails authentication, or skip a bad entry silently.
// Errors: a missing or malformed key file is Scope::config naming the file; an entry that
// is truncated, tampered with, sealed to another key or to another account is
// Scope::account, Retry::never, with a message that says which; I/O errors are
// Retry::later.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/error.hpp"
#include "mailferry/secret.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace mf::spool {

inline constexpr std::size_t kPublicKeyBytes = 32;
inline constexpr std::size_t kSecretKeyBytes = 32;
inline constexpr std::size_t kMaxEntryBytes = 4096;

// Reads a small file holding a secret (a key, a master password) without leaving copies
// in memory that is not wiped. Errors: Scope::config, "open(PATH) failed: reason".
Result<Secret> read_secret_file(const std::string& path, std::size_t max_bytes);

// Reads a secret file an admin hands a command (`mailferry account password
// --password-file`): a regular file, not a symbolic link, owned by the calling user, with
// no permission for group or others (0600 or stricter), checked on the open descriptor
// so the file cannot be swapped in between (spool_private_file.cpp). Errors: Scope::config
// naming the file, its mode or owner, and the fix.
Result<Secret> read_private_secret_file(const std::string& path, std::size_t max_bytes);

// 16 hex digits naming a key pair (BLAKE2b-64 of the public key); shown in errors.
std::string key_id_of(const std::array<unsigned char, kPublicKeyBytes>& pk);

// What the login side holds. Thread-safe; re-reads the file when it changes on disk, so
// a long-running mail server picks up `mailferry keys rotate`.
class Sealer {
  public:
    explicit Sealer(std::string public_key_file) : path_(std::move(public_key_file)) {}

    // The sealed entry bytes for `account` (header included).
    Result<std::string> seal(const std::string& account, const Secret& password);
    // The same with a key in hand.
    static Result<std::string> seal_with(const std::array<unsigned char, kPublicKeyBytes>& pk,
                                         const std::string& account, const Secret& password);
    // The id of the key the next seal() uses (loads the file if needed).
    Result<std::string> key_id();

  private:
    Result<void> load_locked();

    std::string path_;
    std::mutex mu_;
    bool loaded_ = false;
    ino_t ino_ = 0;
    struct timespec mtime_ {};
    std::array<unsigned char, kPublicKeyBytes> pk_{};
};

// What the worker holds: the current secret key and, if present, FILE.previous (kept by
// `keys rotate` so entries sealed by a login side that had not yet re-read the public
// key still open). Secret bytes live in sodium_malloc'd memory, wiped when this dies.
class Opener {
  public:
    // Loads secret_key_file (and secret_key_file + ".previous" if it exists). Refuses a
    // key file that others may read.
    static Result<Opener> load(const std::string& secret_key_file);

    Opener(Opener&&) noexcept;
    Opener& operator=(Opener&&) noexcept;
    Opener(const Opener&) = delete;
    Opener& operator=(const Opener&) = delete;
    ~Opener();

    // Opens an entry meant for `account`; `where` (a file name) goes into errors.
    [[nodiscard]] Result<Secret> open(const std::string& account, std::string_view entry,
                                      const std::string& where) const;
    [[nodiscard]] std::string key_id() const; // of the current key
    [[nodiscard]] const std::array<unsigned char, kPublicKeyBytes>& public_key() const;
    // Seals to the current key (the worker moving an entry off FILE.previous).
    [[nodiscard]] Result<std::string> seal_to_current(const std::string& account,
                                                      const Secret& password) const;
    // True when `entry` is sealed to the current key (not .previous, not foreign).
    [[nodiscard]] bool is_current(std::string_view entry) const;

    struct Key;

  private:
    Opener() = default;
    std::vector<std::unique_ptr<Key>> keys_; // [0] is the current key
    std::string path_;
};

// The directory of entries. Thread-safe (each call works on one file).
class Spool {
  public:
    explicit Spool(std::string dir) : dir_(std::move(dir)) {}

    [[nodiscard]] const std::string& dir() const { return dir_; }
    // dir/<account, with bytes outside [A-Za-z0-9._@+-] as %XX>.sealed
    [[nodiscard]] std::string path_for(const std::string& account) const;

    // Writes (replaces) the entry atomically: temp file 0660 in the directory, fsync,
    // rename. Creates the directory (2770) if missing.
    Result<void> put(const std::string& account, std::string_view sealed) const;
    // The raw entry; nullopt when there is none.
    Result<std::optional<std::string>> get(const std::string& account) const;
    // Deletes the entry; no entry is not an error.
    Result<void> remove(const std::string& account) const;
    // Accounts that have an entry.
    Result<std::vector<std::string>> list() const;

  private:
    std::string dir_;
};

// Seals and stores in one step (the login side).
Result<void> store_password(Sealer& sealer, const Spool& spool, const std::string& account,
                            const Secret& password);
// Reads and opens in one step (the worker). No entry: Scope::account, Retry::never,
// "no sealed password for ACCOUNT in DIR".
Result<Secret> load_password(const Opener& opener, const Spool& spool, const std::string& account);

// ---- key management (`mailferry keys`) ----

struct KeyFiles {
    std::string public_key_file;
    std::string secret_key_file;
    // When set (running as root): chown the secret key to this uid/gid, the public key to
    // root:gid. Otherwise files belong to the caller.
    std::optional<uid_t> owner_uid;
    std::optional<gid_t> owner_gid;
};

// Makes a new pair: secret 0600, public 0644. Refuses to replace an existing key file
// unless `force`. Returns the new key id.
Result<std::string> generate_keys(const KeyFiles& files, bool force);

struct RotateReport {
    std::string old_key_id;
    std::string new_key_id;
    std::size_t resealed = 0;        // entries moved to the new key
    std::size_t current = 0;         // already on the new key
    std::vector<std::string> failed; // "ACCOUNT: reason" — left as they were
};

// Holds the account's login lock while an entry is rewritten, so a fresh login's entry is
// never overwritten by an older one; the returned handle releases it.
using AccountLock = std::function<Result<std::shared_ptr<void>>(const std::string& account)>;

// Makes a new pair and re-seals every pending entry to it. Crash-safe: the new pair is
// written first as FILE.next (reused if a rotation was interrupted), entries are replaced
// one by one, then the secret key moves to FILE.previous and the new pair takes the
// files' names, and entries sealed meanwhile to the old key are re-sealed once more.
// An entry that cannot be opened is left as it was and listed in `failed`.
Result<RotateReport> rotate_keys(const KeyFiles& files, const Spool& spool,
                                 const AccountLock& lock = {});

} // namespace mf::spool
