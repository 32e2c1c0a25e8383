// admin_dryrun.cpp — users mapped, old servers probed, provisioner looked at. See
// admin_dryrun.hpp.
//
// Must never: read past the first TAB of a users-file line into anything kept, write a
// file, or send a credential.
#include "admin_dryrun.hpp"

#include "admin_output.hpp"

#include "mailferry/verifier.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <curl/curl.h>
#include <map>
#include <memory>
#include <mutex>
#include <unistd.h>

namespace mf::cli {
namespace {

std::string dir_of(const std::string& path) {
    auto pos = path.rfind('/');
    if (pos == std::string::npos) {
        return ".";
    }
    return pos == 0 ? "/" : path.substr(0, pos);
}

std::string access_problem(const std::string& path, int mode, const char* what) {
    if (::access(path.c_str(), mode) == 0) {
        return {};
    }
    return std::string(what) + " " + path + ": " + std::strerror(errno);
}

struct EasyDeleter {
    void operator()(CURL* h) const { curl_easy_cleanup(h); }
};

// TCP (and TLS for https) to the URL's host, nothing sent: CURLOPT_CONNECT_ONLY.
std::string connect_problem(const ProvisionerConfig& p) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    std::unique_ptr<CURL, EasyDeleter> e(curl_easy_init());
    if (!e) {
        return "curl_easy_init failed";
    }
    CURL* h = e.get();
    std::array<char, CURL_ERROR_SIZE> errbuf{};
    const long ms = std::max(1L, static_cast<long>(std::min(p.timeout, Millis(10000)).count()));
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf.data());
    curl_easy_setopt(h, CURLOPT_URL, p.url.c_str());
    curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, p.verify_certificate ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, p.verify_certificate ? 2L : 0L);
    if (!p.ca_file.empty()) {
        curl_easy_setopt(h, CURLOPT_CAINFO, p.ca_file.c_str());
    }
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK) {
        return {};
    }
    return sanitize_reply(errbuf[0] != '\0' ? errbuf.data() : curl_easy_strerror(rc));
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

// The account's state in the store, found as a login would find it (store_variants.cpp).
// An account stored under another letter case by an older version, or several of them,
// is a conflict: the admin sees which name the logins will use.
Result<void> check_stored(Store& store, const Identity& id, UserCheck& u, UsersReport& rep) {
    std::vector<std::string> others;
    auto acct = find_login_account(store, id.canonical, id.provider->case_insensitive, &others);
    if (!acct) {
        return acct.error();
    }
    if (!acct->has_value()) {
        return {};
    }
    u.state = to_string((**acct).state);
    const std::string& stored = (**acct).name;
    if (stored == id.canonical && others.empty()) {
        return {};
    }
    std::string why = stored != id.canonical
                          ? "the store has this account as " + stored +
                                " (another letter case, from an older version); logins use it"
                          : "logins use the account " + stored;
    for (const auto& o : others) {
        why += "; " + o + " is another account for the same user";
    }
    if (u.status == UserStatus::ok) {
        u.status = UserStatus::conflict;
        u.detail = why;
    }
    rep.conflicts.push_back("line " + std::to_string(u.line) + ": " + u.user + " → " +
                            id.canonical + ": " + why);
    return {};
}

} // namespace

const char* to_string(UserStatus s) {
    switch (s) {
    case UserStatus::ok:
        return "ok";
    case UserStatus::refused:
        return "refused";
    case UserStatus::duplicate:
        return "duplicate";
    case UserStatus::conflict:
        return "conflict";
    case UserStatus::malformed:
        return "malformed";
    }
    return "?";
}

