// Support for the catalog's PostgreSQL tests: a fresh database per test, dropped afterwards.
//
// The tests need a server reachable through the PG* environment variables (run them under
// `pg_virtualenv -t -v 15 ctest -L postgres`). Without PGHOST and PGDATABASE the executable
// exits with 77 before running any test, which CTest reports as skipped (SKIP_RETURN_CODE).
#pragma once

#include <memory>
#include <pqxx/pqxx>
#include <string>

#include "pylon/catalog/catalog.h"
#include "pylon/catalog/connection_pool.h"

namespace pylon::catalog::test {

// CREATE DATABASE pylon_test_<random> through the PG* connection; DROP ... WITH (FORCE) at the
// end.
class TestDatabase {
public:
    TestDatabase();
    ~TestDatabase();
    TestDatabase(const TestDatabase&) = delete;
    TestDatabase& operator=(const TestDatabase&) = delete;

    const std::string& name() const { return name_; }
    // Connection string for this database (the other settings come from PG* variables).
    const std::string& conninfo() const { return conninfo_; }
    // Runs SQL on this database in its own transaction (for checks and tampering).
    pqxx::result exec(const std::string& sql);

private:
    std::string name_;
    std::string conninfo_;
};

// A migrated database with a pool and a Catalog over it.
struct CatalogFixture {
    explicit CatalogFixture(std::size_t pool_size = 4,
                            std::chrono::milliseconds acquire_timeout = std::chrono::seconds(5));

    TestDatabase db;
    std::shared_ptr<ConnectionPool> pool;
    std::unique_ptr<Catalog> catalog;
};

// "sha256:" + 64 hex digits derived from `seed`.
std::string digest_of(const std::string& seed);

}  // namespace pylon::catalog::test
