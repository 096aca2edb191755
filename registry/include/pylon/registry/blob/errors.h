// Error codes of the registry's blob store and upload sessions. The HTTP layer maps each code to
// one status (not_found → 404, range_invalid → 416, session_busy → 409, too_large → 413, ...).
#pragma once

#include <system_error>

namespace pylon::registry::blob {

enum class Errc {
    ok = 0,
    not_found = 1,    // no such blob or session (a malformed session id included)
    invalid_digest,   // a digest string that is not `sha256:<64 lowercase hex>`
    digest_mismatch,  // the uploaded bytes hash to another digest than the one claimed
    range_invalid,    // a chunk that does not start at the session's offset (gap/overlap)
    session_busy,     // another writer or a complete/cancel holds the session
    too_large,        // the upload would exceed BlobStoreConfig::max_blob_size
    session_expired,  // the session was idle longer than BlobStoreConfig::session_max_idle
    io,               // the operating system refused a read, write, rename or fsync
};

const std::error_category& blob_category() noexcept;
std::error_code make_error_code(Errc e) noexcept;

}  // namespace pylon::registry::blob

template <>
struct std::is_error_code_enum<pylon::registry::blob::Errc> : std::true_type {};
