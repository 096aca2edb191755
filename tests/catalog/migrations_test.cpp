#include "pylon/catalog/migrations.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "pg_test_support.h"
#include "pylon/catalog/errors.h"
#include "pylon/signing/sha256.h"

using pylon::catalog::apply_migrations;
using pylon::catalog::embedded_migrations;
using pylon::catalog::Errc;
using pylon::catalog::test::TestDatabase;

namespace {

std::vector<int> all_versions() {
    std::vector<int> v;
    for (const auto& m : embedded_migrations()) v.push_back(m.version);
    return v;
}

}  // namespace

TEST_CASE("embedded migrations match the files in migrations/ and their checksums") {
    const auto& ms = embedded_migrations();
    REQUIRE(!ms.empty());
    std::size_t files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(PYLON_MIGRATIONS_DIR)) {
        if (entry.path().extension() == ".sql") ++files;
    }
    CHECK(ms.size() == files);
    for (std::size_t i = 0; i < ms.size(); ++i) {
        const auto& m = ms[i];
        CHECK(m.version == static_cast<int>(i) + 1);
        std::ifstream in(std::filesystem::path(PYLON_MIGRATIONS_DIR) / std::string(m.name),
                         std::ios::binary);
        REQUIRE(in);
        std::stringstream text;
        text << in.rdbuf();
        CHECK(text.str() == m.sql);
        CHECK(pylon::signing::to_hex(pylon::signing::sha256(m.sql)) == m.checksum);
    }
    CHECK(ms.front().name == "0001_initial.sql");
}

TEST_CASE("apply_migrations creates the schema once and records every migration") {
    TestDatabase db;
    auto applied = apply_migrations(db.conninfo());
    REQUIRE(applied.ok());
    CHECK(*applied == all_versions());

    std::set<std::string> tables;
    for (const auto& row : db.exec("SELECT table_name FROM information_schema.tables"
                                   " WHERE table_schema = 'public'")) {
        tables.insert(row[0].as<std::string>());
    }
    for (const char* t :
         {"schema_migrations", "namespaces", "api_tokens", "publisher_keys", "models", "releases",
          "builds", "blobs", "build_files", "attestations", "audit_log", "fleets", "devices",
          "rollouts", "rollout_waves", "device_events"}) {
        INFO(t);
        CHECK(tables.count(t) == 1);
    }

    const auto rows = db.exec(
        "SELECT version, name, checksum, applied_at IS NOT NULL"
        " FROM schema_migrations ORDER BY version");
    REQUIRE(rows.size() == embedded_migrations().size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& m = embedded_migrations()[i];
        CHECK(rows[static_cast<int>(i)][0].as<int>() == m.version);
        CHECK(rows[static_cast<int>(i)][1].as<std::string>() == m.name);
        CHECK(rows[static_cast<int>(i)][2].as<std::string>() == m.checksum);
        CHECK(rows[static_cast<int>(i)][3].as<bool>());
    }

    SECTION("a second apply is a no-op") {
        auto again = apply_migrations(db.conninfo());
        REQUIRE(again.ok());
        CHECK(again->empty());
        CHECK(db.exec("SELECT count(*) FROM schema_migrations")[0][0].as<std::size_t>() ==
              embedded_migrations().size());
    }

    SECTION("a changed migration is refused with a message naming it") {
        db.exec("UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE version = 1");
        auto again = apply_migrations(db.conninfo());
        REQUIRE(!again.ok());
        CHECK(again.error().code() == Errc::conflict);
        const auto& msg = again.error().message();
        CHECK_THAT(msg, Catch::Contains("migration 0001_initial.sql was changed after it was "
                                        "applied"));
        CHECK_THAT(msg, Catch::Contains(std::string(64, '0') + " in the database"));
        CHECK_THAT(msg, Catch::Contains(std::string(embedded_migrations()[0].checksum) +
                                        " in this build"));
        CHECK_THAT(msg, Catch::Contains("restore it and add a new migration instead"));
    }

    SECTION("a migration this build does not know is refused") {
        db.exec(
            "INSERT INTO schema_migrations (version, name, checksum)"
            " VALUES (9999, '9999_future.sql', 'x')");
        auto again = apply_migrations(db.conninfo());
        REQUIRE(!again.ok());
        CHECK(again.error().code() == Errc::conflict);
        CHECK_THAT(again.error().message(), Catch::Contains("9999_future.sql"));
    }
}

TEST_CASE("concurrent apply_migrations calls apply each migration once") {
    TestDatabase db;
    constexpr int kThreads = 4;
    std::vector<pylon::Result<std::vector<int>>> results(kThreads, std::vector<int>{});
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
        threads.emplace_back([&, i] { results[i] = apply_migrations(db.conninfo()); });
    }
    for (auto& t : threads) t.join();

    int appliers = 0;
    for (const auto& r : results) {
        REQUIRE(r.ok());
        if (!r->empty()) {
            ++appliers;
            CHECK(*r == all_versions());
        }
    }
    CHECK(appliers == 1);
    CHECK(db.exec("SELECT count(*) FROM schema_migrations")[0][0].as<std::size_t>() ==
          embedded_migrations().size());
}

TEST_CASE("apply_migrations over a pool, and against an unreachable server") {
    TestDatabase db;
    auto pool = pylon::catalog::ConnectionPool::create(db.conninfo(), 2);
    REQUIRE(pool.ok());
    auto applied = apply_migrations(**pool);
    REQUIRE(applied.ok());
    CHECK(*applied == all_versions());
    auto again = apply_migrations(**pool);
    REQUIRE(again.ok());
    CHECK(again->empty());

    auto unreachable =
        apply_migrations("host=127.0.0.1 port=1 password=hunter2secret connect_timeout=2");
    REQUIRE(!unreachable.ok());
    CHECK(unreachable.error().code() == Errc::database);
    CHECK_THAT(unreachable.error().message(), !Catch::Contains("hunter2secret"));
}
