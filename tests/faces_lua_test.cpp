// faces_lua_test.cpp — mailferry.so, the Lua module, always with a real old Dovecot behind
// the engine: first through Lua in this process (the API's shapes, bad input, misuse),
// then end to end — a NEW Dovecot whose passdb/userdb is the shipped
// examples/dovecot/auth-mailferry-lua.conf.ext running the shipped mailferry.lua with this
// build's module, checked over real IMAP (and `doveadm user` for userdb lookups).
//
// Sanitizers: with MAILFERRY_SANITIZE the module and libmailferry.so carry ASan, which an
// uninstrumented Dovecot cannot load: its processes get the ASan runtime preloaded through
// import_environment (MF_ASAN_RUNTIME from tests/faces.cmake, as for pamtester in
// faces_pam_test.cpp), detect_leaks=0 (Dovecot's own allocations are not ours to judge)
// and default_vsz_limit = 0 (ASan's shadow memory does not fit Dovecot's 256 MB limit).
//
// Every answer is checked for its kind: a module that answered FAIL where the engine said
// TEMPFAIL shows as "NO [AUTHENTICATIONFAILED]" instead of "NO [UNAVAILABLE]" and fails.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "faces_util.hpp"
#include "support/dovecot_server.hpp"
#include "support/test_env.hpp"

extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
}

#include <memory>

using namespace std::string_literals;

namespace {

const std::string kAnnaPw = "anna's \"old\" p\xc3\xa4ss";

// A printable password of exactly `n` bytes, different from every other length's.
std::string long_password(std::size_t n) {
    std::string pw;
    for (std::size_t i = 0; pw.size() < n; ++i) {
        pw += static_cast<char>('!' + (i * 31 + n) % 90);
    }
    return pw;
}

const std::string kPw1000 = long_password(1000);
const std::string kPw4096 = long_password(4096);

std::string module_dir() {
    return std::string(MF_BINARY_DIR) + "/external-auth";
}

mft::DovecotOptions old_options() {
    mft::DovecotOptions o;
    o.label = "old";
    o.users = {{"anna@old.example", kAnnaPw},   {"bob@old.example", "bob-pw"},
               {"carl@old.example", "carl-pw"}, {"long@old.example", kPw1000},
               {"huge@old.example", kPw4096},   {"over@old.example", kPw4096 + "x"}};
    o.pop3 = o.pop3s = o.submission = false;
    return o;
}

// An old Dovecot and an engine config for it (store in state/, mail homes in home/).
struct World {
    mft::TempDir dir{"mf-faces-lua"};
    std::string state = dir.file("state");
    std::string db = state + "/mf.db";
    std::string config = dir.file("mailferry.toml");
    mft::DovecotServer old{old_options()};

    World() {
        REQUIRE(::mkdir(state.c_str(), 0755) == 0);
        REQUIRE(::mkdir(dir.file("home").c_str(), 0755) == 0);
        ft::EngineConfig c;
        c.db = db;
        c.imaps_port = old.imaps_port();
        c.ca_file = old.ca_file();
        c.extra = "[result.extra_fields]\nuserdb_home = \"" + dir.file("home") +
                  "/{domain}/{local}\"\nuserdb_quota_rule = \"*:storage=1G\"\n";
        ft::write_engine_config(config, c);
    }
};

// A Lua state in this process with this build's mailferry.so on package.cpath.
class Lua {
  public:
    Lua() : L_(luaL_newstate()) {
        REQUIRE(L_ != nullptr);
        luaL_openlibs(L_);
        run("package.cpath = '" + module_dir() + "/?.so;' .. package.cpath");
    }
    ~Lua() { lua_close(L_); }
    Lua(const Lua&) = delete;
    Lua& operator=(const Lua&) = delete;

    // Sets a global string from any bytes (a password with quotes, NULs, UTF-8).
    void set(const char* name, const std::string& bytes) {
        lua_pushlstring(L_, bytes.data(), bytes.size());
        lua_setglobal(L_, name);
    }

