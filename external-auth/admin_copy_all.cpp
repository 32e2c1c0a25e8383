// admin_copy_all.cpp — `mailferry copy-all --imported` (admin_copy_all.hpp).
#include "admin_copy_all.hpp"

#include "mailferry/identity.hpp"
#include "mailferry/provisioner.hpp"
#include "mailferry/secret.hpp"

namespace mf::admin {
namespace {

// Background copies wait behind logins and recovered jobs, ahead of scheduled resyncs.
constexpr int kPriorityImported = 20;

// Why `acct` cannot be copied without its password; empty when it can.
std::string skip_reason(const Account& acct, const ProviderConfig* provider) {
    if (provider == nullptr) {
        return "its old server \"" + acct.provider + "\" is not in the config";
    }
    if (provider->master_user.empty()) {
        return "old server \"" + provider->name + "\" has no master_user";
    }
    if (acct.hash.empty()) {
        return "imported without a hash";
    }
    return "";
}

Result<void> provision_and_queue(Store& store, Provisioner& prov, const Identity& id,
                                 const Account& acct) {
    const Secret none;
    if (auto p = prov.provision(ProvisionRequest{id, none, acct.hash}); !p) {
        return p.error();
    }
    AuditContext ctx{"admin:copy-all", "", "provisioned with the imported hash"};
    if (auto s = store.set_state(acct.name, AccountState::provisioned, ctx, AccountState::verified);
        !s) {
        return s.error();
    }
    EnqueueRequest req;
    req.account = acct.name;
    req.provider = acct.provider;
    req.kind = JobKind::copy;
    req.priority = kPriorityImported;
    if (auto j = store.enqueue_job(req); !j) {
        return j.error();
    }
    return {};
}

} // namespace

std::string copy_without_password_problem(const Config& cfg) {
    if (!cfg.target.configured) {
        return "there is no [target]: nothing would copy";
    }
    if (cfg.target.maildir.empty() && cfg.target.master_user.empty()) {
        return "[target] logs in with each user's own password: set target.master_user "
               "(or target.maildir)";
    }
    if (cfg.provisioner.type == ProvisionerType::command ||
        cfg.provisioner.type == ProvisionerType::http) {
        return "the provisioner needs each user's clear-text password: replay saved "
               "passwords instead (`mailferry replay`)";
    }
    return "";
}

Result<std::vector<CopyAllOutcome>> copy_all_imported(const Config& cfg, Store& store,
                                                      bool dry_run) {
    if (auto problem = copy_without_password_problem(cfg); !problem.empty()) {
        return make_error("copy-all --imported", problem, Scope::config);
    }
    auto map = IdentityMap::create(cfg);
    if (!map) {
        return map.error();
    }
    auto prov = make_provisioner(cfg.provisioner);
    if (!prov) {
        return prov.error();
    }
    auto accounts = store.list_accounts();
    if (!accounts) {
        return accounts.error();
    }
    std::vector<CopyAllOutcome> out;
    for (const auto& acct : *accounts) {
        if (acct.state != AccountState::verified) {
            continue;
        }
        const ProviderConfig* provider = nullptr;
        for (const auto& p : cfg.providers) {
            provider = p.name == acct.provider ? &p : provider;
        }
        if (auto why = skip_reason(acct, provider); !why.empty()) {
            out.push_back({acct.name, "skipped", why});
            continue;
        }
        auto id = map->resolve(acct.name);
        if (!id) {
            out.push_back({acct.name, "skipped", id.error().message()});
            continue;
        }
        use_stored_name(*id, acct.name);
        if (dry_run) {
            out.push_back({acct.name, "would-queue", "old server " + acct.provider});
            continue;
        }
        if (auto r = provision_and_queue(store, **prov, *id, acct); !r) {
            if (r.error().scope != Scope::account) {
                return r.error(); // the store or the provisioner: stop, the rest next run
            }
            out.push_back({acct.name, "skipped", r.error().message()});
            continue;
        }
        out.push_back({acct.name, "queued", "first copy queued"});
    }
    return out;
}

} // namespace mf::admin
