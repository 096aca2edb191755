// Applies the embedded migrations.
//
// Bookkeeping table (created by the first apply, outside the numbered files so that it exists
// before any of them runs):
//   schema_migrations(version integer PRIMARY KEY, name text, checksum text (SHA-256 hex of the
//                     file), applied_at timestamptz)
#include "pylon/catalog/migrations.h"

#include <fmt/format.h>

#include <map>
#include <pqxx/transaction>

#include "embedded_migrations.h"
#include "pg_util.h"
#include "pool_impl.h"
#include "pylon/catalog/errors.h"
#include "pylon/common/log.h"

namespace pylon::catalog {

const std::vector<Migration>& embedded_migrations() {
    return detail::embedded_migration_table();
}

namespace {

struct Applied {
    std::string name;
    std::string checksum;
};

// Everything happens in `tx`; the caller commits only when this succeeds.
Result<std::vector<int>> apply_in(pqxx::work& tx) {
    tx.exec_params("SELECT pg_advisory_xact_lock($1)",
                   static_cast<std::int64_t>(kMigrationLockKey));
    tx.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY,"
        " name text NOT NULL,"
        " checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())");

    std::map<int, Applied> applied;
    for (const auto& row : tx.exec("SELECT version, name, checksum FROM schema_migrations")) {
        applied[row[0].as<int>()] = Applied{row[1].as<std::string>(), row[2].as<std::string>()};
    }

    const auto& known = embedded_migrations();
    for (const auto& [version, row] : applied) {
        if (version < 1 || static_cast<std::size_t>(version) > known.size()) {
            return Error(Errc::conflict,
                         fmt::format("the database has migration {} ({}), which this build does "
                                     "not know; run a newer build",
                                     version, row.name));
        }
        const Migration& m = known[static_cast<std::size_t>(version) - 1];
        if (row.checksum != m.checksum) {
            return Error(Errc::conflict,
                         fmt::format("migration {} was changed after it was applied (checksum {} "
                                     "in the database, {} in this build); restore it and add a "
                                     "new migration instead",
                                     m.name, row.checksum, m.checksum));
        }
    }

    std::vector<int> done;
    for (const Migration& m : known) {
        if (applied.count(m.version) != 0) continue;
        try {
            tx.exec(std::string(m.sql));
        } catch (const pqxx::sql_error& e) {
            // The server's message is about our own SQL here, so it is safe and useful to show.
            return Error(Errc::database, fmt::format("migration {} failed: {}", m.name, e.what()));
        }
        tx.exec_params(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            m.version, std::string(m.name), std::string(m.checksum));
        done.push_back(m.version);
        log::info("catalog: applied migration {}", m.name);
    }
    return done;
}

}  // namespace

Result<std::vector<int>> apply_migrations(ConnectionPool& pool) {
    // No retry: a broken connection mid-way rolls everything back, and the caller starts over.
    return with_transaction(pool.impl(), "applying migrations", apply_in, false);
}

Result<std::vector<int>> apply_migrations(const std::string& conninfo) {
    PYLON_TRY_ASSIGN(auto conn, ConnectionPool::Impl::open(conninfo));
    try {
        pqxx::work tx(*conn);
        auto result = apply_in(tx);
        if (result) tx.commit();
        return result;
    } catch (...) {
        return error_from_current_exception("applying migrations");
    }
}

}  // namespace pylon::catalog
