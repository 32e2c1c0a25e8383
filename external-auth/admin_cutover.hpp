// admin_cutover.hpp — `mailferry cutover`: the end of accounts' migration, at once or in
// batches that follow a plan kept in the store.
//
// One account's cut-over (start_cutover): it is put on hold (its logins answer TEMPFAIL
// "maintenance" for the time its last round takes) and its final copy round is queued at
// the front of the queue; the worker runs it, marks the account `cutover` and deletes its
// sealed password. Without a final round (the old server is gone) it is cut over at once.
//
// Batches (run_cutover_plan): the accounts are put in a plan in the store, in order, and
// cut over N at a time: a batch is held and its final rounds waited for before the next
// batch is touched, so at most N accounts are ever on hold and every other user keeps
// logging in. A run that stops (timeout, signal, crash) leaves the plan where it was; the
// next run resumes it: first the batch in flight, then the pending accounts.
//
// With [mailflow], each account's mail held by Postfix during its final round is released
// as soon as it is cut over (release_held_mail), so it lands on the new server once.
// Must never: read a password, or hold an account the plan has not reached.
// Errors: a store error ends the run (the plan keeps every step already made); an
// account that cannot be cut over is an outcome ("refused", "failed") with its reason.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/error.hpp"
#include "mailferry/store.hpp"

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace mf::admin {

// What happened to one account: result is held, cutover, already, refused or failed.
struct CutoverOutcome {
    std::string account;
    std::string result;
    std::string detail;
};

// The accounts named (resolved through the identity map, as a login names them; an
// unusable name becomes a "refused" outcome in `out`) or, with `all`, every account a
// copy may still run for (with `no_final_sync`, also those only verified).
Result<std::vector<std::string>> cutover_targets(const Config& cfg, Store& store,
                                                 const std::vector<std::string>& users, bool all,
                                                 bool no_final_sync,
                                                 std::vector<CutoverOutcome>& out);

// Holds `name` and queues its final round (or, without one, cuts it over now); appends
// its outcome to `out`.
Result<void> start_cutover(const Config& cfg, Store& store, const std::string& name,
                           bool final_sync, std::vector<CutoverOutcome>& out);

// Polls until every "held" outcome is cut over or its final round given up, updating
// the outcomes. false: `limit` passed first.
Result<bool> wait_for_cutover(Store& store, std::vector<CutoverOutcome>& out, Millis limit);

// With [mailflow]: for an account just cut over, releases the mail Postfix held for it
// during its final round (mailflow::release_held_mail; needs root) and says so in the
// outcome's detail, or how to release it by hand when that failed.
void release_held_mail(const Config& cfg, Store& store, CutoverOutcome& o);

struct BatchRun {
    std::size_t batch = 1;                            // accounts held at a time
    Millis per_batch{3600000};                        // how long one batch's final rounds may take
    bool final_sync = true;                           // false: cut each batch over at once
    std::function<void(const std::string&)> progress; // one line per batch, may be empty
};

struct PlanReport {
    std::vector<CutoverOutcome> outcomes; // every account this run moved, in plan order
    bool resumed = false;                 // an unfinished plan was found and resumed
    bool timed_out = false;               // a batch's final rounds outlasted per_batch
    std::size_t planned = 0;              // accounts in the plan
    std::size_t remaining = 0;            // pending or started when the run ended
};

// Resumes the store's unfinished plan, or makes one of `names` (in that order; a name the
// store does not have is refused, not planned) when there is none; `names` == nullptr and
// no unfinished plan is a Scope::config error.
Result<PlanReport> run_cutover_plan(const Config& cfg, Store& store,
                                    const std::vector<std::string>* names, const BatchRun& run);

} // namespace mf::admin
