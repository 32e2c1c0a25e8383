// config.hpp — mailferry.toml, parsed strictly into plain structs.
//
// Every key is declared once in plugin/config.cpp with its type, default and range. An
// unknown key, a wrong type, a missing required value or an unreadable file is an Error
// whose `what` names file:line and the key, and whose `detail` says what was expected.
// Secrets (HTTP tokens, database passwords) are never inline: the config names a file,
// and a warning is recorded when such a file is readable by group or others.
#pragma once

#include "mailferry/error.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mf {

using Millis = std::chrono::milliseconds;

inline constexpr const char* kDefaultConfigPath = "/etc/mailferry/mailferry.toml";
inline constexpr const char* kConfigEnv = "MAILFERRY_CONFIG";

enum class Protocol { imap, pop3, smtp };
enum class TlsMode { implicit, starttls, none };
enum class LoginForm { full_address, local_part, templated };
enum class SaslMech { automatic, plain, login };
enum class MailProtocol { smtp, lmtp }; // how the old server takes mail

struct StoreConfig {
    std::string path = "/var/lib/mailferry/mailferry.db";
    std::string lock_dir; // default: "locks" beside the database
    Millis busy_timeout{5000};
};

// An old server. Logins for `domains` are verified here.
struct ProviderConfig {
    std::string name;
    std::vector<std::string> domains; // lower-case
    Protocol protocol = Protocol::imap;
    std::string host;
    std::uint16_t port = 0; // 0: the protocol's default for the TLS mode
    TlsMode tls = TlsMode::implicit;
    std::string ca_file; // empty: the system's CAs
    bool verify_certificate = true;
    Millis timeout{10000};
    unsigned max_concurrent = 10;
    LoginForm login_form = LoginForm::full_address;
    std::string login_template; // with login_form = template: "{local}", "{domain}", "{address}"
    SaslMech mechanism = SaslMech::automatic;
    // The old server takes ANNA@ and anna@ as one user (Dovecot's %Lu, Exchange/AD,
    // CommuniGate, Courier): the local part is folded to lower case (ASCII) for the
    // account's name, so every spelling lands in one account.
    bool case_insensitive = true;
    // The worker logs in here as this master user for every account (IMAP: AUTHENTICATE
    // PLAIN with the account as authzid), so accounts copy without their own password:
    // imported ones that never logged in. The password is read from the file (0600).
    std::string master_user;
    std::string master_password_file;
    // Where the old server takes mail ([mailflow]: relay of mail for accounts not yet
    // migrated, RCPT probes). mail_host defaults to host.
    std::string mail_host;
    std::uint16_t mail_port = 25;
    MailProtocol mail_protocol = MailProtocol::smtp;
    // Postfix transport (transport:nexthop) for its accounts not yet migrated; default
    // "smtp:[mail_host]:mail_port" (lmtp: "lmtp:inet:mail_host:mail_port").
    std::string relay_transport;

    [[nodiscard]] std::uint16_t effective_port() const;
};

struct IdentityConfig {
    std::string default_domain; // short names get this domain; empty: short names refused
    bool accept_short_names = true;
    bool accept_full_address = true;
    // Deprecated: provider.case_insensitive decides per old server. When set, it is the
    // value of case_insensitive for every provider that does not set its own.
    bool fold_local_part = false;
    std::string conflict_map;                          // file: "login  new-canonical-name"
    std::map<std::string, std::string> domain_renames; // old domain → new domain
};

enum class HashScheme { argon2id, sha512_crypt, yescrypt };

struct HashConfig {
    HashScheme scheme = HashScheme::argon2id;
    std::uint64_t argon2_ops = 2;            // crypto_pwhash OPSLIMIT_INTERACTIVE
    std::uint64_t argon2_memory_kib = 65536; // 64 MiB, MEMLIMIT_INTERACTIVE
    unsigned sha512_rounds = 5000;
    unsigned yescrypt_cost = 5;
};

enum class ProvisionerType { builtin, dovecot_passwd_file, command, http };

struct ProvisionerConfig {
    ProvisionerType type = ProvisionerType::builtin;
    // dovecot-passwd-file
    std::string passwd_file;
    std::string uid; // numeric or empty
    std::string gid;
    std::string home;         // template: "/var/vmail/{domain}/{local}"
    std::string extra_fields; // template, space separated k=v
    // command
    std::vector<std::string> command; // argv; the canonical user is appended, password on stdin
    // http
    std::string url;
    std::string token_file;
    std::string ca_file;
    bool verify_certificate = true;
    Millis timeout{30000};
};

