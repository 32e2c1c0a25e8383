// provisioner.hpp — creates the account on the new server after a verified first login.
//
// builtin (mailferry's store is the passdb), dovecot-passwd-file (atomic edit of a
// passwd-file), command (admin's program, password on stdin), http (POST JSON to an admin
// API). Provisioning is idempotent: provisioning a user twice leaves one account and, for
// files, every other line intact. A failure is an Error with Retry::later: the engine
// answers TEMPFAIL and leaves the account unknown, so the next login tries again.
// provision() may be called from many threads and processes at once.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/error.hpp"
#include "mailferry/identity.hpp"
#include "mailferry/secret.hpp"

#include <memory>
#include <string>

namespace mf {

struct ProvisionRequest {
    const Identity& identity;
    const Secret& password;  // the verified password; for command and http
    const std::string& hash; // {SCHEME}hash of it in the configured scheme
};

class Provisioner {
  public:
    virtual ~Provisioner() = default;
    virtual Result<void> provision(const ProvisionRequest& req) = 0;
    [[nodiscard]] virtual const char* name() const = 0;
};

Result<std::unique_ptr<Provisioner>> make_provisioner(const ProvisionerConfig& cfg);

} // namespace mf
