// worker.hpp — `mailferry worker`: claims copy jobs from the store and runs them.
//
// One process runs up to worker.copies copies at once, each on its own thread through
// the copier library (copy_account); all workers together keep at most
// worker.max_copies_per_server copies per old server running (the store counts leases).
// Each run: claim (atomic, leased) → open the sealed password (secret key) → account state
// copying/resyncing → copy → synced, and the job is queued again for the next resync
// round, or retried with exponential backoff after a failure (failed, last error kept).
// Leases are renewed while a copy runs; a worker killed with -9 leaves a lease that
// expires, and another worker takes the job over and resumes the copy from the copier's
// state file (nothing lost, nothing duplicated).
//
// SIGTERM / SIGINT: stop claiming, tell running copies to stop at their next safe point
// (the copier's cancel flag, polled between messages), give their jobs back, exit 0.
// Logs go to stderr (journald under systemd) or syslog; never a password.
//
// Must never: write a password anywhere (it lives in a Secret for one copy), keep the
// secret key readable by others (it refuses to start then), or run a job it no longer
// holds (a lost lease cancels the copy).
// Errors: start-up problems (config, secret key, store) are returned as Errors: exit 2
// for configuration, 75 for temporary trouble. A failing job never stops the worker.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/error.hpp"
#include "mailferry/spool.hpp"

#include <atomic>
#include <memory>
#include <optional>
#include <string>

namespace mf::worker {

struct Options {
    unsigned copies = 0;             // 0: worker.copies from the config
    std::optional<Millis> idle_exit; // exit after this long without a job (spawned workers)
    bool once = false;               // exit as soon as nothing is due and nothing runs
    bool host_lock = true;           // one worker per host (lock_dir/worker.lock)
    std::string id;                  // worker id in the store; default host:pid:nonce
};

// Why run() returned.
enum class Exit { done, another_runs, stopped };

class Worker {
  public:
    // Opens the store, loads the secret key and the master password, takes the host lock
    // (waiting up to 2 s: a worker that is just exiting). Errors are start-up failures.
    static Result<std::unique_ptr<Worker>> create(const Config& cfg, const Options& opts);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // Runs until `stop` becomes true (then cancels running copies and gives their jobs
    // back), until idle_exit, or — with once — until there is nothing to do.
    Result<Exit> run(const std::atomic<bool>& stop);

    struct Impl;

  private:
    explicit Worker(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Installs SIGTERM/SIGINT/SIGHUP handlers that set the returned flag (and wake run()).
const std::atomic<bool>& install_stop_signals();

// `mailferry keys rotate`, with each entry's account lock held while it is rewritten.
Result<spool::RotateReport> rotate_keys(const Config& cfg, const spool::KeyFiles& files);

} // namespace mf::worker
