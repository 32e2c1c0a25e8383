// guard.hpp — keeps mailferry from being used to guess passwords, at the old server or
// against the stored hashes, without letting a guesser lock the right user out.
//
// Must never: let a password be checked (locally or at the old server) when its failure
// could not be recorded — the attempt is written as a pending failure BEFORE the check,
// in the same transaction as the counting, so a busy, locked or full store means TEMPFAIL
// and nobody is asked; answer FAIL because of a limit (a limit reached is TEMPFAIL, so a
// guesser never turns the right password into a wrong one); see a plain password beyond
// the keyed digest.
//
// The rule (counted over the sliding `window`; every refusal below is TEMPFAIL):
//   1. Per client: failures for (account, client address) ≥ max_failures_per_account_ip
//      → refused. A login without a client address counts in one "no address" bucket of
//      its account (pair key with an empty address).
//   2. Per address: failures from the client address over all accounts ≥
//      max_failures_per_ip → refused. Logins without an address have no such bucket (one
//      shared bucket would let any guesser refuse everybody without an address).
//   3. Negative cache: this exact password was rejected by the old server for this
//      account within negative_cache_ttl → FAIL at once, nobody asked, nothing counted.
//   4. Old-server budget (only for logins that have to ask the old server): failed
//      old-server checks for the account from all addresses ≥ max_failures_per_account →
//      only a clean client (no failure at all from its address in the window; without an
//      address: none in its account's "no address" bucket) is still checked there, until
//      the account has twice that many; past that, refused. A check against the stored
//      hash is never limited by the account's failures: from a client within rules 1-2 the
//      right password is always accepted, whoever else is guessing.
// Failures count when the password was wrong (old-server rejection or hash mismatch).
// The right password clears its (account, address) bucket; a check nobody could make
// (old server unreachable, provider busy) counts nothing. An attempt whose outcome was
// never written (a crash) counts as a failure after kStaleSeconds. Parallel logins of one
// client are not counted against each other while in flight, so a client may exceed a
// limit by the logins it has in flight at that moment (old-server checks of one account
// run one at a time under the account lock).
// State is in the Store, shared by every login process. The negative cache is keyed on
// (account, keyed BLAKE2b of the password); the key lives in its own file
// (guard.key_file), so a leaked database alone does not allow testing candidate
// passwords against it.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/secret.hpp"
#include "mailferry/store.hpp"

#include <optional>
#include <string>
#include <vector>

namespace mf {

class Guard {
  public:
    // An attempt not settled by then (seconds) counts as a failure.
    static constexpr UnixTime kStaleSeconds = 300;

    // Loads the key, creating it (0640, group of the directory) if missing.
    static Result<Guard> create(Store& store, const GuardConfig& cfg);

    // Where the password is about to be checked (rule 4 applies to old_server only).
    enum class Check { stored_hash, old_server };

    struct Verdict {
        std::optional<std::string> refuse;      // set: answer TEMPFAIL, for this reason
        std::optional<std::string> known_wrong; // set: answer FAIL (negative cache)
        // Set when the check may go ahead: the pending failure rows to settle.
        std::vector<std::int64_t> pending;
        std::string pair_key;             // the (account, address) bucket
        bool client_had_failures = false; // accepted() then clears pair_key
    };

    // Counts, decides and, when the check may go ahead, records the pending attempt. An
    // error (store busy, locked, full) means: answer TEMPFAIL, check nothing. With
    // record = false it only decides and writes nothing (pending stays empty): the engine
    // asks so before the account lock, so refused guessers do not queue for it.
    Result<Verdict> begin(const std::string& account, std::string_view ip, const Secret& password,
                          Check where, bool record = true);

    // The password was wrong: the attempt becomes a failure; with `remember`, the password
    // is cached as rejected. An error means the failure may not be recorded yet: answer
    // TEMPFAIL instead of FAIL (the pending row still counts once stale).
    Result<void> rejected(const std::string& account, const Secret& password,
                          const Verdict& verdict, bool remember);
    // The password was right: the attempt and the client's bucket are cleared.
    void accepted(const Verdict& verdict);
    // Nobody could check the password (old server unreachable, provider busy): the
    // attempt counts nothing.
    void unchecked(const Verdict& verdict);

  private:
    Guard(Store& store, GuardConfig cfg, Secret key)
        : store_(&store), cfg_(std::move(cfg)), key_(std::move(key)) {}
    [[nodiscard]] std::string digest(const std::string& account, const Secret& password) const;
    void settle(const Verdict& verdict, bool clear_bucket);

    Store* store_;
    GuardConfig cfg_;
    Secret key_;
};

} // namespace mf
