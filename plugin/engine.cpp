// engine.cpp — the login decision (see include/mailferry/engine.hpp for the flow).
//
// The one place where the three answers are made. Rules kept here:
//   - A network or store problem is TEMPFAIL, never FAIL; only an explicit rejection by
//     the old server or a mismatch with a stored hash is FAIL. A guard limit is TEMPFAIL
//     too, so a guesser never turns the right password into a FAIL.
//   - Nothing is created unless the whole first login succeeds: provisioning happens
//     before the account row is written, and a failed provisioning leaves no row.
//   - The password lives in a Secret for the length of the call and is never logged.
//   - authenticate() catches everything: it is called across the C ABI.
#include "mailferry/engine.hpp"

#include "engine_login_cache.hpp"
#include "file_lock.hpp"
#include "file_util.hpp"
#include "guard.hpp"
#include "mailferry/log.hpp"
#include "mailferry/password.hpp"
#include "mailferry/provisioner.hpp"
#include "mailferry/queue.hpp"
#include "mailferry/verifier.hpp"

#include <map>
#include <mutex>

namespace mf {

namespace {

constexpr UnixTime kLoginRecordInterval = 60; // seconds

std::string lock_dir_of(const Config& cfg) {
    if (!cfg.store.lock_dir.empty()) {
        return cfg.store.lock_dir;
    }
    auto pos = cfg.store.path.rfind('/');
    return (pos == std::string::npos ? std::string(".") : cfg.store.path.substr(0, pos)) + "/locks";
}

// The stored account of a login. One stored by an older version under another spelling
// (its old server ignores case) gives the login its name (docs/ARCHITECTURE.md, "Identity").
Result<std::optional<Account>> account_of(Store& store, Identity& id, const std::string& who) {
    std::vector<std::string> others;
    auto acct = find_login_account(store, id.canonical, id.provider->case_insensitive, &others);
    if (acct && acct->has_value() && (**acct).name != id.canonical) {
        use_stored_name(id, (**acct).name);
    }
    if (acct && !others.empty()) {
        std::string names;
        for (const auto& n : others) {
            names += ", " + n;
        }
        log::warning(who + ": one user, several accounts differing in letter case: using the " +
                     "oldest, " + id.canonical + "; not " + names.substr(2));
    }
    return acct;
}

} // namespace

struct Engine::Impl {
    Config cfg;
    IdentityMap identity;
    std::unique_ptr<Store> store;
    std::unique_ptr<Provisioner> provisioner;
    std::map<std::string, std::unique_ptr<Verifier>> verifiers; // by provider name
    std::optional<Guard> guard;
    std::optional<LoginCache> cache;
    std::string lock_dir;
    std::mutex hook_mu;
    ProvisionedHook hook; // guarded by hook_mu