Result<UsersReport> check_users(const TextFile& file, const IdentityMap& ids, Store* store,
                                const std::function<void()>& tick) {
    UsersReport rep;
    struct First {
        std::size_t line;
        std::string login;
    };
    std::map<std::string, First> by_account;
    const auto& lines = file.lines();
    for (std::size_t i = 0; i < lines.size(); ++i) {
        tick();
        std::string_view line = lines[i];
        if (line.find_first_not_of(' ') == std::string_view::npos || line.front() == '#') {
            continue;
        }
        ++rep.data_lines;
        UserCheck u;
        u.line = i + 1;
        // Only the first field is ever looked at: the rest may be a password.
        std::string_view login = line.substr(0, line.find('\t'));
        if (auto bad = line_problem(login); !bad.empty()) {
            u.status = UserStatus::malformed;
            u.detail = bad;
        } else if (login.empty()) {
            u.status = UserStatus::malformed;
            u.detail = "empty user name before the TAB";
        } else if (auto enc = utf8_problem(login); !enc.empty()) {
            u.status = UserStatus::malformed;
            u.detail = "user name: " + enc;
        }
        if (u.status == UserStatus::malformed) {
            rep.conflicts.push_back("line " + std::to_string(u.line) + ": " + u.detail);
            rep.users.push_back(std::move(u));
            continue;
        }
        u.user = printable(login, 80);
        auto id = ids.resolve(login);
        if (!id) {
            u.status = UserStatus::refused;
            u.detail = "the identity map refuses the name: " + id.error().message();
            rep.conflicts.push_back("line " + std::to_string(u.line) + ": " + u.user + ": " +
                                    u.detail);
            rep.users.push_back(std::move(u));
            continue;
        }
        u.account = id->canonical;
        u.server = id->provider->name;
        u.old_login = id->old_login;
        u.detail = "old server " + id->provider->host + ", login " + printable(id->old_login, 80);
        if (auto it = by_account.find(id->canonical); it != by_account.end()) {
            const First& f = it->second;
            if (lower(f.login) == lower(login)) {
                u.status = UserStatus::duplicate;
                u.detail = "same user as line " + std::to_string(f.line);
                if (f.login != login) {
                    u.detail += " (" + printable(f.login, 80) +
                                ": another letter case; old server " + id->provider->name +
                                " ignores case)";
                }
            } else {
                u.status = UserStatus::conflict;
                u.detail = "maps to the same account as line " + std::to_string(f.line) + " (" +
                           printable(f.login, 80) + ")";
            }
            rep.conflicts.push_back("line " + std::to_string(u.line) + ": " + u.user + " → " +
                                    u.account + ": " + u.detail);
        } else {
            by_account.emplace(id->canonical, First{u.line, std::string(login)});
        }
        if (store != nullptr) {
            if (auto ok = check_stored(*store, *id, u, rep); !ok) {
                return ok.error();
            }
        }
        rep.users.push_back(std::move(u));
    }
    if (rep.data_lines == 0) {
        return make_error(file.name(), "no user lines: the file is empty", Scope::config);
    }
    return rep;
}

std::vector<ServerCheck> check_servers(const Config& cfg, const UsersReport& users) {
    std::map<std::string, std::size_t> count;
    for (const auto& u : users.users) {
        if (!u.server.empty()) {
            ++count[u.server];
        }
    }
    std::vector<ServerCheck> out;
    for (const auto& p : cfg.providers) {
        auto it = count.find(p.name);
        if (it == count.end()) {
            continue;
        }
        ServerCheck s;
        s.name = p.name;
        s.where = std::string(to_string(p.protocol)) + " " + p.host + ":" +
                  std::to_string(p.effective_port()) + " tls " + to_string(p.tls);
        s.users = it->second;
        ServerProbe probe = probe_server(p);
        s.reachable = probe.reachable;
        s.detail = probe.detail;
        out.push_back(std::move(s));
    }
    return out;
}

ProvisionerCheck check_provisioner(const Config& cfg) {
    const ProvisionerConfig& p = cfg.provisioner;
    ProvisionerCheck c;
    c.what = to_string(p.type);
    std::string problem;
    const std::string as = " (checked as uid " + std::to_string(::geteuid()) +
                           "; the login helpers run as the mail server's auth user)";
    switch (p.type) {
    case ProvisionerType::builtin:
        c.what += " (the store is the user database)";
        problem =
            ::access(cfg.store.path.c_str(), F_OK) == 0
                ? access_problem(cfg.store.path, R_OK | W_OK, "cannot write the store")
                : access_problem(dir_of(cfg.store.path), W_OK | X_OK, "cannot create the store in");
        c.detail = problem.empty() ? "store writable: " + cfg.store.path + as : problem;
        break;
    case ProvisionerType::dovecot_passwd_file:
        c.what += " " + p.passwd_file;
        problem =
            ::access(p.passwd_file.c_str(), F_OK) == 0
                ? access_problem(p.passwd_file, R_OK | W_OK, "cannot write")
                : access_problem(dir_of(p.passwd_file), W_OK | X_OK, "cannot create a file in");
        // The file is replaced atomically (temp file + rename): its directory must be writable.
        if (problem.empty()) {
            problem =
                access_problem(dir_of(p.passwd_file), W_OK | X_OK, "cannot replace the file in");
        }
        c.detail = problem.empty() ? "passwd-file and its directory writable" + as : problem;
        break;
    case ProvisionerType::command:
        c.what += p.command.empty() ? std::string() : " " + p.command.front();
        problem = p.command.empty() ? "no command configured"
                                    : access_problem(p.command.front(), X_OK, "cannot execute");
        c.detail = problem.empty() ? "program exists and is executable (not run: it would "
                                     "create an account)"
                                   : problem;
        break;
    case ProvisionerType::http:
        c.what += " " + p.url;
        problem = connect_problem(p);
        if (problem.empty() && !p.token_file.empty()) {
            problem = access_problem(p.token_file, R_OK, "cannot read the token file");
        }
        c.detail = problem.empty() ? std::string("connected") +
                                         (p.url.starts_with("https:") && p.verify_certificate
                                              ? " with a verified TLS certificate"
                                              : "") +
                                         " (no request sent: it would create an account)"
                                   : problem;
        break;
    }
    c.ok = problem.empty();
    return c;
}

} // namespace mf::cli
