/* pam_mailferry.c — PAM module: authenticate a login through mailferry (libmailferry.so).
 *
 * SYNOPSIS (in /etc/pam.d/<service>)
 *   auth     required  pam_mailferry.so [config=/etc/mailferry/mailferry.toml] [debug]
 *   account  required  pam_mailferry.so
 *
 * DESCRIPTION
 *   pam_sm_authenticate takes the user (pam_get_user) and the password (pam_get_authtok:
 *   PAM_AUTHTOK when an earlier module set it, else the conversation asks), the service
 *   (PAM_SERVICE) and the client address (PAM_RHOST), and asks mf_authenticate():
 *     MF_AUTH_OK        PAM_SUCCESS; PAM_USER becomes the canonical account name when it
 *                       differs from what the user typed (Dovecot picks that up)
 *     MF_AUTH_FAIL      PAM_AUTH_ERR (mailferry does not tell a wrong password from an
 *                       unknown account, so PAM_USER_UNKNOWN is never returned)
 *     MF_AUTH_TEMPFAIL  PAM_AUTHINFO_UNAVAIL — Exim answers that with a temporary error;
 *                       Dovecot treats every PAM failure as a wrong password:
 *                       there, a temporary failure cannot be told apart
 *   A failing conversation returns what pam_get_authtok returned (PAM_AUTHTOK_ERR in
 *   Linux-PAM 1.5: not a wrong password — Exim answers it with a temporary error), a bad
 *   module option PAM_SERVICE_ERR, a config that does not load PAM_SERVICE_ERR (or
 *   PAM_AUTHINFO_UNAVAIL when mf_open says "temporary"). pam_sm_setcred and
 *   pam_sm_acct_mgmt return PAM_SUCCESS: the account is whatever authentication decided.
 *
 * Options: config=PATH (absolute; default $MAILFERRY_CONFIG, then
 *   /etc/mailferry/mailferry.toml), debug. Anything else is refused (PAM_SERVICE_ERR):
 *   a typo must not silently change how logins are decided.
 *
 * The engine is opened once per process and config path and kept (Dovecot's auth worker
 * calls pam_start/pam_end for every login, and Linux-PAM unloads modules at pam_end: the
 * module pins itself with RTLD_NODELETE so the cache survives). A forked child does not
 * reuse its parent's engine (its SQLite connection must not cross fork); it opens its own.
 *
 * SECURITY
 *   Runs inside the caller (Dovecot's auth worker, Exim, …) with its privileges; the
 *   caller's user needs the `mailferry` group for the store. The password belongs to PAM
 *   (PAM_AUTHTOK is wiped by pam_end); this module never copies, logs or stores it.
 *   User names are sanitized and capped before they reach syslog.
 *
 * SEE ALSO
 *   include/mailferry/mailferry.h, examples/pam/
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <syslog.h>
#include <unistd.h>

#define PAM_SM_AUTH
#define PAM_SM_ACCOUNT
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "mailferry/mailferry.h"
#include "pam_input.h"

#define MF_PAM_MAX_PATH 1024
#define MF_PAM_CACHE 4

struct mf_pam_options {
    const char* config; /* NULL: the library's default resolution */
    int debug;
};

