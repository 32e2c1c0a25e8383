// cli_check_config.cpp — `mailferry check-config`: is the config right, and what does it say.
//
// Loads the config exactly as the engine does (load_config, then the identity map, which
// reads the conflict map file) and prints either the first error as
// "FILE:LINE: key: detail" (exit 2) or "ok" and a one-screen summary plus any warnings
// (exit 0). With --json the same facts come as one JSON document.
// Never: open the store, contact a server, create a file, or print the content of a
// secret file (only its name).
// Errors: every config error exits 2 (kExitUsage).
#include "cli_command.hpp"

#include "mailferry/config.hpp"
#include "mailferry/identity.hpp"

#include <iostream>

namespace mf::cli {
namespace {

std::string yes_no(bool b) {
    return b ? "yes" : "no";
}

std::string joined(const std::vector<std::string>& items, const char* sep = ", ") {
    std::string out;
    for (const auto& s : items) {
        out += (out.empty() ? "" : sep) + s;
    }
    return out;
}

std::string or_none(const std::string& s) {
    return s.empty() ? "none" : s;
}

nlohmann::json provider_json(const ProviderConfig& p) {
    nlohmann::json j = {{"name", p.name},
                        {"domains", p.domains},
                        {"protocol", to_string(p.protocol)},
                        {"host", p.host},
                        {"port", p.effective_port()},
                        {"tls", to_string(p.tls)},
                        {"ca_file", p.ca_file},
                        {"verify_certificate", p.verify_certificate},
                        {"timeout", format_duration(p.timeout)},
                        {"max_concurrent", p.max_concurrent},
                        {"login_form", to_string(p.login_form)},
                        {"mechanism", to_string(p.mechanism)},
                        {"case_insensitive", p.case_insensitive}};
    if (p.login_form == LoginForm::templated) {
        j["login_template"] = p.login_template;
    }
    return j;
}

nlohmann::json provisioner_json(const ProvisionerConfig& p) {
    nlohmann::json j = {{"type", to_string(p.type)}, {"timeout", format_duration(p.timeout)}};
    switch (p.type) {
    case ProvisionerType::builtin:
        break;
    case ProvisionerType::dovecot_passwd_file:
        j.update({{"passwd_file", p.passwd_file},
                  {"uid", p.uid},
                  {"gid", p.gid},
                  {"home", p.home},
                  {"extra_fields", p.extra_fields}});
        break;
    case ProvisionerType::command:
        j["command"] = p.command;
        break;
    case ProvisionerType::http:
        j.update({{"url", p.url},
                  {"token_file", p.token_file},
                  {"ca_file", p.ca_file},
                  {"verify_certificate", p.verify_certificate}});
        break;
    }
    return j;
}

nlohmann::json hash_json(const HashConfig& h) {
    nlohmann::json j = {{"scheme", to_string(h.scheme)}};
    switch (h.scheme) {
    case HashScheme::argon2id:
        j.update({{"argon2_ops", h.argon2_ops}, {"argon2_memory_kib", h.argon2_memory_kib}});
        break;
    case HashScheme::sha512_crypt:
        j["sha512_rounds"] = h.sha512_rounds;
        break;
    case HashScheme::yescrypt:
        j["yescrypt_cost"] = h.yescrypt_cost;
        break;
    }
    return j;
}

// The summary, as data: --json prints it, the text form is written from the same Config.
nlohmann::json summary_json(const Config& c) {
    nlohmann::json providers = nlohmann::json::array();
    for (const auto& p : c.providers) {
        providers.push_back(provider_json(p));
    }
    return {{"ok", true},
            {"config", c.source_path},
            {"store",
             {{"path", c.store.path},
              {"lock_dir", c.store.lock_dir},
              {"busy_timeout", format_duration(c.store.busy_timeout)}}},
            {"providers", providers},
            {"identity",
             {{"default_domain", c.identity.default_domain},
              {"accept_short_names", c.identity.accept_short_names},
              {"accept_full_address", c.identity.accept_full_address},
              {"conflict_map", c.identity.conflict_map},
              {"domain_renames", c.identity.domain_renames}}},
            {"hash", hash_json(c.hash)},
            {"provisioner", provisioner_json(c.provisioner)},
            {"guard",
             {{"max_failures_per_account_ip", c.guard.max_failures_per_account_ip},
              {"max_failures_per_account", c.guard.max_failures_per_account},
              {"max_failures_per_ip", c.guard.max_failures_per_ip},
              {"window", format_duration(c.guard.window)},
              {"negative_cache_ttl", format_duration(c.guard.negative_cache_ttl)},
              {"key_file", c.guard.key_file}}},
            {"result", {{"extra_fields", c.result.extra_fields}}},
            {"log", {{"level", to_string(c.log.level)}}},
            {"warnings", c.warnings}};
}

void print_text(const Config& c) {
    auto row = [](const char* label, const std::string& text) {
        std::cout << label << std::string(13 - std::string_view(label).size(), ' ') << text << "\n";
    };
    std::cout << "ok\n";
    row("config", c.source_path);
    row("store", c.store.path + " (locks " + c.store.lock_dir + ", busy timeout " +
                     format_duration(c.store.busy_timeout) + ")");
    for (const auto& p : c.providers) {
        std::string login = to_string(p.login_form);
        if (p.login_form == LoginForm::templated) {
            login += " \"" + p.login_template + "\"";
        }
        row("provider",
            p.name + ": " + to_string(p.protocol) + " " + p.host + ":" +
                std::to_string(p.effective_port()) + " tls " + to_string(p.tls) +
                (p.tls != TlsMode::none && !p.verify_certificate ? " (UNVERIFIED)" : "") +
                ", domains " + joined(p.domains));
        row("", "login " + login + ", mechanism " + to_string(p.mechanism) + ", timeout " +
                    format_duration(p.timeout) + ", at most " + std::to_string(p.max_concurrent) +
                    " at once" + (p.ca_file.empty() ? "" : ", CA " + p.ca_file));
        row("", p.case_insensitive ? "user names case-insensitive: ANNA@ and anna@ are one account"
                                   : "user names case-sensitive: ANNA@ and anna@ are two accounts");
    }
    const auto& id = c.identity;
    row("identity", "default domain " + or_none(id.default_domain) + "; short names " +
                        yes_no(id.accept_short_names && !id.default_domain.empty()) +
                        ", full addresses " + yes_no(id.accept_full_address));
    std::vector<std::string> renames;
    for (const auto& [from, to] : id.domain_renames) {
        renames.push_back(from + " -> " + to);
    }
    row("", "renames " + (renames.empty() ? std::string("none") : joined(renames)) +
                "; conflict map " + or_none(id.conflict_map));
    std::string hash = to_string(c.hash.scheme);
    switch (c.hash.scheme) {
    case HashScheme::argon2id:
        hash += " (ops " + std::to_string(c.hash.argon2_ops) + ", memory " +
                std::to_string(c.hash.argon2_memory_kib) + " KiB)";
        break;
    case HashScheme::sha512_crypt:
        hash += " (rounds " + std::to_string(c.hash.sha512_rounds) + ")";
        break;
    case HashScheme::yescrypt:
        hash += " (cost " + std::to_string(c.hash.yescrypt_cost) + ")";
        break;
    }
    row("hash", hash);
    const auto& pv = c.provisioner;
    std::string prov = to_string(pv.type);
    switch (pv.type) {
    case ProvisionerType::builtin:
        prov += " (mailferry's store is the user database)";
        break;
    case ProvisionerType::dovecot_passwd_file:
        prov += " " + pv.passwd_file + (pv.home.empty() ? "" : ", home " + pv.home);
        break;
    case ProvisionerType::command:
        prov += " " + joined(pv.command, " ");
        break;
    case ProvisionerType::http:
        prov += " " + pv.url + (pv.token_file.empty() ? "" : ", token in " + pv.token_file);
        break;
    }
    row("provisioner", prov + ", timeout " + format_duration(pv.timeout));
    const auto& g = c.guard;
    row("guard", std::to_string(g.max_failures_per_account_ip) +
                     " failures per account and address, " + std::to_string(g.max_failures_per_ip) +
                     " per address, within " + format_duration(g.window) + " (then TEMPFAIL)");
    row("", "old-server budget " + std::to_string(g.max_failures_per_account) +
                " wrong passwords per account (clean addresses up to " +
                std::to_string(2ULL * g.max_failures_per_account) + "); negative cache " +
                (g.negative_cache_ttl.count() == 0 ? std::string("off")
                                                   : format_duration(g.negative_cache_ttl)));
    row("", "key " + g.key_file);
    for (const auto& [name, tmpl] : c.result.extra_fields) {
        row("result", name + " = " + tmpl);
    }
    row("log", to_string(c.log.level));
    for (const auto& w : c.warnings) {
        std::cout << "warning: " << w << "\n";
    }
}

int check_config(const Context& ctx) {
    auto cfg = load_config(ctx.config_path);
    if (!cfg) {
        return report_error(ctx, cfg.error(), kExitUsage);
    }
    // The conflict map is part of the config; reading it is what the engine does first.
    if (auto ids = IdentityMap::create(*cfg); !ids) {
        return report_error(ctx, ids.error(), kExitUsage);
    }
    if (ctx.json) {
        print_json(summary_json(*cfg));
    } else {
        print_text(*cfg);
    }
    return kExitOk;
}

} // namespace

const Command check_config_command = {
    "check-config",
    "check the config file and summarise it",
    "  mailferry check-config\n"
    "  mailferry check-config --config /etc/mailferry/test.toml\n"
    "  mailferry --json check-config | jq .providers\n"
    "Prints \"ok\" and a summary (exit 0), or FILE:LINE: key: what is wrong (exit 2).",
    [](CLI::App& /*app*/) -> Handler { return check_config; },
};

} // namespace mf::cli
