// config_reader.cpp — typed readers for single TOML values (see config_reader.hpp).
//
// Each reader checks the node's type and range and returns the value or an error that
// names file:line and the key and says what was expected and what was found. Never
// coerces (a "10" string is not a port; 1.5 is not an integer).
#include "config_reader.hpp"

#include <algorithm>

namespace mf::config_detail {
namespace {

bool has_control(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
    });
}

std::string quoted(std::string_view s) {
    // Appended piece by piece: GCC 12 at -O2 warns falsely (-Wrestrict, GCC bug 105651)
    // on "literal" + std::string.
    std::string out(1, '"');
    out += sanitize_reply(s, 60);
    out += '"';
    return out;
}

} // namespace

Reader::Reader(std::string source, std::vector<std::string>& warnings)
    : source_(std::move(source)), warnings_(&warnings) {
    auto pos = source_.rfind('/');
    if (pos != std::string::npos) {
        base_dir_ = pos == 0 ? "/" : source_.substr(0, pos);
    }
}

Error Reader::error(const toml::source_region& where, std::string_view key,
                    std::string detail) const {
    std::string what = source_;
    if (where.begin.line > 0) {
        what += ':';
        what += std::to_string(where.begin.line);
    }
    what += ": ";
    what += key;
    return make_error(std::move(what), std::move(detail), Scope::config);
}

Error Reader::error(std::string_view key, std::string detail) const {
    return make_error(source_ + ": " + std::string(key), std::move(detail), Scope::config);
}

std::string Reader::resolve_path(std::string_view path) const {
    if (path.front() == '/' || base_dir_.empty()) {
        return std::string(path);
    }
    return (base_dir_ == "/" ? "" : base_dir_) + "/" + std::string(path);
}

std::string describe(const toml::node& node) {
    switch (node.type()) {
    case toml::node_type::string:
        return quoted(node.as_string()->get());
    case toml::node_type::integer:
        return std::to_string(node.as_integer()->get());
    case toml::node_type::floating_point:
        return "a floating-point number";
    case toml::node_type::boolean:
        return std::string("a boolean (") + (node.as_boolean()->get() ? "true" : "false") + ")";
    case toml::node_type::array:
        return node.as_array()->empty() ? "an empty array" : "an array";
    case toml::node_type::table:
        return "a table";
    case toml::node_type::date:
        return "a date";
    case toml::node_type::time:
        return "a time";
    case toml::node_type::date_time:
        return "a date-time";
    case toml::node_type::none:
        return "nothing";
    }
    return "an unknown TOML value";
}

Result<std::string> read_text(const Reader& r, const toml::node& n, const std::string& path,
                              Rule rule) {
    const auto* s = n.as_string();
    if (s == nullptr) {
        return r.error(n.source(), path, "expected a string, found " + describe(n));
    }
    std::string v = s->get();
    if (v.empty()) {
        return r.error(n.source(), path, "expected a non-empty string, found \"\"");
    }
    if (has_control(v)) {
        return r.error(n.source(), path,
                       "expected a single line without control characters, found " + quoted(v));
    }
    if (rule != nullptr) {
        std::string original = v;
        if (auto expected = rule(v)) {
            return r.error(n.source(), path,
                           "expected " + *expected + ", found " + quoted(original));
        }
    }
    return v;
}

Result<std::int64_t> read_integer(const Reader& r, const toml::node& n, const std::string& path,
                                  std::int64_t min, std::int64_t max) {
    const auto* i = n.as_integer();
    if (i == nullptr || i->get() < min || i->get() > max) {
        return r.error(n.source(), path,
                       "expected an integer from " + std::to_string(min) + " to " +
                           std::to_string(max) + ", found " + describe(n));
    }
    return i->get();
}

Result<Millis> read_duration(const Reader& r, const toml::node& n, const std::string& path,
                             Millis min, Millis max) {
    auto expected = [&] {
        return "expected a duration from " + format_duration(min) + " to " + format_duration(max) +
               " (\"500ms\", \"10s\", \"15m\", \"2h\", \"1d\" or whole seconds), found " +
               describe(n);
    };
    std::optional<Millis> v;
    if (const auto* s = n.as_string()) {
        if (auto d = parse_duration(s->get())) {
            v = *d;
        }
    } else if (const auto* i = n.as_integer()) {
        // Whole seconds; bounded so the multiplication cannot overflow.
        constexpr std::int64_t kMaxSeconds = std::numeric_limits<std::int64_t>::max() / 1000;
        if (i->get() >= 0 && i->get() <= kMaxSeconds) {
            v = Millis(i->get() * 1000);
        }
    }
    if (!v || *v < min || *v > max) {
        return r.error(n.source(), path, expected());
    }
    return *v;
}

Result<bool> read_flag(const Reader& r, const toml::node& n, const std::string& path) {
    const auto* b = n.as_boolean();
    if (b == nullptr) {
        return r.error(n.source(), path, "expected true or false, found " + describe(n));
    }
    return b->get();
}

Result<std::vector<std::string>> read_list(const Reader& r, const toml::node& n,
                                           const std::string& path, Rule rule) {
    const auto* a = n.as_array();
    if (a == nullptr || a->empty()) {
        return r.error(n.source(), path,
                       "expected a non-empty array of strings, found " + describe(n));
    }
    std::vector<std::string> out;
    out.reserve(a->size());
    for (const auto& elem : *a) {
        auto v = read_text(r, elem, path, rule);
        if (!v) {
            return v.error();
        }
        out.push_back(std::move(*v));
    }
    return out;
}

Result<std::string> read_choice(const Reader& r, const toml::node& n, const std::string& path,
                                const std::vector<std::string>& names) {
    std::string all;
    for (const auto& name : names) {
        all += (all.empty() ? "" : ", ") + name;
    }
    const auto* s = n.as_string();
    if (s == nullptr || std::find(names.begin(), names.end(), s->get()) == names.end()) {
        return r.error(n.source(), path, "expected one of " + all + "; found " + describe(n));
    }
    return s->get();
}

Result<std::map<std::string, std::string>> read_map(const Reader& r, const toml::node& n,
                                                    const std::string& path, Rule key_rule,
                                                    Rule value_rule) {
    const auto* t = n.as_table();
    if (t == nullptr) {
        return r.error(n.source(), path, "expected a table, found " + describe(n));
    }
    std::map<std::string, std::string> out;
    for (auto&& [k, v] : *t) {
        std::string key(k.str());
        std::string key_path = path + ".\"" + sanitize_reply(key, 60) + "\"";
        if (key.empty() || has_control(key)) {
            return r.error(k.source(), key_path,
                           "expected a non-empty key without control characters");
        }
        if (key_rule != nullptr) {
            if (auto expected = key_rule(key)) {
                return r.error(k.source(), key_path, "expected " + *expected + " as the key");
            }
        }
        auto value = read_text(r, v, key_path, value_rule);
        if (!value) {
            return value.error();
        }
        if (!out.emplace(key, std::move(*value)).second) {
            return r.error(k.source(), key_path,
                           "listed twice (as \"" + sanitize_reply(key, 60) +
                               "\" after normalising)");
        }
    }
    return out;
}

} // namespace mf::config_detail
