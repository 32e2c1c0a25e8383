/* pam_input.c — the PAM module's checks on the conversation's user name and password
 * (see pam_input.h). Must never log, copy or keep the password. */
#include "pam_input.h"

#include <security/pam_appl.h>
#include <string.h>

void mf_pam_safe_name(const char* in, char* out, size_t outlen) {
    size_t i = 0;
    size_t o = 0;
    if (in == NULL) {
        in = "";
    }
    for (; in[i] != '\0' && o + 1 < outlen && i < 64; i++) {
        unsigned char c = (unsigned char)in[i];
        out[o++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    if (in[i] != '\0' && o + 4 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

int mf_pam_check_user(const char* user) {
    return user == NULL || user[0] == '\0' ? PAM_AUTH_ERR : PAM_SUCCESS;
}

int mf_pam_check_password(const char* password) {
    return password == NULL ? PAM_AUTH_ERR : PAM_SUCCESS;
}
