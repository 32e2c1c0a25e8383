// store_sqlite_mailflow.cpp — the SQLite rows behind held mail (Store::note_held_mail
// and friends) and the old server's known recipients.
//
// A HOLD is written here before the policy service answers it, so a service killed a
// moment later loses nothing: the row outlives the process, and the queue ID is bound
// to it when the END-OF-MESSAGE request arrives (possibly at a fresh process).
#include "store_sqlite_private.hpp"

namespace mf::sqlite_mailflow {

Result<void> note(sqlite3* db, const std::string& account, const std::string& instance,
                  const std::string& queue_id, UnixTime at) {
    Stmt s(db, "INSERT OR IGNORE INTO held_mail (account, instance, queue_id, at) "
               "VALUES (?1, ?2, ?3, ?4)");
    s.bind(1, account).bind(2, instance).bind(3, queue_id).bind(4, at);
    if (int rc = s.step(); rc != SQLITE_DONE) {
        return db_error(db, "remember held mail of " + account, rc);
    }
    if (!instance.empty() && !queue_id.empty()) {
        // The row without the queue ID, from an earlier recipient of this message.
        Stmt d(db, "DELETE FROM held_mail WHERE account = ?1 AND instance = ?2 AND queue_id = ''");
        d.bind(1, account).bind(2, instance);
        if (int rc = d.step(); rc != SQLITE_DONE) {
            return db_error(db, "remember held mail of " + account, rc);
        }
    }
    return {};
}

Result<void> bind(sqlite3* db, const std::string& instance, const std::string& queue_id,
                  std::int64_t& bound) {
    // OR IGNORE: a row with this queue ID already exists for the account (noted at RCPT).
    Stmt s(db,
           "UPDATE OR IGNORE held_mail SET queue_id = ?2 WHERE instance = ?1 AND queue_id = ''");
    s.bind(1, instance).bind(2, queue_id);
    if (int rc = s.step(); rc != SQLITE_DONE) {
        return db_error(db, "bind held mail to queue id " + queue_id, rc);
    }
    bound = sqlite3_changes(db);
    Stmt d(db, "DELETE FROM held_mail WHERE instance = ?1 AND queue_id = ''");
    d.bind(1, instance);
    if (int rc = d.step(); rc != SQLITE_DONE) {
        return db_error(db, "bind held mail to queue id " + queue_id, rc);
    }
    return {};
}

Result<std::vector<HeldMail>> list(sqlite3* db, const std::string& account) {
    Stmt s(db, "SELECT account, instance, queue_id, at FROM held_mail "
               "WHERE ?1 = '' OR account = ?1 ORDER BY at, rowid");
    if (!s.prepared()) {
        return db_error(db, "prepare list of held mail", s.prepare_rc());
    }
    s.bind(1, account);
    std::vector<HeldMail> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
        out.push_back(HeldMail{s.text(0), s.text(1), s.text(2), s.int64(3)});
    }
    if (rc != SQLITE_DONE) {
        return db_error(db, "list held mail", rc);
    }
    return out;
}

Result<void> forget(sqlite3* db, const std::string& account, const std::string& queue_id) {
    Stmt s(db, queue_id.empty() ? "DELETE FROM held_mail WHERE account = ?1 AND queue_id = ''"
                                : "DELETE FROM held_mail WHERE queue_id = ?2");
    s.bind(1, account).bind(2, queue_id);
    if (int rc = s.step(); rc != SQLITE_DONE) {
        return db_error(db, "forget held mail " + queue_id, rc);
    }
    return {};
}

Result<void> known(sqlite3* db, const std::string& address, const std::string& provider,
                   UnixTime at) {
    Stmt s(db, "INSERT OR REPLACE INTO known_recipients (address, provider, at) "
               "VALUES (?1, ?2, ?3)");
    s.bind(1, address).bind(2, provider).bind(3, at);
    if (int rc = s.step(); rc != SQLITE_DONE) {
        return db_error(db, "remember known recipient " + address, rc);
    }
    return {};
}

} // namespace mf::sqlite_mailflow
