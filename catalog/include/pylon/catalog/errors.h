// Error codes of the catalog library. libpqxx exceptions never cross the library border: they
// are mapped to these codes, with messages that name the entity ("model acme/tiny not found")
// but never carry SQL text or the values bound to it.
#pragma once

#include <system_error>

namespace pylon::catalog {

enum class Errc {
    ok = 0,
    not_found = 1,         // the namespace, model, release, build, blob or token does not exist
    conflict = 2,          // it already exists (a unique key is taken) or differs from what exists
    invalid_state = 3,     // not allowed in the entity's state (a build for a published release)
    database = 4,          // connection lost, timeout, no free connection, unexpected SQL error
    invalid_argument = 5,  // a malformed value (bad digest, cursor, JSON, threshold)
    license_refused = 6,   // a licence's terms forbid it (region, commercial use, not accepted)
};

const std::error_category& catalog_category() noexcept;
std::error_code make_error_code(Errc e) noexcept;

}  // namespace pylon::catalog

template <>
struct std::is_error_code_enum<pylon::catalog::Errc> : std::true_type {};
