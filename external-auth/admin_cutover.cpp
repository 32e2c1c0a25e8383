// admin_cutover.cpp — `mailferry cutover`'s work: one account's hold and final round,
// the wait for it, and the batched plan (admin_cutover.hpp).
#include "admin_cutover.hpp"

#include "mailferry/identity.hpp"
#include "mailferry/mailflow.hpp"
#include "mailferry/spool.hpp"

#include <chrono>
#include <thread>

namespace mf::admin {

void release_held_mail(const Config& cfg, Store& store, CutoverOutcome& o) {
    if (!cfg.mailflow.configured || o.result != "cutover") {
        return;
    }
    auto rep = mailflow::release_held_mail(cfg, store, o.account);
    if (!rep) {
        o.detail += "; held mail not released (" + rep.error().message() +
                    "): `mailferry mailflow-release " + o.account + "` as root";
        return;
    }
    std::size_t released = 0;
    std::size_t kept = 0;
    for (const auto& m : rep->messages) {
        released += m.result == "released" ? 1 : 0;
        kept += m.result == "kept" || m.result == "failed" ? 1 : 0;
    }
    if (released > 0) {
        o.detail += "; " + std::to_string(released) + " held messages released";
    }
    if (kept > 0) {
        o.detail += "; " + std::to_string(kept) +
                    " messages still held (another recipient on hold, or postsuper failed)";
    }
}

Result<std::vector<std::string>> cutover_targets(const Config& cfg, Store& store,
                                                 const std::vector<std::string>& users, bool all,
                                                 bool no_final_sync,
                                                 std::vector<CutoverOutcome>& out) {
    std::vector<std::string> names;
    if (all) {
        auto accounts = store.list_accounts();
        if (!accounts) {
            return accounts.error();
        }
        for (const auto& acc : *accounts) {
            if (copies_may_run(acc.state) ||
                (no_final_sync && acc.state == AccountState::verified)) {
                names.push_back(acc.name);
            }
        }
        return names;
    }
    auto map = IdentityMap::create(cfg);
    if (!map) {
        return map.error();
    }
    for (const auto& u : users) {
        auto id = map->resolve(u);
        if (!id) {
            out.push_back({u, "refused", id.error().message()});
            continue;
        }
        // As a login finds it: also under a spelling an older version stored.
        auto found =
            find_login_account(store, id->canonical, id->provider->case_insensitive, nullptr);
        if (!found) {
            return found.error();
        }
        names.push_back(found->has_value() ? (**found).name : id->canonical);
    }
    return names;
}

Result<void> start_cutover(const Config& cfg, Store& store, const std::string& name,
                           bool final_sync, std::vector<CutoverOutcome>& out) {
    auto found = store.find_account(name);
    if (!found) {
        return found.error();
    }
    if (!found->has_value()) {
        out.push_back({name, "refused", "no such account in the store (never logged in?)"});
        return {};
    }
    const Account& acc = **found;
    AuditContext ctx{"admin:cutover", "", ""};
    if (acc.state == AccountState::cutover) {
        out.push_back({name, "already", "cut over before"});
        return {};
    }
    if (acc.state == AccountState::disabled) {
        out.push_back({name, "refused", "the account is disabled"});
        return {};
    }
    if (!final_sync) {
        ctx.detail = "cut over without a final round";
        if (auto s = store.set_state(name, AccountState::cutover, ctx, acc.state); !s) {
            return s.error();
        }
        if (auto rm = spool::Spool(cfg.spool.dir).remove(name); !rm) {
            out.push_back({name, "cutover", "spool entry not deleted: " + rm.error().message()});
            return {};
        }
        out.push_back({name, "cutover", "no final round"});
        return {};
    }
    if (!copies_may_run(acc.state)) {
        out.push_back({name, "refused",
                       std::string("the account is ") + to_string(acc.state) +
                           ": no copy has run, so there is no password for a final round; "
                           "`mailferry replay` it first, or use --no-final-sync"});
        return {};
    }
    if (acc.state != AccountState::held) {
        ctx.detail = "final round queued";
        if (auto s = store.set_state(name, AccountState::held, ctx, acc.state); !s) {
            return s.error();
        }
    }
    EnqueueRequest req;
    req.account = name;
    req.provider = acc.provider;
    req.kind = JobKind::resync;
    req.priority = kPriorityLogin;
    if (auto j = store.enqueue_job(req); !j) {
        return j.error();
    }
    out.push_back({name, "held", "final round queued"});
    return {};
}

Result<bool> wait_for_cutover(Store& store, std::vector<CutoverOutcome>& out, Millis limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
        bool pending = false;
        for (auto& o : out) {
            if (o.result != "held") {
                continue;
            }
            auto acc = store.find_account(o.account);
            if (!acc) {
                return acc.error();
            }
            if (acc->has_value() && (**acc).state == AccountState::cutover) {
                o.result = "cutover";
                o.detail = "final round done";
                continue;
            }
            auto job = store.active_job(o.account);
            if (!job) {
                return job.error();
            }
            if (!job->has_value()) {
                // No active job and not cut over: the final round was given up.
                o.result = "failed";
                o.detail = acc->has_value() ? (**acc).last_error : std::string();
                if (o.detail.empty()) {
                    o.detail = "the final round's job ended without a cut-over";
                }
                continue;
            }
            if (!(**job).last_error.empty()) {
                o.detail = "retrying: " + (**job).last_error;
            }
            pending = true;
        }
        if (!pending) {
            return true;
        }
        if (std::chrono::steady_clock::now() > end) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
}

namespace {

CutoverStepState step_of(const CutoverOutcome& o) {
    if (o.result == "cutover" || o.result == "already") {
        return CutoverStepState::done;
    }
    if (o.result == "held") {
        return CutoverStepState::started;
    }
    return CutoverStepState::failed;
}

// The next batch: every step in flight (a run stopped while it waited), then pending
// steps in plan order until the batch is full.
std::vector<CutoverStep> next_batch(const std::vector<CutoverStep>& plan, std::size_t size) {
    std::vector<CutoverStep> batch;
    for (const auto& s : plan) {
        if (s.state == CutoverStepState::started) {
            batch.push_back(s);
        }
    }
    for (const auto& s : plan) {
        if (batch.size() >= size) {
            break;
        }
        if (s.state == CutoverStepState::pending) {
            batch.push_back(s);
        }
    }
    return batch;
}

std::size_t count_open(const std::vector<CutoverStep>& plan) {
    std::size_t n = 0;
    for (const auto& s : plan) {
        n += s.state == CutoverStepState::pending || s.state == CutoverStepState::started ? 1 : 0;
    }
    return n;
}

// Starts the pending steps of `batch`; a step already started keeps its final round.
Result<std::vector<CutoverOutcome>> start_batch(const Config& cfg, Store& store,
                                                const std::vector<CutoverStep>& batch,
                                                bool final_sync) {
    std::vector<CutoverOutcome> out;
    for (const auto& step : batch) {
        if (step.state == CutoverStepState::started) {
            out.push_back({step.account, "held", "final round queued by an earlier run"});
            continue;
        }
        if (auto r = start_cutover(cfg, store, step.account, final_sync, out); !r) {
            return r.error();
        }
        // Recorded before the wait, so a run stopped now resumes by waiting, not holding.
        if (auto r = store.set_cutover_step(step.account, step_of(out.back()), out.back().detail);
            !r) {
            return r.error();
        }
    }
    return out;
}

// The unfinished plan, or a new one of the names the store has (the others are refused
// into report.outcomes); report.resumed says which.
Result<std::vector<CutoverStep>>
load_or_make_plan(Store& store, const std::vector<std::string>* names, PlanReport& report) {
    auto plan = store.cutover_plan();
    if (!plan) {
        return plan.error();
    }
    report.resumed = count_open(*plan) > 0;
    if (report.resumed) {
        return plan;
    }
    if (names == nullptr) {
        return make_error("cutover --batch",
                          "no unfinished cut-over plan to resume: name the accounts, or --all",
                          Scope::config);
    }
    std::vector<std::string> known;
    for (const auto& n : *names) {
        auto found = store.find_account(n);
        if (!found) {
            return found.error();
        }
        if (found->has_value()) {
            known.push_back(n);
        } else {
            report.outcomes.push_back(
                {n, "refused", "no such account in the store (never logged in?)"});
        }
    }
    if (auto r = store.create_cutover_plan(known); !r) {
        return r.error();
    }
    return store.cutover_plan();
}

} // namespace

Result<PlanReport> run_cutover_plan(const Config& cfg, Store& store,
                                    const std::vector<std::string>* names, const BatchRun& run) {
    PlanReport report;
    auto plan = load_or_make_plan(store, names, report);
    if (!plan) {
        return plan.error();
    }
    report.planned = plan->size();
    for (std::size_t number = 1;; ++number) {
        auto batch = next_batch(*plan, std::max<std::size_t>(run.batch, 1));
        if (batch.empty()) {
            break;
        }
        auto out = start_batch(cfg, store, batch, run.final_sync);
        if (!out) {
            return out.error();
        }
        auto done = wait_for_cutover(store, *out, run.per_batch);
        if (!done) {
            return done.error();
        }
        std::size_t ok = 0;
        for (auto& o : *out) {
            release_held_mail(cfg, store, o);
            if (o.result != "held") {
                if (auto r = store.set_cutover_step(o.account, step_of(o), o.detail); !r) {
                    return r.error();
                }
            }
            ok += step_of(o) == CutoverStepState::done ? 1 : 0;
            report.outcomes.push_back(o);
        }
        plan = store.cutover_plan();
        if (!plan) {
            return plan.error();
        }
        report.remaining = count_open(*plan);
        if (run.progress) {
            run.progress("batch " + std::to_string(number) + ": " + std::to_string(ok) + " of " +
                         std::to_string(out->size()) + " cut over; " +
                         std::to_string(report.remaining) + " of " +
                         std::to_string(report.planned) + " accounts left in the plan");
        }
        if (!*done) {
            report.timed_out = true;
            break;
        }
    }
    return report;
}

} // namespace mf::admin