    // Runs a chunk; returns its results as strings (nil → "nil", a table → "k=v,…" sorted
    // by key). A Lua error becomes one value "error: …".
    std::vector<std::string> run(const std::string& chunk) {
        int top = lua_gettop(L_);
        if (luaL_loadstring(L_, chunk.c_str()) != LUA_OK ||
            lua_pcall(L_, 0, LUA_MULTRET, 0) != LUA_OK) {
            std::string err = "error: "s + lua_tostring(L_, -1);
            lua_settop(L_, top);
            return {err};
        }
        std::vector<std::string> out;
        for (int i = top + 1; i <= lua_gettop(L_); ++i) {
            out.push_back(show(i));
        }
        lua_settop(L_, top);
        return out;
    }

  private:
    std::string show(int idx) {
        if (lua_istable(L_, idx)) {
            std::map<std::string, std::string> m;
            lua_pushnil(L_);
            while (lua_next(L_, idx) != 0) {
                // tolstring on a copy of the key: lua_next needs the key itself unchanged
                lua_pushvalue(L_, -2);
                std::string k = luaL_tolstring(L_, -1, nullptr);
                lua_pop(L_, 2);
                m[k] = luaL_tolstring(L_, -1, nullptr);
                lua_pop(L_, 2); // the value and its string; the key stays for lua_next
            }
            std::string s;
            for (const auto& [k, v] : m) {
                s += (s.empty() ? "" : ",") + k + "=" + v;
            }
            return s;
        }
        std::size_t len = 0;
        const char* p = luaL_tolstring(L_, idx, &len);
        std::string s(p, len);
        lua_pop(L_, 1);
        return s;
    }

    lua_State* L_;
};

// The shipped Dovecot config and script with this build's module, the test's paths
// (`config`: the engine config the script opens; default the world's).
std::string new_server_auth(const World& w, std::string config = {}) {
    if (config.empty()) {
        config = w.config;
    }
    auto subst = [](std::string text, const std::string& from, const std::string& to) {
        REQUIRE_MESSAGE(text.find(from) != std::string::npos, from);
        for (auto p = text.find(from); p != std::string::npos; p = text.find(from, p + to.size())) {
            text.replace(p, from.size(), to);
        }
        return text;
    };
    const std::string examples = std::string(MF_SOURCE_DIR) + "/examples/dovecot/";
    std::string script = mft::read_file(examples + "mailferry.lua");
    script = subst(script, "\"/etc/mailferry/mailferry.toml\"", "\"" + config + "\"");
    script = subst(script, "-- package.cpath = \"/usr/local/lib/lua/5.4/?.so;\"",
                   "package.cpath = \"" + module_dir() + "/?.so;\"");
    const std::string script_path = w.dir.file("mailferry.lua");
    mft::write_file(script_path, script, 0644);
    std::string conf = mft::read_file(examples + "auth-mailferry-lua.conf.ext");
    return subst(conf, "/etc/dovecot/mailferry.lua", script_path);
}

} // namespace

TEST_CASE("the module was built") {
    const std::string so = module_dir() + "/mailferry.so";
    REQUIRE_MESSAGE(::access(so.c_str(), R_OK) == 0, so);
}

