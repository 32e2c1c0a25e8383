// identity.cpp — IdentityMap: the name a user typed → canonical account, old address,
// old-server login and provider.
//
// Resolution, in order:
//   1. syntax (identity_syntax.cpp), then the short/full rules: a short name gets
//      identity.default_domain; the domain is folded (identity_idna.cpp: ASCII lower
//      case, an internationalised name as xn--…).
//   2. a login that is a new name given out by the conflict map belongs to that map line's
//      old account;
//   3. otherwise the login names an old account: a domain that is a rename target is
//      mapped back to its old domain, and the conflict map may give that account another
//      new name; without an entry the new name is the local part at the renamed domain.
//   4. the provider is the one serving the OLD domain. When it is case_insensitive the
//      local part of the canonical name is folded to lower case (ASCII letters only: the
//      servers that fold, Dovecot's %Lu among them, fold ASCII); the user's spelling stays
//      in old_address and old_login, which follow the provider's login_form.
// The conflict map is a file of "login  canonical" lines ('#' starts a comment); it is
// read once, in create(), folded by the same rules, and checked for duplicates in both
// columns.
// Never: contact anybody, accept a login whose domain no provider serves, or let two
// spellings of one user of a case-insensitive server make two canonical names.
// Errors: resolve(): Scope::account, Retry::never. create(): Scope::config, "FILE:LINE".
#include "mailferry/identity.hpp"

#include "file_util.hpp"
#include "identity_private.hpp"

#include <algorithm>

namespace mf {
namespace {

struct Address {
    std::string local;
    std::string domain;
    [[nodiscard]] std::string full() const { return local + "@" + domain; }
};

void lower_ascii(std::string& s) {
    std::transform(s.begin(), s.end(), s.begin(), [](char c) {
        return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    });
}

using Served = IdentityMap::Served;

const Served* serving(const std::map<std::string, Served>& served, const std::string& domain) {
    auto it = served.find(domain);
    return it == served.end() ? nullptr : &it->second;
}

// new domain → the old domain renamed to it (config.cpp made sure there is at most one).
std::string old_domain_of(const std::map<std::string, std::string>& renames,
                          const std::string& domain) {
    for (const auto& [from, to] : renames) {
        if (to == domain) {
            return from;
        }
    }
    return domain;
}

std::string new_domain_of(const std::map<std::string, std::string>& renames,
                          const std::string& domain) {
    auto it = renames.find(domain);
    return it == renames.end() ? domain : it->second;
}

// A login that passed check_login_syntax(), split; a short name gets `short_domain`. The
// domain is folded; the local part is left as typed (folding it depends on the server).
Result<Address> normal_form(std::string_view login, const std::string& short_domain) {
    Address a;
    auto at = login.find('@');
    if (at == std::string_view::npos) {
        a.local = login;
        a.domain = short_domain;
        return a;
    }
    a.local = login.substr(0, at);
    auto domain = domain_to_ascii(login.substr(at + 1));
    if (!domain) {
        return login_error(login, "has a domain that " + domain.error().detail);
    }
    a.domain = std::move(*domain);
    return a;
}

// The local part as the canonical name has it.
std::string folded_local(const Served& s, std::string local) {
    if (s.provider->case_insensitive) {
        lower_ascii(local);
    }
    return local;
}

Address split(const std::string& full) {
    auto at = full.find('@');
    return {full.substr(0, at), full.substr(at + 1)};
}

Error map_error(const std::string& file, std::size_t line, std::string detail) {
    return make_error(file + ":" + std::to_string(line), std::move(detail), Scope::config);
}

Error config_error(std::string what, std::string detail) {
    return make_error(std::move(what), std::move(detail), Scope::config);
}

// Fields of one conflict-map line; a field starting with '#' ends the line.
std::vector<std::string_view> fields(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) {
            ++i;
        }
        if (i == line.size() || line[i] == '#') {
            break;
        }
        std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t') {
            ++i;
        }
        out.push_back(line.substr(start, i - start));
    }
    return out;
}