    AuthResult decide(const AuthRequest& req, const Secret& password);
    // nullopt: the stored hash cannot be verified here; the caller asks the old server.
    std::optional<AuthResult> from_store(const AuthRequest& req, const Identity& id,
                                         const Account& acct, const Secret& password,
                                         const std::string& who);
    AuthResult first_login(const AuthRequest& req, const Identity& id,
                           const std::optional<Account>& existing, const Secret& password,
                           const std::string& who);
    // Which hash check_hash() checks: the stored hash of a migrated account (a right
    // password goes into the login cache and may come from it) or an imported one.
    enum class HashKind { stored, imported };
    // The guard, then the password against acct.hash (`kind` names the hash in answers:
    // "stored", "imported"). Returns the answer when it is decided here (guard refusal,
    // busy store, mismatch). Otherwise *verdict is set, and *match is true when the hash
    // matched, false when it cannot be verified here (the old server has to decide).
    std::optional<AuthResult> check_hash(const AuthRequest& req, const Account& acct,
                                         const Secret& password, const std::string& who,
                                         HashKind kind, std::optional<Guard::Verdict>& verdict,
                                         bool& match, bool& cached);
    // The first login of an imported account (state verified): its password is checked
    // against the imported hash instead of the old server. nullopt: the hash cannot be
    // verified here; the caller asks the old server.
    std::optional<AuthResult> imported_login(const AuthRequest& req, const Identity& id,
                                             const Account& acct, const Secret& password,
                                             const std::string& who);
    // What every first login does once the password is known to be right: hash it with
    // the configured scheme, provision, write the account (state provisioned, last login
    // now), run the provisioned hook. `how` says how the password was verified.
    AuthResult provision(const AuthRequest& req, const Identity& id,
                         const std::optional<Account>& existing, const Secret& password,
                         const std::string& who, const Guard::Verdict& verdict,
                         const std::string& how);
    std::vector<std::pair<std::string, std::string>> extra_fields(const Identity& id) const;
    AuthResult find_migrated(std::string_view login, const std::string& who);
    // The guard's answer when it refuses this client whatever the check (per-client and
    // per-address limits, negative cache); nothing is written. nullopt: go on.
    std::optional<AuthResult> guard_refusal(const AuthRequest& req, const std::string& name,
                                            const Secret& password);
    // FAIL for a disabled account, with the admin's reason (`mailferry account disable`)
    // for the log. Its cached logins go with any failure (authenticate()).
    AuthResult disabled(const std::string& name);
};

namespace {

AuthResult answer(AuthStatus st, std::string user, std::string message) {
    AuthResult r;
    r.status = st;
    r.user = std::move(user);
    r.message = std::move(message);
    return r;
}

// The answer when the guard decided before any check: its store could not record the
// attempt or a limit is reached (TEMPFAIL), or the negative cache knows the password
// (FAIL). nullopt: the check may go ahead.
std::optional<AuthResult> guard_answer(const Result<Guard::Verdict>& v, const std::string& name) {
    if (!v) {
        return answer(AuthStatus::tempfail, name, v.error().message());
    }
    if (v->refuse) {
        return answer(AuthStatus::tempfail, name, *v->refuse);
    }
    if (v->known_wrong) {
        return answer(AuthStatus::fail, name, *v->known_wrong);
    }
    return std::nullopt;
}

void log_result(const std::string& who, const AuthResult& r) {
    std::string line = who + ": " + to_string(r.status) + ": " + r.message;
    if (r.status == AuthStatus::ok) {
        log::info(line);
    } else if (r.status == AuthStatus::fail) {
        log::info(line);
    } else {
        log::warning(line);
    }
}

} // namespace

const char* to_string(AuthStatus s) {
    switch (s) {
    case AuthStatus::ok:
        return "OK";
    case AuthStatus::fail:
        return "FAIL";
    case AuthStatus::tempfail:
        return "TEMPFAIL";
    }
    return "?";
}

std::vector<std::pair<std::string, std::string>>
Engine::Impl::extra_fields(const Identity& id) const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [name, tmpl] : cfg.result.extra_fields) {
        out.emplace_back(name, expand_template(tmpl, id.local, id.domain));
    }
    return out;
}

