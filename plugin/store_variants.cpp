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

#include <memory>
#include <sqlite3.h>

namespace mf {
namespace sqlite_variants {
namespace {

struct Finalize {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};

std::string text(sqlite3_stmt* s, int col) {
    const auto* p = sqlite3_column_text(s, col);
    return p == nullptr ? std::string()
                        : std::string(reinterpret_cast<const char*>(p),
                                      static_cast<std::size_t>(sqlite3_column_bytes(s, col)));
}

} // namespace

Result<std::vector<Account>> find(sqlite3* db, const std::string& name, const std::string& path) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT name, provider, state, hash, created, updated, last_login, "
                                "last_error FROM accounts WHERE name = ?1 COLLATE NOCASE "
                                "ORDER BY name = ?1 DESC, created, name",
                                -1, &raw, nullptr);
    std::unique_ptr<sqlite3_stmt, Finalize> st(raw);
    if (rc != SQLITE_OK) {
        return db_error(db, "prepare find_account_variants", rc);
    }
    sqlite3_bind_text(raw, 1, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
    std::vector<Account> out;
    while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
        Account a;
        a.name = text(raw, 0);
        a.provider = text(raw, 1);
        a.state = account_state_from(text(raw, 2)).value_or(AccountState::failed);
        a.hash = text(raw, 3);
        a.created = sqlite3_column_int64(raw, 4);
        a.updated = sqlite3_column_int64(raw, 5);
        a.last_login = sqlite3_column_int64(raw, 6);
        a.last_error = text(raw, 7);
        out.push_back(std::move(a));
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
