// Errors of the REST API layer, and the one function that turns any Error into an HTTP answer.
#pragma once

#include <string_view>
#include <system_error>

#include "pylon/common/error.h"

namespace pylon::registry::api {

enum class Errc {
    ok = 0,
    bad_request = 1,        // 400: the request cannot be understood (headers, query)
    invalid_json = 2,       // 400: the body is not the JSON object expected
    invalid_field = 3,      // 400: a field is missing, unknown, of the wrong type or invalid
    unauthorized = 4,       // 401: no token, or a token that is unknown, revoked or expired
    forbidden = 5,          // 403: the token lacks the scope
    not_found = 6,          // 404
    conflict = 7,           // 409: already exists
    invalid_state = 8,      // 409: not allowed in the object's state (e.g. a published release)
    payload_too_large = 9,  // 413
    range_invalid = 10,     // 416: Content-Range gap, overlap or malformed
    bad_signature = 11,     // 422: a signature or attestation does not verify
    digest_mismatch = 12,   // 422: uploaded bytes do not match the digest given
    unavailable = 13,       // 503: the database or another dependency is down
    internal = 14,          // 500
    license_refused = 15,   // 422: the licence's terms forbid it (region, use, not accepted)
};

const std::error_category& api_category() noexcept;
std::error_code make_error_code(Errc e) noexcept;

// The HTTP status and the stable machine code ("invalid_field", …) for any Error: API errors
// directly, and those of the catalog, blob store, TUF and signing libraries by their meaning.
struct HttpError {
    int status;
    std::string_view code;
};
HttpError classify(const Error& error);

}  // namespace pylon::registry::api

template <>
struct std::is_error_code_enum<pylon::registry::api::Errc> : std::true_type {};
