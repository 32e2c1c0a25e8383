/* lua_mailferry.c — mailferry.so, the Lua module: `require "mailferry"` asks mailferry about
 * logins through the C ABI (libmailferry.so). Dovecot's Lua passdb/userdb
 * (examples/dovecot/mailferry.lua) is its user; any host running the Lua it was built for
 * (5.4 by default; 5.3 works too, see external-auth/lua.cmake) can load it.
 *
 * API
 *   local mailferry = require "mailferry"
 *   h, err = mailferry.open([config_path])     -- nil: $MAILFERRY_CONFIG, else
 *                                              -- /etc/mailferry/mailferry.toml
 *       h on success; nil and a message naming file, line and key on failure.
 *   status, user, fields, message = h:authenticate(login, password [, service [, client_ip]])
 *   status, user, fields, message = h:lookup(login)   -- userdb: no password, no old server
 *       status   "OK", "FAIL" or "TEMPFAIL" (mf_auth_status_name)
 *       user     the canonical account name, or nil
 *       fields   a table of extra fields, name -> value (empty unless "OK")
 *       message  the reason for the log; never the password
 *   h:close()                                  -- also done by __gc (and Lua 5.4's __close)
 *   mailferry.MAX_PASSWORD_BYTES, mailferry.version
 *
 * Rules kept here:
 *   - Answers only ever come from the engine: misuse (a closed handle, a handle carried
 *     into a forked child, a non-string argument) raises a Lua error, which Dovecot turns
 *     into an internal failure — never into "FAIL", so a user is not told "wrong password"
 *     because of a bug here.
 *   - The password may hold any byte: its length comes from lua_tolstring, not strlen
 *     (the engine refuses CR, LF and NUL itself). A login with a NUL inside is a FAIL
 *     here, because the C ABI takes it as a C string and would see a shorter name.
 *   - Passwords: this module makes no copy. It hands Lua's own bytes to mf_authenticate,
 *     which wipes the copies it makes. The Lua string itself cannot be wiped (Lua strings
 *     are immutable and interned; the host created it and the garbage collector frees it
 *     without clearing) — that is the host's part, as it is with any Lua passdb.
 *   - An mf_result lives in a userdata with __gc, so a Lua error (out of memory while
 *     building the answer) cannot leak what it owns.
 *   - One engine per process: a handle opened before a fork() is refused in the child
 *     (a SQLite connection must not cross a fork); open one in the child instead.
 *
 * Must never: log or return the password, answer FAIL for a failure of its own, or use a
 * closed handle.
 */
#include <lauxlib.h>
#include <lua.h>

#include <limits.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "mailferry/mailferry.h"

#define MF_LUA_HANDLE "mailferry.handle"
#define MF_LUA_RESULT "mailferry.result"

struct mf_lua_handle {
    mf_handle* h; /* NULL once closed */
    pid_t pid;    /* the process that opened it */
};

/* ---- results: owned by a userdata, freed by its __gc ---- */

static int result_gc(lua_State* L) {
    mf_result_free((mf_result*)luaL_checkudata(L, 1, MF_LUA_RESULT));
    return 0;
}

/* Pushes a fresh, initialised mf_result owned by the Lua stack. */
static mf_result* new_result(lua_State* L) {
    mf_result* r = (mf_result*)lua_newuserdata(L, sizeof *r);
    mf_result_init(r);
    luaL_setmetatable(L, MF_LUA_RESULT);
    return r;
}

/* Pushes status, user, fields, message; frees what the result owns. */
static int push_answer(lua_State* L, mf_auth_status st, mf_result* r) {
    size_t i;
    int n = r->extra_count > (size_t)INT_MAX ? INT_MAX : (int)r->extra_count;
    lua_pushstring(L, mf_auth_status_name(st));
    if (r->user != NULL) {
        lua_pushstring(L, r->user);
    } else {
        lua_pushnil(L);
    }
    lua_createtable(L, 0, st == MF_AUTH_OK ? n : 0);
    for (i = 0; st == MF_AUTH_OK && i < r->extra_count; i++) {
        lua_pushstring(L, r->extra[i].value);
        lua_setfield(L, -2, r->extra[i].name);
    }
    lua_pushstring(L, r->message != NULL ? r->message : "");
    mf_result_free(r);
    return 4;
}

/* An answer made here, not by the engine (input the C ABI cannot carry). */
static int push_local_fail(lua_State* L, const char* message) {
    lua_pushstring(L, mf_auth_status_name(MF_AUTH_FAIL));
    lua_pushnil(L);
    lua_newtable(L);
    lua_pushstring(L, message);
    return 4;
}

/* ---- handles ---- */

