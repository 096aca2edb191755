#include <catch2/catch.hpp>

#include <string>

#include "pylon/registry/blob/digest.h"
#include "pylon/registry/blob/errors.h"
#include "pylon/signing/sha256.h"

using pylon::registry::blob::Digest;
using pylon::registry::blob::Errc;

namespace {
const std::string kHex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
}

TEST_CASE("Digest parses the canonical sha256 form and prints it back", "[blob][digest]") {
    auto d = Digest::parse("sha256:" + kHex);
    REQUIRE(d);
    CHECK(d->hex() == kHex);
    CHECK(d->str() == "sha256:" + kHex);
    CHECK(*d == Digest::from_bytes(pylon::signing::sha256(std::string_view{})));
    CHECK_FALSE(*d == Digest::from_bytes(pylon::signing::sha256(std::string_view{"x"})));
}

TEST_CASE("Digest rejects every other spelling, naming the problem", "[blob][digest]") {
    struct Case {
        std::string text;
        std::string mentions;
    };
    std::string upper = kHex;
    upper[10] = 'C';
    std::string bad_char = kHex;
    bad_char[63] = 'g';
    const Case cases[] = {
        {"", "no algorithm"},
        {kHex, "no algorithm"},
        {"sha512:" + kHex, "sha512"},
        {"SHA256:" + kHex, "SHA256"},
        {"sha256:", "0 hex characters"},
        {"sha256:" + kHex.substr(1), "63 hex characters"},
        {"sha256:" + kHex + "0", "65 hex characters"},
        {"sha256:" + upper, "position 10"},
        {"sha256:" + bad_char, "position 63"},
        {"sha256: " + kHex.substr(1), "position 0"},
        {"sha256:" + kHex + std::string(200, 'a'), "characters long"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.text);
        auto d = Digest::parse(c.text);
        REQUIRE_FALSE(d);
        CHECK(d.error().code() == Errc::invalid_digest);
        CHECK_THAT(d.error().message(), Catch::Contains(c.mentions));
    }
}
