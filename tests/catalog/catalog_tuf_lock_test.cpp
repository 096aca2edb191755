// Catalog::with_tuf_lock: the writers of the shared TUF repository take turns across replicas
// (two catalogs on one database stand for two registry replicas).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "pg_test_support.h"
#include "pylon/catalog/catalog.h"

using namespace pylon::catalog;
using pylon::catalog::test::CatalogFixture;
using namespace std::chrono_literals;

TEST_CASE("with_tuf_lock: a second replica's writer waits for the first", "[catalog][tuf]") {
    CatalogFixture a;
    auto pool_b = ConnectionPool::create(a.db.conninfo(), 2);
    REQUIRE(pool_b);
    auto b = make_postgres_catalog(*pool_b);
    REQUIRE(b);

    std::atomic<bool> a_inside{false}, a_done{false}, b_saw_a_done{false};
    std::promise<void> release_a;
    auto a_writer = std::async(std::launch::async, [&] {
        return a.catalog->with_tuf_lock([&]() -> pylon::Result<void> {
            a_inside = true;
            release_a.get_future().wait();
            a_done = true;
            return {};
        });
    });
    while (!a_inside) std::this_thread::sleep_for(1ms);
    auto b_writer = std::async(std::launch::async, [&] {
        return (*b)->with_tuf_lock([&]() -> pylon::Result<void> {
            b_saw_a_done = a_done.load();
            return {};
        });
    });
    // B must still be waiting on the lock while A holds it.
    CHECK(b_writer.wait_for(300ms) == std::future_status::timeout);
    release_a.set_value();
    REQUIRE(a_writer.get());
    REQUIRE(b_writer.get());
    CHECK(b_saw_a_done);
}

TEST_CASE("with_tuf_lock: fn's error is returned, and fn runs once", "[catalog][tuf]") {
    CatalogFixture f;
    int runs = 0;
    auto r = f.catalog->with_tuf_lock([&]() -> pylon::Result<void> {
        ++runs;
        return pylon::Error(pylon::Errc::io_error, "disk full");
    });
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().what(), Catch::Contains("disk full"));
    CHECK(runs == 1);
    // The lock was released with the transaction: the next writer gets it at once.
    CHECK(f.catalog->with_tuf_lock([]() -> pylon::Result<void> { return {}; }));
}
