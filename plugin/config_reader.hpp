// config_reader.hpp — the key tables behind mailferry.toml: each key declared once.
//
// A section is a table of Key<S> rows: the key's name, whether it is required, and a
// reader made by one of the factories below (text, file, flag, number, duration, choice,
// list, map), which carries the key's type, range and normalisation. read_table() walks a
// TOML table against such a list and refuses anything not in it. Adding a section to the
// config is a struct in config.hpp, a key list and one line in config.cpp's section list.
//
// Never: accept a key that is not declared, coerce a value of the wrong type, or return
// a partly filled struct as success.
// Errors: mf::Error, Scope::config, what = "FILE:LINE: key.path", detail = "expected …,
// found …".
#pragma once

#include "config_keys.hpp"
#include "mailferry/config.hpp"

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <toml++/toml.h>
#include <vector>

namespace mf::config_detail {

// What a reader knows besides the node: the file (for errors), the directory relative
// paths are taken from, and where warnings go.
class Reader {
  public:
    Reader(std::string source, std::vector<std::string>& warnings);

    // "FILE:LINE: key" plus detail; `where` is the offending node's (or key's) position.
    [[nodiscard]] Error error(const toml::source_region& where, std::string_view key,
                              std::string detail) const;
    // For a value no node stands for (a section that is missing altogether).
    [[nodiscard]] Error error(std::string_view key, std::string detail) const;

    // Relative paths in the config are relative to the config file's directory.
    [[nodiscard]] std::string resolve_path(std::string_view path) const;
    void warn(std::string text) const { warnings_->push_back(std::move(text)); }
    [[nodiscard]] const std::string& source() const { return source_; }

