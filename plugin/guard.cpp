// guard.cpp — see guard.hpp.
#include "guard.hpp"

#include "file_util.hpp"
#include "mailferry/log.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <fcntl.h>
#include <random>
#include <sodium.h>
#include <unistd.h>

namespace mf {
namespace {

constexpr std::size_t kKeyBytes = crypto_generichash_KEYBYTES;

Result<Secret> load_or_create_key(const std::string& path) {
    auto existing = read_file(path, 4096);
    if (existing) {
        Secret key(*existing);
        wipe(existing->data(), existing->size());
        if (key.size() != kKeyBytes) {
            return make_error("guard key " + path,
                              "has " + std::to_string(key.size()) + " bytes, expected " +
                                  std::to_string(kKeyBytes) + ": remove it to create a new one",
                              Scope::config);
        }
        return key;
    }
    // Create it exclusively; if another process won the race, read theirs.
    unsigned char raw[kKeyBytes];
    randombytes_buf(raw, sizeof raw);
    std::string tmp = path + ".new." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        return make_error("create guard key " + tmp, errno_text(errno), Scope::server,
                          Retry::later);
    }
    bool written =
        ::write(fd, raw, sizeof raw) == static_cast<ssize_t>(sizeof raw) && ::fsync(fd) == 0;
    ::close(fd);
    if (!written || ::link(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        sodium_memzero(raw, sizeof raw);
        if (e == EEXIST) {
            return load_or_create_key(path);
        }
        return make_error("create guard key " + path, errno_text(e), Scope::server, Retry::later);
    }
    ::unlink(tmp.c_str());
    Secret key(reinterpret_cast<const char*>(raw), sizeof raw);
    sodium_memzero(raw, sizeof raw);
    return key;
}

} // namespace

Result<Guard> Guard::create(Store& store, const GuardConfig& cfg) {
    if (sodium_init() < 0) {
        return make_error("initialise libsodium", "sodium_init failed");
    }
    auto key = load_or_create_key(cfg.key_file);
    if (!key) {
        return key.error();
    }
    return Guard(store, cfg, std::move(*key));
}

std::string Guard::digest(const std::string& account, const Secret& password) const {
    unsigned char out[32];
    crypto_generichash_state st;
    crypto_generichash_init(&st, reinterpret_cast<const unsigned char*>(key_.data()), key_.size(),
                            sizeof out);
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(account.data()),
                              account.size());
    const unsigned char sep = 0;
    crypto_generichash_update(&st, &sep, 1);
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(password.data()),
                              password.size());
    crypto_generichash_final(&st, out, sizeof out);
    char hex[sizeof out * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, out, sizeof out);
    return hex;
}

namespace {

std::string window_note(std::int64_t n) {
    return " (" + std::to_string(n) + " within the window): try again later";
}

} // namespace

Result<Guard::Verdict> Guard::begin(const std::string& account, std::string_view ip,
                                    const Secret& password, Check where, bool record) {
    Verdict v;
    const bool old_server = where == Check::old_server;
    const std::string from =
        ip.empty() ? std::string("clients without an address") : std::string(ip);
    v.pair_key = "pair:" + account + '\x1f' + std::string(ip);
    GuardAttempt a;
    a.now = now_unix();
    a.since = a.now - std::chrono::duration_cast<std::chrono::seconds>(cfg_.window).count();
    a.stale_before = a.now - kStaleSeconds;
    a.account = account;
    a.digest = digest(account, password);
    // count: pair, [ip], [acct] — the same keys get the pending rows.
    a.count.push_back(v.pair_key);
    if (!ip.empty()) {
        a.count.push_back("ip:" + std::string(ip));
    }
    if (old_server) {
        a.count.push_back("acct:" + account);
    }
    a.record = a.count;
    auto go = [&](const GuardTally& t) {
        const std::int64_t pair = t.failures.at(0);
        const std::int64_t by_ip = ip.empty() ? 0 : t.failures.at(1);
        v.client_had_failures = pair > 0;
        if (pair >= cfg_.max_failures_per_account_ip) {
            v.refuse = "too many failed logins for this account from " + from + window_note(pair);
            return false;
        }
        if (!ip.empty() && by_ip >= cfg_.max_failures_per_ip) {
            v.refuse = "too many failed logins from " + from + window_note(by_ip);
            return false;
        }
        if (t.negative) {
            v.known_wrong =
                "this password was rejected by the old server moments ago (negative cache)";
            return false;
        }
        if (!old_server) {
            return record; // the stored hash: the account's failures never limit it
        }
        const std::int64_t acct = t.failures.back();
        const std::int64_t budget = cfg_.max_failures_per_account;
        const bool clean = ip.empty() ? pair == 0 : by_ip == 0;
        if (acct >= 2 * budget || (acct >= budget && !clean)) {
            v.refuse = "the old server's budget of wrong passwords for this account is used up" +
                       window_note(acct);
            return false;
        }
        return record;
    };
    auto rows = store_->begin_guard_attempt(a, go);
    if (!rows) {
        return rows.error();
    }
    v.pending = std::move(*rows);
    return v;
}

Result<void> Guard::rejected(const std::string& account, const Secret& password,
                             const Verdict& verdict, bool remember) {
    UnixTime now = now_unix();
    std::string d;
    UnixTime expires = 0;
    if (remember && cfg_.negative_cache_ttl.count() > 0) {
        auto ttl =
            std::chrono::duration_cast<std::chrono::seconds>(cfg_.negative_cache_ttl).count();
        d = digest(account, password);
        expires = now + std::max<UnixTime>(ttl, 1);
    }
    auto r = store_->fail_guard_attempt(verdict.pending, account, d, expires);
    // Keep the guard tables small without a cron job: prune now and then.
    thread_local std::minstd_rand rng(static_cast<unsigned>(now) ^
                                      static_cast<unsigned>(::getpid()));
    if (rng() % 64 == 0) {
        auto window = std::chrono::duration_cast<std::chrono::seconds>(cfg_.window).count();
        if (auto p = store_->prune_guard(now, now - std::max<UnixTime>(window, kStaleSeconds));
            !p) {
            log::warning("guard: " + p.error().message());
        }
    }
    return r;
}

void Guard::accepted(const Verdict& verdict) {
    settle(verdict, true);
}

void Guard::unchecked(const Verdict& verdict) {
    settle(verdict, false);
}

void Guard::settle(const Verdict& verdict, bool clear_bucket) {
    // A failure here leaves the pending rows: they count as one failure each once stale,
    // which errs on the safe side.
    const std::string clear = clear_bucket && verdict.client_had_failures ? verdict.pair_key : "";
    if (auto r = store_->end_guard_attempt(verdict.pending, clear); !r) {
        log::warning("guard: " + r.error().message());
    }
}

} // namespace mf
