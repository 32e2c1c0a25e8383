// identity.cpp — IdentityMap: the name a user typed → canonical account, old address,
// old-server login and provider.
//
// Resolution, in order:
//   1. syntax (identity_syntax.cpp), then the short/full rules: a short name gets
//      identity.default_domain; the domain is lower-cased (ASCII), the local part too only
//      with fold_local_part.
//   2. a login that is a new name given out by the conflict map belongs to that map line's
//      old account;
//   3. otherwise the login names an old account: a domain that is a rename target is
//      mapped back to its old domain, and the conflict map may give that account another
//      new name; without an entry the new name is the local part at the renamed domain.
//   4. the provider is the one serving the OLD domain; the old server's login follows the
//      provider's login_form.
// The conflict map is a file of "login  canonical" lines ('#' starts a comment); it is
// read once, in create(), and checked for duplicates in both columns.
// Never: contact anybody, or accept a login whose domain no provider serves.
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

const ProviderConfig* serving(const Config& cfg, const std::string& domain) {
    for (const auto& p : cfg.providers) {
        if (std::find(p.domains.begin(), p.domains.end(), domain) != p.domains.end()) {
            return &p;
        }
    }
    return nullptr;
}

// new domain → the old domain renamed to it (config.cpp made sure there is at most one).
std::string old_domain_of(const IdentityConfig& id, const std::string& domain) {
    for (const auto& [from, to] : id.domain_renames) {
        if (to == domain) {
            return from;
        }
    }
    return domain;
}

std::string new_domain_of(const IdentityConfig& id, const std::string& domain) {
    auto it = id.domain_renames.find(domain);
    return it == id.domain_renames.end() ? domain : it->second;
}

// Case rules for a login that passed check_login_syntax(); a short name gets `short_domain`.
Address normal_form(const IdentityConfig& id, std::string_view login,
                    const std::string& short_domain) {
    Address a;
    auto at = login.find('@');
    if (at == std::string_view::npos) {
        a.local = login;
        a.domain = short_domain;
    } else {
        a.local = login.substr(0, at);
        a.domain = login.substr(at + 1);
    }
    lower_ascii(a.domain);
    if (id.fold_local_part) {
        lower_ascii(a.local);
    }
    return a;
}

Address split(const std::string& full) {
    auto at = full.find('@');
    return {full.substr(0, at), full.substr(at + 1)};
}

Error map_error(const std::string& file, std::size_t line, std::string detail) {
    return make_error(file + ":" + std::to_string(line), std::move(detail), Scope::config);
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

} // namespace

Result<IdentityMap> IdentityMap::create(const Config& cfg) {
    IdentityMap map;
    map.cfg_ = &cfg;
    const auto& id = cfg.identity;
    const std::string& file = id.conflict_map;
    if (file.empty()) {
        return map;
    }
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
        if (is_short && id.default_domain.empty()) {
            return map_error(file, lineno,
                             "\"" + identity_shown(f[0]) +
                                 "\" is a short name, and identity.default_domain is not set");
        }
        Address typed = normal_form(id, f[0], id.default_domain);
        Address old{typed.local, old_domain_of(id, typed.domain)};
        if (serving(cfg, old.domain) == nullptr) {
            return map_error(file, lineno,
                             "no provider serves the domain of \"" + identity_shown(f[0]) + "\"");
        }
        Address canonical = normal_form(id, f[1], new_domain_of(id, old.domain));
        std::string key = old.full();
        std::string value = canonical.full();
        if (auto [it, fresh] = login_line.emplace(key, lineno); !fresh) {
            return map_error(file, lineno,
                             key + " is already mapped at line " + std::to_string(it->second));
        }
        if (auto [it, fresh] = canonical_line.emplace(value, lineno); !fresh) {
            return map_error(file, lineno,
                             value + " is already the new name of another account at line " +
                                 std::to_string(it->second));
        }
        map.conflicts_.emplace(key, value);
        map.canonical_to_login_.emplace(value, key);
    }
    return map;
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
    if (is_short && id.default_domain.empty()) {
        return login_error(login, "is a short name; log in with the full address "
                                  "(identity.default_domain is not set)");
    }
    if (!is_short && !id.accept_full_address) {
        return login_error(login, "is a full address; log in with the short name "
                                  "(identity.accept_full_address = false)");
    }
    Address typed = normal_form(id, login, id.default_domain);
    Address old;
    Address canonical;
    if (auto it = canonical_to_login_.find(typed.full()); it != canonical_to_login_.end()) {
        old = split(it->second);
        canonical = typed;
    } else {
        old = Address{typed.local, old_domain_of(id, typed.domain)};
        if (auto c = conflicts_.find(old.full()); c != conflicts_.end()) {
            canonical = split(c->second);
        } else {
            canonical = Address{old.local, new_domain_of(id, old.domain)};
        }
    }
    const ProviderConfig* provider = serving(*cfg_, old.domain);
    if (provider == nullptr) {
        return login_error(login, "no old server serves the domain " + identity_shown(old.domain));
    }
    Identity out;
    out.canonical = canonical.full();
    out.local = canonical.local;
    out.domain = canonical.domain;
    out.old_address = old.full();
    out.provider = provider;
    switch (provider->login_form) {
    case LoginForm::full_address:
        out.old_login = out.old_address;
        break;
    case LoginForm::local_part:
        out.old_login = old.local;
        break;
    case LoginForm::templated:
        out.old_login = expand_template(provider->login_template, old.local, old.domain);
        break;
    }
    return out;
}

} // namespace mf
