/* pam_input.h — what pam_mailferry.so does with the strings the PAM conversation hands it
 * (the user name from pam_get_user, the password from pam_get_authtok) before the engine
 * sees them: refuse a missing or empty one, and shorten a user name for syslog.
 *
 * Split out of pam_mailferry.c so that the fuzzer (fuzz/fuzz_pam_input.cpp) can call it
 * without a PAM stack; the module links it in, hidden (not exported from the .so).
 *
 * Must never: read a string past its NUL, write past `outlen`, or log a password (nothing
 * here takes the password but mf_pam_check_password, which only tests it for NULL).
 */
#ifndef MAILFERRY_PAM_INPUT_H
#define MAILFERRY_PAM_INPUT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A user name fit for syslog: printable ASCII only ('?' for the rest), at most 64 bytes of
 * it, "..." when cut; always NUL-terminated. `outlen` must be at least 1. NULL is "". */
__attribute__((visibility("hidden"))) void mf_pam_safe_name(const char* in, char* out,
                                                            size_t outlen);

/* PAM_SUCCESS for a user name worth asking the engine about, PAM_AUTH_ERR for NULL or "". */
__attribute__((visibility("hidden"))) int mf_pam_check_user(const char* user);

/* PAM_SUCCESS when the conversation gave a password (even ""), PAM_AUTH_ERR for NULL. */
__attribute__((visibility("hidden"))) int mf_pam_check_password(const char* password);

#ifdef __cplusplus
}
#endif

#endif
