// store_sqlite_cutover.cpp — the plan of a batched cut-over in the SQLite store: one row
// per account, in the order the plan cuts them over, with the step each has reached.
//
// The plan outlives the `mailferry cutover --batch` run that made it, so a run stopped by a
// timeout, a signal or a crash is resumed by the next one; one plan exists at a time.
// Must never: run outside the caller's transaction, or replace an unfinished plan.
#include "store_sqlite_private.hpp"

#include <sqlite3.h>

namespace mf {

const char* to_string(CutoverStepState s) {
    switch (s) {
    case CutoverStepState::pending:
        return "pending";
    case CutoverStepState::started:
        return "started";
    case CutoverStepState::done:
        return "done";
    case CutoverStepState::failed:
        return "failed";
    }
    return "?";
}

std::optional<CutoverStepState> cutover_step_state_from(std::string_view name) {
    for (auto s : {CutoverStepState::pending, CutoverStepState::started, CutoverStepState::done,
                   CutoverStepState::failed}) {
        if (name == to_string(s)) {
            return s;
        }
    }
    return std::nullopt;
}

namespace sqlite_cutover {

Result<void> create(sqlite3* db, const std::vector<std::string>& accounts, UnixTime now) {
    Stmt open(db, "SELECT COUNT(*) FROM cutover_plan WHERE state IN ('pending', 'started')");
    if (int rc = open.step(); rc != SQLITE_ROW) {
        return db_error(db, "read the cut-over plan", rc);
    }
    if (open.int64(0) > 0) {
        return make_error("cut-over plan",
                          std::to_string(open.int64(0)) +
                              " accounts of the current plan are not done yet: resume it "
                              "(`mailferry cutover --batch N`) or drop it (--forget-plan)",
                          Scope::config);
    }
    Stmt clear(db, "DELETE FROM cutover_plan");
    if (int rc = clear.step(); rc != SQLITE_DONE) {
        return db_error(db, "drop the finished cut-over plan", rc);
    }
    Stmt add(db, "INSERT INTO cutover_plan (account, position, state, updated) "
                 "VALUES (?1, ?2, 'pending', ?3)");
    std::int64_t position = 0;
    for (const auto& a : accounts) {
        add.bind(1, a).bind(2, position++).bind(3, now);
        if (int rc = add.step(); rc != SQLITE_DONE) {
            return db_error(db, "add " + a + " to the cut-over plan", rc);
        }
        add.reset();
    }
    return {};
}

Result<std::vector<CutoverStep>> read(sqlite3* db) {
    Stmt s(db, "SELECT account, position, state, detail, updated FROM cutover_plan "
               "ORDER BY position");
    if (!s.prepared()) {
        return db_error(db, "read the cut-over plan", s.prepare_rc());
    }
    std::vector<CutoverStep> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
        CutoverStep step;
        step.account = s.text(0);
        step.position = s.int64(1);
        step.state = cutover_step_state_from(s.text(2)).value_or(CutoverStepState::failed);
        step.detail = s.text(3);
        step.updated = s.int64(4);
        out.push_back(std::move(step));
    }
    if (rc != SQLITE_DONE) {
        return db_error(db, "read the cut-over plan", rc);
    }
    return out;
}

Result<void> set_step(sqlite3* db, const std::string& account, CutoverStepState state,
                      const std::string& detail, UnixTime now) {
    Stmt s(db, "UPDATE cutover_plan SET state = ?2, detail = ?3, updated = ?4 WHERE account = ?1");
    s.bind(1, account).bind(2, std::string(to_string(state))).bind(3, detail).bind(4, now);
    if (int rc = s.step(); rc != SQLITE_DONE) {
        return db_error(db, "update " + account + " in the cut-over plan", rc);
    }
    if (sqlite3_changes(db) == 0) {
        return make_error("cut-over plan", account + " is not in the plan", Scope::account);
    }
    return {};
}

Result<std::int64_t> forget(sqlite3* db) {
    Stmt s(db, "DELETE FROM cutover_plan");
    if (int rc = s.step(); rc != SQLITE_DONE) {
        return db_error(db, "drop the cut-over plan", rc);
    }
    return static_cast<std::int64_t>(sqlite3_changes(db));
}

} // namespace sqlite_cutover
} // namespace mf
