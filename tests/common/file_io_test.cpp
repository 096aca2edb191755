#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>

#include "pylon/common/file_io.h"
#include "temp_dir.h"

using pylon::Errc;
using pylon::test::TempDir;

namespace {
int count_entries(const std::filesystem::path& dir) {
    int n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
    return n;
}
}  // namespace

TEST_CASE("write_file_atomic creates and replaces files, leaving no temporaries") {
    TempDir dir;
    const auto path = dir / "state.json";
    REQUIRE(pylon::write_file_atomic(path, std::string_view("first")).ok());
    CHECK(pylon::test::read_all(path) == "first");
    REQUIRE(pylon::write_file_atomic(path, std::string_view("second, longer")).ok());
    CHECK(pylon::test::read_all(path) == "second, longer");
    CHECK(count_entries(dir.path()) == 1);
}

TEST_CASE("write_file_atomic applies the requested mode") {
    TempDir dir;
    const auto path = dir / "secret.key";
    REQUIRE(pylon::write_file_atomic(path, std::string_view("k"), 0600).ok());
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("write_file_atomic failure leaves the old file untouched") {
    TempDir dir;
    const auto path = dir / "keep";
    REQUIRE(pylon::write_file_atomic(path, std::string_view("precious")).ok());
    // Renaming over a non-empty directory fails: the file at `path` must survive as it was.
    const auto blocked = dir / "blocked";
    std::filesystem::create_directories(blocked / "inside");
    auto r = pylon::write_file_atomic(blocked, std::string_view("x"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("rename") != std::string::npos);
    CHECK(pylon::test::read_all(path) == "precious");
    CHECK(count_entries(dir.path()) == 2);  // no temporary left behind

    auto missing_dir = pylon::write_file_atomic(dir / "no/such/dir/f", std::string_view("x"));
    REQUIRE_FALSE(missing_dir.ok());
    CHECK(missing_dir.error().code() == Errc::not_found);
}

TEST_CASE("read_file enforces its size limit") {
    TempDir dir;
    const auto path = dir.write("ten", "0123456789");
    auto ok = pylon::read_file(path, 10);
    REQUIRE(ok.ok());
    CHECK(*ok == "0123456789");
    auto big = pylon::read_file(path, 9);
    REQUIRE_FALSE(big.ok());
    CHECK(big.error().code() == Errc::limit_exceeded);
    auto missing = pylon::read_file(dir / "absent", 100);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code() == Errc::not_found);
    auto directory = pylon::read_file(dir.path(), 100);
    REQUIRE_FALSE(directory.ok());
    CHECK(directory.error().code() == Errc::invalid_argument);
}

TEST_CASE("remove_interrupted_writes removes only write_file_atomic's leftovers") {
    TempDir dir;
    dir.write("journal.json", "{}");
    dir.write("journal.json.tmp.abcdefghijkl", "half");        // a leftover
    dir.write("sub/deeper/id.json.tmp.0123456789ab", "half");  // nested leftover
    dir.write("notes.tmp.txt", "kept: not the pattern");
    dir.write("model.gguf.tmp.short", "kept: wrong length");
    dir.write("a/b/c/d/x.tmp.abcdefghijkl", "kept: deeper than depth 3");
    REQUIRE(pylon::remove_interrupted_writes(dir.path()).ok());
    namespace fs = std::filesystem;
    CHECK(fs::exists(dir / "journal.json"));
    CHECK_FALSE(fs::exists(dir / "journal.json.tmp.abcdefghijkl"));
    CHECK_FALSE(fs::exists(dir / "sub/deeper/id.json.tmp.0123456789ab"));
    CHECK(fs::exists(dir / "notes.tmp.txt"));
    CHECK(fs::exists(dir / "model.gguf.tmp.short"));
    CHECK(fs::exists(dir / "a/b/c/d/x.tmp.abcdefghijkl"));
    // A directory that does not exist has nothing to clean.
    CHECK(pylon::remove_interrupted_writes(dir / "missing").ok());
}
