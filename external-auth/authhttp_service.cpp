// authhttp_service.cpp — nginx's question answered by the engine and the store (see
// authhttp_service.hpp).
//
// The old server's host is resolved at each login rather than once at start: a campaign
// runs for weeks and the old server may move (or its DNS entry change) meanwhile.
#include "authhttp_service.hpp"

#include "mailferry/log.hpp"
#include "mailferry/spool.hpp"

#include <algorithm>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <sodium.h>

namespace mf::authhttp {

namespace asio = boost::asio;

std::string resolve_host(const std::string& host, std::string* why) {
    asio::io_context ctx;
    asio::ip::tcp::resolver resolver(ctx);
    boost::system::error_code ec;
    auto results = resolver.resolve(host, "", ec);
    if (ec || results.empty()) {
        *why = "cannot resolve " + sanitize_reply(host, 80) + ": " +
               (ec ? ec.message() : std::string("no address"));
        return {};
    }
    return results.begin()->endpoint().address().to_string();
}

Result<std::optional<Secret>> read_key(const AuthHttpConfig& cfg) {
    if (cfg.key_file.empty()) {
        return std::optional<Secret>();
    }
    auto text = spool::read_secret_file(cfg.key_file, 1024);
    if (!text) {
        Error e = text.error();
        e.what = "auth_http.key_file: " + e.what;
        return e;
    }
    std::string_view v = text->view();
    while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) {
        v.remove_suffix(1);
    }
    const bool printable = std::all_of(v.begin(), v.end(), [](char c) {
        return c > ' ' && c < 0x7f && c != '"' && c != '\\' && c != ';';
    });
    if (v.empty() || !printable) {
        return make_error("auth_http.key_file " + cfg.key_file,
                          "expected one line of printable ASCII without blanks, quotes, '\\' "
                          "or ';' (such as the output of `openssl rand -base64 32`)",
                          Scope::config);
    }
    return std::optional<Secret>(Secret(v));
}

Service::Service(Engine& engine, std::optional<Secret> key)
    : engine_(engine), cfg_(engine.config().auth_http), key_(std::move(key)) {}

bool Service::key_matches(const FieldLookup& field) const {
    if (!key_) {
        return true;
    }
    auto got = field(kKeyHeader);
    return got && got->size() == key_->size() &&
           sodium_memcmp(got->data(), key_->data(), key_->size()) == 0;
}

Outcome Service::outcome(const Request& req, AuthResult& res) {
    Outcome out;
    out.status = res.status;
    out.why = res.message;
    if (res.status != AuthStatus::ok) {
        return out;
    }
    out.status = AuthStatus::tempfail; // until the route is known
    out.new_login = res.user;
    auto account = engine_.store().find_account(res.user);
    if (!account || !*account) {
        out.why = account ? "account " + res.user + " not in the store after its login"
                          : "store: " + account.error().message();
        return out;
    }
    out.state = (*account)->state;
    if (out.state == AccountState::failed) {
        // A failed resync round leaves `failed` too: such a user already works on the new
        // server and must stay there.
        auto audit = engine_.store().audit_log(res.user);
        if (!audit) {
            out.why = "store: " + audit.error().message();
            return out;
        }
        for (const auto& row : *audit) {
            out.ever_synced = out.ever_synced || row.to_state == to_string(AccountState::synced);
        }
    }
    if (route(out.state, out.ever_synced) == Side::old_server) {
        auto id = engine_.identity().resolve(req.user);
        const ProviderConfig* provider = nullptr;
        for (const auto& p : engine_.config().providers) {
            provider = p.name == (*account)->provider ? &p : provider;
        }
        if (!id || provider == nullptr) {
            out.why = !id ? id.error().message()
                          : "provider \"" + (*account)->provider + "\" is not in the config";
            return out;
        }
        out.old_login = id->old_login;
        out.old_ip = resolve_host(provider->host, &out.why);
    }
    out.status = AuthStatus::ok;
    return out;
}

Answer Service::handle(const FieldLookup& field) noexcept {
    try {
        auto ip = field("Client-IP").value_or("");
        if (!key_matches(field)) {
            log::warning(log::prefix("auth-http", field("Auth-User").value_or(""), ip) +
                         ": refused: no or a wrong " + kKeyHeader +
                         " header (auth_http.key_file; nginx: auth_http_header)");
            return answer_forbidden();
        }
        Parsed parsed = parse_request(field);
        if (!parsed.request) {
            auto user = field("Auth-User").value_or("");
            log::warning(log::prefix("auth-http", user, ip) + ": refused: " + parsed.reason);
            return parsed.refusal;
        }
        Request& req = *parsed.request;
        const std::string who = log::prefix("auth-http", req.user, req.client_ip);
        if (new_server(cfg_, req.protocol).empty()) {
            log::warning(who + ": " + to_string(req.protocol) +
                         " is not proxied: [auth_http] has no new_" + to_string(req.protocol));
            return answer_not_served(req.protocol);
        }
        AuthRequest ar{req.user, req.password.view(), to_string(req.protocol), req.client_ip,
                       "auth-http"};
        AuthResult res = engine_.authenticate(ar);
        req.password.clear();
        Outcome out = outcome(req, res);
        std::string line;
        Answer a = decide(cfg_, req, out, &line);
        line = who + ": attempt " + std::to_string(req.attempt) + ": " + line;
        if (out.status == AuthStatus::tempfail) {
            log::warning(line);
        } else {
            log::info(line);
        }
        return a;
    } catch (const std::exception& e) {
        log::error(std::string("auth-http: internal error: ") + e.what());
    } catch (...) {
        log::error("auth-http: internal error");
    }
    return answer_bad_request();
}

} // namespace mf::authhttp
