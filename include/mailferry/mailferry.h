/* mailferry.h — the stable C ABI of libmailferry.so.
 *
 * A mail server (or its plugin) asks mailferry at every login:
 *
 *     mf_handle *h = NULL;
 *     char err[256];
 *     if (mf_open("/etc/mailferry/mailferry.toml", &h, err, sizeof err) != MF_OK) { ... }
 *     mf_result r;
 *     mf_result_init(&r);
 *     int st = mf_authenticate(h, login, password, password_len, "imap", "192.0.2.7", &r);
 *     // st == MF_AUTH_OK:       r.user is the canonical name, r.extra the extra fields
 *     // st == MF_AUTH_FAIL:     wrong password or no such account
 *     // st == MF_AUTH_TEMPFAIL: could not decide now (old server down, ...): retry later
 *     mf_result_free(&r);
 *     st = mf_lookup_user(h, login, &r);   // a userdb lookup: no password, no old server
 *     mf_result_free(&r);
 *     mf_close(h);
 *
 * Versioning: the soname is libmailferry.so.MF_ABI_VERSION. Functions are only ever
 * added; the layout of mf_result only grows at its end, guarded by its `size` field,
 * which mf_result_init() sets. mf_abi_version() returns the version the library was
 * built with: a caller compiled against this header checks it equals MF_ABI_VERSION.
 *
 * Threads: every function is thread-safe; one handle may serve many threads at once.
 * Errors: no function throws, aborts or exits; failures are return codes, and a
 * message is written to the caller's buffer where one is given.
 * Secrets: the password is read, never copied beyond the call, and wiped from
 * mailferry's own buffers before the call returns.
 */
#ifndef MAILFERRY_H
#define MAILFERRY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MF_ABI_VERSION 1

#if defined(__GNUC__)
#define MF_API __attribute__((visibility("default")))
#else
#define MF_API
#endif

/* The longest password mailferry accepts, in bytes; a longer one is a FAIL. */
#define MF_MAX_PASSWORD_BYTES 4096

/* Return codes of mf_open() and friends. */
enum {
    MF_OK = 0,
    MF_ERR_CONFIG = 2,   /* config unreadable or invalid (message in errbuf) */
    MF_ERR_TEMP = 75,    /* store or lock unavailable: try again later */
    MF_ERR_USAGE = 64,   /* a NULL where a value is required, buffer too small */
    MF_ERR_INTERNAL = 70 /* a bug: please report the message */
};

/* The three answers of mf_authenticate(). */
typedef enum { MF_AUTH_OK = 0, MF_AUTH_FAIL = 1, MF_AUTH_TEMPFAIL = 2 } mf_auth_status;

/* An extra field returned with MF_AUTH_OK, e.g. {"userdb_home", "/var/vmail/x/anna"}. */
typedef struct {
    const char* name;
    const char* value;
} mf_field;

/* The result of one mf_authenticate() or mf_lookup_user() call. Initialise with mf_result_init(),
 * release with mf_result_free(); all strings are owned by the result. */
typedef struct {
    size_t size;           /* sizeof(mf_result) of the caller; set by mf_result_init */
    mf_auth_status status; /* same as the return value */
    const char* user;      /* canonical user name, or NULL */
    const char* message;   /* human-readable reason for the log; never the password */
    const mf_field* extra; /* extra fields (status OK only) */
    size_t extra_count;
    int first_login; /* 1 when the old server verified this login just now */
    void* internal_; /* owned storage: do not touch */
} mf_result;

typedef struct mf_handle mf_handle;

/* The ABI version this library implements (MF_ABI_VERSION at its build). */
MF_API int mf_abi_version(void);

/* The library's release as "major.minor.patch"; a static string. */
MF_API const char* mf_version(void);

/* Opens the engine with a config file (NULL: $MAILFERRY_CONFIG, else
 * /etc/mailferry/mailferry.toml). On failure *out stays NULL and errbuf (if not NULL)
 * receives a NUL-terminated message of at most errlen bytes naming file, line and key. */
MF_API int mf_open(const char* config_path, mf_handle** out, char* errbuf, size_t errlen);

/* Closes a handle from mf_open(); NULL is ignored. No call may be running on it. */
MF_API void mf_close(mf_handle* h);

/* Sets the fields of a result to empty and its size to sizeof(mf_result). */
MF_API void mf_result_init(mf_result* r);

/* Releases what a result owns and re-initialises it. Safe to call twice. */
MF_API void mf_result_free(mf_result* r);

/* Decides one login. `password` is `password_len` bytes (not NUL-terminated; may hold
 * any byte — CR, LF and NUL make it a FAIL, and so do more than MF_MAX_PASSWORD_BYTES). `service`
 * ("imap", "pop3", "smtp"...) and `client_ip` may be NULL. `result` may be NULL when only the
 * status is wanted. Blocks up to the old server's timeout on a first login; answers from the store
 * afterwards. Returns the status (also in result->status). */
MF_API mf_auth_status mf_authenticate(mf_handle* h, const char* login, const char* password,
                                      size_t password_len, const char* service,
                                      const char* client_ip, mf_result* result);

/* A userdb lookup without a password (LMTP delivery, doveadm, a master-user login):
 * MF_AUTH_OK with result->user the canonical name and result->extra the extra fields
 * for an account mailferry has migrated; MF_AUTH_FAIL for any other login (not yet
 * migrated, disabled, a name the identity map refuses); MF_AUTH_TEMPFAIL when the store
 * cannot answer now. Asks no old server and changes nothing: it waits at most the
 * store's busy_timeout. `result` may be NULL. Returns the status (also in result->status). Added to
 * ABI 1 later than the functions above: a caller that must also run with an older
 * libmailferry.so.1 looks it up with dlsym(). */
MF_API mf_auth_status mf_lookup_user(mf_handle* h, const char* login, mf_result* result);

/* A static English name for a status: "OK", "FAIL", "TEMPFAIL". */
MF_API const char* mf_auth_status_name(mf_auth_status s);

#ifdef __cplusplus
}
#endif

#endif /* MAILFERRY_H */
