// Upload sessions: ranges, exclusive writers, limits, resume after a restart, expiry, ids.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "pylon/registry/blob/blob_store.h"
#include "pylon/signing/sha256.h"
#include "blob_test_support.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using namespace pylon::registry::blob;
using pylon::as_bytes;
using pylon::test::TempDir;
using namespace pylon::registry::blob::test;

namespace {

void append(BlobStore& store, const std::string& id, std::uint64_t start, std::string_view data) {
    auto writer = store.open_writer(id, start);
    REQUIRE(writer);
    REQUIRE((*writer)->write(as_bytes(data)));
    REQUIRE((*writer)->close());
}

}  // namespace

TEST_CASE("A chunk must start at the session's offset", "[blob][upload]") {
    TempDir dir;
    auto store = open_store(dir.path());
    auto session = store->create_session("acme");
    REQUIRE(session);
    CHECK(session->offset == 0);
    CHECK(session->ns == "acme");
    append(*store, session->id, 0, "hello ");

    auto gap = store->open_writer(session->id, 10);
    REQUIRE_FALSE(gap);
    CHECK(gap.error().code() == Errc::range_invalid);
    CHECK_THAT(gap.error().message(),
               Catch::Contains("10") && Catch::Contains("6 bytes") && Catch::Contains("gap"));
    auto overlap = store->open_writer(session->id, 3);
    REQUIRE_FALSE(overlap);
    CHECK(overlap.error().code() == Errc::range_invalid);
    CHECK_THAT(overlap.error().message(), Catch::Contains("overlap"));

    CHECK(store->session(session->id)->offset == 6);
    append(*store, session->id, 6, "world");
    REQUIRE(store->complete(session->id, digest_of("hello world")));
}

TEST_CASE("One writer at a time; complete and cancel wait their turn", "[blob][upload]") {
    TempDir dir;
    auto store = open_store(dir.path());
    auto session = store->create_session("acme");
    REQUIRE(session);
    auto first = store->open_writer(session->id, 0);
    REQUIRE(first);
    REQUIRE((*first)->write(as_bytes("abc")));

    CHECK(store->open_writer(session->id, 0).error().code() == Errc::session_busy);
    CHECK(store->complete(session->id, digest_of("abc")).error().code() == Errc::session_busy);
    CHECK(store->cancel(session->id).error().code() == Errc::session_busy);
    // A second store object on the same directory (another process, in effect) is refused too.
    auto other = open_store(dir.path());
    CHECK(other->open_writer(session->id, 0).error().code() == Errc::session_busy);

    auto closed = (*first)->close();
    REQUIRE(closed);
    CHECK(closed->offset == 3);
    CHECK((*first)->write(as_bytes("x")).error().code() == pylon::Errc::invalid_argument);
    append(*store, session->id, 3, "def");
    REQUIRE(store->complete(session->id, digest_of("abcdef")));
}

TEST_CASE("A writer dropped without close keeps its bytes", "[blob][upload]") {
    TempDir dir;
    BlobStoreConfig config;
    config.write_buffer_size = 16;
    auto store = open_store(dir.path(), config);
    auto session = store->create_session("acme");
    REQUIRE(session);
    const std::string data = pattern(100, 1);
    {
        auto writer = store->open_writer(session->id, 0);
        REQUIRE(writer);
        REQUIRE((*writer)->write(as_bytes(std::string_view(data).substr(0, 40))));
    }
    CHECK(store->session(session->id)->offset == 40);
    append(*store, session->id, 40, std::string_view(data).substr(40));
    REQUIRE(store->complete(session->id, digest_of(data)));
}

TEST_CASE("Writes past max_blob_size are refused whole", "[blob][upload]") {
    TempDir dir;
    BlobStoreConfig config;
    config.max_blob_size = 100;
    auto store = open_store(dir.path(), config);
    auto session = store->create_session("acme");
    REQUIRE(session);
    auto writer = store->open_writer(session->id, 0);
    REQUIRE(writer);
    REQUIRE((*writer)->write(as_bytes(pattern(60, 2))));
    auto too_much = (*writer)->write(as_bytes(pattern(41, 3)));
    REQUIRE_FALSE(too_much);
    CHECK(too_much.error().code() == Errc::too_large);
    CHECK((*writer)->offset() == 60);
    REQUIRE((*writer)->write(as_bytes(pattern(40, 3))));
    auto closed = (*writer)->close();
    REQUIRE(closed);
    CHECK(closed->offset == 100);
}