// The domains of the config in the form logins are compared in (ASCII, lower case).
Result<std::string> config_domain(const std::string& key, const std::string& domain) {
    auto d = domain_to_ascii(domain);
    if (!d) {
        return config_error(key, "domain " + identity_shown(domain) + " " + d.error().detail);
    }
    return d;
}

} // namespace

void use_stored_name(Identity& id, std::string_view stored) {
    Address a = split(std::string(stored));
    id.canonical = std::string(stored);
    id.local = std::move(a.local);
    id.domain = std::move(a.domain);
}

bool same_ignoring_case(std::string_view a, std::string_view b) {
    auto fold = [](char c) {
        return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    };
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [&](char x, char y) { return fold(x) == fold(y); });
}

Result<IdentityMap> IdentityMap::create(const Config& cfg) {
    IdentityMap map;
    map.cfg_ = &cfg;
    for (const auto& p : cfg.providers) {
        for (const auto& d : p.domains) {
            auto ascii = config_domain("provider " + p.name + ": domains", d);
            if (!ascii) {
                return ascii.error();
            }
            auto [it, fresh] = map.served_.emplace(*ascii, Served{&p, d});
            if (!fresh) {
                return config_error("provider " + p.name + ": domains",
                                    identity_shown(d) + " is " + *ascii +
                                        ", already served by provider \"" +
                                        it->second.provider->name + "\"");
            }
        }
    }
    for (const auto& [from, to] : cfg.identity.domain_renames) {
        auto f = config_domain("identity.domain_renames", from);
        auto t = f ? config_domain("identity.domain_renames", to) : f;
        if (!t) {
            return t.error();
        }
        map.renames_.emplace(*f, *t);
    }
    if (!cfg.identity.default_domain.empty()) {
        auto d = config_domain("identity.default_domain", cfg.identity.default_domain);
        if (!d) {
            return d.error();
        }
        map.default_domain_ = *d;
    }
    if (!cfg.identity.conflict_map.empty()) {
        if (auto ok = map.read_conflict_map(cfg.identity.conflict_map); !ok) {
            return ok.error();
        }
    }
    return map;
}

Result<void> IdentityMap::read_conflict_map(const std::string& file) {
    auto text = read_file(file);
    if (!text) {
        Error e = text.error();
        e.what = "identity.conflict_map: " + e.what;
        return e;
    }
    std::map<std::string, std::size_t> login_line;
    std::map<std::string, std::size_t> canonical_line;
    std::string_view rest = *text;
    std::size_t lineno = 0;
    while (!rest.empty()) {
        ++lineno;
        auto nl = rest.find('\n');
        std::string_view line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        auto f = fields(line);
        if (f.empty()) {
            continue;
        }
        if (f.size() != 2) {
            return map_error(file, lineno,
                             "expected \"login  canonical-name\" (two fields), found " +
                                 std::to_string(f.size()) + " field" + (f.size() == 1 ? "" : "s"));
        }
        for (auto field : f) {
            if (auto ok = check_login_syntax(field); !ok) {
                return map_error(file, lineno, ok.error().message());
            }
        }
        bool is_short = f[0].find('@') == std::string_view::npos;
        if (is_short && default_domain_.empty()) {
            return map_error(file, lineno,
                             "\"" + identity_shown(f[0]) +
                                 "\" is a short name, and identity.default_domain is not set");
        }
        auto typed = normal_form(f[0], default_domain_);
        if (!typed) {
            return map_error(file, lineno, typed.error().message());
        }
        Address old{typed->local, old_domain_of(renames_, typed->domain)};
        const Served* s = serving(served_, old.domain);
        if (s == nullptr) {
            return map_error(file, lineno,
                             "no provider serves the domain of \"" + identity_shown(f[0]) + "\"");
        }
        auto canonical = normal_form(f[1], new_domain_of(renames_, old.domain));
        if (!canonical) {
            return map_error(file, lineno, canonical.error().message());
        }
        // Both columns fold as the old account's server does.
        old.local = folded_local(*s, old.local);
        canonical->local = folded_local(*s, canonical->local);
        std::string key = old.full();
        std::string value = canonical->full();
        if (auto [it, fresh] = login_line.emplace(key, lineno); !fresh) {
            return map_error(file, lineno,
                             key + " is already mapped at line " + std::to_string(it->second));
        }
        if (auto [it, fresh] = canonical_line.emplace(value, lineno); !fresh) {
            return map_error(file, lineno,
                             value + " is already the new name of another account at line " +
                                 std::to_string(it->second));
        }
        conflicts_.emplace(key, value);
        canonical_to_login_.emplace(value, key);
    }
    return {};
}

