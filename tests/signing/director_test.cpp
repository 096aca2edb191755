// Director documents: signed by the director key, bound to one device, versions only grow,
// expiry enforced, at most one target; every refusal has its TUF error code.
#include <catch2/catch.hpp>

#include "pylon/signing/tuf/director.h"

using namespace pylon::signing;
using namespace pylon::signing::tuf;
using namespace std::chrono_literals;

namespace {

DirectorDocument sample(Time now) {
    DirectorDocument d;
    d.version = 5;
    d.expires = now + std::chrono::hours(1);
    d.device = {7, "edge", "dev-1"};
    d.target_path = "acme/tiny/1.0.0/cpu/model.gguf";
    d.target.length = 1234;
    d.target.hashes["sha256"] = std::string(64, 'b');
    d.target.custom = Json{{"pylon", {{"version", "1.0.0"}}}};
    return d;
}

}  // namespace

TEST_CASE("director documents verify only for their device, newer and unexpired",
          "[signing][director]") {
    const auto key = PrivateKey::generate(KeyType::ed25519).value();
    const Time now =
        std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    const DirectorDocument doc = sample(now);
    const std::string bytes = sign_director_document(doc, key).value();

    auto ok = verify_director_document(bytes, key.public_key(), doc.device, 4, now);
    REQUIRE(ok);
    CHECK(ok->version == 5);
    REQUIRE(ok->target_path);
    CHECK(*ok->target_path == *doc.target_path);
    CHECK(ok->target.length == 1234);
    CHECK(ok->target.custom == doc.target.custom);

    // Replayed (version not above the accepted one).
    auto replay = verify_director_document(bytes, key.public_key(), doc.device, 5, now);
    REQUIRE_FALSE(replay);
    CHECK(replay.error().code() == Errc::rollback);
    // Expired.
    auto late = verify_director_document(bytes, key.public_key(), doc.device, 4,
                                         now + std::chrono::hours(2));
    REQUIRE_FALSE(late);
    CHECK(late.error().code() == Errc::expired);
    // Another device's document.
    auto other = verify_director_document(bytes, key.public_key(), {8, "edge", "dev-2"}, 0, now);
    REQUIRE_FALSE(other);
    CHECK(other.error().code() == Errc::invalid_argument);
    // Signed by another key.
    const auto mallory = PrivateKey::generate(KeyType::ed25519).value();
    auto forged = verify_director_document(sign_director_document(doc, mallory).value(),
                                           key.public_key(), doc.device, 0, now);
    REQUIRE_FALSE(forged);
    CHECK(forged.error().code() == Errc::threshold_not_met);
    // Tampered after signing: the target's hash changed.
    std::string tampered = bytes;
    tampered.replace(tampered.find(std::string(64, 'b')), 64, std::string(64, 'c'));
    auto t = verify_director_document(tampered, key.public_key(), doc.device, 0, now);
    REQUIRE_FALSE(t);
    CHECK(t.error().code() == Errc::threshold_not_met);
    // Oversized.
    CHECK(verify_director_document(std::string(70000, ' '), key.public_key(), doc.device, 0, now)
              .error()
              .code() == Errc::too_large);
}

TEST_CASE("a director document may name no target, with a note", "[signing][director]") {
    const auto key = PrivateKey::generate(KeyType::ed25519).value();
    const Time now =
        std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    DirectorDocument doc = sample(now);
    doc.target_path.reset();
    doc.note = "no build of acme/tiny 1.0.0 fits: needs avx512f";
    auto v = verify_director_document(sign_director_document(doc, key).value(), key.public_key(),
                                      doc.device, 0, now);
    REQUIRE(v);
    CHECK_FALSE(v->target_path);
    CHECK(v->note == doc.note);

    // Two targets: refused.
    Metadata<Targets> md;
    md.signed_.version = 9;
    md.signed_.expires = now + 1h;
    md.signed_.targets["a"] = sample(now).target;
    md.signed_.targets["b"] = sample(now).target;
    md.signed_.unrecognized["x-pylon-device"] = {{"id", 7}, {"fleet", "edge"}, {"name", "dev-1"}};
    REQUIRE(md.sign(key));
    auto two = verify_director_document(md.to_bytes(), key.public_key(), doc.device, 0, now);
    REQUIRE_FALSE(two);
    CHECK(two.error().code() == Errc::malformed_metadata);
}
