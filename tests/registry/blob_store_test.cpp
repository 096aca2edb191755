// The blob side of the filesystem store, and whole uploads: chunked, wrong digest, duplicates.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "pylon/registry/blob/blob_store.h"
#include "pylon/signing/sha256.h"
#include "blob_test_support.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using namespace pylon::registry::blob;
using pylon::test::TempDir;
using namespace pylon::registry::blob::test;

namespace {

// Uploads `data` in chunks of the given sizes (the last one repeated), one writer per chunk.
std::string upload(BlobStore& store, std::string_view data, std::vector<std::size_t> chunks) {
    auto session = store.create_session("acme");
    REQUIRE(session);
    std::size_t pos = 0;
    std::size_t i = 0;
    while (pos < data.size()) {
        const std::size_t n = std::min(chunks[std::min(i++, chunks.size() - 1)], data.size() - pos);
        auto writer = store.open_writer(session->id, pos);
        REQUIRE(writer);
        REQUIRE((*writer)->write(pylon::as_bytes(data.substr(pos, n))));
        auto closed = (*writer)->close();
        REQUIRE(closed);
        pos += n;
        CHECK(closed->offset == pos);
    }
    return session->id;
}

std::vector<fs::path> files_under(const fs::path& dir) {
    std::vector<fs::path> out;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        if (e.is_regular_file()) out.push_back(e.path());
    }
    return out;
}

std::string read_fd(int fd, std::size_t size) {
    std::string out(size, '\0');
    std::size_t done = 0;
    while (done < size) {
        const ssize_t n = ::pread(fd, out.data() + done, size - done, static_cast<off_t>(done));
        REQUIRE(n > 0);
        done += static_cast<std::size_t>(n);
    }
    return out;
}

}  // namespace

TEST_CASE("A blob uploaded in several chunks is stored under its digest", "[blob][store]") {
    TempDir dir;
    const bool background = GENERATE(true, false);
    CAPTURE(background);
    BlobStoreConfig config;
    config.write_buffer_size = 1000;  // so chunks straddle the writer's blocks
    config.background_hashing = background;
    auto store = open_store(dir.path(), config);
    const std::string data = pattern(10'007, 1);
    const Digest digest = digest_of(data);

    CHECK(store->stat(digest).error().code() == Errc::not_found);
    const std::string id = upload(*store, data, {1, 999, 1000, 3001, 2500});
    auto info = store->complete(id, digest);
    REQUIRE(info);
    CHECK(info->size == data.size());
    CHECK(info->digest == digest);

    auto st = store->stat(digest);
    REQUIRE(st);
    CHECK(st->size == data.size());
    auto local = store->open_local(digest);
    REQUIRE(local);
    CHECK(local->size == data.size());
    CHECK(read_fd(local->fd.get(), data.size()) == data);

    const auto path = dir.path() / "blobs/sha256" / digest.hex().substr(0, 2) / digest.hex();
    CHECK(fs::is_regular_file(path));
    CHECK(store->session(id).error().code() == Errc::not_found);
    CHECK(fs::is_empty(dir.path() / "uploads"));
}

TEST_CASE("Many writes into one writer, and an empty blob", "[blob][store]") {
    TempDir dir;
    BlobStoreConfig config;
    config.write_buffer_size = 4096;
    auto store = open_store(dir.path(), config);
    const std::string data = pattern(100'000, 2);
    auto session = store->create_session("acme");
    REQUIRE(session);
    auto writer = store->open_writer(session->id, 0);
    REQUIRE(writer);
    for (std::size_t pos = 0; pos < data.size(); pos += 77) {
        REQUIRE((*writer)->write(pylon::as_bytes(std::string_view(data).substr(pos, 77))));
    }
    CHECK((*writer)->offset() == data.size());
    REQUIRE((*writer)->close());
    REQUIRE(store->complete(session->id, digest_of(data)));

    auto empty = store->create_session("acme");
    REQUIRE(empty);
    auto info = store->complete(empty->id, digest_of(""));
    REQUIRE(info);
    CHECK(info->size == 0);
    CHECK(store->stat(digest_of(""))->size == 0);
}

TEST_CASE("A wrong digest publishes nothing and leaves the session to retry", "[blob][store]") {
    TempDir dir;
    auto store = open_store(dir.path());
    const std::string data = pattern(5000, 3);
    const std::string id = upload(*store, data, {2000});
    const Digest wrong = digest_of("something else");

    auto info = store->complete(id, wrong);
    REQUIRE_FALSE(info);
    CHECK(info.error().code() == Errc::digest_mismatch);
    CHECK_THAT(info.error().message(),
               Catch::Contains(wrong.str()) && Catch::Contains(digest_of(data).str()));
    CHECK(files_under(dir.path() / "blobs").empty());
    CHECK(store->stat(wrong).error().code() == Errc::not_found);
    auto session = store->session(id);
    REQUIRE(session);
    CHECK(session->offset == data.size());

    // The retry re-hashes from disk (the in-memory state was used up by the failed attempt).
    REQUIRE(store->complete(id, digest_of(data)));
    CHECK(store->stat(digest_of(data))->size == data.size());
}

TEST_CASE("An identical blob uploaded twice is stored once", "[blob][store]") {
    TempDir dir;
    auto store = open_store(dir.path());
    const std::string data = pattern(3000, 4);
    const Digest digest = digest_of(data);
    const std::string first = upload(*store, data, {1000});
    const std::string second = upload(*store, data, {3000});
    REQUIRE(store->complete(first, digest));
    auto again = store->complete(second, digest);
    REQUIRE(again);
    CHECK(again->size == data.size());
    CHECK(files_under(dir.path() / "blobs").size() == 1);
    CHECK(fs::is_empty(dir.path() / "uploads"));
    auto local = store->open_local(digest);
    REQUIRE(local);
    CHECK(read_fd(local->fd.get(), local->size) == data);
}

TEST_CASE("remove deletes a blob; redirect_url is not offered locally", "[blob][store]") {
    TempDir dir;
    auto store = open_store(dir.path());
    const std::string data = pattern(100, 5);
    const Digest digest = digest_of(data);
    REQUIRE(store->complete(upload(*store, data, {100}), digest));
    CHECK(store->redirect_url(digest).error().code() == pylon::Errc::unsupported);
    REQUIRE(store->remove(digest));
    CHECK(store->stat(digest).error().code() == Errc::not_found);
    CHECK(store->open_local(digest).error().code() == Errc::not_found);
    CHECK(store->remove(digest).error().code() == Errc::not_found);
}

TEST_CASE("Opening a store removes leftovers under tmp/", "[blob][store]") {
    TempDir dir;
    { auto store = open_store(dir.path()); }
    dir.write("tmp/stray", "half a blob");
    dir.write("tmp/0123456789abcdef0123456789abcdef/data", "half a session");
    dir.write("uploads/not-a-session/data", "x");
    auto store = open_store(dir.path());
    CHECK(fs::is_empty(dir.path() / "tmp"));
    CHECK(fs::is_empty(dir.path() / "uploads"));
}
