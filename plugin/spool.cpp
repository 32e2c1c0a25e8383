// spool.cpp — sealing, opening and storing spool entries (see include/mailferry/spool.hpp).
//
// Must never: let a plain password or a secret key into a std::string that is not wiped,
// write an entry or key file in place (always temp file, fsync, rename), or accept an
// entry whose authentication fails.
// Errors: key files → Scope::config naming the file; bad entries → Scope::account,
// Retry::never; file system trouble → Retry::later.
#include "mailferry/spool.hpp"

#include "file_util.hpp"
#include "spool_io.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mf::spool {
namespace {

constexpr char kMagic[4] = {'M', 'F', 'S', '1'};
constexpr std::size_t kIdBytes = 8;
constexpr std::size_t kHeaderBytes = sizeof kMagic + kIdBytes;
constexpr const char* kPublicTag = "mailferry-spool-public-v1";
constexpr const char* kSecretTag = "mailferry-spool-secret-v1";

// Wipes a buffer that held a secret when it goes out of scope.
struct WipeOnExit {
    void* p;
    std::size_t n;
    WipeOnExit(void* ptr, std::size_t len) : p(ptr), n(len) {}
    ~WipeOnExit() { wipe(p, n); }
    WipeOnExit(const WipeOnExit&) = delete;
    WipeOnExit& operator=(const WipeOnExit&) = delete;
};

std::string hex(const unsigned char* p, std::size_t n) {
    static const char* d = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
        out += d[p[i] >> 4];
        out += d[p[i] & 15];
    }
    return out;
}

std::array<unsigned char, kIdBytes> raw_id(const unsigned char* pk) {
    std::array<unsigned char, kIdBytes> id{};
    crypto_generichash(id.data(), id.size(), pk, kPublicKeyBytes, nullptr, 0);
    return id;
}

Error key_error(const std::string& path, std::string detail) {
    return make_error("spool key " + path, std::move(detail), Scope::config);
}

// "TAG <base64>\n" → exactly `n` bytes into `out`. The text is the caller's to wipe.
Result<void> parse_key_line(const std::string& path, std::string_view text, const char* tag,
                            unsigned char* out, std::size_t n) {
    std::string_view t(text);
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) {
        t.remove_suffix(1);
    }
    std::string_view want(tag);
    if (t.size() <= want.size() + 1 || t.substr(0, want.size()) != want || t[want.size()] != ' ') {
        return key_error(path, std::string("not a mailferry spool key: expected a line \"") + tag +
                                   " <base64>\" (made by `mailferry keys init`)");
    }
    std::string_view b64 = t.substr(want.size() + 1);
    std::size_t got = 0;
    const char* end = nullptr;
    if (sodium_base642bin(out, n, b64.data(), b64.size(), nullptr, &got, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        got != n || end != b64.data() + b64.size()) {
        return key_error(path, "the key is not " + std::to_string(n) + " bytes of base64");
    }
    return {};
}

std::string key_line(const char* tag, const unsigned char* key, std::size_t n) {
    std::string b64(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(b64.data(), b64.size(), key, n, sodium_base64_VARIANT_ORIGINAL);
    b64.resize(std::strlen(b64.c_str()));
    std::string line = std::string(tag) + " " + b64 + "\n";
    wipe(b64.data(), b64.size());
    return line;
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

Result<void> init_sodium() {
    if (sodium_init() < 0) {
        return make_error("initialise libsodium", "sodium_init() failed", Scope::internal);
    }
    return {};
}

} // namespace

Result<Secret> read_secret_file(const std::string& path, std::size_t max_bytes) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return make_error("open(" + path + ") failed", errno_text(errno), Scope::config);
    }
    // Read into memory that is wiped, not through a stack buffer that is not.
    std::vector<char> buf(max_bytes + 1);
    WipeOnExit w{buf.data(), buf.size()};
    std::size_t got = 0;
    for (;;) {
        ssize_t n = ::read(fd, buf.data() + got, buf.size() - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int e = errno;
            ::close(fd);
            return make_error("read(" + path + ") failed", errno_text(e), Scope::config);
        }
        if (n == 0) {
            break;
        }
        got += static_cast<std::size_t>(n);
        if (got > max_bytes) {
            ::close(fd);
            return make_error("read(" + path + ") failed",
                              "file is larger than " + std::to_string(max_bytes) + " bytes",
                              Scope::config);
        }
    }
    ::close(fd);
    return Secret(buf.data(), got);
}

