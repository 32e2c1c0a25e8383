// login_bench.cpp — how long a login takes through mailferry, against the floor.
//
// One run, one old Dovecot on loopback (performance login mode), measured on the same
// machine in the same minute:
//   (a) raw IMAPS LOGIN at the old Dovecot (connect, TLS, greeting, LOGIN, LOGOUT)
//   (b) a first login through the engine: verify at the old server, hash, provision, store
//   (c) a migrated login answered from the store (argon2id hash)
//   (d) a migrated login with a cheap stored hash: the engine's plumbing beyond the hash
//   (e) the hash alone (argon2id verify with the configured cost)
//   (f) an IMAP LOGIN at a Dovecot reading its own passwd-file (the new server's floor)
//   (g) the same at a Dovecot whose passdb is mailferry-checkpassword (migrated users)
//   (h) the same through PAM and pam_mailferry.so
//   (i)-(k) the same through Dovecot's Lua passdb and mailferry.so: caches cold, Dovecot's
//       auth cache (as shipped), mailferry's login cache (Dovecot's cache off)
// plus 100 concurrent first logins of distinct users. Prints a table and writes
// bench/results/login-<date>.json. Usage: login_bench [--users N] [--out DIR]
#include "latency_stats.hpp"
#include "mailferry/engine.hpp"
#include "mailferry/password.hpp"
#include "support/dovecot_server.hpp"
#include "support/test_env.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fmt/core.h>
#include <fstream>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdexcept>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using mfbench::Clock;
using mfbench::ms_since;
using mfbench::stats;
using mfbench::Stats;

namespace {

// A minimal IMAPS client: the floor any remote verification pays.
bool raw_imaps_login(std::uint16_t port, const std::string& ca, const std::string& user,
                     const std::string& pw) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = false;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
        SSL* ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        SSL_set1_host(ssl, "localhost");
        SSL_set_tlsext_host_name(ssl, "localhost");
        if (SSL_connect(ssl) == 1) {
            std::string buf(4096, '\0');
            auto read_until = [&](const std::string& prefix) {
                std::string acc;
                for (;;) {
                    int n = SSL_read(ssl, buf.data(), static_cast<int>(buf.size()));
                    if (n <= 0) {
                        return std::string();
                    }
                    acc.append(buf.data(), static_cast<std::size_t>(n));
                    auto pos = acc.find(prefix);
                    if (pos != std::string::npos && acc.find("\r\n", pos) != std::string::npos) {
                        return acc.substr(pos);
                    }
                }
            };
            read_until("* OK");
            std::string cmd = "a LOGIN \"" + user + "\" \"" + pw + "\"\r\n";
            SSL_write(ssl, cmd.data(), static_cast<int>(cmd.size()));
            ok = read_until("a ").rfind("a OK", 0) == 0;
            std::string out = "b LOGOUT\r\n";
            SSL_write(ssl, out.data(), static_cast<int>(out.size()));
            read_until("b ");
        }
        SSL_free(ssl);
    }
    ::close(fd);
    SSL_CTX_free(ctx);
    return ok;
}

// A plain IMAP LOGIN (no TLS) at a loopback server: how the new server is reached.
bool raw_imap_login(std::uint16_t port, const std::string& user, const std::string& pw) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = false;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
        std::string acc;
        char buf[4096];
        auto read_until = [&](const std::string& prefix) {
            for (;;) {
                auto pos = acc.find(prefix);
                if (pos != std::string::npos && acc.find("\r\n", pos) != std::string::npos) {
                    std::string line = acc.substr(pos);
                    acc.clear();
                    return line;
                }
                ssize_t n = ::read(fd, buf, sizeof buf);
                if (n <= 0) {
                    return std::string();
                }
                acc.append(buf, static_cast<std::size_t>(n));
            }
        };
        read_until("* OK");
        std::string cmd = "a LOGIN \"" + user + "\" \"" + pw + "\"\r\nb LOGOUT\r\n";
        [[maybe_unused]] auto w = ::write(fd, cmd.data(), cmd.size());
        ok = read_until("a ").rfind("a OK", 0) == 0;
        read_until("b ");
    }
    ::close(fd);
    return ok;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
    for (auto p = text.find(from); p != std::string::npos; p = text.find(from, p + to.size())) {
        text.replace(p, from.size(), to);
    }
    return text;
}

std::vector<double> time_logins(std::uint16_t port, int users, int rounds) {
    std::vector<double> v;
    for (int r = 0; r < rounds; ++r) {
        for (int i = 0; i < users; ++i) {
            auto t0 = Clock::now();
            if (!raw_imap_login(port, "user" + std::to_string(i) + "@example.com",
                                "pw" + std::to_string(i))) {
                throw std::runtime_error("login of user" + std::to_string(i) + " failed on port " +
                                         std::to_string(port));
            }
            v.push_back(ms_since(t0));
        }
    }
    return v;
}

