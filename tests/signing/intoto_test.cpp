#include <catch2/catch.hpp>

#include "pylon/signing/errors.h"
#include "pylon/signing/intoto.h"
#include "pylon/signing/json.h"

using namespace pylon::signing;
using nlohmann::json;

namespace {

QuantizationProvenance sample() {
    QuantizationProvenance p;
    p.base_model_uri = "hf://karpathy/tinyllamas/stories260K";
    p.base_model_sha256 = sha256(std::string_view("base model bytes"));
    p.quantizer = "llama.cpp@b4747";
    p.quantization = "Q8_0";
    p.target = "x86_64-avx2";
    p.finished_on = "2026-11-21T12:00:00Z";
    return p;
}

Statement provenance_statement() {
    Statement st;
    st.subject.push_back(
        {"model.gguf", "", {{"sha256", to_hex(sha256(std::string_view("model")))}}});
    st.predicate_type = std::string(kSlsaProvenanceV1);
    st.predicate = slsa_quantization_predicate(sample()).value();
    return st;
}

}  // namespace

TEST_CASE("SLSA provenance for a quantized build follows the v1 schema") {
    const json pred = slsa_quantization_predicate(sample()).value();
    const auto& def = pred["buildDefinition"];
    CHECK(def["buildType"] == kQuantizeBuildType);
    CHECK(def["externalParameters"] == json{{"quantization", "Q8_0"}, {"target", "x86_64-avx2"}});
    REQUIRE(def["resolvedDependencies"].size() == 2);
    CHECK(def["resolvedDependencies"][0]["name"] == "base-model");
    CHECK(def["resolvedDependencies"][0]["digest"]["sha256"] == to_hex(sample().base_model_sha256));
    CHECK(def["resolvedDependencies"][1]["uri"] == "pkg:generic/llama.cpp@b4747");
    CHECK(pred["runDetails"]["builder"]["id"] == "https://pylon.dev/builders/pylon-cli");
    CHECK(pred["runDetails"]["metadata"]["finishedOn"] == "2026-11-21T12:00:00Z");

    auto back = parse_slsa_quantization_predicate(pred);
    REQUIRE(back.ok());
    CHECK(back->quantizer == "llama.cpp@b4747");
    CHECK(back->base_model_sha256 == sample().base_model_sha256);
    CHECK(back->target == "x86_64-avx2");
}

TEST_CASE("Provenance inputs are validated") {
    auto p = sample();
    p.quantizer = "llama.cpp";
    CHECK(slsa_quantization_predicate(p).error().code() == Errc::malformed_statement);
    p = sample();
    p.quantization.clear();
    CHECK(slsa_quantization_predicate(p).error().code() == Errc::malformed_statement);
    json pred = slsa_quantization_predicate(sample()).value();
    pred["buildDefinition"]["buildType"] = "https://example.com/other";
    CHECK(parse_slsa_quantization_predicate(pred).error().code() == Errc::malformed_statement);
}

TEST_CASE("Statements are signed and verified in DSSE") {
    for (KeyType t : {KeyType::ed25519, KeyType::ecdsa_p256}) {
        auto key = PrivateKey::generate(t).value();
        const Statement st = provenance_statement();
        auto env = sign_statement(st, key);
        REQUIRE(env.ok());
        CHECK(env->payload_type == kInTotoPayloadType);
        auto verified = verify_statement(*env, key.public_key(), kSlsaProvenanceV1);
        REQUIRE(verified.ok());
        CHECK(verified->has_subject(sha256(std::string_view("model")), "model.gguf"));
        CHECK_FALSE(verified->has_subject(sha256(std::string_view("other"))));
        CHECK(verified->predicate == st.predicate);
    }
}

TEST_CASE("Statement tamper cases fail with specific errors") {
    auto key = PrivateKey::generate(KeyType::ed25519).value();
    auto env = sign_statement(provenance_statement(), key).value();

    SECTION("changed predicate under the old signature") {
        json payload = json::parse(pylon::to_string(env.payload));
        payload["predicate"]["buildDefinition"]["externalParameters"]["quantization"] = "Q4_0";
        const std::string changed = payload.dump();
        env.payload.assign(changed.begin(), changed.end());
        CHECK(verify_statement(env, key.public_key()).error().code() == Errc::bad_signature);
    }
    SECTION("other predicate type expected") {
        CHECK(verify_statement(env, key.public_key(), "https://example.com/other/v1")
                  .error()
                  .code() == Errc::wrong_predicate_type);
    }
    SECTION("wrong payloadType") {
        auto other = dsse_sign("application/json", env.payload, {&key}).value();
        CHECK(verify_statement(other, key.public_key()).error().code() == Errc::wrong_payload_type);
    }
    SECTION("signed, but not a statement") {
        const std::string not_statement =
            R"({"_type":"https://in-toto.io/Statement/v0.1","subject":[]})";
        auto e = dsse_sign(kInTotoPayloadType, pylon::as_bytes(not_statement), {&key}).value();
        CHECK(verify_statement(e, key.public_key()).error().code() == Errc::malformed_statement);
    }
}

TEST_CASE("Statement::from_json checks the schema") {
    json good = provenance_statement().to_json();
    CHECK(Statement::from_json(good).ok());
    json j = good;
    j["subject"] = json::array();
    CHECK(Statement::from_json(j).error().code() == Errc::malformed_statement);
    j = good;
    j["subject"][0]["digest"]["sha256"] = "ABC";
    CHECK(Statement::from_json(j).error().code() == Errc::malformed_statement);
    j = good;
    j["predicate"] = "text";
    CHECK(Statement::from_json(j).error().code() == Errc::malformed_statement);
    j = good;
    j.erase("predicateType");
    CHECK(Statement::from_json(j).error().code() == Errc::malformed_statement);
}
