// process_harden.hpp — keeps the passwords a program of ours holds out of core dumps.
//
// Called first thing in the main() of every program that handles a secret (the login
// faces, the admin CLI and its worker, mailferry-copy). It must never be called from
// libmailferry.so or pam_mailferry.so: a library must not change its host's process
// settings (Dovecot, sshd or a PAM application decide their own core-dump policy).
#pragma once

#include "mailferry/error.hpp"

namespace mf {

// Makes this process non-dumpable (prctl PR_SET_DUMPABLE 0: no core file, no ptrace or
// /proc/PID/mem access by the same user) and sets RLIMIT_CORE to 0 (inherited by the
// programs it starts). An error names the step that failed; callers warn and go on, since
// refusing to run would stop logins over a hardening step the kernel may not allow.
Result<void> harden_process();

} // namespace mf
