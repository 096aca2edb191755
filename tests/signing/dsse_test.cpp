#include <catch2/catch.hpp>

#include <openssl/ecdsa.h>

#include <algorithm>
#include <map>

#include "pylon/signing/dsse.h"
#include "pylon/signing/encoding.h"
#include "pylon/signing/errors.h"
#include "test_data.h"

using namespace pylon::signing;
using nlohmann::json;
using pylon::as_bytes;

namespace {
PrivateKey make(KeyType t) {
    return PrivateKey::generate(t).value();
}
}  // namespace

namespace {
pylon::Bytes unhex(const std::string& s) {
    return hex_decode(s).value();
}

// DSSE's protocol example signs with raw r||s (IEEE P1363); Pylon, like TUF and OpenSSL, uses DER.
pylon::Bytes p1363_to_der(const pylon::Bytes& raw) {
    ECDSA_SIG* sig = ECDSA_SIG_new();
    ECDSA_SIG_set0(sig, BN_bin2bn(raw.data(), 32, nullptr),
                   BN_bin2bn(raw.data() + 32, 32, nullptr));
    unsigned char* der = nullptr;
    const int len = i2d_ECDSA_SIG(sig, &der);
    pylon::Bytes out(der, der + len);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    return out;
}
}  // namespace

TEST_CASE("PAE matches the DSSE protocol document and test vectors") {
    const auto data = pylon::test::load_test_json("dsse_pae.json");
    int checked = 0;
    for (const auto& c : data["cases"]) {
        INFO(c["origin"].get<std::string>());
        CHECK(hex_encode(pylon::as_bytes(
                  pae(c["payload_type"].is_string() ? c["payload_type"].get<std::string>() : "",
                      unhex(c["payload_hex"])))) == c["pae_hex"].get<std::string>());
        ++checked;
    }
    CHECK(checked >= 3);
    CHECK(pae("", {}) == "DSSEv1 0  0 ");
}

TEST_CASE("The DSSE protocol's signed example verifies") {
    const auto data = pylon::test::load_test_json("dsse_pae.json");
    const auto& example = data["envelopes"][0];
    auto key =
        PublicKey::from_raw(KeyType::ecdsa_p256, unhex(example["key"]["public_uncompressed_hex"]));
    REQUIRE(key.ok());
    auto env = Envelope::from_json(example["envelope"]);
    REQUIRE(env.ok());
    CHECK(pylon::to_string(env->payload) == "hello world");
    for (auto& s : env->signatures) s.sig = p1363_to_der(s.sig);
    CHECK(dsse_verify(*env, {*key}, 1, "http://example.com/HelloWorld").ok());
    env->payload.push_back('!');
    CHECK(dsse_verify(*env, {*key}, 1, "http://example.com/HelloWorld").error().code() ==
          Errc::bad_signature);
}

TEST_CASE("DSSE test vectors: accept and reject as the suite expects") {
    const auto data = pylon::test::load_test_json("dsse_pae.json");
    std::map<std::string, PublicKey> keys;
    for (const auto& [name, k] : data["envelope_vector_keys"].items()) {
        keys.emplace(name, PublicKey::from_raw(KeyType::ed25519, unhex(k["public"])).value());
    }
    int checked = 0;
    for (const auto& v : data["envelope_vectors"]) {
        INFO(v["id"].get<std::string>());
        std::vector<PublicKey> trusted;
        for (const auto& name : v["trustedKeys"])
            trusted.push_back(keys.at(name.get<std::string>()));
        auto env = Envelope::from_json(v["envelope"]);
        bool accepted = false;
        if (env.ok()) {
            const auto& supported = v["supportedPayloadTypes"];
            const bool type_ok =
                std::find(supported.begin(), supported.end(), env->payload_type) != supported.end();
            auto r = dsse_verify(*env, trusted, v["threshold"].get<std::size_t>(),
                                 type_ok ? env->payload_type : std::string(supported[0]));
            accepted = r.ok();
            if (!accepted && !type_ok) CHECK(r.error().code() == Errc::wrong_payload_type);
        }
        CHECK(accepted == (v["expect"] == "accept"));
        ++checked;
    }
    CHECK(checked >= 9);
}

TEST_CASE("DSSE envelopes sign, serialise and verify") {
    for (KeyType t : {KeyType::ed25519, KeyType::ecdsa_p256}) {
        INFO(to_string(t));
        auto key = make(t);
        auto env = dsse_sign("application/x-test", as_bytes("hello world"), {&key});
        REQUIRE(env.ok());
        auto parsed = Envelope::parse(env->to_json_text());
        REQUIRE(parsed.ok());
        CHECK(parsed->signatures.size() == 1);
        CHECK(parsed->signatures[0].keyid == key.key_id());
        auto v = dsse_verify(*parsed, {key.public_key()}, 1, "application/x-test");
        REQUIRE(v.ok());
        CHECK(pylon::to_string(v->payload) == "hello world");
        CHECK(v->key_ids == std::vector<std::string>{key.key_id()});
    }
}

