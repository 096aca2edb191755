// The JSON shapes the API returns (docs/API.md, registry/openapi.yaml), and the reading of the
// shared request objects (licence, hardware target).
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <vector>

#include "pylon/catalog/types.h"
#include "pylon/common/result.h"

namespace pylon::registry::api {

using Json = nlohmann::json;

// Sets j[key] to `t` in RFC 3339 when it has a value (optional timestamps are omitted).
void set_time(Json& j, const char* key, const std::optional<catalog::Timestamp>& t);

Json to_json(const catalog::Namespace& ns);
Json to_json(const catalog::Model& model);
// Without builds and attestations (lists); release_json adds them.
Json to_json(const catalog::Release& release);
Json release_json(const catalog::Release& release, const std::vector<catalog::Build>& builds,
                  const std::vector<catalog::Attestation>& attestations);
Json to_json(const catalog::Build& build, const catalog::Release& release);
Json to_json(const catalog::HardwareTarget& target);
Json to_json(const catalog::ApiToken& token);
Json to_json(const catalog::AuditEntry& entry);
Json to_json(const catalog::Attestation& a, bool with_body);

// The TUF target path of a build file: <ns>/<model>/<version>/<build>/<file>.
std::string target_path(const catalog::Release& release, const catalog::Build& build,
                        const catalog::BuildFile& file);

// Reads and validates a licence object (SPDX expression, region codes, strict fields).
[[nodiscard]] Result<catalog::License> read_license(const Json& json, const std::string& path);
// Reads and validates a hardware target object.
[[nodiscard]] Result<catalog::HardwareTarget> read_target(const Json& json,
                                                          const std::string& path);

}  // namespace pylon::registry::api
