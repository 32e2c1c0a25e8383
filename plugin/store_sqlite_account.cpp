// store_sqlite_account.cpp — the SQLite side of `mailferry account`: the audit row that
// disabled an account (its reason, and the state `enable` puts back) and forgetting one
// account's migration.
//
// No schema change: the state before a disable is the from_state of the audit row that
// disabled it, so nothing new is stored.
// Must never: open a transaction of its own (the caller holds one, BEGIN IMMEDIATE, and the
// store's mutex), or see a plain password.
#include "store_sqlite_private.hpp"

#include <sqlite3.h>

namespace mf::sqlite_account {

Result<std::optional<AuditRow>> last_transition(sqlite3* db, const std::string& account,
                                                AccountState to) {
    Stmt s(db, "SELECT id, at, account, from_state, to_state, actor, client_ip, detail "
               "FROM audit WHERE account = ?1 AND to_state = ?2 AND from_state <> to_state "
               "ORDER BY id DESC LIMIT 1");
    if (!s.prepared()) {
        return db_error(db,
                        "prepare: find the audit row that made " + account + " " + to_string(to),
                        s.prepare_rc());
    }
    s.bind(1, account).bind(2, std::string(to_string(to)));
    int rc = s.step();
    if (rc == SQLITE_DONE) {
        return std::optional<AuditRow>{};
    }
    if (rc != SQLITE_ROW) {
        return db_error(db, "read the audit log of " + account, rc);
    }
    return std::optional<AuditRow>{AuditRow{s.int64(0), s.int64(1), s.text(2), s.text(3), s.text(4),
                                            s.text(5), s.text(6), s.text(7)}};
}

Result<Account> forget(sqlite3* db, const std::string& name, const AuditContext& ctx,
                       UnixMillis now) {
    const std::string what = "forget account " + name;
    Stmt find(db, "SELECT name, provider, state, hash, created, updated, last_login, "
                  "last_error FROM accounts WHERE name = ?1");
    find.bind(1, name);
    int rc = find.step();
    if (rc == SQLITE_DONE) {
        return make_error(what, "no such account", Scope::account);
    }
    if (rc != SQLITE_ROW) {
        return db_error(db, "look up account " + name, rc);
    }
    Account was = account_from_row(find);

    // A copy under way would write the account and its state file back behind us.
    Stmt busy(db, "SELECT id, claimed_by FROM jobs WHERE account = ?1 AND state = 'running' "
                  "AND lease_until > ?2");
    busy.bind(1, name).bind(2, now);
    if (rc = busy.step(); rc == SQLITE_ROW) {
        return make_error(what,
                          "worker " + busy.text(1) + " is copying it now (job " +
                              std::to_string(busy.int64(0)) +
                              "); try again when that round has ended",
                          Scope::account, Retry::later);
    }
    if (rc != SQLITE_DONE) {
        return db_error(db, "look for running copies of " + name, rc);
    }

    Stmt jobs(db, "DELETE FROM jobs WHERE account = ?1");
    jobs.bind(1, name);
    if (rc = jobs.step(); rc != SQLITE_DONE) {
        return db_error(db, "delete the copy jobs of " + name, rc);
    }
    Stmt acct(db, "DELETE FROM accounts WHERE name = ?1");
    acct.bind(1, name);
    if (rc = acct.step(); rc != SQLITE_DONE) {
        return db_error(db, "delete account " + name, rc);
    }
    Stmt log(db, "INSERT INTO audit (at, account, from_state, to_state, actor, client_ip, "
                 "detail) VALUES (?1, ?2, ?3, 'unknown', ?4, ?5, ?6)");
    log.bind(1, now / 1000).bind(2, name).bind(3, std::string(to_string(was.state)));
    log.bind(4, ctx.actor).bind(5, ctx.client_ip).bind(6, ctx.detail);
    if (rc = log.step(); rc != SQLITE_DONE) {
        return db_error(db, "write audit row for " + name, rc);
    }
    return was;
}

} // namespace mf::sqlite_account