AuthResult Engine::Impl::decide(const AuthRequest& req, const Secret& password) {
    std::string who = log::prefix(req.face.empty() ? "engine" : req.face, req.login, req.client_ip);

    // Refuse what no old server could accept, before anybody is contacted.
    if (password.empty()) {
        return answer(AuthStatus::fail, {}, "empty password");
    }
    if (password.size() > kMaxPasswordBytes) {
        return answer(AuthStatus::fail, {},
                      "password longer than " + std::to_string(kMaxPasswordBytes) + " bytes (" +
                          std::to_string(password.size()) + ")");
    }
    for (char c : password.view()) {
        if (c == '\r' || c == '\n' || c == '\0') {
            return answer(AuthStatus::fail, {}, "password holds CR, LF or NUL");
        }
    }
    auto id = identity.resolve(req.login);
    if (!id) {
        return answer(AuthStatus::fail, {}, "login refused: " + id.error().message());
    }
    auto acct = account_of(*store, *id, who);
    if (!acct) {
        return answer(AuthStatus::tempfail, id->canonical, acct.error().message());
    }
    std::string seen_hash;
    bool seen_imported = false;
    if (acct->has_value() && !(**acct).hash.empty()) {
        seen_hash = (**acct).hash;
        // An imported account (verified) is not on the new server yet: its first login
        // provisions it, under the account lock below, like any first login.
        seen_imported = (**acct).state == AccountState::verified;
        if (!seen_imported) {
            if (auto r = from_store(req, *id, **acct, password, who)) {
                return std::move(*r);
            }
        }
        // The stored hash is in a scheme we cannot verify (e.g. an imported {MSNT}):
        // verify at the old server instead, as for a first login.
    }

    // A client the guard refuses anyway does not queue for the account lock, so a
    // guesser hammering an account cannot starve its right user's first login.
    if (auto r = guard_refusal(req, id->canonical, password)) {
        return std::move(*r);
    }
    // First login: one process at a time per account, so two simultaneous first logins
    // provision once.
    Millis wait = id->provider->timeout + cfg.store.busy_timeout;
    auto lock = FileLock::acquire(account_lock_path(lock_dir, id->canonical), wait);
    if (!lock) {
        return answer(AuthStatus::tempfail, id->canonical, lock.error().message());
    }
    acct = account_of(*store, *id, who);
    if (!acct) {
        return answer(AuthStatus::tempfail, id->canonical, acct.error().message());
    }
    if (acct->has_value() && !(**acct).hash.empty() && (**acct).state != AccountState::verified &&
        ((**acct).hash != seen_hash || seen_imported)) {
        // Another login provisioned while we waited for the lock.
        if (auto r = from_store(req, *id, **acct, password, who)) {
            return std::move(*r);
        }
    }
    if (acct->has_value() && !(**acct).hash.empty() && (**acct).state == AccountState::verified) {
        if (auto r = imported_login(req, *id, **acct, password, who)) {
            return std::move(*r);
        }
    }
    return first_login(req, *id, *acct, password, who);
}

AuthResult Engine::Impl::find_migrated(std::string_view login, const std::string& who) {
    auto id = identity.resolve(login);
    if (!id) {
        return answer(AuthStatus::fail, {}, "login refused: " + id.error().message());
    }
    auto acct = account_of(*store, *id, who);
    if (!acct) {
        return answer(AuthStatus::tempfail, id->canonical, acct.error().message());
    }
    if (!acct->has_value() || !is_migrated((**acct).state)) {
        return answer(AuthStatus::fail, id->canonical,
                      id->canonical + " is not migrated (" +
                          (acct->has_value() ? to_string((**acct).state) : "unknown") + ")");
    }
    AuthResult res = answer(AuthStatus::ok, id->canonical, "migrated account found");
    res.extra = extra_fields(*id);
    return res;
}

std::optional<AuthResult> Engine::Impl::guard_refusal(const AuthRequest& req,
                                                      const std::string& name,
                                                      const Secret& password) {
    return guard_answer(
        guard->begin(name, req.client_ip, password, Guard::Check::stored_hash, false), name);
}

AuthResult Engine::Impl::disabled(const std::string& name) {
    std::string why = "account disabled";
    auto row = store->last_transition(name, AccountState::disabled);
    if (row && row->has_value()) {
        const AuditRow& r = **row;
        why += " by " + r.actor + (r.detail.empty() ? std::string() : ": " + r.detail);
    }
    return answer(AuthStatus::fail, name, why);
}

