// identity.hpp — from the name a user typed to the canonical account and its old server.
//
// Short names (anna → anna@default.domain), full addresses, the domain always folded (an
// internationalised domain to its ASCII form, xn--…, lower case), the local part folded
// to lower case (ASCII letters) when the old server is case_insensitive, the conflict map
// (users whose short name collides get another new name), domain renames (old domain →
// new domain). The canonical name is what the store, the locks and the guard key on: one
// per user, whatever the letter case typed. Garbage — empty, over 320 bytes, control
// characters, spaces, several '@', non-UTF-8, a domain that is no valid IDNA name — is
// refused here, before anybody is contacted. An IdentityMap is immutable after create()
// and thread-safe.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/error.hpp"

#include <map>
#include <string>
#include <string_view>

namespace mf {

struct Identity {
    std::string canonical;   // the account's name on the new server: local@new-domain
    std::string local;       // canonical local part
    std::string domain;      // canonical (new) domain
    std::string old_address; // the address at the old server, in the user's spelling
    std::string old_login;   // what the old server wants as login (provider's login_form)
    std::string login;       // as the user typed it: for display only, never a key
    const ProviderConfig* provider = nullptr; // owned by the Config
};

// The account is in the store under another spelling of `canonical` (written by a version
// that kept the letter case typed; see docs/ARCHITECTURE.md, "Identity"): from here on the
// login uses that stored name, so the store, lock, guard and provisioner agree on it.
void use_stored_name(Identity& id, std::string_view stored);

// True when `a` and `b` differ at most in the letter case of ASCII letters.
bool same_ignoring_case(std::string_view a, std::string_view b);

class IdentityMap {
  public:
    // Reads the conflict map file, if any. Errors name file:line.
    static Result<IdentityMap> create(const Config& cfg);

    // A refused login is an Error with Scope::account and Retry::never: the caller answers
    // FAIL without contacting anyone.
    [[nodiscard]] Result<Identity> resolve(std::string_view login) const;

    struct Served {
        const ProviderConfig* provider = nullptr;
        std::string spelled; // the domain as the provider's config writes it
    };

  private:
    const Config* cfg_ = nullptr;
    std::map<std::string, Served> served_;                  // ASCII domain → old server
    std::map<std::string, std::string> renames_;            // old → new domain, ASCII
    std::string default_domain_;                            // ASCII
    std::map<std::string, std::string> conflicts_;          // old account (folded) → canonical
    std::map<std::string, std::string> canonical_to_login_; // the conflict map read backwards

    Result<void> read_conflict_map(const std::string& file);
};

// The syntax checks alone; exposed for the faces that must reject before parsing further.
Result<void> check_login_syntax(std::string_view login);

} // namespace mf