std::string key_id_of(const std::array<unsigned char, kPublicKeyBytes>& pk) {
    auto id = raw_id(pk.data());
    return hex(id.data(), id.size());
}

// ---- the login side ----

Result<void> Sealer::load_locked() {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) {
        return key_error(path_, "cannot read the public key: " + errno_text(errno) +
                                    " (create the pair with `mailferry keys init`)");
    }
    if (loaded_ && st.st_ino == ino_ && st.st_mtim.tv_sec == mtime_.tv_sec &&
        st.st_mtim.tv_nsec == mtime_.tv_nsec) {
        return {};
    }
    auto text = read_file(path_, 1024);
    if (!text) {
        return key_error(path_, "cannot read the public key: " + text.error().message());
    }
    if (auto r = parse_key_line(path_, *text, kPublicTag, pk_.data(), pk_.size()); !r) {
        if (text->rfind(kSecretTag, 0) == 0) {
            wipe(text->data(), text->size());
            return key_error(path_, "this is a SECRET key; public_key_file must name the "
                                    "public one (.pub)");
        }
        return r;
    }
    loaded_ = true;
    ino_ = st.st_ino;
    mtime_ = st.st_mtim;
    return {};
}

Result<std::string> Sealer::key_id() {
    std::lock_guard lock(mu_);
    if (auto r = load_locked(); !r) {
        return r.error();
    }
    return key_id_of(pk_);
}

Result<std::string> Sealer::seal(const std::string& account, const Secret& password) {
    std::array<unsigned char, kPublicKeyBytes> pk{};
    {
        std::lock_guard lock(mu_);
        if (auto r = load_locked(); !r) {
            return r.error();
        }
        pk = pk_;
    }
    return seal_with(pk, account, password);
}

Result<std::string> Sealer::seal_with(const std::array<unsigned char, kPublicKeyBytes>& pk,
                                      const std::string& account, const Secret& password) {
    if (auto r = init_sodium(); !r) {
        return r.error();
    }
    if (account.empty() || account.size() > 0xffff) {
        return make_error("seal a password for " + account, "bad account name", Scope::internal);
    }
    const std::size_t plain_len = 2 + account.size() + password.size();
    if (kHeaderBytes + crypto_box_SEALBYTES + plain_len > kMaxEntryBytes) {
        return make_error("seal a password for " + account, "password too long", Scope::account);
    }
    std::vector<unsigned char> plain(plain_len);
    WipeOnExit w{plain.data(), plain.size()};
    plain[0] = static_cast<unsigned char>(account.size() >> 8);
    plain[1] = static_cast<unsigned char>(account.size() & 0xff);
    std::memcpy(plain.data() + 2, account.data(), account.size());
    std::memcpy(plain.data() + 2 + account.size(), password.data(), password.size());

    std::string out(kHeaderBytes + crypto_box_SEALBYTES + plain_len, '\0');
    std::memcpy(out.data(), kMagic, sizeof kMagic);
    auto id = raw_id(pk.data());
    std::memcpy(out.data() + sizeof kMagic, id.data(), id.size());
    auto* dst = reinterpret_cast<unsigned char*>(out.data() + kHeaderBytes);
    if (crypto_box_seal(dst, plain.data(), plain.size(), pk.data()) != 0) {
        return make_error("seal a password for " + account, "crypto_box_seal failed",
                          Scope::internal);
    }
    return out;
}

// ---- the worker side ----

struct Opener::Key {
    unsigned char* sk = nullptr; // sodium_malloc'd, guarded, wiped on free
    std::array<unsigned char, kPublicKeyBytes> pk{};
    std::array<unsigned char, kIdBytes> id{};
    std::string file;
    Key() = default;
    ~Key() {
        if (sk != nullptr) {
            sodium_free(sk);
        }
    }
    Key(const Key&) = delete;
    Key& operator=(const Key&) = delete;
};

Opener::Opener(Opener&&) noexcept = default;
Opener& Opener::operator=(Opener&&) noexcept = default;
Opener::~Opener() = default;

