// BlobStore: the registry's content-addressed blob storage and its resumable upload sessions
// (the storage half of the OCI distribution push flow; HTTP lives elsewhere).
//
// Contracts every backend keeps:
// - A blob is visible (stat, open_local) only after its SHA-256 was verified against the digest
//   it is stored under, and only once its bytes are durable.
// - An upload is a session: create_session, then any number of writers, each starting exactly at
//   the session's offset (the bytes received so far), then complete() with the expected digest.
//   A failed call leaves the session as it was: the client may retry, resume or cancel.
// - Memory does not grow with the size of an upload.
// - A BlobStore may be called from any number of threads at once; one UploadWriter is used by
//   one thread at a time. Several stores (processes) may share one filesystem root: sessions
//   are locked with flock(), not only in memory.
// A monolithic upload is create_session + one writer + complete; there is no separate call.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "pylon/common/bytes.h"
#include "pylon/common/error.h"
#include "pylon/common/result.h"
#include "pylon/registry/blob/digest.h"
#include "pylon/registry/blob/errors.h"
#include "pylon/registry/blob/unique_fd.h"

namespace pylon::registry::blob {

using Clock = std::chrono::system_clock;

struct BlobInfo {
    Digest digest;
    std::uint64_t size = 0;
};

// An open, read-only descriptor of a stored blob (for sendfile) and its size.
struct LocalBlob {
    UniqueFd fd;
    std::uint64_t size = 0;
};

struct SessionInfo {
    std::string id;            // 32 lowercase hex characters (128 random bits)
    std::string ns;            // the namespace that owns the upload
    std::uint64_t offset = 0;  // bytes received so far; the next chunk must start here
    Clock::time_point created;
    Clock::time_point updated;  // last activity (a writer closing, or bytes arriving)
};

struct BlobStoreConfig {
    std::uint64_t max_blob_size = std::uint64_t{64} << 30;  // writes past it: Errc::too_large
    // A session idle longer than this answers Errc::session_expired; expire() removes it.
    std::chrono::seconds session_max_idle = std::chrono::hours(24);
    // Each writer buffers writes in two blocks of this size: one filled by the caller and written
    // to the file, the other hashed on the writer's hashing thread.
    std::size_t write_buffer_size = std::size_t{4} << 20;
    // false: hash on the calling thread instead (for measurements).
    bool background_hashing = true;
    // The clock for session times and expiry; null means Clock::now. Tests inject a fake one.
    std::function<Clock::time_point()> clock;
};

// True when `id` has the exact form create_session produces. Every call taking an id checks it
// (Errc::not_found otherwise), so an id from a request can never name a path outside the store.
bool is_valid_session_id(std::string_view id) noexcept;

// Appends to one upload session. Holds the session exclusively until closed or destroyed.
// A writer destroyed without close() still keeps (flushes) the bytes it accepted; they count.
class UploadWriter {
public:
    virtual ~UploadWriter() = default;

    // Appends `data`. Errc::too_large when the session would grow past max_blob_size: nothing
    // of `data` is taken and the writer stays usable. After any other error the writer refuses
    // further writes; the bytes that reached the file still count, and session() reports them.
    [[nodiscard]] virtual Result<void> write(ByteView data) = 0;
    // Flushes and releases the session; returns it with its new offset.
    [[nodiscard]] virtual Result<SessionInfo> close() = 0;
    // Bytes the session holds once what was written so far is flushed.
    virtual std::uint64_t offset() const noexcept = 0;
};

class BlobStore {
public:
    virtual ~BlobStore() = default;

    // A store in a local directory (created if missing; layout in filesystem_store.cpp).
    // Removes leftovers of interrupted operations under root/tmp.
    [[nodiscard]] static Result<std::unique_ptr<BlobStore>> open_filesystem(
        std::filesystem::path root, BlobStoreConfig config = {});

    // --- Blobs ---
    [[nodiscard]] virtual Result<BlobInfo> stat(const Digest& digest) = 0;
    // A local descriptor for sendfile. A remote backend answers pylon::Errc::unsupported and
    // offers redirect_url() instead.
    [[nodiscard]] virtual Result<LocalBlob> open_local(const Digest& digest) = 0;
    // A URL the client may fetch the blob from directly (a presigned object-store URL).
    [[nodiscard]] virtual Result<std::string> redirect_url(const Digest& digest) {
        return Error(pylon::Errc::unsupported,
                     "no redirect for " + digest.str() + ": this blob store serves blobs itself");
    }
    // Deletes a blob (for garbage collection; the caller knows nothing references it).
    [[nodiscard]] virtual Result<void> remove(const Digest& digest) = 0;

    // --- Upload sessions ---
    [[nodiscard]] virtual Result<SessionInfo> create_session(std::string owner_namespace) = 0;
    [[nodiscard]] virtual Result<SessionInfo> session(std::string_view id) = 0;
    // Errc::range_invalid unless `start` equals the session's offset; Errc::session_busy while
    // another writer (or complete/cancel) holds the session.
    [[nodiscard]] virtual Result<std::unique_ptr<UploadWriter>> open_writer(
        std::string_view id, std::uint64_t start) = 0;
    // Verifies that the session's bytes hash to `expected` (Errc::digest_mismatch, session left
    // as it was, otherwise), makes them durable, publishes them under `expected` (an existing
    // blob with that digest is kept and the upload dropped) and removes the session.
    [[nodiscard]] virtual Result<BlobInfo> complete(std::string_view id,
                                                    const Digest& expected) = 0;
    [[nodiscard]] virtual Result<void> cancel(std::string_view id) = 0;
    // Removes sessions idle longer than `max_idle` (not those a writer holds) and files under
    // root/tmp older than that. Returns how many sessions it removed. Call it periodically.
    [[nodiscard]] virtual Result<std::size_t> expire(std::chrono::seconds max_idle) = 0;
};

}  // namespace pylon::registry::blob