std::unique_ptr<mf::Engine>
open_engine(const mft::TempDir& dir, const mft::DovecotServer& old, const std::string& tag,
            const std::string& hash = "[hash]\nscheme = \"argon2id\"\n") {
    std::string text = "[store]\npath = \"" + dir.file(tag + ".db") +
                       "\"\n"
                       "[identity]\ndefault_domain = \"example.com\"\n"
                       "[[provider]]\nname = \"old\"\ndomains = [\"example.com\"]\n"
                       "protocol = \"imap\"\nhost = \"localhost\"\nport = " +
                       std::to_string(old.imaps_port()) + "\ntls = \"implicit\"\nca_file = \"" +
                       old.ca_file() + "\"\ntimeout = \"10s\"\nmax_concurrent = 200\n" + hash +
                       "[provisioner]\ntype = \"builtin\"\n"
                       "[guard]\nmax_failures_per_ip = 100000\n"
                       "[log]\nlevel = \"warning\"\n";
    mft::write_file(dir.file(tag + ".toml"), text);
    auto e = mf::Engine::open(dir.file(tag + ".toml"));
    if (!e) {
        throw std::runtime_error(e.error().message());
    }
    return std::move(*e);
}

// (i)-(k): the new server with the shipped Lua passdb (examples/dovecot/) and this
// build's mailferry.so. A user's first round finds every cache cold (the module runs the
// argon2id verify); the second is answered by Dovecot's auth cache, as shipped; with
// Dovecot's cache off, the second reaches the module and its login cache ([login_cache]).
// Each auth worker process has its own engine and cache.
struct LuaRows {
    std::vector<double> cold, dovecot_cache, mailferry_cache;
};

LuaRows lua_rows(const mft::TempDir& dir, const std::string& config, int users) {
    const std::string examples = std::string(MF_SOURCE_DIR) + "/examples/dovecot/";
    std::string script = mft::read_file(examples + "mailferry.lua");
    script = replace_all(script, "\"/etc/mailferry/mailferry.toml\"", "\"" + config + "\"");
    script =
        replace_all(script, "-- package.cpath = \"/usr/local/lib/lua/5.4/?.so;\"",
                    "package.cpath = \"" + std::string(MF_BINARY_DIR) + "/external-auth/?.so;\"");
    mft::write_file(dir.file("mailferry.lua"), script, 0644);
    mft::DovecotOptions n;
    n.label = "bench-new-lua";
    n.tls = false;
    n.imaps = n.pop3 = n.pop3s = n.submission = false;
    n.performance_login = true;
    n.auth_config = replace_all(mft::read_file(examples + "auth-mailferry-lua.conf.ext"),
                                "/etc/dovecot/mailferry.lua", dir.file("mailferry.lua"));
    LuaRows out;
    {
        mft::DovecotServer fresh(n);
        out.cold = time_logins(fresh.imap_port(), users, 1);
        out.dovecot_cache = time_logins(fresh.imap_port(), users, 1);
    }
    n.label = "bench-new-lua-nocache";
    n.extra_config = "auth_cache_size = 0\n";
    {
        mft::DovecotServer fresh(n);
        (void)time_logins(fresh.imap_port(), users, 1); // fills the module's login cache
        out.mailferry_cache = time_logins(fresh.imap_port(), users, 1);
    }
    return out;
}

} // namespace

