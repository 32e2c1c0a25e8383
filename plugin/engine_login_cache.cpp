// engine_login_cache.cpp — the verified-login cache (see engine_login_cache.hpp).
// Must never: keep a password, or let the map outgrow max_entries.
#include "engine_login_cache.hpp"

#include <sodium.h>

namespace mf {

LoginCache::LoginCache(Millis ttl, std::size_t max_entries) : ttl_(ttl), max_entries_(max_entries) {
    randombytes_buf(hmac_key_.data(), hmac_key_.size());
}

LoginCache::~LoginCache() {
    sodium_memzero(hmac_key_.data(), hmac_key_.size());
}

LoginCache::Key LoginCache::key_of(const std::string& name, const Secret& password) const {
    // The NUL keeps ("ab", "c") and ("a", "bc") apart: a name never holds one.
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, hmac_key_.data(), hmac_key_.size());
    crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(name.data()),
                                  name.size());
    const unsigned char nul = 0;
    crypto_auth_hmacsha256_update(&st, &nul, 1);
    auto pw = password.view();
    crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(pw.data()),
                                  pw.size());
    Key k{};
    crypto_auth_hmacsha256_final(&st, k.data());
    sodium_memzero(&st, sizeof st);
    return k;
}

bool LoginCache::hit(const std::string& name, const std::string& stored_hash,
                     const Secret& password, Clock::time_point now) {
    if (ttl_.count() == 0 || max_entries_ == 0) {
        return false;
    }
    const Key k = key_of(name, password);
    std::lock_guard lk(mu_);
    auto it = entries_.find(k);
    if (it == entries_.end()) {
        return false;
    }
    if (it->second.expires <= now || it->second.name != name ||
        it->second.stored_hash != stored_hash) {
        entries_.erase(it);
        return false;
    }
    return true;
}

void LoginCache::put(const std::string& name, const std::string& stored_hash,
                     const Secret& password, Clock::time_point now) {
    if (ttl_.count() == 0 || max_entries_ == 0) {
        return;
    }
    const Key k = key_of(name, password);
    std::lock_guard lk(mu_);
    if (entries_.count(k) == 0) {
        make_room(now);
    }
    entries_[k] = Entry{name, stored_hash, now + ttl_};
}

// Expired entries go first; when none has expired, the one closest to expiry.
void LoginCache::make_room(Clock::time_point now) {
    if (entries_.size() < max_entries_) {
        return;
    }
    for (auto it = entries_.begin(); it != entries_.end();) {
        it = it->second.expires <= now ? entries_.erase(it) : std::next(it);
    }
    while (entries_.size() >= max_entries_) {
        auto oldest = entries_.begin();
        for (auto it = entries_.begin(); it != entries_.end(); ++it) {
            if (it->second.expires < oldest->second.expires) {
                oldest = it;
            }
        }
        entries_.erase(oldest);
    }
}

void LoginCache::drop(const std::string& name) {
    std::lock_guard lk(mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
        it = it->second.name == name ? entries_.erase(it) : std::next(it);
    }
}

std::size_t LoginCache::size() const {
    std::lock_guard lk(mu_);
    return entries_.size();
}

} // namespace mf
