// store_variants.cpp — which stored account a login uses when its old server ignores the
// letter case of user names.
//
// The identity map gives such a login a lower-case canonical name, but versions before
// provider.case_insensitive stored the spelling the user typed ("Anna@example.org"). The
// rule (docs/ARCHITECTURE.md, "Identity"): the exact name if it is stored; else the
// oldest account whose name differs only in ASCII letter case. More than one row for one
// user is reported to the caller, who logs it; merging them is the admin's decision.
// The SQLite side (sqlite_variants) matches with COLLATE NOCASE, which folds ASCII only,
// through an index on the names in that collation.
// Never: match across letters other than ASCII, or pick a row for a case-sensitive server.
#include "mailferry/store.hpp"
#include "store_sqlite_private.hpp"

#include <sqlite3.h>

namespace mf {
namespace sqlite_variants {

Result<std::vector<Account>> find(sqlite3* db, const std::string& name, const std::string& path) {
    Stmt st(db, "SELECT name, provider, state, hash, created, updated, last_login, "
                "last_error FROM accounts WHERE name = ?1 COLLATE NOCASE "
                "ORDER BY name = ?1 DESC, created, name");
    if (!st.prepared()) {
        return db_error(db, "prepare find_account_variants", st.prepare_rc());
    }
    st.bind(1, name);
    std::vector<Account> out;
    int rc = 0;
    while ((rc = st.step()) == SQLITE_ROW) {
        out.push_back(account_from_row(st));
    }
    if (rc != SQLITE_DONE) {
        return db_error(db, "look up account " + name + " (any letter case) in " + path, rc);
    }
    return out;
}

Result<void> ensure_index(sqlite3* db) {
    int rc = sqlite3_exec(
        db, "CREATE INDEX IF NOT EXISTS accounts_name_nocase ON accounts(name COLLATE NOCASE)",
        nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
        return db_error(db, "index account names", rc);
    }
    return {};
}

} // namespace sqlite_variants

Result<std::optional<Account>> find_login_account(Store& store, const std::string& canonical,
                                                  bool fold_case,
                                                  std::vector<std::string>* others) {
    if (!fold_case) {
        return store.find_account(canonical);
    }
    auto rows = store.find_account_variants(canonical);
    if (!rows) {
        return rows.error();
    }
    if (rows->empty()) {
        return std::optional<Account>{};
    }
    if (others != nullptr) {
        for (std::size_t i = 1; i < rows->size(); ++i) {
            others->push_back((*rows)[i].name);
        }
    }
    return std::optional<Account>{std::move(rows->front())};
}

} // namespace mf
