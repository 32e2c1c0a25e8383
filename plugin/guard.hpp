// guard.hpp — keeps mailferry from being used to guess passwords at the old server.
//
// Before a login may reach the old server: at most N failures per account and per client
// address within a window (then FAIL locally), and a short negative cache keyed on
// (account, keyed BLAKE2b of the password), so a client retrying one wrong password does
// not reach the old server again. The key lives in its own file (guard.key_file), so a
// leaked database alone does not allow testing candidate passwords against the cache.
// State is in the Store, shared by every login process.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/secret.hpp"
#include "mailferry/store.hpp"

#include <optional>
#include <string>

namespace mf {

class Guard {
  public:
    // Loads the key, creating it (0640, group of the directory) if missing.
    static Result<Guard> create(Store& store, const GuardConfig& cfg);

    struct Verdict {
        std::optional<std::string> refuse; // set: answer FAIL locally, for this reason
        bool account_has_failures = false; // on_accepted() then has something to clear
    };

    // Whether this login may go ahead.
    Result<Verdict> check(const std::string& account, std::string_view ip, const Secret& password);

    // A rejected password: counts a failure for the account and the address; with
    // `remember`, caches the rejection so the same password is answered locally.
    void on_rejected(const std::string& account, std::string_view ip, const Secret& password,
                     bool remember);
    // Clears the account's failure count; a no-op write-free call when it had none.
    void on_accepted(const std::string& account, const Verdict& verdict);

  private:
    Guard(Store& store, GuardConfig cfg, Secret key)
        : store_(&store), cfg_(std::move(cfg)), key_(std::move(key)) {}
    [[nodiscard]] std::string digest(const std::string& account, const Secret& password) const;

    Store* store_;
    GuardConfig cfg_;
    Secret key_;
};

} // namespace mf
