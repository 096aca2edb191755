// in-toto Statement v1 (https://in-toto.io/Statement/v1) and the SLSA provenance v1 predicate
// (https://slsa.dev/provenance/v1), as Pylon writes them for a quantized model build:
//
//   subject:            the build's file(s) with their sha256
//   buildType:          https://pylon.dev/buildtypes/quantize/v1
//   externalParameters: {"quantization": "Q4_0", "target": "x86_64-avx2"}
//   resolvedDependencies:
//     {"name": "base-model", "uri": <where the base model came from>, "digest": {"sha256": ...}}
//     {"name": "quantizer",  "uri": "pkg:generic/<tool>@<version>"}
//   runDetails.builder.id: who ran the build (default https://pylon.dev/builders/pylon-cli)
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "pylon/common/result.h"
#include "pylon/signing/dsse.h"
#include "pylon/signing/sha256.h"

namespace pylon::signing {

inline constexpr std::string_view kStatementType = "https://in-toto.io/Statement/v1";
inline constexpr std::string_view kSlsaProvenanceV1 = "https://slsa.dev/provenance/v1";
inline constexpr std::string_view kQuantizeBuildType = "https://pylon.dev/buildtypes/quantize/v1";

// A ResourceDescriptor: name/uri and digests ("sha256" -> hex).
struct ResourceDescriptor {
    std::string name;
    std::string uri;
    std::map<std::string, std::string> digest;

    nlohmann::json to_json() const;
    [[nodiscard]] static Result<ResourceDescriptor> from_json(const nlohmann::json& j);
};

struct Statement {
    std::vector<ResourceDescriptor> subject;  // each with a name and a digest
    std::string predicate_type;
    nlohmann::json predicate = nlohmann::json::object();

    nlohmann::json to_json() const;
    // Checks the schema: _type, a non-empty subject whose entries have digests of known
    // algorithms in hex, a predicateType URI, an object predicate.
    // Errc::malformed_statement on any violation.
    [[nodiscard]] static Result<Statement> from_json(const nlohmann::json& j);

    // True when some subject has this sha256 (and, if `name` is non-empty, this name).
    bool has_subject(const Digest& sha256, std::string_view name = {}) const;
};

struct QuantizationProvenance {
    std::string base_model_uri;  // optional: where it came from, e.g. "hf://meta-llama/Llama-2-7b"
    Digest base_model_sha256{};
    std::string quantizer;     // "<tool>@<version>", e.g. "llama.cpp@b4567"
    std::string quantization;  // e.g. "Q4_0"
    std::string target;        // hardware target, e.g. "x86_64-avx2"
    std::string builder_id = "https://pylon.dev/builders/pylon-cli";
    std::string invocation_id;  // optional
    std::string started_on;     // RFC 3339, optional
    std::string finished_on;    // RFC 3339, optional
};

// The SLSA provenance v1 predicate for a quantized build. Errc::malformed_statement when a
// required field is empty or the quantizer is not "<tool>@<version>".
[[nodiscard]] Result<nlohmann::json> slsa_quantization_predicate(const QuantizationProvenance& p);
// Reads the fields back from a predicate, checking the SLSA v1 schema and Pylon's buildType.
[[nodiscard]] Result<QuantizationProvenance> parse_slsa_quantization_predicate(
    const nlohmann::json& predicate);

// Signs a statement into a DSSE envelope (payloadType application/vnd.in-toto+json).
[[nodiscard]] Result<Envelope> sign_statement(const Statement& statement, const PrivateKey& key);

// Verifies the envelope with `key`, then parses and checks the statement (and, if given, its
// predicate type: Errc::wrong_predicate_type otherwise).
[[nodiscard]] Result<Statement> verify_statement(const Envelope& envelope, const PublicKey& key,
                                                 std::string_view expected_predicate_type = {});

}  // namespace pylon::signing
