// TUF metadata: JSON forms, unknown fields, dates, delegation paths, threshold counting.
#include <catch2/catch.hpp>

#include "pylon/signing/encoding.h"
#include "pylon/signing/json.h"
#include "pylon/signing/sha256.h"
#include "pylon/signing/tuf/metadata.h"

using namespace pylon::signing;
using namespace pylon::signing::tuf;

namespace {

Time at(int y, unsigned m, unsigned d) {
    return std::chrono::sys_days{std::chrono::year{y} / std::chrono::month{m} / std::chrono::day{d}};
}

Root make_root(const std::vector<const PrivateKey*>& root_keys, std::uint32_t threshold) {
    Root r;
    r.expires = at(2030, 1, 1);
    for (const auto* k : root_keys) r.add_key("root", Key::from_public_key(k->public_key()));
    r.roles["root"].threshold = threshold;
    for (const char* role : {"timestamp", "snapshot", "targets"}) {
        r.add_key(role, Key::from_public_key(root_keys[0]->public_key()));
    }
    return r;
}

}  // namespace

TEST_CASE("TUF times are whole-second UTC with a Z") {
    auto t = parse_time("2030-01-01T00:00:00Z");
    REQUIRE(t.ok());
    CHECK(*t == at(2030, 1, 1));
    CHECK(format_time(*t) == "2030-01-01T00:00:00Z");
    CHECK(format_time(at(2026, 11, 21) + std::chrono::hours{15} + std::chrono::seconds{7}) ==
          "2026-11-21T15:00:07Z");
    for (const char* bad : {"2030-01-01T00:00:00", "2030-01-01 00:00:00Z", "2030-13-01T00:00:00Z",
                            "2030-02-30T00:00:00Z", "2030-01-01T00:00:00.5Z", "1893456000", ""}) {
        INFO(bad);
        CHECK(parse_time(bad).error().code() == Errc::malformed_metadata);
    }
}

TEST_CASE("Metadata round-trips and keeps unknown fields at every level") {
    const std::string text = R"({
      "signatures": [{"keyid": "ab", "sig": "cd", "x-sig": 1}],
      "x-top": "kept",
      "signed": {
        "_type": "targets", "spec_version": "1.0.31", "version": 3,
        "expires": "2030-01-01T00:00:00Z", "x-signed": {"a": [1, 2]},
        "targets": {"acme/model.gguf": {"length": 5, "hashes": {"sha256": "00"},
                                        "custom": {"quantization": "Q4_0"}, "x-target": true}},
        "delegations": {"keys": {}, "x-deleg": null,
          "roles": [{"name": "acme", "keyids": [], "threshold": 1, "terminating": true,
                     "paths": ["acme/*"], "x-role": "r"}]}
      }})";
    auto md = Metadata<Targets>::parse(text);
    REQUIRE(md.ok());
    CHECK(md->signed_.version == 3);
    CHECK(md->signed_.targets.at("acme/model.gguf").custom->at("quantization") == "Q4_0");
    REQUIRE(md->signed_.delegations.has_value());
    CHECK(md->signed_.delegations->roles[0].terminating);
    const auto again = Json::parse(md->to_bytes());
    const auto original = Json::parse(text);
    CHECK(again == original);
    // And the bytes signatures cover are those of the received "signed" object.
    CHECK(*md->signed_bytes() == *canonical_json(original["signed"]));
}

TEST_CASE("Metadata parsing checks the role type and field types") {
    auto root = Metadata<Root>::parse(R"({"signed": {"_type": "targets", "spec_version": "1.0.0",
        "version": 1, "expires": "2030-01-01T00:00:00Z", "targets": {}}, "signatures": []})");
    CHECK(root.error().code() == Errc::wrong_role_type);
    const char* bad[] = {
        R"({"signed": {"_type": "targets", "spec_version": "1.0.0", "version": "1",
            "expires": "2030-01-01T00:00:00Z", "targets": {}}, "signatures": []})",
        R"({"signed": {"_type": "targets", "spec_version": "1.0.0", "version": 0,
            "expires": "2030-01-01T00:00:00Z", "targets": {}}, "signatures": []})",
        R"({"signed": {"_type": "targets", "spec_version": "2.0.0", "version": 1,
            "expires": "2030-01-01T00:00:00Z", "targets": {}}, "signatures": []})",
        R"({"signed": {"_type": "targets", "spec_version": "1.0.0", "version": 1,
            "expires": "2030-01-01T00:00:00Z", "targets": {"a": {"length": 1, "hashes": {}}}},
            "signatures": []})",
        R"({"signed": {"_type": "targets", "spec_version": "1.0.0", "version": 1,
            "expires": "2030-01-01T00:00:00Z", "targets": {}, "x": 1.5}, "signatures": []})",
        R"({"signed": {"_type": "targets", "spec_version": "1.0.0", "version": 1,
            "expires": "2030-01-01T00:00:00Z", "targets": {}}})",
        R"({"signed": {"_type": "targets", "spec_version": "1.0.0", "version": 1,
            "expires": "2030-01-01T00:00:00Z", "targets": {}, "targets": {}}, "signatures": []})",
    };
    for (const char* text : bad) {
        INFO(text);
        CHECK(Metadata<Targets>::parse(text).error().code() == Errc::malformed_metadata);
    }
}

