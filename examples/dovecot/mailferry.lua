-- mailferry.lua — Dovecot's Lua passdb and userdb asking mailferry (mailferry.so).
--
-- Install: copy to /etc/dovecot/mailferry.lua and include
-- auth-mailferry-lua.conf.ext (Dovecot 2.3) or auth-mailferry-lua-2.4.conf.ext (2.4).
-- mailferry.so goes where Lua finds C modules (/usr/local/lib/lua/5.4/ on Debian), or
-- uncomment the package.cpath line below.
--
-- Answers, for Dovecot:
--   passdb (auth_password_verify)  OK       -> PASSDB_RESULT_OK, user= canonical name
--                                             plus [result.extra_fields] (prefetch uses
--                                             the userdb_* ones)
--                                  FAIL     -> PASSDB_RESULT_PASSWORD_MISMATCH (mailferry
--                                             does not tell a wrong password from an
--                                             unknown user; clients see the same NO)
--                                  TEMPFAIL -> PASSDB_RESULT_INTERNAL_FAILURE: the client
--                                             sees "NO [UNAVAILABLE]", not a wrong password
--   userdb (auth_userdb_lookup)    OK       -> USERDB_RESULT_OK with the userdb_* fields
--                                             (prefix dropped: home, uid, quota_rule...)
--                                  FAIL     -> USERDB_RESULT_USER_UNKNOWN (not migrated)
--                                  TEMPFAIL -> USERDB_RESULT_INTERNAL_FAILURE
--   a credentials lookup (CRAM-MD5 and friends: auth_passdb_lookup) -> SCHEME_NOT_AVAILABLE:
--   mailferry verifies plaintext passwords only (auth_mechanisms = plain login).
-- A failure of this script itself (mailferry.so missing, config unreadable) is an
-- internal failure too: never a wrong password.
--
-- The same file works on Dovecot 2.3 and 2.4: results are returned as tables, messages
-- as strings, and the service is read as req.service (2.3) or req.protocol (2.4).
-- Must never: log the password, or turn a temporary failure into PASSWORD_MISMATCH.

local config_path = "/etc/mailferry/mailferry.toml"
-- package.cpath = "/usr/local/lib/lua/5.4/?.so;" .. package.cpath

local mailferry = require "mailferry"
local handle = nil   -- one engine per auth process, opened by script_init
local open_error = nil

function script_init()
  local err
  handle, err = mailferry.open(config_path)
  if handle == nil then
    -- Keep Dovecot running: every request then answers INTERNAL_FAILURE with the reason
    -- (Dovecot logs it), and a fixed config is picked up by `doveadm reload`.
    open_error = err
  end
  return 0
end

function script_deinit()
  if handle ~= nil then
    handle:close()
    handle = nil
  end
end

-- passdb: mailferry's fields as they are (userdb_* ones reach the userdb through
-- prefetch), plus user= the canonical name (Dovecot renames the login to it).
local function passdb_fields(user, fields)
  local out = {}
  for k, v in pairs(fields) do
    out[k] = v
  end
  out.user = user
  return out
end

-- userdb: only the userdb_* fields, without that prefix (home, uid, quota_rule, ...).
local function userdb_fields(user, fields)
  local out = {}
  for k, v in pairs(fields) do
    if k:sub(1, 7) == "userdb_" then
      out[k:sub(8)] = v
    end
  end
  out.user = user
  return out
end

-- The reason for the log of every request while the engine is not open.
local function not_open()
  return "mailferry: not open: " .. tostring(open_error)
end

function auth_password_verify(req, pass)
  if handle == nil then
    return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, not_open()
  end
  local status, user, fields, message =
    handle:authenticate(req.user, pass, req.service or req.protocol, req.remote_ip)
  if status == "OK" then
    return dovecot.auth.PASSDB_RESULT_OK, passdb_fields(user, fields)
  elseif status == "FAIL" then
    return dovecot.auth.PASSDB_RESULT_PASSWORD_MISMATCH, message
  end
  -- Dovecot logs the message of an internal failure itself.
  return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, message
end

function auth_passdb_lookup(req)
  return dovecot.auth.PASSDB_RESULT_SCHEME_NOT_AVAILABLE,
    "mailferry verifies plaintext passwords only: use auth_mechanisms = plain login"
end

function auth_userdb_lookup(req)
  if handle == nil then
    return dovecot.auth.USERDB_RESULT_INTERNAL_FAILURE, not_open()
  end
  local status, user, fields, message = handle:lookup(req.user)
  if status == "OK" then
    return dovecot.auth.USERDB_RESULT_OK, userdb_fields(user, fields)
  elseif status == "FAIL" then
    return dovecot.auth.USERDB_RESULT_USER_UNKNOWN, message
  end
  return dovecot.auth.USERDB_RESULT_INTERNAL_FAILURE, message
end

-- Dovecot 2.4 caches a Lua passdb/userdb only with a cache key from the script (2.3 uses
-- cache_key=%u by default). The password is part of every passdb cache entry anyway.
function auth_passdb_get_cache_key()
  return "%{user}"
end

function auth_userdb_get_cache_key()
  return "%{user}"
end