namespace {

Result<std::unique_ptr<Opener::Key>> load_secret(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        std::string hint = e == EACCES   ? " (only the worker's user may read it)"
                           : e == ENOENT ? " (create the pair with `mailferry keys init`)"
                                         : "";
        return key_error(path, "cannot open the secret key: " + errno_text(e) + hint);
    }
    struct stat st {};
    bool ok = ::fstat(fd, &st) == 0;
    ::close(fd);
    if (!ok || !S_ISREG(st.st_mode)) {
        return key_error(path, "the secret key is not a regular file");
    }
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return key_error(path, std::string("the secret key has mode ") + mode +
                                   ": others may read it; make it 0600 (chmod 600 " + path + ")");
    }
    auto text = read_secret_file(path, 1024);
    if (!text) {
        return key_error(path, "cannot read the secret key: " + text.error().message());
    }
    auto key = std::make_unique<Opener::Key>();
    key->sk = static_cast<unsigned char*>(sodium_malloc(kSecretKeyBytes));
    if (key->sk == nullptr) {
        return make_error("load spool key " + path, "sodium_malloc failed", Scope::internal);
    }
    if (auto r = parse_key_line(path, text->view(), kSecretTag, key->sk, kSecretKeyBytes); !r) {
        if (text->view().rfind(kPublicTag, 0) == 0) {
            return key_error(path, "this is the PUBLIC key; secret_key_file must name the "
                                   "secret one");
        }
        return r.error();
    }
    crypto_scalarmult_base(key->pk.data(), key->sk);
    key->id = raw_id(key->pk.data());
    key->file = path;
    return key;
}

} // namespace

Result<Opener> Opener::load(const std::string& secret_key_file) {
    if (auto r = init_sodium(); !r) {
        return r.error();
    }
    Opener o;
    o.path_ = secret_key_file;
    auto cur = load_secret(secret_key_file);
    if (!cur) {
        return cur.error();
    }
    o.keys_.push_back(std::move(*cur));
    std::string prev = secret_key_file + ".previous";
    if (exists(prev)) {
        auto p = load_secret(prev);
        if (!p) {
            return p.error();
        }
        o.keys_.push_back(std::move(*p));
    }
    return o;
}

std::string Opener::key_id() const {
    return hex(keys_.front()->id.data(), kIdBytes);
}

bool Opener::is_current(std::string_view entry) const {
    return entry.size() >= kHeaderBytes && std::memcmp(entry.data(), kMagic, sizeof kMagic) == 0 &&
           std::memcmp(entry.data() + sizeof kMagic, keys_.front()->id.data(), kIdBytes) == 0;
}

const std::array<unsigned char, kPublicKeyBytes>& Opener::public_key() const {
    return keys_.front()->pk;
}

Result<std::string> Opener::seal_to_current(const std::string& account,
                                            const Secret& password) const {
    return Sealer::seal_with(keys_.front()->pk, account, password);
}

Result<Secret> Opener::open(const std::string& account, std::string_view entry,
                            const std::string& where) const {
    auto bad = [&](std::string detail) {
        return make_error("spool entry " + where + " for " + account, std::move(detail),
                          Scope::account, Retry::never);
    };
    const std::size_t min = kHeaderBytes + crypto_box_SEALBYTES + 2 + 1;
    if (entry.size() < sizeof kMagic || std::memcmp(entry.data(), kMagic, sizeof kMagic) != 0) {
        return bad("not a mailferry spool entry (bad magic): it was damaged or replaced");
    }
    if (entry.size() < min) {
        return bad("truncated: " + std::to_string(entry.size()) + " bytes, at least " +
                   std::to_string(min) + " expected");
    }
    if (entry.size() > kMaxEntryBytes) {
        return bad("too large: " + std::to_string(entry.size()) + " bytes");
    }
    const Key* key = nullptr;
    for (const auto& k : keys_) {
        if (std::memcmp(entry.data() + sizeof kMagic, k->id.data(), kIdBytes) == 0) {
            key = k.get();
        }
    }
    if (key == nullptr) {
        std::string have;
        for (const auto& k : keys_) {
            have += (have.empty() ? "" : ", ") + hex(k->id.data(), kIdBytes) + " (" + k->file + ")";
        }
        return bad(
            "sealed to key " +
            hex(reinterpret_cast<const unsigned char*>(entry.data()) + sizeof kMagic, kIdBytes) +
            ", but this worker holds key " + have +
            ": the key pair was replaced without `mailferry keys rotate`; the user's "
            "next first login seals a new entry");
    }
    const auto* box = reinterpret_cast<const unsigned char*>(entry.data()) + kHeaderBytes;
    const std::size_t box_len = entry.size() - kHeaderBytes;
    std::vector<unsigned char> plain(box_len - crypto_box_SEALBYTES);
    WipeOnExit w{plain.data(), plain.size()};
    if (crypto_box_seal_open(plain.data(), box, box_len, key->pk.data(), key->sk) != 0) {
        return bad("cannot be opened with key " + hex(key->id.data(), kIdBytes) +
                   ": tampered with, truncated or corrupted (authentication failed)");
    }
    std::size_t alen = (std::size_t{plain[0]} << 8) | plain[1];
    if (2 + alen > plain.size()) {
        return bad("malformed content (account length)");
    }
    std::string_view sealed_for(reinterpret_cast<const char*>(plain.data()) + 2, alen);
    if (sealed_for != account) {
        return bad("sealed for another account (" + sanitize_reply(sealed_for, 80) +
                   "): the file was copied or renamed");
    }
    std::size_t plen = plain.size() - 2 - alen;
    if (plen == 0) {
        return bad("holds an empty password");
    }
    return Secret(reinterpret_cast<const char*>(plain.data()) + 2 + alen, plen);
}