TEST_CASE("Root signatures: thresholds, duplicates and unsupported keys") {
    auto a = PrivateKey::generate(KeyType::ed25519).value();
    auto b = PrivateKey::generate(KeyType::ecdsa_p256).value();
    auto c = PrivateKey::generate(KeyType::ed25519).value();
    Metadata<Root> md;
    md.signed_ = make_root({&a, &b, &c}, 2);
    // An RSA key we cannot use is listed for root: it must be ignored, not fatal.
    Key rsa;
    rsa.keytype = "rsa";
    rsa.scheme = "rsassa-pss-sha256";
    rsa.keyval = {{"public", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n"}};
    md.signed_.add_key("root", rsa);
    REQUIRE(md.sign(a).ok());
    const auto& root = md.signed_;

    auto one = verify_with(md, "root", root.keys, root.roles.at("root"));
    REQUIRE_FALSE(one.ok());
    CHECK(one.error().code() == Errc::threshold_not_met);
    CHECK(one.error().message().find("1 of 2") != std::string::npos);

    SECTION("two signatures by one key ID count once") {
        md.signatures.push_back(md.signatures[0]);
        CHECK(verify_with(md, "root", root.keys, root.roles.at("root")).error().code() ==
              Errc::threshold_not_met);
    }
    SECTION("one key listed under two key IDs counts once") {
        auto roles = root.roles.at("root");
        auto keys = root.keys;
        const std::string alias(64, 'e');
        keys[alias] = keys.at(md.signatures[0].keyid);
        roles.keyids.push_back(alias);
        md.signatures.push_back({alias, md.signatures[0].sig, Json::object()});
        CHECK(verify_with(md, "root", keys, roles).error().code() == Errc::threshold_not_met);
    }
    SECTION("a second distinct key meets the threshold; an unsupported signature is ignored") {
        md.signatures.push_back({rsa.key_id(), "00ff", Json::object()});
        REQUIRE(md.sign(b).ok());
        CHECK(verify_with(md, "root", root.keys, root.roles.at("root")).ok());
        // Round trip through bytes: the signatures still verify over the received content.
        auto parsed = Metadata<Root>::parse(md.to_bytes());
        REQUIRE(parsed.ok());
        CHECK(verify_with(*parsed, "root", parsed->signed_.keys, parsed->signed_.roles.at("root"))
                  .ok());
    }
    SECTION("a signature by a key not in the role does not count") {
        auto d = PrivateKey::generate(KeyType::ed25519).value();
        REQUIRE(md.sign(d).ok());
        CHECK(verify_with(md, "root", root.keys, root.roles.at("root")).error().code() ==
              Errc::threshold_not_met);
    }
    SECTION("content changed after signing") {
        REQUIRE(md.sign(b).ok());
        auto parsed = Metadata<Root>::parse(md.to_bytes()).value();
        parsed.received_signed_bytes.reset();
        parsed.signed_.version = 2;
        CHECK(verify_with(parsed, "root", root.keys, root.roles.at("root")).error().code() ==
              Errc::threshold_not_met);
    }
}

TEST_CASE("Key IDs are the hash of the canonical key object") {
    auto k = PrivateKey::generate(KeyType::ed25519).value();
    const Key key = Key::from_public_key(k.public_key());
    CHECK(key.key_id() == k.key_id());
    CHECK(key.public_key().has_value());
    Key unknown = key;
    unknown.scheme = "ed448";
    CHECK_FALSE(unknown.public_key().has_value());
}

TEST_CASE("Delegated paths: one segment per '*', and hash prefixes") {
    DelegatedRole role;
    role.name = "acme";
    role.paths = std::vector<std::string>{"acme/*", "shared/*.gguf", "exact/file.bin"};
    CHECK(role.is_delegated_path("acme/model.gguf"));
    CHECK_FALSE(role.is_delegated_path("acme/x/model.gguf"));  // '*' stays within a segment
    CHECK_FALSE(role.is_delegated_path("other/model.gguf"));
    CHECK(role.is_delegated_path("shared/a.gguf"));
    CHECK_FALSE(role.is_delegated_path("shared/a.bin"));
    CHECK(role.is_delegated_path("exact/file.bin"));
    CHECK_FALSE(role.is_delegated_path("exact/file.bin2"));

    DelegatedRole hashed;
    const std::string h = to_hex(sha256(std::string_view("acme/model.gguf")));
    hashed.path_hash_prefixes = std::vector<std::string>{h.substr(0, 2)};
    CHECK(hashed.is_delegated_path("acme/model.gguf"));
    DelegatedRole none;
    CHECK_FALSE(none.is_delegated_path("acme/model.gguf"));
}

TEST_CASE("Target and meta files check lengths and hashes") {
    const std::string data = "model bytes";
    const auto tf = TargetFile::from_data(pylon::as_bytes(data), Json{{"arch", "x86_64"}});
    CHECK(tf.verify(pylon::as_bytes(data), "t").ok());
    CHECK(tf.verify(pylon::as_bytes(data + "!"), "t").error().code() == Errc::length_mismatch);
    std::string flipped = data;
    flipped[0] ^= 1;
    CHECK(tf.verify(pylon::as_bytes(flipped), "t").error().code() == Errc::hash_mismatch);

    MetaFile mf;
    mf.version = 2;
    CHECK(mf.verify(pylon::as_bytes(data), "snapshot.json").ok());  // nothing to check
    mf.length = static_cast<std::int64_t>(data.size());
    mf.hashes["sha256"] = to_hex(sha256(std::string_view(data)));
    CHECK(mf.verify(pylon::as_bytes(data), "snapshot.json").ok());
    CHECK(mf.verify(pylon::as_bytes(flipped), "snapshot.json").error().code() ==
          Errc::hash_mismatch);
    CHECK(MetaFile::from_json(Json{{"version", 0}}).error().code() == Errc::malformed_metadata);
}