TEST_CASE("An upload resumes after a restart, re-hashing what is on disk", "[blob][upload]") {
    TempDir dir;
    const std::string data = pattern(50'000, 4);
    BlobStoreConfig config;
    config.write_buffer_size = 4096;
    std::string id;
    {
        auto store = open_store(dir.path(), config);
        auto session = store->create_session("acme");
        REQUIRE(session);
        id = session->id;
        append(*store, id, 0, std::string_view(data).substr(0, 20'000));
    }
    SECTION("continue writing, then complete") {
        auto store = open_store(dir.path(), config);
        auto session = store->session(id);
        REQUIRE(session);
        CHECK(session->offset == 20'000);
        CHECK(session->ns == "acme");
        append(*store, id, 20'000, std::string_view(data).substr(20'000));
        REQUIRE(store->complete(id, digest_of(data)));
    }
    SECTION("complete with only what was written before") {
        {
            auto store = open_store(dir.path(), config);
            append(*store, id, 20'000, std::string_view(data).substr(20'000));
        }
        auto store = open_store(dir.path(), config);
        auto info = store->complete(id, digest_of(data));
        REQUIRE(info);
        CHECK(info->size == data.size());
    }
}

TEST_CASE("expire removes idle sessions and old tmp files", "[blob][upload]") {
    TempDir dir;
    auto fake_now = Clock::now();
    BlobStoreConfig config;
    config.clock = [&] { return fake_now; };
    config.session_max_idle = std::chrono::hours(2);
    auto store = open_store(dir.path(), config);
    auto idle = store->create_session("acme");
    REQUIRE(idle);
    append(*store, idle->id, 0, "stale");
    dir.write("tmp/stray", "x");

    fake_now += std::chrono::hours(3);
    auto fresh = store->create_session("acme");
    REQUIRE(fresh);
    // Past session_max_idle a session answers session_expired even before expire() runs.
    CHECK(store->session(idle->id).error().code() == Errc::session_expired);
    CHECK(store->open_writer(idle->id, 5).error().code() == Errc::session_expired);

    auto removed = store->expire(std::chrono::hours(1));
    REQUIRE(removed);
    CHECK(*removed == 1);
    CHECK(store->session(idle->id).error().code() == Errc::not_found);
    CHECK(store->session(fresh->id));
    CHECK_FALSE(fs::exists(dir.path() / "tmp/stray"));
    CHECK(*store->expire(std::chrono::hours(1)) == 0);
}

TEST_CASE("A session held by a writer is not expired", "[blob][upload]") {
    TempDir dir;
    auto fake_now = Clock::now();
    BlobStoreConfig config;
    config.clock = [&] { return fake_now; };
    auto store = open_store(dir.path(), config);
    auto session = store->create_session("acme");
    REQUIRE(session);
    auto writer = store->open_writer(session->id, 0);
    REQUIRE(writer);
    fake_now += std::chrono::hours(3);
    CHECK(*store->expire(std::chrono::hours(1)) == 0);
    REQUIRE((*writer)->close());  // closing is activity
    CHECK(*store->expire(std::chrono::hours(1)) == 0);
    fake_now += std::chrono::hours(3);
    CHECK(*store->expire(std::chrono::hours(1)) == 1);
}

TEST_CASE("cancel removes a session", "[blob][upload]") {
    TempDir dir;
    auto store = open_store(dir.path());
    auto session = store->create_session("acme");
    REQUIRE(session);
    append(*store, session->id, 0, "abc");
    REQUIRE(store->cancel(session->id));
    CHECK(store->session(session->id).error().code() == Errc::not_found);
    CHECK(store->cancel(session->id).error().code() == Errc::not_found);
    CHECK(fs::is_empty(dir.path() / "uploads"));
}

TEST_CASE("Session ids are random, well-formed, and checked strictly", "[blob][upload]") {
    TempDir dir;
    auto store = open_store(dir.path());
    auto a = store->create_session("acme");
    auto b = store->create_session("acme");
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->id != b->id);
    CHECK(is_valid_session_id(a->id));
    CHECK(store->create_session("").error().code() == pylon::Errc::invalid_argument);
    // A file an id must never reach.
    dir.write("secret/data", "x");
    dir.write("secret/info.json", R"({"namespace":"x","created_ms":0,"updated_ms":0})");

    std::string upper = a->id;
    upper[0] = 'A';
    const std::string bad[] = {"",
                               "..",
                               "../secret",
                               "../../etc/passwd",
                               a->id + "0",
                               a->id.substr(1),
                               std::string(1000, 'a'),
                               upper,
                               a->id.substr(0, 31) + "/",
                               a->id.substr(0, 31) + "g",
                               std::string("0123456789abcdef0123456789abcde\0", 32),
                               "ffffffffffffffffffffffffffffffff"};
    const Digest any = digest_of("");
    for (const auto& id : bad) {
        CAPTURE(id);
        const bool well_formed_but_unknown = id == "ffffffffffffffffffffffffffffffff";
        CHECK(is_valid_session_id(id) == well_formed_but_unknown);
        CHECK(store->session(id).error().code() == Errc::not_found);
        CHECK(store->open_writer(id, 0).error().code() == Errc::not_found);
        CHECK(store->complete(id, any).error().code() == Errc::not_found);
        CHECK(store->cancel(id).error().code() == Errc::not_found);
    }
    CHECK(fs::exists(dir.path() / "secret/data"));
}