// ---- the directory ----

std::string Spool::path_for(const std::string& account) const {
    return dir_ + "/" + detail::encode_name(account) + ".sealed";
}

Result<void> Spool::put(const std::string& account, std::string_view sealed) const {
    if (auto r = detail::ensure_dir(dir_, 02770); !r) {
        return r;
    }
    return detail::write_atomic(path_for(account), sealed, 0660, std::nullopt, std::nullopt);
}

Result<std::optional<std::string>> Spool::get(const std::string& account) const {
    std::string path = path_for(account);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) {
            return std::optional<std::string>{};
        }
        return make_error("stat(" + path + ") failed", errno_text(errno), Scope::server,
                          Retry::later);
    }
    auto text = read_file(path, kMaxEntryBytes + 1);
    if (!text) {
        Error e = text.error();
        e.scope = Scope::server;
        e.retry = Retry::later;
        return e;
    }
    return std::optional<std::string>{std::move(*text)};
}

Result<void> Spool::remove(const std::string& account) const {
    std::string path = path_for(account);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return make_error("unlink(" + path + ") failed", errno_text(errno), Scope::server,
                          Retry::later);
    }
    return {};
}

Result<std::vector<std::string>> Spool::list() const {
    return detail::list_entries(dir_);
}

Result<void> store_password(Sealer& sealer, const Spool& spool, const std::string& account,
                            const Secret& password) {
    auto sealed = sealer.seal(account, password);
    if (!sealed) {
        return sealed.error();
    }
    return spool.put(account, *sealed);
}

Result<Secret> load_password(const Opener& opener, const Spool& spool, const std::string& account) {
    auto entry = spool.get(account);
    if (!entry) {
        return entry.error();
    }
    if (!entry->has_value()) {
        return make_error("no sealed password for " + account + " in " + spool.dir(),
                          "the login side did not store one (was the public key missing at "
                          "the first login, or the entry deleted?); the account's next first "
                          "login or a replay stores one",
                          Scope::account, Retry::never);
    }
    return opener.open(account, **entry, spool.path_for(account));
}

// ---- keys ----

namespace {

struct KeyPair {
    std::array<unsigned char, kPublicKeyBytes> pk{};
    unsigned char* sk = nullptr; // sodium_malloc'd
    KeyPair() = default;
    ~KeyPair() {
        if (sk != nullptr) {
            sodium_free(sk);
        }
    }
    KeyPair(const KeyPair&) = delete;
    KeyPair& operator=(const KeyPair&) = delete;
};

Result<void> write_pair(const KeyFiles& f, const std::string& pub_path, const std::string& sec_path,
                        const KeyPair& kp) {
    std::string sec = key_line(kSecretTag, kp.sk, kSecretKeyBytes);
    WipeOnExit w{sec.data(), sec.size()};
    if (auto r = detail::write_atomic(sec_path, sec, 0600, f.owner_uid, f.owner_gid); !r) {
        return r;
    }
    std::optional<uid_t> root;
    if (f.owner_gid) {
        root = 0;
    }
    return detail::write_atomic(pub_path, key_line(kPublicTag, kp.pk.data(), kPublicKeyBytes), 0644,
                                root, f.owner_gid);
}

Result<void> make_pair(KeyPair& kp) {
    kp.sk = static_cast<unsigned char*>(sodium_malloc(kSecretKeyBytes));
    if (kp.sk == nullptr) {
        return make_error("make a spool key pair", "sodium_malloc failed", Scope::internal);
    }
    crypto_box_keypair(kp.pk.data(), kp.sk);
    return {};
}

} // namespace

