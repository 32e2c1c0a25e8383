// import.cpp — an old server's account export → an ImportPlan (see mailferry/import.hpp).
//
// Each format has a small line parser that yields (line, name, password value); the rest
// is shared: the name goes through the identity map, the value becomes a {SCHEME}hash
// that verify_hash() can check (or the line is an error), duplicates are found by
// canonical name (the identity map folds the letter case of users of a case-insensitive
// server, so two spellings of one user are one name). Clear-text values (CommuniGate,
// Modoboa, and {PLAIN}-style values in any format, import_plain.cpp) are hashed at once
// with the configured scheme and the copies wiped; duplicates are compared by a digest of the raw
// value, so no clear text outlives its line.
// Must never: put a password or any part of a password field into a message; import a
// value verify_hash() cannot check; guess the layout of CommuniGate's \002 values.
// Errors: per line in ImportPlan::errors ("why", the caller prefixes FILE:LINE).
#include "mailferry/import.hpp"

#include "import_private.hpp"
#include "mailferry/password.hpp"
#include "mailferry/secret.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <set>
#include <sodium.h>

namespace mf {
namespace {

constexpr const char* kCgpEncrypted =
    "CommuniGate-encrypted password (value starts with \\002): its format is not published, "
    "so it cannot be verified here; this user will be verified at the old server at first "
    "login (or use `mailferry replay`)";

// Fields of one line that may hold a clear-text password: wiped when the line is done.
class Fields {
  public:
    Fields() = default;
    explicit Fields(std::vector<std::string> v) : v_(std::move(v)) {}
    ~Fields() { clear(); }
    Fields(const Fields&) = delete;
    Fields& operator=(const Fields&) = delete;
    Fields(Fields&&) = default;
    Fields& operator=(Fields&& o) noexcept {
        clear();
        v_ = std::move(o.v_);
        return *this;
    }
    void clear() {
        for (auto& s : v_) {
            wipe(s.data(), s.size());
        }
        v_.clear();
    }
    [[nodiscard]] std::size_t size() const { return v_.size(); }
    std::string& operator[](std::size_t i) { return v_[i]; }
    void push_back(std::string s) { v_.push_back(std::move(s)); }

