// What the registry checks before it stores an attestation or publishes a release: signatures
// by the namespace's publisher keys over exactly the build's files, and a signed targets role
// that adds exactly the release's files.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "pylon/catalog/types.h"
#include "pylon/common/result.h"
#include "pylon/signing/tuf/metadata.h"

namespace pylon::registry::tuf {
class TufHost;
}

namespace pylon::registry::api {

// Verifies an attestation of `build` and returns the key ID that signed it:
// - provenance: a DSSE envelope whose in-toto statement (SLSA provenance v1 predicate) is signed
//   by a threshold of the namespace's publisher keys and names every file of the build (by
//   sha256) among its subjects;
// - model_signature: an OMS v1.0 bundle signed by one of the publisher keys whose manifest is
//   exactly the build's files (a single-file build: the one entry ".").
// Errc::bad_signature (422) when it does not verify, invalid_field/invalid_attestation (400)
// when it is malformed, invalid_state when the namespace has no publisher keys yet.
[[nodiscard]] Result<std::string> verify_attestation(catalog::AttestationKind kind,
                                                     const nlohmann::json& envelope,
                                                     const catalog::Build& build,
                                                     const catalog::PublisherKeySet& keys);

// The TUF targets a release's files become: path → (length, sha256, custom fields).
std::map<std::string, signing::tuf::TargetFile> expected_targets(
    const catalog::Release& release, const std::vector<catalog::Build>& builds);

// Submits the namespace's signed delegated targets role to the TUF host, accepting it only when
// its targets are the previously published ones, unchanged, plus exactly `expected`.
[[nodiscard]] Result<void> submit_release_targets(
    tuf::TufHost& host, const std::string& ns, const std::string& role_bytes,
    const std::map<std::string, signing::tuf::TargetFile>& expected);

}  // namespace pylon::registry::api