Result<std::string> generate_keys(const KeyFiles& files, bool force) {
    if (auto r = init_sodium(); !r) {
        return r.error();
    }
    if (!force) {
        for (const auto* p : {&files.secret_key_file, &files.public_key_file}) {
            if (exists(*p)) {
                return make_error(
                    "create spool keys",
                    *p + " exists already; replacing the pair makes every pending entry "
                         "unreadable — use `mailferry keys rotate`, or --force to replace it "
                         "anyway",
                    Scope::config);
            }
        }
    }
    for (const auto* p : {&files.secret_key_file, &files.public_key_file}) {
        auto slash = p->rfind('/');
        if (slash != std::string::npos && slash > 0) {
            if (auto r = detail::ensure_dir(p->substr(0, slash), 0755); !r) {
                return r.error();
            }
        }
    }
    KeyPair kp;
    if (auto r = make_pair(kp); !r) {
        return r.error();
    }
    if (auto r = write_pair(files, files.public_key_file, files.secret_key_file, kp); !r) {
        return r.error();
    }
    return key_id_of(kp.pk);
}

Result<RotateReport> rotate_keys(const KeyFiles& files, const Spool& spool,
                                 const AccountLock& lock) {
    auto old = Opener::load(files.secret_key_file);
    if (!old) {
        return old.error();
    }
    RotateReport rep;
    rep.old_key_id = old->key_id();

    // The new pair, as FILE.next: reused when an interrupted rotation left one.
    const std::string sec_next = files.secret_key_file + ".next";
    const std::string pub_next = files.public_key_file + ".next";
    if (!exists(sec_next)) {
        KeyPair kp;
        if (auto r = make_pair(kp); !r) {
            return r.error();
        }
        if (auto r = write_pair(files, pub_next, sec_next, kp); !r) {
            return r.error();
        }
    } else {
        // Rewrite the public half from the secret one: it may be missing or stale.
        auto nxt = Opener::load(sec_next);
        if (!nxt) {
            return nxt.error();
        }
        if (auto r = detail::write_atomic(
                pub_next, key_line(kPublicTag, nxt->public_key().data(), kPublicKeyBytes), 0644,
                files.owner_gid ? std::optional<uid_t>(0) : std::nullopt, files.owner_gid);
            !r) {
            return r.error();
        }
    }
    auto next = Opener::load(sec_next);
    if (!next) {
        return next.error();
    }
    rep.new_key_id = next->key_id();

    auto pass = [&](bool count) -> Result<void> {
        auto accounts = spool.list();
        if (!accounts) {
            return accounts.error();
        }
        for (const auto& acct : *accounts) {
            std::shared_ptr<void> held;
            if (lock) {
                auto l = lock(acct);
                if (!l) {
                    rep.failed.push_back(acct + ": " + l.error().message());
                    continue;
                }
                held = std::move(*l);
            }
            auto entry = spool.get(acct);
            if (!entry) {
                return entry.error();
            }
            if (!entry->has_value()) {
                continue; // deleted meanwhile (cut-over)
            }
            if (next->is_current(**entry)) {
                rep.current += count ? 1 : 0;
                continue;
            }
            auto pw = old->open(acct, **entry, spool.path_for(acct));
            if (!pw) {
                if (count) {
                    rep.failed.push_back(acct + ": " + pw.error().message());
                }
                continue;
            }
            auto sealed = next->seal_to_current(acct, *pw);
            if (!sealed) {
                return sealed.error();
            }
            if (auto r = spool.put(acct, *sealed); !r) {
                return r;
            }
            ++rep.resealed;
        }
        return {};
    };
    if (auto r = pass(true); !r) {
        return r.error();
    }
    // Install: the old secret becomes FILE.previous, the new pair takes the names.
    auto old_text = read_secret_file(files.secret_key_file, 1024);
    if (!old_text) {
        return old_text.error();
    }
    if (auto r = detail::write_atomic(files.secret_key_file + ".previous", old_text->view(), 0600,
                                      files.owner_uid, files.owner_gid);
        !r) {
        return r.error();
    }
    for (const auto& [from, to] :
         {std::pair{sec_next, files.secret_key_file}, std::pair{pub_next, files.public_key_file}}) {
        if (::rename(from.c_str(), to.c_str()) != 0) {
            return make_error("rename(" + from + ", " + to + ") failed", errno_text(errno),
                              Scope::server, Retry::later);
        }
    }
    // Entries sealed to the old key while the first pass ran.
    if (auto r = pass(false); !r) {
        return r.error();
    }
    return rep;
}

} // namespace mf::spool