// Brute-force guard: local answers before the old server is bothered (the rules are in
// plugin/guard.hpp). A limit reached is TEMPFAIL, never FAIL.
struct GuardConfig {
    unsigned max_failures_per_account_ip = 5; // one client address guessing one account
    unsigned max_failures_per_ip = 50;        // one client address, all accounts
    // The account's old-server budget: failed old-server checks from all addresses; past
    // it only clean clients are checked there, up to twice this. Never limits a check
    // against the stored hash.
    unsigned max_failures_per_account = 10;
    Millis window{15 * 60 * 1000};
    Millis negative_cache_ttl{5 * 60 * 1000};
    std::string key_file; // keyed hash for the negative cache; default beside the database
};

// The verified-login cache of a long-lived engine (C ABI, PAM, Lua): a right password
// checked against the stored hash is answered again within `ttl` without the slow hash.
struct LoginCacheConfig {
    Millis ttl{5 * 60 * 1000}; // 0: off
    unsigned max_entries = 10000;
};

// Extra fields returned with an OK (templates as in ProvisionerConfig::home).
struct ResultConfig {
    std::map<std::string, std::string> extra_fields;
};

enum class LogLevel { debug, info, warning, error };

struct LogConfig {
    LogLevel level = LogLevel::info;
};

// The sealed credential spool (docs/ARCHITECTURE.md, Security): the login side seals each
// verified password to the public key; only the worker, which alone can read the secret
// key, opens an entry. Entries live until `keep_until`.
enum class SpoolKeep { cutover, first_sync };

struct SpoolConfig {
    std::string dir;             // default: "spool" beside the database
    std::string public_key_file; // default: "spool.pub" beside the database
    std::string secret_key_file; // default: "spool.key" beside the database (worker only)
    SpoolKeep keep_until = SpoolKeep::cutover;
};

// The new server the copies go to (IMAP). Without a [target] section no copy is queued.
struct TargetConfig {
    bool configured = false; // the config has a [target] section
    std::string host;        // the new server over IMAP; or:
    // A Maildir tree of ours per account, written directly (Dovecot's files, the old
    // server's UIDs kept): a template with {local}, {domain}, {address} or {user}, e.g.
    // "/var/vmail/{domain}/{local}/Maildir". Exactly one of host and maildir is set.
    std::string maildir;
    std::uint16_t port = 0; // 0: 993 with tls = implicit, else 143
    TlsMode tls = TlsMode::implicit;
    std::string ca_file;
    bool verify_certificate = true;
    Millis timeout{60000};
    // Log in as this master user for each account (Dovecot master passdb, AUTHENTICATE
    // PLAIN with the account as authorization id); empty: as the account, with its password.
    std::string master_user;
    std::string master_password_file;

    [[nodiscard]] std::uint16_t effective_port() const;
};

// `mailferry worker`: the background copies.
struct WorkerConfig {
    unsigned copies = 2;                // parallel copies in one worker process
    unsigned max_copies_per_server = 4; // per old server, across all workers
    unsigned connections = 2;           // folders copied in parallel within one copy
    // A copy opens a further pair of connections (a login at each server) only per this
    // many messages still to copy; below it the folders share one session. 0: always.
    unsigned messages_per_connection = 250;
    Millis resync_interval{60 * 60 * 1000}; // 0: no resync rounds after the first copy
    Millis retry_min{60 * 1000};            // first wait after a failed copy, doubled each time
    Millis retry_max{6 * 60 * 60 * 1000};
    unsigned max_attempts = 0; // consecutive failures before a job is given up; 0: never
    // The same failure this many runs in a row — the same error of the whole copy, or one
    // message or folder skipped for the same reason — and the job stops for an admin.
    unsigned max_same_failure = 5;
    // A job whose worker died mid-copy (its lease ran out) counts a failed attempt; a
    // takeover that finds this many failed runs in a row, the last one a crash, stops the
    // job for an admin: a message that crashes the copier must not kill a worker per lease.
    unsigned max_crashes = 3;
    Millis lease{120 * 1000}; // a claimed job not renewed for this long is taken over
    Millis poll_interval{5000};
    std::string state_dir; // copier state files; default: "copy-state" beside the database
    std::string wake_file; // touched after each enqueue; default: "wake" in the spool dir
    bool spawn = false;    // the login side starts a worker itself (single-user installs)
    std::string program = "/usr/local/bin/mailferry";
    Millis idle_exit{5 * 60 * 1000}; // a spawned worker exits after this long without work
};

// Mail arriving during the campaign, through Postfix (docs/ARCHITECTURE.md, "Mail flow"):
// `mailferry transport` (socketmap) and `mailferry policy` (policy delegation).
enum class Unmigrated {
    relay, // accept and relay to the old server (its provider's relay_transport)
    probe, // ask the old server first (RCPT probe): reject what it rejects
};

