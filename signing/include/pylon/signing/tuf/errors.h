// Error codes of the TUF module. Each attack in the TUF specification's list maps to a code, so
// that callers and tests can tell which check refused an update.
#pragma once

#include <system_error>

namespace pylon::signing::tuf {

enum class Errc {
    ok = 0,
    malformed_metadata = 1,  // not TUF metadata: bad JSON, missing or mistyped fields, bad dates
    wrong_role_type = 2,     // "_type" is not the role expected
    threshold_not_met = 3,   // fewer distinct authorised keys signed than the role's threshold
    expired = 4,             // metadata expired before the update started (indefinite freeze)
    rollback = 5,            // a version lower than the trusted one (rollback attack)
    version_mismatch = 6,    // a version other than the one the referring metadata names
                             // (mix-and-match), or a root that is not trusted version + 1
    length_mismatch = 7,     // bytes longer or shorter than the signed length
    hash_mismatch = 8,       // bytes whose hash differs from the signed hash (arbitrary install)
    too_large = 9,           // more bytes than the limit for this file (endless data)
    target_not_found = 10,   // no trusted targets metadata names the target (wrong software)
    fetch_failed = 11,       // the transport could not get the file
    not_initialized = 12,    // no trusted root in the metadata directory
    invalid_argument = 13,   // a repository operation that makes no sense (unknown role, ...)
};

const std::error_category& tuf_category() noexcept;
std::error_code make_error_code(Errc e) noexcept;

}  // namespace pylon::signing::tuf

template <>
struct std::is_error_code_enum<pylon::signing::tuf::Errc> : std::true_type {};