std::optional<AuthResult> Engine::Impl::from_store(const AuthRequest& req, const Identity& id,
                                                   const Account& acct, const Secret& password,
                                                   const std::string& who) {
    const std::string& name = acct.name;
    switch (acct.state) {
    case AccountState::disabled:
        return disabled(name);
    case AccountState::held:
        return answer(AuthStatus::tempfail, name, "maintenance: cut-over in progress");
    case AccountState::unknown:
    case AccountState::verified:
    case AccountState::provisioned:
    case AccountState::copying:
    case AccountState::synced:
    case AccountState::resyncing:
    case AccountState::cutover:
    case AccountState::failed:
        break;
    }
    std::optional<Guard::Verdict> verdict;
    bool match = false;
    bool cached = false;
    if (auto decided =
            check_hash(req, acct, password, who, HashKind::stored, verdict, match, cached)) {
        return decided;
    }
    if (!match) {
        return std::nullopt;
    }
    std::string note = cached ? "verified locally (login cache)" : "verified locally";
    std::string hash_now = acct.hash;
    if (needs_rehash(acct.hash, cfg.hash)) {
        auto h = make_hash(password, cfg.hash);
        if (h) {
            auto r = store->set_hash(
                name, *h,
                AuditContext{std::string(req.face), std::string(req.client_ip),
                             "rehashed to " + std::string(to_string(cfg.hash.scheme))});
            note += r ? "; rehashed to the configured scheme"
                      : "; rehash failed: " + r.error().message();
            hash_now = r ? *h : hash_now;
        }
    }
    cache->put(name, hash_now, password);
    // Last-login tracking needs minutes, not seconds: clients that log in every few
    // seconds (IMAP IDLE reconnects, SMTP submission) then cost no write at all.
    if (UnixTime now = now_unix(); now - acct.last_login >= kLoginRecordInterval) {
        if (auto r = store->record_login(name, now); !r) {
            log::warning(who + ": " + r.error().message());
        }
    }
    // A seal that failed at the first login (spool disk full) is retried while the user
    // logs in with the password: one stat() when the entry is there, no write.
    if (queue::needs_seal(cfg, acct)) {
        std::unique_lock lk(hook_mu);
        ProvisionedHook h = hook;
        lk.unlock();
        if (auto r = h ? h(id, password) : make_error("no provisioned hook"); r) {
            note += "; password sealed again for the copy";
        } else {
            log::warning(who + ": the copy still has no sealed password: " + r.error().message());
        }
    }
    guard->accepted(*verdict);
    AuthResult res = answer(AuthStatus::ok, name, note);
    res.extra = extra_fields(id);
    return res;
}

AuthResult Engine::Impl::first_login(const AuthRequest& req, const Identity& id,
                                     const std::optional<Account>& existing, const Secret& password,
                                     const std::string& who) {
    const std::string& name = id.canonical;
    if (existing && existing->state == AccountState::disabled) {
        return disabled(name);
    }
    if (existing && existing->state == AccountState::held) {
        return answer(AuthStatus::tempfail, name, "maintenance: cut-over in progress");
    }
    // The attempt is recorded before the old server is asked: no record, no question.
    auto verdict = guard->begin(name, req.client_ip, password, Guard::Check::old_server);
    if (auto decided = guard_answer(verdict, name)) {
        return std::move(*decided);
    }
    const ProviderConfig& provider = *id.provider;
    auto slot = take_provider_slot(lock_dir, provider.name, provider.max_concurrent);
    if (!slot || !slot->has_value()) {
        guard->unchecked(*verdict);
    }
    if (!slot) {
        return answer(AuthStatus::tempfail, name, slot.error().message());
    }
    if (!slot->has_value()) {
        AuthResult busy = answer(AuthStatus::tempfail, name,
                                 "old server " + provider.name + " already has " +
                                     std::to_string(provider.max_concurrent) +
                                     " verifications running (max_concurrent)");
        busy.server_busy = true;
        return busy;
    }
    VerifyOutcome outcome = verifiers.at(provider.name)->verify(id.old_login, password);
    slot->reset();
    std::string at =
        provider.name + " (" + to_string(provider.protocol) + " " + provider.host + ")";
    switch (outcome.status) {
    case VerifyStatus::rejected:
        if (auto r = guard->rejected(name, password, *verdict, true); !r) {
            return answer(AuthStatus::tempfail, name,
                          "rejected by old server " + at +
                              ", but the failure could not be recorded: " + r.error().message());
        }
        return answer(AuthStatus::fail, name,
                      "rejected by old server " + at + ": " + outcome.detail);
    case VerifyStatus::unavailable:
        guard->unchecked(*verdict);
        return answer(AuthStatus::tempfail, name,
                      "old server " + at + " unavailable: " + outcome.detail);
    case VerifyStatus::ok:
        break;
    }
    return provision(req, id, existing, password, who, *verdict, "verified at " + at);
}

