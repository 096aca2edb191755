// Validation of untrusted API input: names, versions, licence expressions and strict JSON
// objects. Every check returns an Error with code api::Errc::invalid_field (or invalid_json)
// whose message names the field and what was wrong, so the client sees exactly what to fix.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pylon/common/result.h"

namespace pylon::registry::api {

using Json = nlohmann::json;

// Namespace and model names: [a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?
[[nodiscard]] Result<void> check_name(std::string_view field, std::string_view value);
// Build and file names: [A-Za-z0-9][A-Za-z0-9._-]{0,126}
[[nodiscard]] Result<void> check_item_name(std::string_view field, std::string_view value);
// Semantic Versioning 2.0.0 (major.minor.patch, optional -prerelease and +build), ≤ 64 chars.
[[nodiscard]] Result<void> check_semver(std::string_view field, std::string_view value);
// An SPDX licence expression (SPDX 2.3 annex D): identifiers from the SPDX licence list
// (case-insensitive; deprecated ones accepted), `+`, `LicenseRef-…`, `DocumentRef-…:LicenseRef-…`,
// AND / OR / WITH <exception> and parentheses. ≤ 512 characters, nesting ≤ 16.
[[nodiscard]] Result<void> check_spdx_expression(std::string_view field, std::string_view value);
// ISO 3166-1 alpha-2 region codes (two upper-case letters).
[[nodiscard]] Result<void> check_region(std::string_view field, std::string_view value);

// A positive decimal id from a path parameter; anything else is Errc::not_found naming `what`
// ("token 12x not found"), since no such object can exist.
[[nodiscard]] Result<std::int64_t> parse_id(const std::string& text, std::string_view what);

// Parses a request body as a JSON object (strict: size and depth limits, duplicate keys,
// trailing data). Errc::invalid_json naming the problem.
[[nodiscard]] Result<Json> parse_object(std::string_view body);

// Reads the fields of one JSON object, refusing wrong types, over-long strings and — at
// finish() — any field that was not read. Paths in messages are dotted ("target.arch").
class ObjectReader {
public:
    ObjectReader(const Json& object, std::string path = {});

    [[nodiscard]] Result<std::string> string(std::string_view key, std::size_t max_len = 256);
    [[nodiscard]] Result<std::optional<std::string>> optional_string(std::string_view key,
                                                                     std::size_t max_len = 256);
    [[nodiscard]] Result<std::optional<bool>> optional_bool(std::string_view key);
    [[nodiscard]] Result<std::optional<std::int64_t>> optional_int(std::string_view key,
                                                                   std::int64_t min,
                                                                   std::int64_t max);
    [[nodiscard]] Result<std::vector<std::string>> string_list(std::string_view key,
                                                               std::size_t max_items,
                                                               std::size_t max_len = 64);
    // A nested object (required or optional); nullptr when optional and absent.
    [[nodiscard]] Result<const Json*> object(std::string_view key, bool required);
    [[nodiscard]] Result<const Json*> array(std::string_view key, std::size_t max_items);
    // Any JSON value (kept as is), required.
    [[nodiscard]] Result<const Json*> value(std::string_view key);

    std::string path(std::string_view key) const;
    // Errc::invalid_field for the first field that was not read.
    [[nodiscard]] Result<void> finish() const;

private:
    [[nodiscard]] Result<const Json*> get(std::string_view key, bool required);

    const Json& object_;
    std::string path_;
    std::set<std::string, std::less<>> read_;
};

// A "namespace/name" model field → its two checked names (Errc::invalid_field otherwise).
[[nodiscard]] Result<std::pair<std::string, std::string>> split_model(const std::string& model);

// HTTP header helpers.
// The value without surrounding spaces and tabs.
std::string_view trim(std::string_view s);
// True when an If-None-Match list names `etag` (weak comparison) or is "*".
bool none_match(std::string_view header, std::string_view etag);
// The "wait" preference of a Prefer header (RFC 7240), in seconds: nullopt when absent or
// malformed (an unusable preference is ignored, as the RFC asks).
std::optional<std::uint32_t> prefer_wait(std::string_view header);

}  // namespace pylon::registry::api