  private:
    std::string source_;
    std::string base_dir_; // empty: the source has no directory part
    std::vector<std::string>* warnings_;
};

// How a value is described after "found": `"abc"`, `70000`, `a boolean (true)`, `a table`.
std::string describe(const toml::node& node);

// A check on a string value; may normalise it in place (lower-case a domain). Returns
// nullopt when fine, else what was expected ("a domain name such as mail.example.org").
using Rule = std::optional<std::string> (*)(std::string& value);

template <typename S>
struct Key {
    std::string_view name;
    bool required = false;
    // Reads `node` (found under `path`, e.g. "provider.port") into the struct.
    std::function<Result<void>(const Reader&, const toml::node& node, const std::string& path,
                               S& out)>
        read;
};

template <typename S>
using Keys = std::vector<Key<S>>;

template <typename S>
Key<S> required(Key<S> key) {
    key.required = true;
    return key;
}

// The readers below are shared by every factory; each returns the value or the error.
Result<std::string> read_text(const Reader& r, const toml::node& n, const std::string& path,
                              Rule rule);
Result<std::int64_t> read_integer(const Reader& r, const toml::node& n, const std::string& path,
                                  std::int64_t min, std::int64_t max);
Result<Millis> read_duration(const Reader& r, const toml::node& n, const std::string& path,
                             Millis min, Millis max);
Result<bool> read_flag(const Reader& r, const toml::node& n, const std::string& path);
Result<std::vector<std::string>> read_list(const Reader& r, const toml::node& n,
                                           const std::string& path, Rule rule);
Result<std::string> read_choice(const Reader& r, const toml::node& n, const std::string& path,
                                const std::vector<std::string>& names);

// A single-line string, non-empty, passing `rule` (if any).
template <typename S>
Key<S> text(std::string_view name, std::string S::*member, Rule rule = nullptr) {
    return {name, false,
            [member, rule](const Reader& r, const toml::node& n, const std::string& path,
                           S& out) -> Result<void> {
                auto v = read_text(r, n, path, rule);
                if (!v) {
                    return v.error();
                }
                out.*member = std::move(*v);
                return {};
            }};
}

// A file or directory name; relative ones are resolved against the config's directory.
template <typename S>
Key<S> file(std::string_view name, std::string S::*member) {
    return {name, false,
            [member](const Reader& r, const toml::node& n, const std::string& key,
                     S& out) -> Result<void> {
                auto v = read_text(r, n, key, nullptr);
                if (!v) {
                    return v.error();
                }
                out.*member = r.resolve_path(*v);
                return {};
            }};
}

template <typename S>
Key<S> flag(std::string_view name, bool S::*member) {
    return {name, false,
            [member](const Reader& r, const toml::node& n, const std::string& path,
                     S& out) -> Result<void> {
                auto v = read_flag(r, n, path);
                if (!v) {
                    return v.error();
                }
                out.*member = *v;
                return {};
            }};
}

// An integer within [min, max]; the range is part of the declaration.
template <typename S, typename T>
Key<S> number(std::string_view name, T S::*member, std::int64_t min, std::int64_t max) {
    return {name, false,
            [member, min, max](const Reader& r, const toml::node& n, const std::string& path,
                               S& out) -> Result<void> {
                auto v = read_integer(r, n, path, min, max);
                if (!v) {
                    return v.error();
                }
                out.*member = static_cast<T>(*v);
                return {};
            }};
}

// "500ms", "10s", "15m", "2h", "1d" or an integer number of seconds, within [min, max].
template <typename S>
Key<S> duration(std::string_view name, Millis S::*member, Millis min, Millis max) {
    return {name, false,
            [member, min, max](const Reader& r, const toml::node& n, const std::string& path,
                               S& out) -> Result<void> {
                auto v = read_duration(r, n, path, min, max);
                if (!v) {
                    return v.error();
                }
                out.*member = *v;
                return {};
            }};
}

// One of an enum's values, spelt as to_string() spells them.
template <typename S, typename E>
Key<S> choice(std::string_view name, E S::*member, std::initializer_list<E> values) {
    std::vector<E> vals(values);
    return {name, false,
            [member, vals](const Reader& r, const toml::node& n, const std::string& path,
                           S& out) -> Result<void> {
                std::vector<std::string> names;
                names.reserve(vals.size());
                for (E e : vals) {
                    names.emplace_back(to_string(e));
                }
                auto v = read_choice(r, n, path, names);
                if (!v) {
                    return v.error();
                }
                for (E e : vals) {
                    if (*v == to_string(e)) {
                        out.*member = e;
                    }
                }
                return {};
            }};
}

// A non-empty array of strings, each passing `rule`.
template <typename S>
Key<S> list(std::string_view name, std::vector<std::string> S::*member, Rule rule = nullptr) {
    return {name, false,
            [member, rule](const Reader& r, const toml::node& n, const std::string& path,
                           S& out) -> Result<void> {
                auto v = read_list(r, n, path, rule);
                if (!v) {
                    return v.error();
                }
                out.*member = std::move(*v);
                return {};
            }};
}

// A table of string → string ([identity.domain_renames], [result.extra_fields]); keys
// and values each pass their rule. Two keys that normalise to the same are an error.
Result<std::map<std::string, std::string>> read_map(const Reader& r, const toml::node& n,
                                                    const std::string& path, Rule key_rule,
                                                    Rule value_rule);

template <typename S>
Key<S> map(std::string_view name, std::map<std::string, std::string> S::*member, Rule key_rule,
           Rule value_rule) {
    return {name, false,
            [member, key_rule, value_rule](const Reader& r, const toml::node& n,
                                           const std::string& path, S& out) -> Result<void> {
                auto v = read_map(r, n, path, key_rule, value_rule);
                if (!v) {
                    return v.error();
                }
                out.*member = std::move(*v);
                return {};
            }};
}

// Reads every key of `table` through `keys`; unknown keys and missing required ones are
// errors. `path` is the table's dotted name ("store", "provider").
template <typename S>
Result<void> read_table(const Reader& r, const toml::table& table, const std::string& path,
                        const Keys<S>& keys, S& out) {
    for (auto&& [k, node] : table) {
        const Key<S>* def = nullptr;
        for (const auto& key : keys) {
            if (key.name == k.str()) {
                def = &key;
            }
        }
        std::string key_path = path + "." + std::string(k.str());
        if (def == nullptr) {
            std::string known;
            for (const auto& key : keys) {
                known += (known.empty() ? "" : ", ") + std::string(key.name);
            }
            return r.error(k.source(), key_path, "unknown key; [" + path + "] knows " + known);
        }
        auto done = def->read(r, node, key_path, out);
        if (!done) {
            return done.error();
        }
    }
    for (const auto& key : keys) {
        if (key.required && !table.contains(key.name)) {
            return r.error(table.source(), path + "." + std::string(key.name),
                           "missing: this key is required in [" + path + "]");
        }
    }
    return {};
}

// A top-level section: a table, or an array of tables ([[provider]]).
struct Section {
    std::string_view name;
    std::vector<std::string> keys; // for the documentation check
    std::function<Result<void>(const Reader&, const toml::node&, Config&)> read;
};

template <typename S>
Section table_section(std::string_view name, S Config::*member, const Keys<S>& keys) {
    std::vector<std::string> names;
    for (const auto& k : keys) {
        names.emplace_back(k.name);
    }
    return {
        name, std::move(names),
        [name, member, &keys](const Reader& r, const toml::node& n, Config& cfg) -> Result<void> {
            const auto* t = n.as_table();
            if (t == nullptr) {
                return r.error(n.source(), name,
                               "expected a table [" + std::string(name) + "], found " +
                                   describe(n));
            }
            return read_table(r, *t, std::string(name), keys, cfg.*member);
        }};
}

template <typename S>
Section array_section(std::string_view name, std::vector<S> Config::*member, const Keys<S>& keys) {
    std::vector<std::string> names;
    for (const auto& k : keys) {
        names.emplace_back(k.name);
    }
    return {
        name, std::move(names),
        [name, member, &keys](const Reader& r, const toml::node& n, Config& cfg) -> Result<void> {
            const auto* a = n.as_array();
            if (a == nullptr || !a->is_array_of_tables()) {
                return r.error(n.source(), name,
                               "expected one or more [[" + std::string(name) +
                                   "]] sections, found " + describe(n));
            }
            for (const auto& elem : *a) {
                S item;
                auto done = read_table(r, *elem.as_table(), std::string(name), keys, item);
                if (!done) {
                    return done.error();
                }
                (cfg.*member).push_back(std::move(item));
            }
            return {};
        }};
}

} // namespace mf::config_detail