struct mf_pam_cached {
    char path[MF_PAM_MAX_PATH]; /* "" for the default */
    pid_t pid;
    mf_handle* handle;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mf_pam_cached cache[MF_PAM_CACHE]; /* guarded by cache_lock */
static pthread_once_t pin_once = PTHREAD_ONCE_INIT;

/* Keeps this module (and libmailferry.so) loaded after pam_end() dlcloses it, so the
 * cached engine is not torn down and rebuilt for every login. */
static void pin_module(void) {
    Dl_info info;
    if (dladdr(&cache_lock, &info) != 0 && info.dli_fname != NULL) {
        (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    }
}

/* Closes this process's engines when the process ends. */
__attribute__((destructor)) static void release_cache(void) {
    pid_t me = getpid();
    int i;
    pthread_mutex_lock(&cache_lock);
    for (i = 0; i < MF_PAM_CACHE; i++) {
        if (cache[i].handle != NULL && cache[i].pid == me) {
            mf_close(cache[i].handle);
        }
        cache[i].handle = NULL;
    }
    pthread_mutex_unlock(&cache_lock);
}

static int parse_options(pam_handle_t* pamh, int argc, const char** argv,
                         struct mf_pam_options* opts) {
    int i;
    opts->config = NULL;
    opts->debug = 0;
    for (i = 0; i < argc; i++) {
        const char* a = argv[i];
        if (strncmp(a, "config=", 7) == 0) {
            const char* path = a + 7;
            if (path[0] != '/' || strlen(path) >= MF_PAM_MAX_PATH) {
                pam_syslog(pamh, LOG_ERR,
                           "option config= needs an absolute path shorter than %d bytes",
                           MF_PAM_MAX_PATH);
                return PAM_SERVICE_ERR;
            }
            opts->config = path;
        } else if (strcmp(a, "debug") == 0) {
            opts->debug = 1;
        } else {
            char shown[80];
            mf_pam_safe_name(a, shown, sizeof shown);
            pam_syslog(pamh, LOG_ERR, "unknown option \"%s\" (known: config=PATH, debug)", shown);
            return PAM_SERVICE_ERR;
        }
    }
    return PAM_SUCCESS;
}

/* The engine for `config` in this process, opened on first use. *owned is set when the
 * handle could not be cached and the caller must mf_close() it. */
static int get_engine(pam_handle_t* pamh, const char* config, mf_handle** out, int* owned) {
    const char* key = config != NULL ? config : "";
    pid_t me = getpid();
    char err[512];
    int i;
    int free_slot = -1;
    int rc;

    *out = NULL;
    *owned = 0;
    pthread_once(&pin_once, pin_module);
    pthread_mutex_lock(&cache_lock);
    for (i = 0; i < MF_PAM_CACHE; i++) {
        if (cache[i].handle == NULL || cache[i].pid != me) {
            if (free_slot < 0) {
                /* A slot of our parent (before fork) is reused, its handle left alone. */
                free_slot = i;
            }
            continue;
        }
        if (strcmp(cache[i].path, key) == 0) {
            *out = cache[i].handle;
            pthread_mutex_unlock(&cache_lock);
            return MF_OK;
        }
    }
    err[0] = '\0';
    rc = mf_open(config, out, err, sizeof err);
    if (rc != MF_OK) {
        pthread_mutex_unlock(&cache_lock);
        pam_syslog(pamh, LOG_ERR, "cannot open mailferry (%s): %s",
                   config != NULL ? config : "default config", err);
        return rc;
    }
    if (free_slot >= 0) {
        snprintf(cache[free_slot].path, sizeof cache[free_slot].path, "%s", key);
        cache[free_slot].pid = me;
        cache[free_slot].handle = *out;
    } else {
        *owned = 1;
    }
    pthread_mutex_unlock(&cache_lock);
    return MF_OK;
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t* pamh, int flags, int argc, const char** argv) {
    struct mf_pam_options opts;
    const char* user = NULL;
    const char* password = NULL;
    const void* item = NULL;
    const char* service = NULL;
    const char* rhost = NULL;
    char shown[80];
    mf_handle* h = NULL;
    int owned = 0;
    int rc;
    mf_result result;
    mf_auth_status st;

    (void)flags;
    rc = parse_options(pamh, argc, argv, &opts);
    if (rc != PAM_SUCCESS) {
        return rc;
    }
    rc = pam_get_user(pamh, &user, NULL);
    if (rc != PAM_SUCCESS) {
        pam_syslog(pamh, LOG_ERR, "cannot get the user name: %s", pam_strerror(pamh, rc));
        return rc;
    }
    if (mf_pam_check_user(user) != PAM_SUCCESS) {
        pam_syslog(pamh, LOG_NOTICE, "empty user name: authentication failed");
        return PAM_AUTH_ERR;
    }
    mf_pam_safe_name(user, shown, sizeof shown);
    rc = pam_get_authtok(pamh, PAM_AUTHTOK, &password, NULL);
    if (rc != PAM_SUCCESS) {
        pam_syslog(pamh, LOG_ERR, "user %s: cannot get the password (conversation failed): %s",
                   shown, pam_strerror(pamh, rc));
        return rc == PAM_CONV_AGAIN ? PAM_INCOMPLETE : rc;
    }
    if (mf_pam_check_password(password) != PAM_SUCCESS) {
        pam_syslog(pamh, LOG_ERR, "user %s: no password", shown);
        return PAM_AUTH_ERR;
    }
    if (pam_get_item(pamh, PAM_SERVICE, &item) == PAM_SUCCESS) {
        service = (const char*)item;
    }
    item = NULL;
    if (pam_get_item(pamh, PAM_RHOST, &item) == PAM_SUCCESS) {
        rhost = (const char*)item;
    }

    rc = get_engine(pamh, opts.config, &h, &owned);
    if (rc != MF_OK) {
        return rc == MF_ERR_TEMP ? PAM_AUTHINFO_UNAVAIL : PAM_SERVICE_ERR;
    }
    mf_result_init(&result);
    st = mf_authenticate(h, user, password, strlen(password), service, rhost, &result);
    switch (st) {
    case MF_AUTH_OK:
        rc = PAM_SUCCESS;
        if (result.user != NULL && strcmp(result.user, user) != 0) {
            char canon[80];
            mf_pam_safe_name(result.user, canon, sizeof canon);
            if (pam_set_item(pamh, PAM_USER, result.user) != PAM_SUCCESS) {
                pam_syslog(pamh, LOG_ERR, "user %s: cannot set PAM_USER to %s", shown, canon);
                rc = PAM_SYSTEM_ERR;
            } else if (opts.debug) {
                pam_syslog(pamh, LOG_DEBUG, "user %s is %s", shown, canon);
            }
        }
        if (opts.debug) {
            pam_syslog(pamh, LOG_DEBUG, "user %s: OK: %s", shown,
                       result.message != NULL ? result.message : "");
        }
        break;
    case MF_AUTH_FAIL:
        pam_syslog(pamh, LOG_NOTICE, "user %s: authentication failed: %s", shown,
                   result.message != NULL ? result.message : "");
        rc = PAM_AUTH_ERR;
        break;
    case MF_AUTH_TEMPFAIL:
    default:
        pam_syslog(pamh, LOG_WARNING, "user %s: temporary failure: %s", shown,
                   result.message != NULL ? result.message : "");
        rc = PAM_AUTHINFO_UNAVAIL;
        break;
    }
    mf_result_free(&result);
    if (owned) {
        mf_close(h);
    }
    return rc;
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t* pamh, int flags, int argc, const char** argv) {
    (void)pamh;
    (void)flags;
    (void)argc;
    (void)argv;
    return PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t* pamh, int flags, int argc, const char** argv) {
    (void)pamh;
    (void)flags;
    (void)argc;
    (void)argv;
    return PAM_SUCCESS;
}
