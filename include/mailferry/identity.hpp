// identity.hpp — from the name a user typed to the canonical account and its old server.
//
// Short names (anna → anna@default.domain), full addresses, the domain case-folded (the
// local part only if configured), the conflict map (users whose short name collides get
// another new name), domain renames (old domain → new domain). Garbage — empty, over 320
// bytes, control characters, spaces, several '@', non-UTF-8 — is refused here, before
// anybody is contacted. An IdentityMap is immutable after create() and thread-safe.
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
    std::string old_address; // the address at the old server: local@old-domain
    std::string old_login;   // what the old server wants as login (provider's login_form)
    const ProviderConfig* provider = nullptr; // owned by the Config
};

class IdentityMap {
  public:
    // Reads the conflict map file, if any. Errors name file:line.
    static Result<IdentityMap> create(const Config& cfg);

    // A refused login is an Error with Scope::account and Retry::never: the caller answers
    // FAIL without contacting anyone.
    [[nodiscard]] Result<Identity> resolve(std::string_view login) const;

  private:
    const Config* cfg_ = nullptr;
    std::map<std::string, std::string> conflicts_;          // login (normalized) → canonical
    std::map<std::string, std::string> canonical_to_login_; // the conflict map read backwards
};

// The syntax checks alone; exposed for the faces that must reject before parsing further.
Result<void> check_login_syntax(std::string_view login);

} // namespace mf