TEST_CASE("through Lua: open, authenticate, lookup, their answers and misuse") {
    World w;
    Lua lua;
    CHECK(lua.run("mailferry = require 'mailferry'; return mailferry.MAX_PASSWORD_BYTES") ==
          std::vector<std::string>{"4096"});
    auto bad = lua.run("return mailferry.open('/nonexistent/mf.toml')");
    REQUIRE(bad.size() == 2);
    CHECK(bad[0] == "nil");
    CHECK(bad[1].find("/nonexistent/mf.toml") != std::string::npos);

    REQUIRE(lua.run("h = assert(mailferry.open('" + w.config + "')); return tostring(h)") ==
            std::vector<std::string>{"mailferry handle (open)"});
    lua.set("pw", kAnnaPw);
    // Not migrated yet: the userdb does not know anna.
    auto r = lua.run("return h:lookup('anna@old.example')");
    REQUIRE(r.size() == 4);
    CHECK(r[0] == "FAIL");
    CHECK(r[2].empty());
    CHECK(r[3].find("not migrated") != std::string::npos);
    // A NUL inside the password is passed on, not cut: the right prefix is not enough.
    r = lua.run("return h:authenticate('anna@old.example', pw .. '\\0x', 'imap', '192.0.2.7')");
    REQUIRE(r.size() == 4);
    CHECK(r[0] == "FAIL");
    CHECK(r[3].find("NUL") != std::string::npos);
    r = lua.run("return h:authenticate('anna@old.example\\0evil', pw)");
    CHECK(r == std::vector<std::string>{"FAIL", "nil", "", "login holds a NUL byte"});

    r = lua.run("return h:authenticate('anna@old.example', pw, 'imap', '192.0.2.7')");
    REQUIRE(r.size() == 4);
    CHECK_MESSAGE(r[0] == "OK", r[3]);
    CHECK(r[1] == "anna@new.example");
    CHECK(r[2] ==
          "userdb_home=" + w.dir.file("home") + "/new.example/anna,userdb_quota_rule=*:storage=1G");
    CHECK(r[3].find("first login") != std::string::npos);
    CHECK(ft::account_in(w.db, "anna@new.example"));
    r = lua.run("return h:lookup('ANNA@old.example')");
    REQUIRE(r.size() == 4);
    CHECK(r[0] == "OK");
    CHECK(r[1] == "anna@new.example");
    CHECK(r[2].find("userdb_quota_rule=*:storage=1G") != std::string::npos);

    r = lua.run("return h:authenticate('bob@old.example', 'not-bobs')");
    REQUIRE(r.size() == 4);
    CHECK(r[0] == "FAIL");
    CHECK(r[1] == "bob@new.example");
    CHECK(r[2].empty());

    w.old.stop();
    r = lua.run("return h:authenticate('carl@old.example', 'carl-pw', 'imap')");
    REQUIRE(r.size() == 4);
    CHECK(r[0] == "TEMPFAIL");
    CHECK(r[3].find("unavailable") != std::string::npos);
    r = lua.run("return h:authenticate('anna', pw)"); // migrated: the store answers
    REQUIRE(r.size() == 4);
    CHECK(r[0] == "OK");
    CHECK(ft::account_count(w.db) == 1);

    // Misuse is a Lua error (Dovecot: internal failure), never an answer.
    CHECK(lua.run("return h:authenticate('anna')")[0].rfind("error: ", 0) == 0);
    CHECK(lua.run("return h.lookup(42, 'anna')")[0].rfind("error: ", 0) == 0);
    lua.run("h:close(); h:close()");
    CHECK(lua.run("return tostring(h)") == std::vector<std::string>{"mailferry handle (closed)"});
    auto closed = lua.run("return h:lookup('anna')");
    REQUIRE(closed.size() == 1);
    CHECK(closed[0].find("the handle is closed") != std::string::npos);
    // Handles that are never closed are released by the garbage collector.
    lua.run("for i = 1, 3 do local x = mailferry.open('" + w.config + "') end; collectgarbage()");
}

namespace {

// The options of a NEW Dovecot running `auth` (plain IMAP only; the ASan runtime for our
// module when it is built with it).
mft::DovecotOptions new_server(const std::string& auth) {
    mft::DovecotOptions n;
    n.label = "new-lua";
    n.pop3 = n.pop3s = n.submission = n.imaps = false;
    n.tls = false;
    n.auth_config = auth;
    // Every login reaches the module (the shipped file turns Dovecot's auth cache on).
    n.extra_config = "auth_failure_delay = 0\nauth_cache_size = 0\n";
#ifdef MF_ASAN_RUNTIME
    n.extra_config +=
        "import_environment = $import_environment LD_PRELOAD=" + std::string(MF_ASAN_RUNTIME) +
        " ASAN_OPTIONS=detect_leaks=0\ndefault_vsz_limit = 0\n";
#endif
    return n;
}

} // namespace

TEST_CASE("end to end: a config mailferry cannot open is a temporary failure, not a NO") {
    World w;
    mft::DovecotServer fresh(new_server(new_server_auth(w, w.dir.file("missing.toml"))));
    ft::ImapClient c(fresh.imap_port());
    auto reply = c.login("anna@old.example", kAnnaPw);
    INFO("new server log:\n", fresh.log_tail());
    CHECK(reply.rfind("a1 NO [UNAVAILABLE]", 0) == 0);
    CHECK(fresh.log_tail(200).find("mailferry: not open") != std::string::npos);
    CHECK(fresh.log_tail(200).find("missing.toml") != std::string::npos);
    CHECK(fresh.doveadm({"user", "anna@new.example"}) != 0);
}

