#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include "pg_test_support.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "pylon/catalog/migrations.h"
#include "pylon/signing/sha256.h"

namespace pylon::catalog::test {
namespace {

// Skips the whole run (exit 77) when no PostgreSQL is configured. Listing tests (which CTest's
// test discovery does at build time) does not reach testRunStarting, so discovery still works.
struct RequirePostgres : Catch::TestEventListenerBase {
    using TestEventListenerBase::TestEventListenerBase;
    void testRunStarting(Catch::TestRunInfo const& info) override {
        if (std::getenv("PGHOST") == nullptr || std::getenv("PGDATABASE") == nullptr) {
            std::fprintf(stderr, "skipped: PGHOST/PGDATABASE not set (run under pg_virtualenv)\n");
            std::exit(77);
        }
        TestEventListenerBase::testRunStarting(info);
    }
};

std::string random_suffix() {
    std::random_device rd;
    std::uniform_int_distribution<unsigned long long> dist;
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", dist(rd));
    return buf;
}

}  // namespace
}  // namespace pylon::catalog::test

using PylonRequirePostgres = pylon::catalog::test::RequirePostgres;
CATCH_REGISTER_LISTENER(PylonRequirePostgres)

namespace pylon::catalog::test {

TestDatabase::TestDatabase() : name_("pylon_test_" + random_suffix()) {
    conninfo_ = "dbname=" + name_;
    pqxx::connection admin("");
    pqxx::nontransaction tx(admin);
    tx.exec("CREATE DATABASE " + name_);
}

TestDatabase::~TestDatabase() {
    try {
        pqxx::connection admin("");
        pqxx::nontransaction tx(admin);
        tx.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "warning: could not drop %s: %s\n", name_.c_str(), e.what());
    }
}

pqxx::result TestDatabase::exec(const std::string& sql) {
    pqxx::connection conn(conninfo_);
    pqxx::work tx(conn);
    auto r = tx.exec(sql);
    tx.commit();
    return r;
}

CatalogFixture::CatalogFixture(std::size_t pool_size, std::chrono::milliseconds acquire_timeout) {
    auto p = ConnectionPool::create(db.conninfo(), pool_size, acquire_timeout);
    REQUIRE(p.ok());
    pool = *p;
    auto applied = apply_migrations(*pool);
    REQUIRE(applied.ok());
    auto c = make_postgres_catalog(pool);
    REQUIRE(c.ok());
    catalog = std::move(c).value();
}

std::string digest_of(const std::string& seed) {
    return "sha256:" + signing::to_hex(signing::sha256(std::string_view(seed)));
}

}  // namespace pylon::catalog::test