TEST_CASE("DSSE accepts standard and URL-safe base64") {
    auto key = make(KeyType::ed25519);
    const std::string payload("\xfb\xff\xfe\xfb", 4);  // encodes with + and / in standard base64
    auto env = dsse_sign("t", as_bytes(payload), {&key}).value();
    json j = env.to_json();
    const std::string std_b64 = j["payload"];
    CHECK(std_b64.find_first_of("+/") != std::string::npos);
    j["payload"] = base64url_encode(as_bytes(payload));
    j["signatures"][0]["sig"] = base64url_encode(env.signatures[0].sig);
    auto parsed = Envelope::from_json(j);
    REQUIRE(parsed.ok());
    CHECK(dsse_verify(*parsed, {key.public_key()}, 1, "t").ok());
}

TEST_CASE("DSSE tamper cases fail with specific errors") {
    auto key = make(KeyType::ecdsa_p256);
    auto other = make(KeyType::ecdsa_p256);
    const auto env =
        dsse_sign("application/vnd.in-toto+json", as_bytes("{\"a\":1}"), {&key}).value();

    SECTION("changed payload") {
        auto e = env;
        e.payload.back() ^= 1;
        CHECK(dsse_verify(e, {key.public_key()}, 1, "").error().code() == Errc::bad_signature);
    }
    SECTION("payloadType changed: signature no longer verifies") {
        auto e = env;
        e.payload_type = "application/json";
        CHECK(dsse_verify(e, {key.public_key()}, 1, "").error().code() == Errc::bad_signature);
    }
    SECTION("wrong payloadType expected") {
        CHECK(dsse_verify(env, {key.public_key()}, 1, "application/json").error().code() ==
              Errc::wrong_payload_type);
    }
    SECTION("signature by another key") {
        CHECK(dsse_verify(env, {other.public_key()}, 1, "").error().code() == Errc::untrusted_key);
        auto e = env;
        e.signatures[0].keyid.clear();
        CHECK(dsse_verify(e, {other.public_key()}, 1, "").error().code() == Errc::bad_signature);
    }
    SECTION("truncated envelope") {
        const std::string text = env.to_json_text();
        for (std::size_t cut : {text.size() - 1, text.size() / 2, std::size_t{1}}) {
            auto parsed = Envelope::parse(text.substr(0, cut));
            REQUIRE_FALSE(parsed.ok());
            CHECK(parsed.error().code() == Errc::malformed_envelope);
        }
    }
    SECTION("missing or mistyped fields") {
        json j = env.to_json();
        j.erase("payloadType");
        CHECK(Envelope::from_json(j).error().code() == Errc::malformed_envelope);
        j = env.to_json();
        j["signatures"] = "nope";
        CHECK(Envelope::from_json(j).error().code() == Errc::malformed_envelope);
        j = env.to_json();
        j["signatures"][0]["sig"] = "!!!";
        CHECK(Envelope::from_json(j).error().code() == Errc::malformed_envelope);
        j = env.to_json();
        j["signatures"] = json::array();
        CHECK(
            dsse_verify(Envelope::from_json(j).value(), {key.public_key()}, 1, "").error().code() ==
            Errc::malformed_envelope);
    }
}

TEST_CASE("DSSE k-of-n thresholds count each trusted key once") {
    auto a = make(KeyType::ed25519);
    auto b = make(KeyType::ecdsa_p256);
    auto c = make(KeyType::ed25519);
    const std::vector<PublicKey> trusted = {a.public_key(), b.public_key(), c.public_key()};

    auto two = dsse_sign("t", as_bytes("p"), {&a, &b}).value();
    auto ok = dsse_verify(two, trusted, 2, "t");
    REQUIRE(ok.ok());
    CHECK(ok->key_ids.size() == 2);
    auto three = dsse_verify(two, trusted, 3, "t");
    REQUIRE_FALSE(three.ok());
    CHECK(three.error().code() == Errc::threshold_not_met);
    CHECK(three.error().message().find("2 of 3") != std::string::npos);

    SECTION("two signatures by one key count once") {
        auto twice = dsse_sign("t", as_bytes("p"), {&a, &a}).value();
        REQUIRE(twice.signatures.size() == 2);
        CHECK(dsse_verify(twice, trusted, 2, "t").error().code() == Errc::threshold_not_met);
        // Also with the key ID hint removed, so the verifier has to try every key.
        for (auto& s : twice.signatures) s.keyid.clear();
        CHECK(dsse_verify(twice, trusted, 2, "t").error().code() == Errc::threshold_not_met);
    }
    SECTION("a trusted key listed twice still counts once") {
        auto one = dsse_sign("t", as_bytes("p"), {&a}).value();
        CHECK(dsse_verify(one, {a.public_key(), a.public_key()}, 2, "t").error().code() ==
              Errc::threshold_not_met);
    }
    SECTION("untrusted signatures do not count") {
        auto mixed = dsse_sign("t", as_bytes("p"), {&a, &c}).value();
        CHECK(dsse_verify(mixed, {a.public_key(), b.public_key()}, 2, "t").error().code() ==
              Errc::threshold_not_met);
    }
    SECTION("a keyid that lies is not believed") {
        auto e = dsse_sign("t", as_bytes("p"), {&a, &c}).value();
        e.signatures[1].keyid = b.key_id();  // c's signature claims to be b's
        CHECK(dsse_verify(e, trusted, 2, "t").error().code() == Errc::threshold_not_met);
    }
    CHECK(dsse_verify(two, trusted, 0, "t").error().code() == Errc::threshold_not_met);
}