TEST_CASE("end to end: a NEW Dovecot with the shipped Lua passdb/userdb (examples/dovecot)") {
    World w;
    ft::give_to_mfvmail(w.state);
    ft::give_to_mfvmail(w.dir.file("home"));
    mft::DovecotOptions n = new_server(new_server_auth(w));
    mft::DovecotServer fresh(n);
    auto reply_of = [&fresh](const std::string& user, const std::string& pw, bool sasl) {
        ft::ImapClient c(fresh.imap_port());
        std::string reply = sasl ? c.authenticate_plain(user, pw) : c.login(user, pw);
        INFO("new server log:\n", fresh.log_tail());
        return reply;
    };
    // Reading the store as root may leave files Dovecot's auth worker (mfvmail) cannot
    // write: hand them back after each look.
    auto stored = [&w](const std::string& name) {
        bool there = ft::account_in(w.db, name).has_value();
        ft::give_to_mfvmail(w.state);
        return there;
    };

    { // first login: verified at the old server, provisioned, and a working session
        ft::ImapClient c(fresh.imap_port());
        auto reply = c.login("anna@old.example", kAnnaPw);
        INFO("new server log:\n", fresh.log_tail());
        REQUIRE(reply.rfind("a1 OK", 0) == 0);
        CHECK(c.command("a2", "SELECT INBOX").rfind("a2 OK", 0) == 0);
    }
    auto a = ft::account_in(w.db, "anna@new.example");
    REQUIRE(a);
    CHECK(a->state == mf::AccountState::provisioned);
    ft::give_to_mfvmail(w.state);

    // wrong password: a definite NO, nothing created
    CHECK(reply_of("bob@old.example", "not-bobs", false).rfind("a1 NO [AUTHENTICATIONFAILED]", 0) ==
          0);
    CHECK_FALSE(stored("bob@new.example"));

    // 1000 bytes (over what checkpassword carries) and the 4 KiB limit, by AUTHENTICATE PLAIN
    CHECK(reply_of("long@old.example", kPw1000, true).rfind("a1 OK", 0) == 0);
    CHECK(stored("long@new.example"));
    CHECK(reply_of("huge@old.example", kPw4096, true).rfind("a1 OK", 0) == 0);
    CHECK(stored("huge@new.example"));
    CHECK(reply_of("over@old.example", kPw4096 + "x", true)
              .rfind("a1 NO [AUTHENTICATIONFAILED]", 0) == 0);
    CHECK_FALSE(stored("over@new.example"));

    // userdb lookups through the same script
    std::string out;
    CHECK(fresh.doveadm({"user", "anna@new.example"}, &out) == 0);
    CHECK(out.find("quota_rule") != std::string::npos);
    CHECK(out.find(w.dir.file("home") + "/new.example/anna") != std::string::npos);
    CHECK(fresh.doveadm({"user", "carl@new.example"}, &out) == 67); // EX_NOUSER: not migrated

    w.old.stop();
    // migrated: still OK with the old server gone (answered from mailferry's store)
    CHECK(reply_of("anna", kAnnaPw, false).rfind("a1 OK", 0) == 0);
    CHECK(reply_of("long@old.example", kPw1000, true).rfind("a1 OK", 0) == 0);
    // not migrated, old server gone: a temporary failure, not a wrong password
    CHECK(reply_of("carl@old.example", "carl-pw", false).rfind("a1 NO [UNAVAILABLE]", 0) == 0);
    CHECK_FALSE(stored("carl@new.example"));
    CHECK(ft::account_count(w.db) == 3);
    // Nothing the new server ran (our code inside it) reported a sanitizer error, and the
    // password never reached its log.
    const std::string log = fresh.log_tail(1000);
    CHECK(log.find("Sanitizer") == std::string::npos);
    CHECK(log.find(kAnnaPw) == std::string::npos);
    CHECK(log.find(kPw1000.substr(0, 40)) == std::string::npos);
}