Result<Identity> IdentityMap::resolve(std::string_view login) const {
    if (cfg_ == nullptr) {
        return make_error("resolve login", "IdentityMap used before create()", Scope::internal);
    }
    if (auto ok = check_login_syntax(login); !ok) {
        return ok.error();
    }
    const auto& id = cfg_->identity;
    bool is_short = login.find('@') == std::string_view::npos;
    if (is_short && !id.accept_short_names) {
        return login_error(login, "is a short name; log in with the full address "
                                  "(identity.accept_short_names = false)");
    }
    if (is_short && default_domain_.empty()) {
        return login_error(login, "is a short name; log in with the full address "
                                  "(identity.default_domain is not set)");
    }
    if (!is_short && !id.accept_full_address) {
        return login_error(login, "is a full address; log in with the short name "
                                  "(identity.accept_full_address = false)");
    }
    auto typed = normal_form(login, default_domain_);
    if (!typed) {
        return typed.error();
    }
    Address old{typed->local, old_domain_of(renames_, typed->domain)};
    Address canonical;
    // A new name from the conflict map: as typed, or folded when its old server folds.
    auto hit = canonical_to_login_.empty() ? canonical_to_login_.end()
                                           : canonical_to_login_.find(typed->full());
    if (hit == canonical_to_login_.end() && !canonical_to_login_.empty()) {
        Address lowered = *typed;
        lower_ascii(lowered.local);
        hit = canonical_to_login_.find(lowered.full());
        if (hit != canonical_to_login_.end()) {
            const Served* s = serving(served_, split(hit->second).domain);
            hit = s != nullptr && s->provider->case_insensitive ? hit : canonical_to_login_.end();
        }
    }
    if (hit != canonical_to_login_.end()) {
        old = split(hit->second);
        canonical = split(hit->first);
    }
    const Served* served = serving(served_, old.domain);
    if (served == nullptr) {
        return login_error(login, "no old server serves the domain " + identity_shown(old.domain));
    }
    if (hit == canonical_to_login_.end()) {
        Address key{folded_local(*served, old.local), old.domain};
        if (auto c = conflicts_.find(key.full()); c != conflicts_.end()) {
            canonical = split(c->second);
        } else {
            canonical = Address{key.local, new_domain_of(renames_, old.domain)};
        }
    }
    const ProviderConfig* provider = served->provider;
    Identity out;
    out.canonical = canonical.full();
    out.local = canonical.local;
    out.domain = canonical.domain;
    out.login = std::string(login);
    // The old server gets the user's spelling of the local part and the domain as the
    // provider's config writes it.
    out.old_address = old.local + "@" + served->spelled;
    out.provider = provider;
    switch (provider->login_form) {
    case LoginForm::full_address:
        out.old_login = out.old_address;
        break;
    case LoginForm::local_part:
        out.old_login = old.local;
        break;
    case LoginForm::templated:
        out.old_login = expand_template(provider->login_template, old.local, served->spelled);
        break;
    }
    return out;
}

} // namespace mf