struct MailflowConfig {
    // A [mailflow] table is present: mail runs through Postfix with mailferry's services,
    // so `mailferry cutover` releases the mail held for each account it cuts over.
    bool configured = false;
    // Postfix transport for accounts already on the new server (Dovecot LMTP).
    std::string local_transport = "lmtp:unix:private/dovecot-lmtp";
    Unmigrated unmigrated = Unmigrated::relay;
    Millis probe_timeout{10000};
    std::string probe_helo = "localhost"; // our name in the probe's EHLO/LHLO
    // The Postfix instance whose hold queue `mailferry mailflow-release` works on.
    std::string postfix_config_dir = "/etc/postfix";
    std::string postfix_command_dir = "/usr/sbin"; // postsuper, postqueue
    // The services' log; empty: syslog when run by Postfix (stderr is the client's
    // socket then), else stderr.
    std::string log_file;
};

// `mailferry auth-http`: nginx's mail proxy asks where each login goes (docs/ARCHITECTURE.md,
// "The transition proxy"). Without an [auth_http] section the command refuses to start.
struct AuthHttpConfig {
    bool configured = false; // the config has an [auth_http] section
    // "127.0.0.1:9180", "[::1]:9180" (loopback only) or "unix:/run/mailferry/auth-http.sock"
    std::string listen;
    // The new server per protocol, "IP:PORT" or "[IPv6]:PORT" (nginx takes an address, not
    // a name); empty: that protocol is not proxied. At least one is set.
    std::string new_imap;
    std::string new_pop3;
    std::string new_smtp;
    // The old server (the account's provider host, resolved) listens for nginx here.
    std::uint16_t old_imap_port = 143;
    std::uint16_t old_pop3_port = 110;
    std::uint16_t old_smtp_port = 25;
    Millis wait{3000};          // Auth-Wait after a wrong password or a temporary failure
    unsigned max_attempts = 10; // from this Auth-Login-Attempt on, no Auth-Wait: nginx hangs up
    unsigned threads = 8;       // logins checked at once
    Millis read_timeout{10000}; // for one request to arrive whole
    // A shared secret nginx sends as X-Mailferry-Key (auth_http_header), so nobody else
    // on the host can ask; empty: no key asked for.
    std::string key_file;
};

// An IP literal and a port: "192.0.2.1:143" or "[2001:db8::1]:143".
struct IpPort {
    std::string ip; // without brackets
    std::uint16_t port = 0;
};

// Parses "IPv4:PORT" or "[IPv6]:PORT" (port 1-65535); nullopt for anything else (names too).
std::optional<IpPort> parse_ip_port(std::string_view text);

struct Config {
    std::string source_path; // the file this was read from
    StoreConfig store;
    std::vector<ProviderConfig> providers;
    IdentityConfig identity;
    HashConfig hash;
    ProvisionerConfig provisioner;
    GuardConfig guard;
    LoginCacheConfig login_cache;
    ResultConfig result;
    LogConfig log;
    SpoolConfig spool;
    TargetConfig target;
    WorkerConfig worker;
    MailflowConfig mailflow;
    AuthHttpConfig auth_http;
    std::vector<std::string> warnings; // e.g. "token_file /x is readable by others"
};

// Reads and validates a config file. The path is resolved by the caller (see
// config_path_from()).
Result<Config> load_config(const std::string& path);

// Parses config text; `source_name` is used in error messages. For tests and dry runs.
Result<Config> parse_config(std::string_view text, const std::string& source_name);

// --config beats $MAILFERRY_CONFIG beats /etc/mailferry/mailferry.toml.
std::string config_path_from(const std::string& cli_value);

// "10s", "500ms", "15m", "2h", "1d" → milliseconds.
Result<Millis> parse_duration(std::string_view text);

// The inverse, in the largest unit that is exact: 900000 ms → "15m", 1500 ms → "1500ms".
std::string format_duration(Millis d);

// Expands {local}, {domain}, {address}, {user} in a template.
std::string expand_template(std::string_view tmpl, std::string_view local, std::string_view domain);

const char* to_string(Protocol p);
const char* to_string(TlsMode t);
const char* to_string(HashScheme s);
const char* to_string(ProvisionerType t);
const char* to_string(LoginForm f); // "template" for LoginForm::templated
const char* to_string(SaslMech m);  // "auto" for SaslMech::automatic
const char* to_string(LogLevel l);
const char* to_string(SpoolKeep k); // "cutover", "first-sync"
const char* to_string(MailProtocol p);
const char* to_string(Unmigrated u);

} // namespace mf
