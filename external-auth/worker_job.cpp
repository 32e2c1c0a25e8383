// worker_job.cpp — one run of one claimed job: check the account, open the password,
// copy, record the outcome.
//
//   account cutover/disabled → delete the spool entry, job done (nothing to copy)
//   provisioned/failed/synced → copying (first copy) or resyncing (later rounds), audited
//   held → the final round of a cut-over: copied, then cutover, the entry deleted, done
//   copy ok    → synced; next resync round queued (keep_until = cutover and an interval),
//                or the entry deleted (keep_until = first-sync) and the job done
//   copy error → account failed (last_error), job retry after backoff — or given up at
//                once when retrying cannot help (bad spool entry, login refused)
//   stopping   → job given back untouched; the copier resumes from its state file
//
// Must never: keep the password beyond this function (Secrets, wiped), report a result
// for a job whose lease was taken over, or delete an entry before a full copy.
// Errors: all end up in the job (last_error) and the account (failed, audit row).
#include "file_util.hpp"
#include "mailferry/copier.hpp"
#include "mailferry/log.hpp"
#include "mailferry/queue.hpp"
#include "spool_io.hpp"
#include "worker_impl.hpp"

#include <chrono>

namespace mf::worker {
namespace {

const ProviderConfig* find_provider(const Config& cfg, const std::string& name) {
    for (const auto& p : cfg.providers) {
        if (p.name == name) {
            return &p;
        }
    }
    return nullptr;
}

// Copies read the old server over IMAP: at the provider's port when it verifies with
// IMAP, else at the IMAP port of its TLS mode.
std::uint16_t source_port(const ProviderConfig& p) {
    if (p.protocol == Protocol::imap) {
        return p.effective_port();
    }
    return p.tls == TlsMode::implicit ? 993 : 143;
}

// "folder \"Foo\"" or "Foo UID 7", then the reason.
std::string skipped_text(const copy::Skipped& s) {
    return (s.uid == 0 ? "folder \"" + s.folder + "\""
                       : "\"" + s.folder + "\" UID " + std::to_string(s.uid)) +
           " (" + s.reason + ")";
}

// The first item skipped `limit` rounds in a row for the same reason, or null.
const copy::Skipped* stuck_item(const copy::Summary& sum, unsigned limit) {
    for (const auto& s : sum.skipped) {
        if (s.streak >= limit) {
            return &s;
        }
    }
    return nullptr;
}

std::string summary_text(const copy::Summary& s, std::chrono::milliseconds took) {
    std::string t = "copied " + std::to_string(s.messages_copied) + " messages (" +
                    std::to_string(s.bytes_copied) + " bytes) in " + std::to_string(s.folders) +
                    " folders";
    if (s.folders_unchanged > 0) {
        t += ", " + std::to_string(s.folders_unchanged) + " unchanged";
    }
    if (s.messages_recovered > 0) {
        t += ", " + std::to_string(s.messages_recovered) + " recovered from an interrupted run";
    }
    if (!s.skipped.empty()) {
        t += ", " + std::to_string(s.skipped.size()) +
             " NOT copied (first: " + skipped_text(s.skipped.front()) + ")";
    }
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.1f", static_cast<double>(took.count()) / 1000.0);
    return t + "; " + secs + " s";
}

// A job taken over from a dead worker (claim_job counted that run in job.attempts) with
// max_crashes failed runs in a row, or max_attempts: stop it rather than let one message
// that crashes the copier kill a worker every lease for ever.
std::optional<Error> crashed_too_often(const Job& job, const WorkerConfig& wc) {
    if (job.taken_over_from.empty() || (job.attempts < wc.max_crashes &&
                                        (wc.max_attempts == 0 || job.attempts < wc.max_attempts))) {
        return std::nullopt;
    }
    return make_error("copy " + job.account,
                      "needs an admin: " + std::to_string(job.attempts) +
                          " failed runs in a row, the last because " + job.last_error +
                          "; something in this mailbox may crash the copier: see the worker's "
                          "log, then `mailferry worker --retry-failed`",
                      Scope::account, Retry::never);
}

} // namespace

// The account's password from its spool entry (re-sealed to the current key if it was
// sealed to the previous one); the entry's bytes are wiped.
Result<Secret> Worker::Impl::sealed_password(const Job& job, const std::string& who) {
    auto entry = spool->get(job.account);
    if (!entry) {
        return entry.error();
    }
    if (!entry->has_value()) {
        return make_error("no sealed password for " + job.account + " in " + spool->dir(),
                          "the login side did not store one (public key missing at the first "
                          "login?) or it was deleted; a new first login or a replay stores one, "
                          "or a master user at both servers copies without it",
                          Scope::account, Retry::never);
    }
    auto password = opener->open(job.account, **entry, spool->path_for(job.account));
    if (!password) {
        return password.error();
    }
    if (!opener->is_current(**entry)) {
        // Sealed to the previous key (a login side that had not re-read the public key
        // after `keys rotate`): move it to the current one.
        if (auto sealed = opener->seal_to_current(job.account, *password); sealed) {
            if (auto p = spool->put(job.account, *sealed); !p) {
                log::warning(who + ": re-seal to the current key: " + p.error().message());
            }
        }
    }
    wipe((*entry)->data(), (*entry)->size());
    return std::move(*password);
}

void Worker::Impl::run_job(Running& r) {
    const Job& job = r.job;
    const std::string who = "worker: " + job.account + " (job " + std::to_string(job.id) + ")";
    const WorkerConfig& wc = cfg.worker;
    AuditContext ctx{"worker", {}, {}};
    std::optional<AccountState> seen; // the account's state when this run began
    // The state as this run last saw or set it: a failure marks the account failed only
    // from there, so an admin's change meanwhile (disabled) is not overwritten.
    std::optional<AccountState> current;

    auto finish = [&](JobFinish how) {
        if (r.lost) {
            return;
        }
        if (auto f = store->finish_job(job.id, id, how); !f) {
            log::warning(who + ": record the outcome: " + f.error().message());
        }
    };
    auto fail = [&](const Error& e) {
        if (r.lost) {
            log::warning(who + ": " + e.message() + " (lease lost; the new holder decides)");
            return;
        }
        const unsigned attempts = job.attempts + 1;
        // job.attempts counts the failures in a row; the last one was this same error?
        const unsigned same = job.attempts > 0 && job.last_error == e.message() ? attempts : 1;
        const bool stuck = same >= wc.max_same_failure;
        const bool give_up =
            !e.temporary() || stuck || (wc.max_attempts > 0 && attempts >= wc.max_attempts);
        // A held account (cut-over under way) keeps its state: logins must stay refused.
        if (seen != AccountState::held) {
            AuditContext c = ctx;
            c.detail = e.message();
            if (auto s = store->set_state(job.account, AccountState::failed, c, current); !s) {
                log::warning(who + ": mark the account failed: " + s.error().message());
            }
        }
        JobFinish how;
        how.failure = true;
        how.error = e.message();
        how.next_kind = job.kind;
        if (stuck && e.temporary()) {
            how.state = JobState::failed;
            how.result = "needs an admin: the same error " + std::to_string(same) +
                         " times in a row: " + e.message();
            log::error(who + ": " + how.result);
        } else if (give_up) {
            how.state = JobState::failed;
            log::error(who + ": copy failed, given up" +
                       (e.temporary() ? " after " + std::to_string(attempts) + " attempts"
                                      : std::string(" (retrying cannot help)")) +
                       ": " + e.message());
        } else {
            Millis wait = queue::backoff(wc, attempts);
            how.state = JobState::retry;
            how.run_at = now_unix_ms() + wait.count();
            log::warning(who + ": copy failed (attempt " + std::to_string(attempts) +
                         "), retry in " + format_duration(wait) + ": " + e.message());
        }
        finish(how);
    };
    auto done = [&](const std::string& why) {
        JobFinish how;
        how.state = JobState::done;
        how.next_kind = job.kind;
        how.result = why;
        finish(how);
        log::info(who + ": " + why);
    };

    if (!job.taken_over_from.empty()) {
        log::info(who + ": taking over from " + job.taken_over_from + ", whose lease expired");
    }
    auto acct = store->find_account(job.account);
    if (!acct) {
        fail(acct.error());
        return;
    }
    if (!acct->has_value()) {
        fail(make_error("copy " + job.account, "the account is not in the store", Scope::account));
        return;
    }
    const Account& a = **acct;
    seen = a.state;
    current = a.state;
    std::optional<AccountState> to;
    switch (a.state) {
    case AccountState::disabled:
        // Disabled between the claim and now: the job waits, unclaimed, for `mailferry
        // account enable`, and the sealed password stays for it.
        if (auto rel = store->release_job(job.id, id); !rel) {
            log::warning(who + ": give the job back: " + rel.error().message());
        }
        log::info(who + ": the account is disabled; job given back");
        return;
    case AccountState::cutover:
        if (auto rm = spool->remove(job.account); !rm) {
            log::warning(who + ": " + rm.error().message());
        }
        done(std::string("account is ") + to_string(a.state) +
             ": nothing to copy; its spool entry is deleted");
        return;
    case AccountState::unknown:
    case AccountState::verified:
        fail(make_error("copy " + job.account,
                        std::string("the account is ") + to_string(a.state) +
                            ", not provisioned on the new server",
                        Scope::account));
        return;
    case AccountState::held:
    case AccountState::copying:
    case AccountState::resyncing:
        break; // held: the final round (state changes after it); copying/resyncing: resumed
    case AccountState::provisioned:
        to = AccountState::copying;
        break;
    case AccountState::failed:
    case AccountState::synced:
        to = job.kind == JobKind::copy && a.state == AccountState::failed ? AccountState::copying
                                                                          : AccountState::resyncing;
        break;
    }
    if (auto crashed = crashed_too_often(job, wc)) {
        fail(*crashed); // not retried: the job stops for an admin
        return;
    }
    const ProviderConfig* provider = find_provider(cfg, job.provider);
    if (provider == nullptr) {
        fail(make_error("copy " + job.account,
                        "old server \"" + job.provider + "\" is no longer in " + cfg.source_path,
                        Scope::config));
        return;
    }
    std::string source_login = job.source_login;
    if (source_login.empty()) {
        auto ident = identity.resolve(job.account);
        if (!ident) {
            fail(ident.error());
            return;
        }
        source_login = ident->old_login;
    }

    // The user's password, from the spool, for this run only: not needed when both servers
    // are opened otherwise (a master user at the old server, and a master user or a local
    // Maildir tree at the new one), as for accounts imported and never logged in.
    const Secret* source_master = nullptr;
    if (auto it = source_masters.find(provider->name); it != source_masters.end()) {
        source_master = &it->second;
    }
    const bool target_needs_user = cfg.target.maildir.empty() && !master_password;
    std::optional<Secret> password;
    if (source_master == nullptr || target_needs_user) {
        auto pw = sealed_password(job, who);
        if (!pw) {
            fail(pw.error());
            return;
        }
        password.emplace(std::move(*pw));
    }

    if (to) {
        AuditContext c = ctx;
        c.detail = std::string(job.kind == JobKind::copy ? "copy" : "resync") + " started by " + id;
        if (auto s = store->set_state(job.account, *to, c, a.state); !s) {
            if (s.error().scope != Scope::account) {
                fail(s.error());
                return;
            }
            // Somebody (an admin, a cut-over) changed the account meanwhile: give the job
            // back; the next claim looks at the new state.
            if (auto rel = store->release_job(job.id, id); !rel) {
                log::warning(who + ": give the job back: " + rel.error().message());
            }
            log::info(who + ": " + s.error().message() + "; job given back");
            return;
        }
        current = *to;
    }

    copy::Endpoint from;
    from.host = provider->host;
    from.port = source_port(*provider);
    from.tls = provider->tls;
    from.ca_file = provider->ca_file;
    from.verify_cert = provider->verify_certificate;
    from.user = source_login;
    from.timeout = std::max(provider->timeout, cfg.target.timeout);
    copy::Endpoint dst;
    const TargetConfig& t = cfg.target;
    dst.host = t.host;
    dst.port = t.effective_port();
    dst.tls = t.tls;
    dst.ca_file = t.ca_file;
    dst.verify_cert = t.verify_certificate;
    dst.user = job.account;
    dst.timeout = t.timeout;
    if (!t.maildir.empty()) {
        const std::size_t at = job.account.rfind('@');
        const std::string local = job.account.substr(0, at);
        const std::string domain = at == std::string::npos ? "" : job.account.substr(at + 1);
        // The names become path components: nothing may lead out of the mail tree.
        for (const std::string& part : {local, domain}) {
            if (part.empty() || part[0] == '.' || part.find('/') != std::string::npos ||
                part.find('\0') != std::string::npos) {
                fail(make_error("copy " + job.account,
                                "the account name cannot be a path component of "
                                "target.maildir (empty, leading '.', or '/')",
                                Scope::account, Retry::never));
                return;
            }
        }
        dst.local = "maildir:" + expand_template(t.maildir, local, domain);
    } else if (master_password) {
        dst.auth_user = t.master_user;
        dst.password = master_password->clone();
    } else {
        dst.password = password->clone();
    }
    if (source_master != nullptr) {
        from.auth_user = provider->master_user;
        from.password = source_master->clone();
    } else {
        from.password = std::move(*password);
    }

    copy::Options opts;
    opts.state_path = cfg.worker.state_dir + "/" + spool::detail::encode_name(job.account) + ".db";
    opts.connections = wc.connections;
    opts.messages_per_connection = wc.messages_per_connection;
    opts.max_connections_per_server =
        std::max<std::size_t>(8, std::size_t{copies()} * wc.connections + copies());

    log::info(who + ": " + (job.kind == JobKind::copy ? "copy" : "resync") + " started (run " +
              std::to_string(job.runs) + ", " + from.label() + " -> " + dst.label() + ")");
    auto t0 = std::chrono::steady_clock::now();
    auto res = copy::copy_account(from, dst, opts, {}, &r.cancel);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t0);

