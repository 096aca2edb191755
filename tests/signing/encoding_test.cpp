#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "temp_dir.h"

#include "pylon/signing/encoding.h"
#include "pylon/signing/errors.h"
#include "pylon/signing/sha256.h"

using namespace pylon::signing;
using pylon::as_bytes;
using pylon::to_string;

TEST_CASE("hex round-trips and refuses malformed input") {
    CHECK(hex_encode(as_bytes(std::string_view("\x00\xff\x10", 3))) == "00ff10");
    CHECK(to_string(*hex_decode("00FF10")) == std::string("\x00\xff\x10", 3));
    CHECK(hex_decode("abc").error().code() == Errc::bad_encoding);
    CHECK(hex_decode("zz").error().code() == Errc::bad_encoding);
    CHECK(hex_decode("").value().empty());
}

TEST_CASE("base64 matches the RFC 4648 section 10 test vectors") {
    const std::pair<const char*, const char*> cases[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
    for (const auto& [plain, encoded] : cases) {
        CHECK(base64_encode(as_bytes(plain)) == encoded);
        CHECK(to_string(*base64_decode(encoded)) == plain);
        CHECK(to_string(*base64_decode_any(encoded)) == plain);
    }
}

TEST_CASE("URL-safe base64 uses - and _ without padding") {
    const std::string raw("\xfb\xff\xfe", 3);
    CHECK(base64_encode(as_bytes(raw)) == "+//+");
    CHECK(base64url_encode(as_bytes(raw)) == "-__-");
    CHECK(to_string(*base64url_decode("-__-")) == raw);
    CHECK(to_string(*base64_decode_any("-__-")) == raw);
    CHECK(to_string(*base64_decode_any("+//+")) == raw);
    CHECK(to_string(*base64url_decode("Zm8")) == "fo");   // unpadded
    CHECK(to_string(*base64url_decode("Zm8=")) == "fo");  // padded accepted too
}

TEST_CASE("base64 decoders are strict") {
    CHECK(base64_decode("Zm9v!").error().code() == Errc::bad_encoding);    // bad character
    CHECK(base64_decode("Zm8").error().code() == Errc::bad_encoding);      // std needs padding
    CHECK(base64_decode("Zm9=").error().code() == Errc::bad_encoding);     // non-zero trailing bits
    CHECK(base64_decode("Z===").error().code() == Errc::bad_encoding);     // dangling character
    CHECK(base64url_decode("+//+").error().code() == Errc::bad_encoding);  // std alphabet in url
    CHECK(base64_decode("-__-").error().code() == Errc::bad_encoding);     // url alphabet in std
    CHECK(base64_decode_any("Zm 9v").error().code() == Errc::bad_encoding);
}

TEST_CASE("SHA-256 matches FIPS 180-2 examples, one-shot and streamed") {
    CHECK(to_hex(sha256(std::string_view(""))) ==
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(to_hex(sha256(std::string_view("abc"))) ==
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const std::string two_block = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK(to_hex(sha256(std::string_view(two_block))) ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    // One million 'a', fed in uneven pieces.
    Sha256 h;
    const std::string chunk(997, 'a');
    std::size_t fed = 0;
    while (fed < 1000000) {
        const std::size_t n = std::min<std::size_t>(chunk.size(), 1000000 - fed);
        h.update(std::string_view(chunk.data(), n));
        fed += n;
    }
    CHECK(to_hex(h.finish()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    // finish() resets.
    h.update(std::string_view("abc"));
    CHECK(to_hex(h.finish()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("digest_from_hex checks length") {
    CHECK(digest_from_hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad").ok());
    CHECK(digest_from_hex("ba78").error().code() == Errc::bad_encoding);
}

TEST_CASE("sha256_file streams regular files and refuses anything else") {
    pylon::test::TempDir dir;
    const auto file = dir.write("abc.txt", "abc");
    CHECK(to_hex(*sha256_file(file)) ==
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha256_file(dir.path()).error().code() == pylon::Errc::unsupported);
    const auto fifo = dir / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    // Must return at once (no writer will ever come), not block.
    CHECK(sha256_file(fifo).error().code() == pylon::Errc::unsupported);
    CHECK(sha256_file(dir / "absent").error().code() == pylon::Errc::not_found);
}
