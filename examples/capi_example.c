/* capi_example.c — the smallest program that asks mailferry about a login (C ABI).
 *
 * Usage: capi_example CONFIG [SERVICE [CLIENT_IP]]  < credentials
 *   stdin line 1: the login, line 2: the password (never on the command line: argv is
 *   visible to every user in ps).
 * Prints the answer, the canonical user and the extra fields; exits 0 (OK), 1 (FAIL),
 * 75 (TEMPFAIL: try again later) or 2 (usage, config or input problem).
 *
 * What it shows: mf_abi_version() check, mf_open() with an error buffer, one
 * mf_authenticate() with an explicit password length, mf_result ownership, and wiping
 * the password buffer. It never prints the password.
 *
 * Build: cc capi_example.c -lmailferry   (examples/examples.cmake does this)
 */
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <mailferry/mailferry.h>

#include <stdio.h>
#include <string.h>

#define MAX_LOGIN 400
/* Above the library's limit, so that a longer password gets the library's own FAIL. */
#define MAX_PASSWORD (MF_MAX_PASSWORD_BYTES + 64)

/* Reads one line without its LF (and CR) into buf. Returns its length, or -1 when the
 * input ended or the line does not fit. */
static long read_line(char* buf, size_t size) {
    size_t len;
    if (fgets(buf, (int)size, stdin) == NULL) {
        return -1;
    }
    len = strlen(buf);
    if (len > 0 && buf[len - 1] == '\n') {
        buf[--len] = '\0';
    } else if (!feof(stdin)) {
        return -1; /* longer than the buffer */
    }
    if (len > 0 && buf[len - 1] == '\r') {
        buf[--len] = '\0';
    }
    return (long)len;
}

int main(int argc, char** argv) {
    char login[MAX_LOGIN + 2];
    char password[MAX_PASSWORD + 2];
    char err[512];
    long password_len;
    mf_handle* h = NULL;
    mf_result r;
    mf_auth_status st;
    size_t i;
    int rc;

    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s CONFIG [SERVICE [CLIENT_IP]] < login-and-password\n", argv[0]);
        return 2;
    }
    if (mf_abi_version() != MF_ABI_VERSION) {
        fprintf(stderr, "libmailferry ABI %d, this program was built for %d\n", mf_abi_version(),
                MF_ABI_VERSION);
        return 2;
    }
    if (read_line(login, sizeof login) <= 0) {
        fprintf(stderr, "stdin: expected the login on the first line\n");
        return 2;
    }
    password_len = read_line(password, sizeof password);
    if (password_len < 0) {
        explicit_bzero(password, sizeof password);
        fprintf(stderr, "stdin: expected the password on the second line\n");
        return 2;
    }

    rc = mf_open(argv[1], &h, err, sizeof err);
    if (rc != MF_OK) {
        explicit_bzero(password, sizeof password);
        fprintf(stderr, "mf_open: %s\n", err);
        return rc == MF_ERR_TEMP ? 75 : 2;
    }

    mf_result_init(&r);
    st = mf_authenticate(h, login, password, (size_t)password_len, argc > 2 ? argv[2] : "imap",
                         argc > 3 ? argv[3] : NULL, &r);
    explicit_bzero(password, sizeof password); /* done with it */

    printf("status: %s\n", mf_auth_status_name(st));
    printf("user: %s\n", r.user != NULL ? r.user : "");
    printf("message: %s\n", r.message != NULL ? r.message : "");
    printf("first_login: %d\n", r.first_login);
    for (i = 0; i < r.extra_count; i++) {
        printf("extra: %s=%s\n", r.extra[i].name, r.extra[i].value);
    }
    mf_result_free(&r);
    mf_close(h);

    switch (st) {
    case MF_AUTH_OK:
        return 0;
    case MF_AUTH_FAIL:
        return 1;
    case MF_AUTH_TEMPFAIL:
        break;
    }
    return 75;
}