std::optional<AuthResult> Engine::Impl::imported_login(const AuthRequest& req, const Identity& id,
                                                       const Account& acct, const Secret& password,
                                                       const std::string& who) {
    std::optional<Guard::Verdict> verdict;
    bool match = false;
    bool cached = false; // never: only stored hashes are cached
    if (auto decided =
            check_hash(req, acct, password, who, HashKind::imported, verdict, match, cached)) {
        return decided;
    }
    if (!match) {
        return std::nullopt;
    }
    return provision(req, id, acct, password, who, *verdict, "matched the imported hash");
}

std::optional<AuthResult> Engine::Impl::check_hash(const AuthRequest& req, const Account& acct,
                                                   const Secret& password, const std::string& who,
                                                   HashKind kind,
                                                   std::optional<Guard::Verdict>& verdict,
                                                   bool& match, bool& cached) {
    const std::string& name = acct.name;
    // The attempt is recorded before the hash is checked: no record, no check.
    auto v = guard->begin(name, req.client_ip, password, Guard::Check::stored_hash);
    if (auto decided = guard_answer(v, name)) {
        return decided;
    }
    verdict = std::move(*v);
    // Only a stored hash of a migrated account is cached; an imported one is checked once.
    const std::string what = kind == HashKind::stored ? "stored" : "imported";
    if (kind == HashKind::stored && cache->hit(name, acct.hash, password)) {
        cached = true;
        match = true;
        return std::nullopt;
    }
    HashCheck check = verify_hash(acct.hash, password);
    switch (check.result) {
    case HashMatch::mismatch:
        if (auto r = guard->rejected(name, password, *verdict, false); !r) {
            return answer(
                AuthStatus::tempfail, name,
                "password does not match the " + what +
                    " hash, but the failure could not be recorded: " + r.error().message());
        }
        return answer(AuthStatus::fail, name, "password does not match the " + what + " hash");
    case HashMatch::unsupported:
        guard->unchecked(*verdict); // the old server checks it, under its own attempt
        log::info(who + ": " + what + " hash not verifiable here (" + check.reason +
                  "): asking the old server");
        match = false;
        return std::nullopt;
    case HashMatch::match:
        break;
    }
    match = true;
    return std::nullopt;
}