int main(int argc, char** argv) {
    int users = 200;
    std::string out_dir = MF_SOURCE_DIR "/bench/results";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--users") == 0) {
            users = std::max(10, std::atoi(argv[i + 1]));
        } else if (std::strcmp(argv[i], "--out") == 0) {
            out_dir = argv[i + 1];
        }
    }
    const int concurrent = 100;
    mft::DovecotOptions o;
    o.label = "bench-old";
    o.performance_login = true;
    o.pop3 = o.pop3s = o.submission = false;
    for (int i = 0; i < users + concurrent; ++i) {
        o.users.push_back({"user" + std::to_string(i) + "@example.com", "pw" + std::to_string(i)});
    }
    o.extra_config = "mail_max_userip_connections = 1000\n";
    mft::DovecotServer old(o);
    mft::TempDir dir("mailferry-bench");

    std::vector<double> raw, first, migrated, plumbing, hash_only;
    for (int i = 0; i < users; ++i) {
        auto t0 = Clock::now();
        if (!raw_imaps_login(old.imaps_port(), old.ca_file(),
                             "user" + std::to_string(i) + "@example.com",
                             "pw" + std::to_string(i))) {
            std::fprintf(stderr, "raw login failed for user%d\n", i);
            return 1;
        }
        raw.push_back(ms_since(t0));
    }
    auto engine = open_engine(dir, old, "seq");
    int errors = 0;
    for (int i = 0; i < users; ++i) {
        std::string u = "user" + std::to_string(i), pw = "pw" + std::to_string(i);
        auto t0 = Clock::now();
        auto r = engine->authenticate({u, pw, "imap", "127.0.0.1", "bench"});
        first.push_back(ms_since(t0));
        errors += r.status == mf::AuthStatus::ok ? 0 : 1;
    }
    for (int i = 0; i < users; ++i) {
        std::string u = "user" + std::to_string(i), pw = "pw" + std::to_string(i);
        auto t0 = Clock::now();
        auto r = engine->authenticate({u, pw, "imap", "127.0.0.1", "bench"});
        migrated.push_back(ms_since(t0));
        errors += r.status == mf::AuthStatus::ok ? 0 : 1;
        auto acct = engine->store().find_account(u + "@example.com");
        mf::Secret s(pw);
        auto h0 = Clock::now();
        (void)mf::verify_hash((**acct).hash, s);
        hash_only.push_back(ms_since(h0));
    }
    // Plumbing: migrated logins whose stored hash is cheap (sha512-crypt, 1000 rounds) in
    // the configured scheme, so no rehash happens; each login is followed by a check of the
    // same hash alone, and the difference is what the engine adds beyond the hash.
    {
        // The login cache off: every login here runs the hash that is subtracted.
        auto cheap = open_engine(dir, old, "cheap",
                                 "[hash]\nscheme = \"sha512-crypt\"\nsha512_rounds = 1000\n"
                                 "[login_cache]\nttl = \"0\"\n");
        mf::HashConfig hc;
        hc.scheme = mf::HashScheme::sha512_crypt;
        hc.sha512_rounds = 1000;
        mf::Secret s("plumbing-pw");
        mf::Account a;
        a.name = "plumbing@example.com";
        a.provider = "old";
        a.state = mf::AccountState::synced;
        a.hash = *mf::make_hash(s, hc);
        (void)cheap->store().create_account(a, {"bench", "", ""});
        for (int i = 0; i < users * 5; ++i) {
            auto p0 = Clock::now();
            auto r = cheap->authenticate({"plumbing", "plumbing-pw", "imap", "127.0.0.1", "bench"});
            double total = ms_since(p0);
            auto h0 = Clock::now();
            (void)mf::verify_hash(a.hash, s);
            plumbing.push_back(total - ms_since(h0));
            errors += r.status == mf::AuthStatus::ok ? 0 : 1;
        }
    }
    // 100 concurrent first logins of distinct users, one engine, 100 threads.
    auto engine2 = open_engine(dir, old, "conc");
    std::atomic<int> ok{0}, bad{0};
    auto c0 = Clock::now();
    {
        std::vector<std::thread> threads;
        for (int i = users; i < users + concurrent; ++i) {
            threads.emplace_back([&, i] {
                std::string u = "user" + std::to_string(i), pw = "pw" + std::to_string(i);
                auto r = engine2->authenticate({u, pw, "imap", "127.0.0.1", "bench"});
                (r.status == mf::AuthStatus::ok ? ok : bad)++;
            });
        }
        for (auto& t : threads) {
            t.join();
        }
    }
    double conc_ms = ms_since(c0);

    // The new server's view: an IMAP LOGIN of a migrated user at a Dovecot whose passdb is
    // mailferry (checkpassword; PAM), against a Dovecot reading its own passwd-file (floor).
    std::vector<double> floor_v, checkpw_v, pam_v;
    LuaRows lua;
    {
        // The login helpers run as Dovecot's auth user (mfvmail) and reach the store
        // through the mailferry group, as in production.
        mft::run({"/bin/chgrp", "-R", "mailferry", dir.path()});
        mft::run({"/bin/chmod", "-R", "g+rwX", dir.path()});
        const std::string build = MF_BINARY_DIR;
        const std::string config = dir.file("seq.toml");
        const int rounds = 2;
        floor_v = time_logins(old.imap_port(), std::min(users, 100), rounds);

        std::string cp = mft::read_file(std::string(MF_SOURCE_DIR) +
                                        "/examples/dovecot/auth-mailferry-checkpassword.conf.ext");
        cp = replace_all(cp, "/usr/local/bin/mailferry-checkpassword",
                         build + "/external-auth/mailferry-checkpassword");
        cp = replace_all(cp, "/etc/mailferry/mailferry.toml", config);
        mft::DovecotOptions n;
        n.label = "bench-new-checkpassword";
        n.tls = false;
        n.imaps = n.pop3 = n.pop3s = n.submission = false;
        n.performance_login = true;
        n.auth_config = cp;
        n.extra_config = "service auth {\n  extra_groups = mailferry\n}\n";
        {
            mft::DovecotServer fresh(n);
            checkpw_v = time_logins(fresh.imap_port(), std::min(users, 100), rounds);
        }

        const std::string service = "mailferry-bench-" + std::to_string(::getpid());
        const std::string pam_file = "/etc/pam.d/" + service;
        mft::write_file(pam_file, "auth required " + build +
                                      "/plugin/pam_mailferry.so config=" + config +
                                      "\naccount required " + build + "/plugin/pam_mailferry.so\n");
        n.label = "bench-new-pam";
        n.auth_config = "passdb {\n  driver = pam\n  args = " + service +
                        "\n}\nuserdb {\n  driver = static\n  args = uid=mfvmail gid=mfvmail "
                        "home=" +
                        dir.path() + "/home/%d/%n\n}\n";
        n.extra_config = "";
        try {
            mft::DovecotServer fresh(n);
            pam_v = time_logins(fresh.imap_port(), std::min(users, 100), rounds);
        } catch (...) {
            std::remove(pam_file.c_str());
            throw;
        }
        std::remove(pam_file.c_str());
        lua = lua_rows(dir, config, std::min(users, 100));
    }

    Stats a = stats(raw), b = stats(first), c = stats(migrated), d = stats(plumbing),
          e = stats(hash_only), f = stats(floor_v), g = stats(checkpw_v), h = stats(pam_v),
          i = stats(lua.cold), jd = stats(lua.dovecot_cache), k = stats(lua.mailferry_cache);
    fmt::print("login latency, {} users, old Dovecot IMAPS on loopback (ms)\n", users);
    fmt::print("{:<46} {:>8} {:>8} {:>8}\n", "measure", "p50", "p99", "mean");
    auto row = [](const char* name, const Stats& s) {
        fmt::print("{:<46} {:>8.3f} {:>8.3f} {:>8.3f}\n", name, s.p50, s.p99, s.mean);
    };
    row("(a) raw IMAPS LOGIN at the old server", a);
    row("(b) first login through the engine", b);
    row("(c) migrated login (argon2id)", c);
    row("(d) engine beyond the hash (migrated login)", d);
    row("(e) argon2id verify alone", e);
    row("(f) new-server floor: Dovecot's own passwd-file", f);
    row("(g) new server, passdb checkpassword (migrated)", g);
    row("(h) new server, passdb PAM (migrated)", h);
    row("(i) new server, passdb Lua, caches cold", i);
    row("(j) new server, passdb Lua, Dovecot's cache", jd);
    row("(k) new server, passdb Lua, mailferry's cache", k);
    fmt::print("{:<46} {:>8.2f}x\n", "(j) / (f) at p50", jd.p50 / f.p50);
    fmt::print("{:<46} {:>8.2f}x\n", "(k) / (f) at p50", k.p50 / f.p50);
    fmt::print("{:<46} {:>8.3f}\n", "(b) - (a) at p50", b.p50 - a.p50);
    fmt::print("{:<46} {:>8.3f}\n", "(b) - (a) - hash at p50", b.p50 - a.p50 - e.p50);
    fmt::print("{} concurrent first logins: {} OK, {} not OK, {:.0f} ms total\n", concurrent,
               ok.load(), bad.load(), conc_ms);
    fmt::print("sequential errors: {}\n", errors);

    nlohmann::json j;
    auto js = [](const Stats& s) {
        return nlohmann::json{
            {"p50_ms", s.p50}, {"p99_ms", s.p99}, {"mean_ms", s.mean}, {"n", s.n}};
    };
    j["users"] = users;
    j["raw_imaps_login"] = js(a);
    j["first_login"] = js(b);
    j["migrated_login_argon2id"] = js(c);
    j["migrated_login_plumbing"] = js(d);
    j["argon2id_verify"] = js(e);
    j["new_server_floor_passwd_file"] = js(f);
    j["new_server_checkpassword"] = js(g);
    j["new_server_pam"] = js(h);
    j["new_server_lua_cold"] = js(i);
    j["new_server_lua_dovecot_cache"] = js(jd);
    j["new_server_lua_mailferry_cache"] = js(k);
    j["concurrent"] = {
        {"n", concurrent}, {"ok", ok.load()}, {"failed", bad.load()}, {"total_ms", conc_ms}};
    char date[32];
    std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y%m%d-%H%M%S", std::gmtime(&now));
    std::string path = out_dir + "/login-" + date + ".json";
    std::ofstream(path) << j.dump(2) << "\n";
    fmt::print("results: {}\n", path);
    return (errors == 0 && bad == 0) ? 0 : 1;
}
