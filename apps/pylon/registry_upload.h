// Blob uploads of `pylon publish`: resumable chunked sessions, as in the OCI distribution API.
//
//   HEAD /v1/blobs/<digest>                  200: the registry has it, nothing to send
//   POST /v1/namespaces/<ns>/uploads         202, Location: <session>
//   PATCH <session>, Content-Range: a-b      202, Range: 0-b   (one chunk, streamed from the file)
//   GET <session>                            204, Range: 0-b   (after a failed chunk: resume there)
//   PUT <session>?digest=sha256:<hex>        201               (completes; the registry verifies)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "registry_client.h"

namespace pylon::cli {

// The number of bytes a session holds from its `Range: 0-<last>` header ("bytes=" or "bytes "
// prefix allowed): last + 1; 0 when the header is absent; nullopt when it is malformed or does
// not start at 0.
std::optional<std::uint64_t> parse_upload_range(const std::optional<std::string>& header);
// "<start>-<end>" (inclusive) for the chunk [start, start + length).
std::string content_range(std::uint64_t start, std::uint64_t length);

struct UploadOptions {
    std::uint64_t chunk_size = 64ull << 20;
    int max_retries = 3;         // per chunk
    bool show_progress = false;  // a \r-updated line on stderr
};

struct BlobUpload {
    std::string digest;  // "sha256:<hex>"
    std::uint64_t size = 0;
    bool skipped = false;  // the registry already had it
};

// Uploads `path` (whose digest and size the caller computed) into namespace `ns`, unless the
// registry has the blob already. Throws CommandError when it cannot.
BlobUpload upload_blob(RegistryClient& client, const std::string& ns, const std::string& path,
                       const std::string& digest, std::uint64_t size, const UploadOptions& options);

}  // namespace pylon::cli
