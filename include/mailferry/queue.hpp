// queue.hpp — the login side of the background copy: seal, enqueue, wake a worker.
//
// After a first login is provisioned the engine calls the hook made here (when the config
// has a [target]): it seals the password into the spool (public key only), enqueues a
// copy job at login priority (idempotent: one active job per account), touches the wake
// file a systemd path unit or a running worker watches, and — with worker.spawn — starts
// a detached `mailferry worker` when none runs on this host. Nothing here waits for a copy;
// the login answer is never delayed by more than a file write and one short transaction.
//
// Must never: open a spool entry (the login side has no secret key), put a password in a
// child's argv or environment, or leave a zombie or an inherited descriptor in the mail
// server that hosts us.
// Errors: the hook returns the first thing that went wrong (the engine logs it; the login
// stays OK). The job is enqueued even when sealing failed, so the account shows up as a
// failed copy with the reason instead of silently never being copied; the next login that
// has the password seals it again (needs_seal()).
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/engine.hpp"
#include "mailferry/error.hpp"
#include "mailferry/store.hpp"

#include <string>

namespace mf::queue {

// The wait before retry number `attempts` (1 = after the first failure): retry_min doubled
// per earlier failure, at most retry_max.
Millis backoff(const WorkerConfig& w, unsigned attempts);

// The hook for Engine::set_provisioned_hook(). `cfg` and `store` must outlive it.
ProvisionedHook make_provisioned_hook(const Config& cfg, Store& store);

// True when a login answered from the store should run the provisioned hook again (seal,
// enqueue, wake): the account's copy still needs its password (first copy not done, or
// keep_until = cutover) and the spool has no entry for it — a seal that failed at the
// first login. One stat(), no write; false without a [target].
bool needs_seal(const Config& cfg, const Account& acct);

// Tells a worker there is work: rewrites `wake_file` (created 0660), which wakes a worker
// watching it (inotify) and triggers a systemd path unit (PathModified=).
Result<void> wake_worker(const std::string& wake_file);

// The lock a running worker holds (one per host): lock_dir/worker.lock, holding its PID.
std::string worker_lock_path(const Config& cfg);

// True when a process holds the worker lock (a worker runs on this host).
Result<bool> worker_running(const Config& cfg);

// Starts `worker.program worker --config FILE --idle-exit D --syslog` detached (its own
// session, stdin/stdout/stderr on /dev/null, no inherited descriptors, a minimal
// environment) unless a worker already runs. Returns true when one was started.
Result<bool> ensure_worker(const Config& cfg);

} // namespace mf::queue
