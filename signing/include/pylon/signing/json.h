// JSON for signed data: strict parsing with limits, and canonical JSON.
//
// Canonical JSON is the form TUF and securesystemslib sign (byte-exact with
// securesystemslib.formats.encode_canonical): object keys sorted by code point, no whitespace,
// strings escape only '\\' and '"' (everything else, control characters and non-ASCII included,
// is written as raw UTF-8), integers only — a float is refused — and true/false/null.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>

#include "pylon/common/result.h"

namespace pylon::signing {

struct JsonLimits {
    std::size_t max_bytes = 16u << 20;  // document size
    int max_depth = 64;                 // nesting of objects and arrays
};

// Parses untrusted JSON: refuses oversize documents, deep nesting, duplicate object keys,
// invalid UTF-8 and trailing data, with pylon::Errc::parse_error or limit_exceeded.
[[nodiscard]] Result<nlohmann::json> parse_json(std::string_view text, JsonLimits limits = {});

// Errc::non_canonical for a value canonical JSON cannot represent (a float).
[[nodiscard]] Result<std::string> canonical_json(const nlohmann::json& value);

}  // namespace pylon::signing
