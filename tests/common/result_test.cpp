#include <catch2/catch.hpp>

#include <memory>

#include "pylon/common/result.h"

using pylon::Errc;
using pylon::Error;
using pylon::Result;

namespace {

Result<int> parse_positive(int v) {
    if (v <= 0) return Error(Errc::invalid_argument, "not positive: " + std::to_string(v));
    return v;
}

Result<int> doubled(int v) {
    PYLON_TRY_ASSIGN(int x, parse_positive(v));
    return 2 * x;
}

Result<void> check(int v) {
    PYLON_TRY(parse_positive(v));
    return {};
}

}  // namespace

TEST_CASE("Result holds a value or an error") {
    auto ok = doubled(21);
    REQUIRE(ok.ok());
    CHECK(*ok == 42);

    auto bad = doubled(-1);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code() == Errc::invalid_argument);
    CHECK(bad.error().message() == "not positive: -1");
    CHECK(bad.value_or(7) == 7);
}

TEST_CASE("Result<void> propagates through PYLON_TRY") {
    CHECK(check(1).ok());
    auto r = check(0);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == Errc::invalid_argument);
}

TEST_CASE("Result holds move-only values") {
    Result<std::unique_ptr<int>> r = std::make_unique<int>(5);
    REQUIRE(r.ok());
    auto p = std::move(r).value();
    CHECK(*p == 5);
}

TEST_CASE("Error chains context outermost first") {
    Error e(Errc::not_found, "no such key");
    std::move(e).with_context("loading key k.key");
    e.with_context("signing model");
    CHECK(e.what() == "signing model: loading key k.key: no such key");
    CHECK(e.to_string() == "signing model: loading key k.key: no such key [pylon:2]");
    CHECK(e.code() != Errc::io_error);
}

TEST_CASE("Error::from_errno maps errno to codes") {
    CHECK(Error::from_errno(ENOENT, "open x").code() == Errc::not_found);
    CHECK(Error::from_errno(EACCES, "open x").code() == Errc::permission_denied);
    CHECK(Error::from_errno(EIO, "read x").code() == Errc::io_error);
    CHECK(Error::from_errno(ENOENT, "open x").message().find("open x: ") == 0);
}
