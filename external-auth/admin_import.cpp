// admin_import.cpp — plan an export file, then import it in one transaction or not at all.
// See admin_import.hpp.
#include "admin_import.hpp"

#include <chrono>
#include <iostream>

namespace mf::cli {
namespace {

double since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void count(ImportCounts& c, ImportOutcome o) {
    switch (o) {
    case ImportOutcome::created:
        ++c.created;
        break;
    case ImportOutcome::updated:
        ++c.updated;
        break;
    case ImportOutcome::unchanged:
        ++c.unchanged;
        break;
    case ImportOutcome::kept:
        ++c.kept;
        break;
    }
}

// What import_accounts() would do, read from the store without writing (the same rules:
// the same hash is unchanged, another state is kept, a verified account is updated).
Result<ImportCounts> predict(const Config& cfg, const std::vector<ImportEntry>& entries) {
    ImportCounts c;
    bool missing = false;
    auto store = open_store_readonly(cfg, &missing);
    if (!store) {
        return store.error();
    }
    if (missing) {
        c.created = static_cast<std::int64_t>(entries.size());
        return c;
    }
    for (const auto& e : entries) {
        auto a = (*store)->find_account(e.name);
        if (!a) {
            return a.error();
        }
        if (!a->has_value()) {
            count(c, ImportOutcome::created);
        } else if ((**a).hash == e.hash) {
            count(c, ImportOutcome::unchanged);
        } else if ((**a).state != AccountState::verified) {
            count(c, ImportOutcome::kept);
        } else {
            count(c, ImportOutcome::updated);
        }
    }
    return c;
}

} // namespace

Result<ImportReport> import_file(const Loaded& loaded, const std::string& path,
                                 const ImportOptions& opt, bool dry_run, bool progress) {
    ImportReport rep;
    rep.dry_run = dry_run;
    auto file = TextFile::read(path);
    if (!file) {
        Error e = file.error();
        e.scope = Scope::config; // the admin's input: a usage problem, exit 2
        return e;
    }
    // The store as it is, so a clear-text value already imported keeps its hash. A store
    // that cannot be read this way (an older schema the import will migrate) only costs
    // that: such values get a new salt.
    bool missing = false;
    auto current = open_store_readonly(loaded.cfg, &missing);
    ImportOptions with_store = opt;
    Result<void> lookup_error;
    if (current && !missing) {
        with_store.stored_hash = [&](const std::string& name) -> std::optional<std::string> {
            auto a = (*current)->find_account(name);
            if (!a) {
                lookup_error = a.error();
                return std::nullopt;
            }
            return a->has_value() ? std::optional<std::string>((**a).hash) : std::nullopt;
        };
        // Accounts stored by older versions under another spelling (case-insensitive servers).
        with_store.stored_variants = [&](const std::string& name) -> std::vector<std::string> {
            std::vector<std::string> names;
            auto rows = (*current)->find_account_variants(name);
            if (!rows) {
                lookup_error = rows.error();
                return names;
            }
            for (const auto& a : *rows) {
                names.push_back(a.name);
            }
            return names;
        };
    }
    auto t0 = std::chrono::steady_clock::now();
    {
        Progress bar("planning " + path, file->lines().size(), progress);
        std::size_t shown = 0;
        rep.plan =
            plan_import(*file, with_store, *loaded.ids, loaded.cfg.hash, [&](std::size_t done) {
                bar.tick(done - shown);
                shown = done;
            });
        bar.tick(file->lines().size() - shown);
    }
    rep.seconds_plan = since(t0);
    if (!lookup_error) {
        return lookup_error.error();
    }
    if (current) {
        current->reset(); // read-only: the import below opens the store for writing
    }
    if (!rep.plan.errors.empty()) {
        return rep; // all or nothing: one bad line and the store is not touched
    }
    auto entries = import_entries(rep.plan, opt.format);
    t0 = std::chrono::steady_clock::now();
    if (dry_run) {
        auto c = predict(loaded.cfg, entries);
        if (!c) {
            return c.error();
        }
        rep.counts = *c;
        rep.seconds_store = since(t0);
        return rep;
    }
    auto store = open_sqlite_store(loaded.cfg.store.path, loaded.cfg.store.busy_timeout);
    if (!store) {
        return store.error();
    }
    if (progress) {
        std::cerr << "writing " << entries.size() << " accounts in one transaction…" << std::flush;
    }
    auto outcomes = (*store)->import_accounts(entries, "admin:import");
    if (progress) {
        std::cerr << "\r\x1b[K" << std::flush;
    }
    if (!outcomes) {
        return outcomes.error();
    }
    for (ImportOutcome o : *outcomes) {
        count(rep.counts, o);
    }
    rep.applied = true;
    rep.seconds_store = since(t0);
    return rep;
}

} // namespace mf::cli
