// guard.cpp — see guard.hpp.
#include "guard.hpp"

#include "file_util.hpp"
#include "mailferry/log.hpp"

#include <cerrno>
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

Result<Guard::Verdict> Guard::check(const std::string& account, std::string_view ip,
                                    const Secret& password) {
    Verdict v;
    UnixTime now = now_unix();
    UnixTime since = now - std::chrono::duration_cast<std::chrono::seconds>(cfg_.window).count();
    auto n = store_->count_failures("acct:" + account, since);
    if (!n) {
        return n.error();
    }
    v.account_has_failures = *n > 0;
    if (*n >= cfg_.max_failures_per_account) {
        v.refuse = "too many failed logins for this account (" + std::to_string(*n) +
                   " within the window)";
        return v;
    }
    if (!ip.empty()) {
        auto m = store_->count_failures("ip:" + std::string(ip), since);
        if (!m) {
            return m.error();
        }
        if (*m >= cfg_.max_failures_per_ip) {
            v.refuse = "too many failed logins from " + std::string(ip) + " (" +
                       std::to_string(*m) + " within the window)";
            return v;
        }
    }
    auto neg = store_->has_negative(account, digest(account, password), now);
    if (!neg) {
        return neg.error();
    }
    if (*neg) {
        v.refuse = "this password was rejected by the old server moments ago (negative cache)";
    }
    return v;
}

void Guard::on_rejected(const std::string& account, std::string_view ip, const Secret& password,
                        bool remember) {
    UnixTime now = now_unix();
    auto log_error = [](const Result<void>& r) {
        if (!r) {
            log::warning("guard: " + r.error().message());
        }
    };
    log_error(store_->record_failure("acct:" + account, now));
    if (!ip.empty()) {
        log_error(store_->record_failure("ip:" + std::string(ip), now));
    }
    if (remember && cfg_.negative_cache_ttl.count() > 0) {
        auto ttl =
            std::chrono::duration_cast<std::chrono::seconds>(cfg_.negative_cache_ttl).count();
        log_error(
            store_->add_negative(account, digest(account, password), now + std::max<long>(ttl, 1)));
    }
    // Keep the guard tables small without a cron job: prune now and then.
    thread_local std::minstd_rand rng(static_cast<unsigned>(now) ^
                                      static_cast<unsigned>(::getpid()));
    if (rng() % 64 == 0) {
        auto window = std::chrono::duration_cast<std::chrono::seconds>(cfg_.window).count();
        log_error(store_->prune_guard(now, now - window));
    }
}

void Guard::on_accepted(const std::string& account, const Verdict& verdict) {
    if (!verdict.account_has_failures) {
        return; // nothing to clear: keep the common login free of writes
    }
    if (auto r = store_->clear_failures("acct:" + account); !r) {
        log::warning("guard: " + r.error().message());
    }
}

} // namespace mf
