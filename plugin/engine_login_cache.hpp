// engine_login_cache.hpp — the verified-login cache: a login the engine verified against
// the stored hash is answered again within `ttl` without the slow hash (argon2id and its
// like cost ~100 ms of CPU), in processes that live across logins (the C ABI, PAM, the
// Lua passdb).
//
// An entry is found by a keyed hash (HMAC-SHA-256 under a random key of this process) of
// the canonical name and the password, and holds the stored hash it was verified
// against: a hit needs that hash to still be the account's (a password change, a rehash
// or an import of another hash miss). The account's state is read from the store on every
// login before the cache is asked (held, disabled, cut-over are decided there). Only right
// passwords are kept; any failure of a user drops all of that user's entries.
//
// Must never: hold a password or an unkeyed digest of one; answer for an account whose
// stored hash changed; grow past `max_entries`.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/secret.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>

namespace mf {

class LoginCache {
  public:
    using Clock = std::chrono::steady_clock;

    // ttl 0: nothing is ever kept.
    LoginCache(Millis ttl, std::size_t max_entries);
    ~LoginCache();
    LoginCache(const LoginCache&) = delete;
    LoginCache& operator=(const LoginCache&) = delete;

    // True when `name` logged in with `password` against `stored_hash` within the ttl.
    [[nodiscard]] bool hit(const std::string& name, const std::string& stored_hash,
                           const Secret& password, Clock::time_point now = Clock::now());
    // Remembers a login verified against `stored_hash`.
    void put(const std::string& name, const std::string& stored_hash, const Secret& password,
             Clock::time_point now = Clock::now());
    // Forgets every entry of `name` (a failure, a password change).
    void drop(const std::string& name);
    [[nodiscard]] std::size_t size() const;

  private:
    using Key = std::array<unsigned char, 32>;
    struct Entry {
        std::string name;
        std::string stored_hash;
        Clock::time_point expires;
    };
    [[nodiscard]] Key key_of(const std::string& name, const Secret& password) const;
    void make_room(Clock::time_point now);

    Millis ttl_;
    std::size_t max_entries_;
    std::array<unsigned char, 32> hmac_key_{};
    mutable std::mutex mu_;
    std::map<Key, Entry> entries_; // guarded by mu_
};

} // namespace mf