    if (r.lost) {
        log::warning(who + ": lease lost during the copy; another worker has the job");
        return;
    }
    if (!res) {
        if (r.cancel) {
            // Stopping (SIGTERM): give the job back; the next run resumes where this ended.
            if (auto rel = store->release_job(job.id, id); !rel) {
                log::warning(who + ": give the job back: " + rel.error().message());
            }
            log::info(who + ": stopped at a safe point; job given back");
            return;
        }
        fail(res.error());
        return;
    }
    const copy::Summary& sum = *res;
    const std::string text = summary_text(sum, took);
    if (a.state == AccountState::held) {
        // The final round of a cut-over (`mailferry cutover`): the account is done. What
        // a round cannot copy (listed in the result) would not copy on a retry either,
        // and users wait with TEMPFAIL while the account is held.
        AuditContext c = ctx;
        c.detail = "final round: " + text;
        if (auto s = store->set_state(job.account, AccountState::cutover, c, AccountState::held);
            !s) {
            fail(s.error());
            return;
        }
        if (auto rm = spool->remove(job.account); !rm) {
            log::warning(who + ": delete the spool entry: " + rm.error().message());
        }
        JobFinish how;
        how.state = JobState::done;
        how.result = "cut over after the final round: " + text;
        log::info(who + ": " + how.result + "; spool entry deleted");
        finish(how);
        return;
    }
    AuditContext synced_ctx = ctx;
    synced_ctx.detail = text;
    if (auto s =
            store->set_state(job.account, AccountState::synced, synced_ctx, to ? *to : a.state);
        !s) {
        if (s.error().scope != Scope::account) {
            fail(s.error());
            return;
        }
        // The state changed during the round (`mailferry cutover` put the account on hold):
        // run again at once; the next claim sees the new state.
        JobFinish again;
        again.state = JobState::queued;
        again.run_at = now_unix_ms();
        again.next_kind = JobKind::resync;
        again.result = text;
        log::info(who + ": " + text + "; " + s.error().message() + "; queued again");
        finish(again);
        return;
    }
    JobFinish how;
    how.result = text;
    how.next_kind = JobKind::resync;
    if (const copy::Skipped* s = stuck_item(sum, wc.max_same_failure)) {
        // Retrying has not mended it in max_same_failure rounds and will not: stop here
        // rather than loop; the account keeps what was copied (synced).
        how.state = JobState::failed;
        how.result = "needs an admin: " + skipped_text(*s) + " not copied " +
                     std::to_string(s->streak) + " rounds in a row; " + text;
        log::error(who + ": " + how.result);
        finish(how);
        return;
    }
    const bool keep = cfg.spool.keep_until == SpoolKeep::cutover;
    if (!keep && sum.exact()) {
        if (auto rm = spool->remove(job.account); !rm) {
            log::warning(who + ": delete the spool entry: " + rm.error().message());
        }
        how.state = JobState::done;
        log::info(who + ": " + text + "; first full sync done, spool entry deleted");
    } else if (wc.resync_interval.count() > 0 || !sum.exact()) {
        Millis next = wc.resync_interval.count() > 0 ? wc.resync_interval : wc.retry_min;
        how.state = JobState::queued;
        how.run_at = now_unix_ms() + next.count();
        log::info(who + ": " + text + "; next round in " + format_duration(next));
    } else {
        how.state = JobState::done;
        log::info(who + ": " + text);
    }
    if (!sum.exact()) {
        log::warning(who + ": " + std::to_string(sum.skipped.size()) +
                     " message(s) or folder(s) not copied; see the job's last result");
    }
    finish(how);
}

} // namespace mf::worker