/* The open handle at `arg`; raises a Lua error when it is closed or from another process. */
static mf_handle* check_open(lua_State* L, int arg) {
    struct mf_lua_handle* lh = (struct mf_lua_handle*)luaL_checkudata(L, arg, MF_LUA_HANDLE);
    if (lh->h == NULL) {
        luaL_error(L, "mailferry: the handle is closed");
    }
    if (lh->pid != getpid()) {
        luaL_error(L,
                   "mailferry: handle opened in process %d used in %d: open one per "
                   "process (after fork)",
                   (int)lh->pid, (int)getpid());
    }
    return lh->h;
}

/* A login argument as a C string: nil (and a FAIL pushed by the caller) when it has a NUL. */
static const char* check_login(lua_State* L, int arg) {
    size_t len = 0;
    const char* login = luaL_checklstring(L, arg, &len);
    return strlen(login) == len ? login : NULL;
}

static int l_open(lua_State* L) {
    const char* path = luaL_optstring(L, 1, NULL);
    char err[512];
    mf_handle* h = NULL;
    struct mf_lua_handle* lh;
    int rc;

    /* The userdata first, so that a Lua error after mf_open cannot lose the handle. */
    lh = (struct mf_lua_handle*)lua_newuserdata(L, sizeof *lh);
    lh->h = NULL;
    lh->pid = getpid();
    luaL_setmetatable(L, MF_LUA_HANDLE);
    err[0] = '\0';
    rc = mf_open(path, &h, err, sizeof err);
    if (rc != MF_OK) {
        lua_pushnil(L);
        lua_pushfstring(L, "mailferry.open: %s", err[0] != '\0' ? err : "failed");
        return 2;
    }
    lh->h = h;
    return 1;
}

static int l_authenticate(lua_State* L) {
    mf_handle* h = check_open(L, 1);
    const char* login = check_login(L, 2);
    size_t password_len = 0;
    const char* password = luaL_checklstring(L, 3, &password_len);
    const char* service = luaL_optstring(L, 4, NULL);
    const char* client_ip = luaL_optstring(L, 5, NULL);
    mf_result* r;
    mf_auth_status st;

    if (login == NULL) {
        return push_local_fail(L, "login holds a NUL byte");
    }
    r = new_result(L);
    st = mf_authenticate(h, login, password, password_len, service, client_ip, r);
    return push_answer(L, st, r);
}

static int l_lookup(lua_State* L) {
    mf_handle* h = check_open(L, 1);
    const char* login = check_login(L, 2);
    mf_result* r;
    mf_auth_status st;

    if (login == NULL) {
        return push_local_fail(L, "login holds a NUL byte");
    }
    r = new_result(L);
    st = mf_lookup_user(h, login, r);
    return push_answer(L, st, r);
}

static int l_close(lua_State* L) {
    struct mf_lua_handle* lh = (struct mf_lua_handle*)luaL_checkudata(L, 1, MF_LUA_HANDLE);
    /* In a forked child the engine belongs to the parent: forget it, do not close it. */
    if (lh->h != NULL && lh->pid == getpid()) {
        mf_close(lh->h);
    }
    lh->h = NULL;
    return 0;
}

static int l_tostring(lua_State* L) {
    struct mf_lua_handle* lh = (struct mf_lua_handle*)luaL_checkudata(L, 1, MF_LUA_HANDLE);
    lua_pushstring(L, lh->h != NULL ? "mailferry handle (open)" : "mailferry handle (closed)");
    return 1;
}

static const luaL_Reg handle_methods[] = {
    {"authenticate", l_authenticate}, {"lookup", l_lookup}, {"close", l_close}, {NULL, NULL}};

static const luaL_Reg module_functions[] = {{"open", l_open}, {NULL, NULL}};

/* The loader `require "mailferry"` calls. */
__attribute__((visibility("default"))) int luaopen_mailferry(lua_State* L) {
    if (mf_abi_version() != MF_ABI_VERSION) {
        return luaL_error(L, "mailferry: libmailferry ABI %d, this module was built for %d",
                          mf_abi_version(), MF_ABI_VERSION);
    }
    luaL_newmetatable(L, MF_LUA_RESULT);
    lua_pushcfunction(L, result_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    luaL_newmetatable(L, MF_LUA_HANDLE);
    luaL_newlib(L, handle_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);

    luaL_newlib(L, module_functions);
    lua_pushinteger(L, MF_MAX_PASSWORD_BYTES);
    lua_setfield(L, -2, "MAX_PASSWORD_BYTES");
    lua_pushstring(L, mf_version());
    lua_setfield(L, -2, "version");
    return 1;
}