AuthResult Engine::Impl::provision(const AuthRequest& req, const Identity& id,
                                   const std::optional<Account>& existing, const Secret& password,
                                   const std::string& who, const Guard::Verdict& verdict,
                                   const std::string& how) {
    const std::string& name = id.canonical;
    const ProviderConfig& provider = *id.provider;
    guard->accepted(verdict); // the password is right, whatever happens next
    auto hash = make_hash(password, cfg.hash);
    if (!hash) {
        return answer(AuthStatus::tempfail, name,
                      "hash the new password: " + hash.error().message());
    }
    if (auto r = provisioner->provision(ProvisionRequest{id, password, *hash}); !r) {
        return answer(AuthStatus::tempfail, name,
                      std::string("provision with ") + provisioner->name() + ": " +
                          r.error().message());
    }
    AuditContext ctx{std::string(req.face), std::string(req.client_ip),
                     how + "; provisioned by " + provisioner->name()};
    Result<void> stored;
    if (existing) {
        stored = store->set_hash(name, *hash, ctx);
        if (stored && existing->state != AccountState::provisioned &&
            !is_migrated(existing->state)) {
            stored = store->set_state(name, AccountState::provisioned, ctx);
        }
        if (stored) {
            // An imported account's first login: status shows it as its first login.
            if (auto r = store->record_login(name, now_unix()); !r) {
                log::warning(who + ": " + r.error().message());
            }
        }
    } else {
        Account a;
        a.name = name;
        a.provider = provider.name;
        a.state = AccountState::provisioned;
        a.hash = *hash;
        a.last_login = now_unix();
        stored = store->create_account(a, ctx);
    }
    if (!stored) {
        // The new server has the account but we could not remember it: the next login
        // will verify and provision again (idempotent), so TEMPFAIL loses nothing.
        return answer(AuthStatus::tempfail, name,
                      "store the new account: " + stored.error().message());
    }
    ProvisionedHook h;
    {
        std::lock_guard lk(hook_mu);
        h = hook;
    }
    if (h) {
        if (auto r = h(id, password); !r) {
            log::warning(who + ": account provisioned, but the copy could not be queued: " +
                         r.error().message());
        }
    }
    AuthResult res = answer(AuthStatus::ok, name,
                            "first login: " + how + ", provisioned by " + provisioner->name());
    res.extra = extra_fields(id);
    res.first_login = true;
    return res;
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::open(const std::string& config_path) {
    auto cfg = load_config(config_path);
    if (!cfg) {
        return cfg.error();
    }
    return from_config(std::move(*cfg));
}

Result<std::unique_ptr<Engine>> Engine::from_config(Config cfg) {
    auto impl = std::make_unique<Impl>();
    impl->cfg = std::move(cfg);
    log::set_level(impl->cfg.log.level);
    for (const auto& w : impl->cfg.warnings) {
        log::warning("config: " + w);
    }
    auto ident = IdentityMap::create(impl->cfg);
    if (!ident) {
        return ident.error();
    }
    impl->identity = std::move(*ident);
    impl->lock_dir = lock_dir_of(impl->cfg);
    if (auto r = make_dirs(impl->lock_dir, 02770); !r) {
        return r.error();
    }
    auto store = open_sqlite_store(impl->cfg.store.path, impl->cfg.store.busy_timeout);
    if (!store) {
        return store.error();
    }
    impl->store = std::move(*store);
    auto guard = Guard::create(*impl->store, impl->cfg.guard);
    if (!guard) {
        return guard.error();
    }
    impl->guard.emplace(std::move(*guard));
    impl->cache.emplace(impl->cfg.login_cache.ttl, impl->cfg.login_cache.max_entries);
    auto prov = make_provisioner(impl->cfg.provisioner);
    if (!prov) {
        return prov.error();
    }
    impl->provisioner = std::move(*prov);
    for (const auto& p : impl->cfg.providers) {
        impl->verifiers.emplace(p.name, make_verifier(p));
    }
    // With a [target], a first login also starts the copy (spool, job, wake-up).
    if (impl->cfg.target.configured) {
        impl->hook = queue::make_provisioned_hook(impl->cfg, *impl->store);
    }
    // The identity map points into cfg; cfg stays put inside impl from here on.
    return std::unique_ptr<Engine>(new Engine(std::move(impl))); // NOLINT: private ctor
}

AuthResult Engine::authenticate(const AuthRequest& req) noexcept {
    try {
        Secret password(req.password);
        AuthResult r = impl_->decide(req, password);
        if (r.status != AuthStatus::ok && !r.user.empty()) {
            impl_->cache->drop(r.user); // any failure of a user forgets its cached logins
        }
        log_result(log::prefix(req.face.empty() ? "engine" : req.face, req.login, req.client_ip),
                   r);
        return r;
    } catch (const std::exception& e) {
        AuthResult r = answer(AuthStatus::tempfail, {}, std::string("internal error: ") + e.what());
        try {
            log::error(r.message);
        } catch (...) { // NOLINT(bugprone-empty-catch): logging must not throw either
        }
        return r;
    } catch (...) {
        return answer(AuthStatus::tempfail, {}, "internal error");
    }
}

AuthResult Engine::lookup(std::string_view login, std::string_view face) noexcept {
    try {
        std::string who = log::prefix(face.empty() ? "engine" : face, login, "");
        AuthResult r = impl_->find_migrated(login, who);
        log_result(who + ": lookup", r);
        return r;
    } catch (const std::exception& e) {
        return answer(AuthStatus::tempfail, {}, std::string("lookup: internal error: ") + e.what());
    } catch (...) {
        return answer(AuthStatus::tempfail, {}, "lookup: internal error");
    }
}

void Engine::set_provisioned_hook(ProvisionedHook hook) {
    std::lock_guard lk(impl_->hook_mu);
    impl_->hook = std::move(hook);
}

const Config& Engine::config() const {
    return impl_->cfg;
}
Store& Engine::store() {
    return *impl_->store;
}
const IdentityMap& Engine::identity() const {
    return impl_->identity;
}

} // namespace mf