  private:
    std::vector<std::string> v_;
};

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

// A short, printable form of a non-secret token (a Modoboa line type) for a message.
std::string shown(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 32)) {
        out += (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    return s.size() > 32 ? out + "…" : out;
}

std::string plural(std::size_t n, const char* word) {
    return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

// How a value without {SCHEME} is read.
enum class Bare { crypt, clear_text };

struct Value {
    std::string hash;  // {SCHEME}value
    std::string note;  // how we read it
    std::string error; // why it cannot be imported
    std::string skip;  // why it is not imported, by design
    Secret clear;      // the password, when the value was readable (wiped with the line)
};

// Hashes a readable password with the configured scheme into v.
void hash_clear(Value& v, Secret clear, const HashConfig& cfg, const std::string& what) {
    auto h = make_hash(clear, cfg);
    if (!h) {
        v.error = "hash the clear-text password: " + h.error().message();
        return;
    }
    v.hash = std::move(*h);
    v.clear = std::move(clear);
    v.note = "clear-text " + what + "hashed with " + to_string(cfg.scheme);
}

// A {SCHEME}value. Readable ones never reach the store: clear text is hashed now, a
// {PLAIN-TRUNC} is skipped. An unsalted digest cannot be rehashed without the password:
// it is kept, and the first login replaces it (docs/ARCHITECTURE.md, "Identity").
Value braced(std::string_view value, const HashConfig& cfg) {
    using import_detail::ValueKind;
    Value v;
    std::string reason;
    const ValueKind kind = import_detail::value_kind(value);
    const std::string label = kind == ValueKind::hash ? "" : import_detail::scheme_label(value);
    if (kind == ValueKind::plain) {
        auto clear = import_detail::plain_password(value, &reason);
        if (!clear || clear->empty()) {
            v.error = clear ? "empty password in a clear-text value" : reason;
            return v;
        }
        hash_clear(v, std::move(*clear), cfg, label + " value ");
        return v;
    }
    if (kind == ValueKind::plain_trunc) {
        v.skip = label + " is a readable password, and any longer one starting with it was "
                         "accepted, so no hash can mean the same: not imported; this user is "
                         "verified at the old server at first login";
        return v;
    }
    if (!hash_supported(value, &reason)) {
        v.error = "password hash cannot be verified here: " + reason;
        return v;
    }
    v.hash = std::string(value);
    if (kind == ValueKind::unsalted_digest) {
        v.note = "unsalted " + label + " digest: kept until the first login, which rehashes it";
    }
    return v;
}

Value to_hash(std::string_view value, Bare bare, const HashConfig& cfg) {
    Value v;
    if (value.empty()) {
        v.error = "empty password field: the account has no password to import";
        return v;
    }
    if (value.front() == '\x02') {
        v.error = kCgpEncrypted;
        return v;
    }
    std::string reason;
    if (value.front() == '{') {
        return braced(value, cfg);
    }
    if (bare == Bare::crypt) {
        if (value.front() == '!' || value.front() == '*') {
            v.error = "locked entry (password field starts with '!' or '*')";
            return v;
        }
        std::string h = "{CRYPT}" + std::string(value);
        if (!hash_supported(h, &reason)) {
            v.error = "password field has no {SCHEME} and is not a crypt(3) value (Dovecot "
                      "reads such values as CRYPT)";
            return v;
        }
        v.hash = std::move(h);
        return v;
    }
    if (value.front() == '$') {
        std::string h = "{CRYPT}" + std::string(value);
        if (hash_supported(h, nullptr)) {
            v.hash = std::move(h);
            v.note = "bare crypt(3) value";
            return v;
        }
    }
    hash_clear(v, Secret(value), cfg, "password ");
    return v;
}

// A digest of a raw password field, to tell duplicates apart without keeping clear text.
std::array<unsigned char, 16> value_digest(std::string_view value) {
    std::array<unsigned char, 16> d{};
    crypto_generichash(d.data(), d.size(), reinterpret_cast<const unsigned char*>(value.data()),
                       value.size(), nullptr, 0);
    return d;
}

bool is_comment_or_blank(std::string_view line, bool hash_comments) {
    std::string_view t = trim(line);
    return t.empty() || (hash_comments && t.front() == '#');
}

std::vector<std::string_view> split_on(std::string_view line, char sep) {
    std::vector<std::string_view> out;
    for (;;) {
        auto p = line.find(sep);
        out.push_back(line.substr(0, p));
        if (p == std::string_view::npos) {
            break;
        }
        line.remove_prefix(p + 1);
    }
    return out;
}

// The shared tail: one (line, name, password value) from any format.
class Planner {
  public:
    Planner(ImportPlan& plan, const ImportOptions& opt, const IdentityMap& ids,
            const HashConfig& hash, const PlanProgress& progress)
        : plan_(plan), opt_(opt), ids_(ids), hash_(hash), progress_(progress) {}

    // Line `n` (1-based) is about to be planned.
    void line(std::size_t n) {
        if (progress_) {
            progress_(n - 1);
        }
    }

    void error(std::size_t line, std::string why) {
        plan_.errors.push_back({line, std::move(why)});
    }

    void add(std::size_t line, std::string_view name, std::string_view password, Bare bare) {
        name = trim(name);
        if (name.empty()) {
            error(line, "empty user name");
            return;
        }
        if (auto bad = utf8_problem(name); !bad.empty()) {
            error(line, "user name: " + bad);
            return;
        }
        std::string login(name);
        if (login.find('@') == std::string::npos && !opt_.domain.empty()) {
            login += "@" + opt_.domain;
        }
        auto id = ids_.resolve(login);
        if (!id) {
            error(line, id.error().message());
            return;
        }
        auto digest = value_digest(password);
        if (duplicate(line, *id, login, digest)) {
            return;
        }
        seen_.emplace(id->canonical, Seen{line, digest, false, login});
        auto target = stored_name(line, *id);
        if (!target) {
            return;
        }
        Value v = to_hash(password, bare, hash_);
        if (!v.error.empty()) {
            error(line, id->canonical + ": " + v.error);
            return;
        }
        if (!v.skip.empty()) {
            plan_.skipped.push_back({line, id->canonical + ": " + v.skip});
            return;
        }
        if (v.note.starts_with("unsalted")) {
            unsalted_.emplace(import_detail::scheme_label(password), line);
        }
        if (opt_.stored_hash && !v.clear.empty()) {
            // A re-import: the same password keeps the stored hash (a fresh salt would
            // count as a change and write an audit row for nothing).
            if (auto stored = opt_.stored_hash(*target); stored && !stored->empty()) {
                if (verify_hash(*stored, v.clear).result == HashMatch::match) {
                    v.hash = *stored;
                    v.note = "clear-text password, the same as the stored hash";
                }
            }
        }
        plan_.accounts.push_back(ImportAccount{line, std::move(login), std::move(*target),
                                               id->provider->name, std::move(v.hash),
                                               std::move(v.note)});
    }

    // A second line for an account already planned: the same password is counted once,
    // another one is a conflict that imports neither line. True when `line` was one.
    bool duplicate(std::size_t line, const Identity& id, const std::string& login,
                   const std::array<unsigned char, 16>& digest) {
        auto it = seen_.find(id.canonical);
        if (it == seen_.end()) {
            return false;
        }
        Seen& first = it->second;
        // Two spellings of one user of a server that ignores case.
        std::string how = first.login == login ? std::string()
                                               : " (as " + first.login +
                                                     ": the same user in another letter case, "
                                                     "old server " +
                                                     id.provider->name + " ignores case)";
        if (first.digest == digest) {
            plan_.notes.push_back({line, id.canonical + ": same account and password as line " +
                                             std::to_string(first.line) + how + ", counted once"});
            return true;
        }
        error(line, id.canonical + ": also at line " + std::to_string(first.line) + how +
                        " with another password; neither line is imported");
        if (!first.conflict) {
            error(first.line, id.canonical + ": also at line " + std::to_string(line) +
                                  " with another password; neither line is imported");
            first.conflict = true;
        }
        return true;
    }

    // The store's name for the account, by the rule logins follow (store_variants.cpp):
    // with an old server that ignores case, an account stored by an older version under
    // another spelling is imported onto; several such accounts are a conflict (nullopt).
    std::optional<std::string> stored_name(std::size_t line, const Identity& id) {
        if (!id.provider->case_insensitive || !opt_.stored_variants) {
            return id.canonical;
        }
        std::vector<std::string> names = opt_.stored_variants(id.canonical);
        if (names.size() > 1) {
            std::string list;
            for (const auto& n : names) {
                list += (list.empty() ? "" : ", ") + n;
            }
            error(line, id.canonical + ": the store already holds " + std::to_string(names.size()) +
                            " accounts for this user, differing only in letter case (" + list +
                            "); logins use " + names.front() +
                            ": leave the others unused or disable them, then import again");
            return std::nullopt;
        }
        if (names.size() == 1 && names.front() != id.canonical) {
            plan_.notes.push_back({line, id.canonical + ": the store has this account as " +
                                             names.front() +
                                             " (another letter case, from an older version): "
                                             "imported onto it, as logins use it"});
            return names.front();
        }
        return id.canonical;
    }

    // Drops accounts whose name turned out to be in conflict with a later line.
    void finish() {
        std::set<std::size_t> conflicted;
        for (const auto& [name, seen] : seen_) {
            if (seen.conflict) {
                conflicted.insert(seen.line);
            }
        }
        std::erase_if(plan_.accounts,
                      [&](const ImportAccount& a) { return conflicted.count(a.line) != 0; });
        std::sort(plan_.errors.begin(), plan_.errors.end(),
                  [](const LineNote& a, const LineNote& b) { return a.line < b.line; });
        if (plan_.data_lines == 0 && plan_.errors.empty()) {
            error(0, "no account lines: the file is empty");
        }
        if (!unsalted_.empty()) {
            std::string schemes;
            for (auto it = unsalted_.begin(); it != unsalted_.end();
                 it = unsalted_.upper_bound(it->first)) {
                schemes += (schemes.empty() ? "" : ", ") + it->first + " (" +
                           plural(unsalted_.count(it->first), "account") + ", first at line " +
                           std::to_string(it->second) + ")";
            }
            plan_.warnings.push_back(
                plan_.source + ": unsalted digests: " + schemes +
                ". They cannot become the configured scheme without the password: they stay in "
                "the store until each user's first login, which replaces them");
        }
    }

  private:
    struct Seen {
        std::size_t line;
        std::array<unsigned char, 16> digest;
        bool conflict;
        std::string login; // as the file spells it
    };
    ImportPlan& plan_;
    const ImportOptions& opt_;
    const IdentityMap& ids_;
    const HashConfig& hash_;
    const PlanProgress& progress_;
    std::map<std::string, Seen> seen_;
    std::multimap<std::string, std::size_t> unsalted_; // scheme label → lines
};

void plan_passwd_file(const TextFile& file, Planner& p, ImportPlan& plan) {
    const auto& lines = file.lines();
    for (std::size_t i = 0; i < lines.size(); ++i) {
        std::size_t n = i + 1;
        p.line(n);
        if (is_comment_or_blank(lines[i], true)) {
            continue;
        }
        ++plan.data_lines;
        if (auto bad = line_problem(lines[i]); !bad.empty()) {
            p.error(n, bad);
            continue;
        }
        auto f = split_on(lines[i], ':');
        if (f.size() < 2) {
            p.error(
                n, "1 field; a passwd-file line is user:password[:uid:gid:gecos:home:shell:extra]");
            continue;
        }
        p.add(n, f[0], f[1], Bare::crypt);
    }
}

void plan_communigate(const TextFile& file, Planner& p, ImportPlan& plan, char sep) {
    const auto& lines = file.lines();
    std::size_t i = 0;
    while (i < lines.size() && is_comment_or_blank(lines[i], false)) {
        ++i;
    }
    if (i == lines.size()) {
        return;
    }
    const std::size_t header_line = i + 1;
    if (auto bad = line_problem(lines[i]); !bad.empty()) {
        p.error(header_line, "header: " + bad);
        return;
    }
    auto header = split_on(lines[i], sep);
    std::optional<std::size_t> name_col;
    std::optional<std::size_t> pw_col;
    for (std::size_t c = 0; c < header.size(); ++c) {
        std::string_view h = trim(header[c]);
        if (h.size() >= 2 && h.front() == '"' && h.back() == '"') {
            h = h.substr(1, h.size() - 2);
        }
        const bool is_name = iequals(h, "Name");
        if (!is_name && !iequals(h, "Password")) {
            continue;
        }
        auto& slot = is_name ? name_col : pw_col;
        if (slot) {
            p.error(header_line, std::string("the header names the column ") +
                                     (is_name ? "Name" : "Password") + " twice");
            return;
        }
        slot = c;
    }
    if (!name_col || !pw_col) {
        // Never show the line: without a header it would be a user's password.
        p.error(header_line, std::string("the first line must name the columns (Name and Password, "
                                         "separated by ") +
                                 (sep == '\t' ? "TAB" : std::string(1, sep)) + "); found " +
                                 plural(header.size(), "column") + ", none called " +
                                 (!name_col ? "Name" : "Password"));
        return;
    }
    for (++i; i < lines.size(); ++i) {
        std::size_t n = i + 1;
        p.line(n);
        if (is_comment_or_blank(lines[i], false)) {
            continue;
        }
        ++plan.data_lines;
        if (auto bad = line_problem(lines[i]); !bad.empty()) {
            p.error(n, bad);
            continue;
        }
        auto cols = split_on(lines[i], sep);
        if (cols.size() != header.size()) {
            p.error(n, plural(cols.size(), "column") + ", the header has " +
                           std::to_string(header.size()));
            continue;
        }
        Fields decoded;
        bool ok = true;
        for (std::size_t c : {*name_col, *pw_col}) {
            std::string_view raw = cols[c];
            if (raw.size() >= 1 && raw.front() == '"') {
                auto d = decode_cgp_string(raw);
                if (!d) {
                    p.error(n, std::string(c == *name_col ? "Name" : "Password") +
                                   " column: broken quoted string");
                    ok = false;
                    break;
                }
                decoded.push_back(std::move(*d));
                wipe(d->data(), d->size());
            } else {
                decoded.push_back(std::string(raw));
            }
        }
        if (ok) {
            p.add(n, decoded[0], decoded[1], Bare::clear_text);
        }
    }
}

void plan_modoboa(const TextFile& file, Planner& p, ImportPlan& plan, char sep) {
    const auto& lines = file.lines();
    for (std::size_t i = 0; i < lines.size(); ++i) {
        std::size_t n = i + 1;
        p.line(n);
        if (is_comment_or_blank(lines[i], true)) {
            continue;
        }
        ++plan.data_lines;
        if (auto bad = line_problem(lines[i]); !bad.empty()) {
            p.error(n, bad);
            continue;
        }
        std::string why;
        auto split = split_csv(lines[i], sep, &why);
        if (!split) {
            p.error(n, why);
            continue;
        }
        Fields f(std::move(*split));
        std::string type = f[0];
        std::transform(type.begin(), type.end(), type.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (type == "domain" || type == "domainalias" || type == "relaydomain") {
            plan.skipped.push_back({n, type + " line: mailferry imports accounts only; "
                                              "domains are set up on the new server"});
            continue;
        }
        if (type == "alias" || type == "dlist" || type == "forward") {
            plan.skipped.push_back({n, type + " line: mailferry imports accounts only; "
                                              "aliases and forwards belong to the new server"});
            continue;
        }
        if (type != "account") {
            p.error(n, "unknown line type \"" + shown(f[0]) +
                           "\" (expected account, domain, domainalias, relaydomain, alias)");
            continue;
        }
        if (f.size() < 6) {
            p.error(n, plural(f.size(), "field") +
                           "; an account line is: account; loginname; password; first name; "
                           "last name; enabled[; group; address; quota; …]");
            continue;
        }
        std::string enabled = f[5];
        std::transform(enabled.begin(), enabled.end(), enabled.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (enabled != "true" && enabled != "1" && enabled != "yes" && enabled != "y") {
            std::string who = std::string(trim(f[1]));
            plan.skipped.push_back(
                {n, shown(who) + ": disabled in Modoboa (enabled = " + shown(f[5]) +
                        "); not imported, its login will be refused by the old server"});
            continue;
        }
        p.add(n, f[1], f[2], Bare::clear_text);
    }
}

} // namespace

const char* to_string(ImportFormat f) {
    switch (f) {
    case ImportFormat::dovecot_passwd_file:
        return "dovecot-passwd-file";
    case ImportFormat::communigate:
        return "communigate";
    case ImportFormat::modoboa:
        return "modoboa";
    }
    return "?";
}

std::optional<ImportFormat> import_format_from(std::string_view name) {
    for (auto f :
         {ImportFormat::dovecot_passwd_file, ImportFormat::communigate, ImportFormat::modoboa}) {
        if (name == to_string(f)) {
            return f;
        }
    }
    return std::nullopt;
}

std::optional<std::string> decode_cgp_string(std::string_view q) {
    if (q.size() < 2 || q.front() != '"' || q.back() != '"') {
        return std::nullopt;
    }
    q = q.substr(1, q.size() - 2);
    std::string out;
    for (std::size_t i = 0; i < q.size(); ++i) {
        char c = q[i];
        if (c == '"') {
            wipe(out.data(), out.size());
            return std::nullopt; // an unescaped quote inside
        }
        if (c != '\\') {
            out += c;
            continue;
        }
        if (++i == q.size()) {
            wipe(out.data(), out.size());
            return std::nullopt;
        }
        switch (q[i]) {
        case '"':
        case '\\':
            out += q[i];
            break;
        case 'r':
            out += '\r';
            break;
        case 'n':
            out += '\n';
            break;
        case 't':
            out += '\t';
            break;
        case 'e':
            out += '\n'; // CommuniGate's "end of line"
            break;
        default: {
            // \nnn: three DECIMAL digits (Data.html), 0..255.
            if (i + 2 >= q.size() || !std::isdigit(static_cast<unsigned char>(q[i])) ||
                !std::isdigit(static_cast<unsigned char>(q[i + 1])) ||
                !std::isdigit(static_cast<unsigned char>(q[i + 2]))) {
                wipe(out.data(), out.size());
                return std::nullopt;
            }
            int v = (q[i] - '0') * 100 + (q[i + 1] - '0') * 10 + (q[i + 2] - '0');
            if (v > 255) {
                wipe(out.data(), out.size());
                return std::nullopt;
            }
            out += static_cast<char>(v);
            i += 2;
        }
        }
    }
    return out;
}

std::optional<std::vector<std::string>> split_csv(std::string_view line, char sep,
                                                  std::string* why) {
    std::vector<std::string> out;
    std::size_t i = 0;
    auto fail = [&](std::string text) {
        for (auto& s : out) {
            wipe(s.data(), s.size());
        }
        *why = std::move(text);
        return std::nullopt;
    };
    for (;;) {
        while (i < line.size() && line[i] == ' ') {
            ++i;
        }
        std::string field;
        if (i < line.size() && line[i] == '"') {
            const std::size_t open = i;
            ++i;
            for (;;) {
                if (i >= line.size()) {
                    wipe(field.data(), field.size());
                    return fail("quote opened at column " + std::to_string(open + 1) +
                                " is not closed on this line");
                }
                if (line[i] == '"') {
                    if (i + 1 < line.size() && line[i + 1] == '"') {
                        field += '"';
                        i += 2;
                        continue;
                    }
                    ++i;
                    break;
                }
                field += line[i++];
            }
            while (i < line.size() && line[i] == ' ') {
                ++i;
            }
            if (i < line.size() && line[i] != sep) {
                wipe(field.data(), field.size());
                return fail("text after the closing quote at column " + std::to_string(i + 1));
            }
        } else {
            std::size_t end = line.find(sep, i);
            std::string_view raw = line.substr(i, end == std::string_view::npos ? end : end - i);
            field = std::string(trim(raw));
            i = end == std::string_view::npos ? line.size() : end;
        }
        out.push_back(std::move(field));
        if (i >= line.size()) {
            break;
        }
        ++i; // the separator
        if (i == line.size()) {
            out.emplace_back(); // a trailing separator ends with an empty field
            break;
        }
    }
    return out;
}

ImportPlan plan_import(const TextFile& file, const ImportOptions& opt, const IdentityMap& ids,
                       const HashConfig& hash) {
    return plan_import(file, opt, ids, hash, PlanProgress());
}

ImportPlan plan_import(const TextFile& file, const ImportOptions& opt, const IdentityMap& ids,
                       const HashConfig& hash, const PlanProgress& progress) {
    ImportPlan plan;
    plan.source = file.name();
    if (sodium_init() < 0) {
        plan.errors.push_back({0, "libsodium could not be initialised"});
        return plan;
    }
    Planner p(plan, opt, ids, hash, progress);
    switch (opt.format) {
    case ImportFormat::dovecot_passwd_file:
        plan_passwd_file(file, p, plan);
        break;
    case ImportFormat::communigate:
        plan_communigate(file, p, plan, opt.separator != 0 ? opt.separator : '\t');
        break;
    case ImportFormat::modoboa:
        plan_modoboa(file, p, plan, opt.separator != 0 ? opt.separator : ';');
        break;
    }
    p.finish();
    if (file.unterminated_last_line() && plan.data_lines > 0) {
        plan.warnings.push_back(file.name() + ": the last line (" +
                                std::to_string(file.lines().size()) +
                                ") has no line end: check that the file is complete");
    }
    return plan;
}

std::vector<ImportEntry> import_entries(const ImportPlan& plan, ImportFormat format) {
    std::vector<ImportEntry> out;
    out.reserve(plan.accounts.size());
    for (const auto& a : plan.accounts) {
        out.push_back(ImportEntry{a.canonical, a.provider, a.hash,
                                  "imported from " + plan.source + ":" + std::to_string(a.line) +
                                      " (" + to_string(format) + ")"});
    }
    return out;
}

} // namespace mf
