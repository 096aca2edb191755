// The filesystem BlobStore: shared declarations of the blob side (filesystem_store.cpp), the
// session side (upload_sessions.cpp) and the writer (upload_writer.cpp).
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "pylon/registry/blob/blob_store.h"
#include "pylon/signing/sha256.h"

namespace pylon::registry::blob::detail {

// Paths of the on-disk layout (described in filesystem_store.cpp). Ids must be validated first.
class Layout {
public:
    explicit Layout(std::filesystem::path root) : root_(std::move(root)) {}

    const std::filesystem::path& root() const { return root_; }
    std::filesystem::path blobs_dir() const { return root_ / "blobs" / "sha256"; }
    std::filesystem::path shard_dir(const Digest& d) const {
        return blobs_dir() / d.hex().substr(0, 2);
    }
    std::filesystem::path blob_path(const Digest& d) const { return shard_dir(d) / d.hex(); }
    std::filesystem::path uploads_dir() const { return root_ / "uploads"; }
    std::filesystem::path session_dir(std::string_view id) const { return uploads_dir() / id; }
    std::filesystem::path data_path(std::string_view id) const { return session_dir(id) / "data"; }
    std::filesystem::path info_path(std::string_view id) const {
        return session_dir(id) / "info.json";
    }
    std::filesystem::path tmp_dir() const { return root_ / "tmp"; }

private:
    std::filesystem::path root_;
};

// The SHA-256 state of a session's first `offset` bytes, kept between writers so complete()
// need not re-read the data. Valid only while `offset` equals the data file's size.
struct HashState {
    signing::Sha256 hasher;
    std::uint64_t offset = 0;
};

// In-memory hash states by session id. A writer takes its session's state out and puts it
// back when it is done, so at most one thread uses a state at a time.
class HashStates {
public:
    std::optional<HashState> take(const std::string& id);
    void put(const std::string& id, HashState state);
    void erase(const std::string& id);

private:
    std::mutex mu_;
    std::unordered_map<std::string, HashState> states_;
};

// What info.json holds.
struct SessionMeta {
    std::string ns;
    Clock::time_point created;
    Clock::time_point updated;
};

[[nodiscard]] Result<SessionMeta> read_meta(const Layout& layout, std::string_view id);
// Replaces info.json at `path` atomically.
[[nodiscard]] Result<void> write_meta(const std::filesystem::path& path, const SessionMeta& meta);

// The data file of a session, open read-write and exclusively locked (flock) by this handle.
struct LockedSession {
    UniqueFd fd;
    struct ::stat st {};
};

// Opens and locks a session's data file: Errc::not_found for a malformed or unknown id (or one
// completed meanwhile), Errc::session_busy when another holder has it.
[[nodiscard]] Result<LockedSession> lock_session(const Layout& layout, std::string_view id);

class FilesystemBlobStore final : public BlobStore {
public:
    FilesystemBlobStore(std::filesystem::path root, BlobStoreConfig config);

    // Creates the directories and removes leftovers of interrupted operations.
    [[nodiscard]] Result<void> recover();

    Result<BlobInfo> stat(const Digest& digest) override;
    Result<LocalBlob> open_local(const Digest& digest) override;
    Result<void> remove(const Digest& digest) override;

    Result<SessionInfo> create_session(std::string owner_namespace) override;
    Result<SessionInfo> session(std::string_view id) override;
    Result<std::unique_ptr<UploadWriter>> open_writer(std::string_view id,
                                                      std::uint64_t start) override;
    Result<BlobInfo> complete(std::string_view id, const Digest& expected) override;
    Result<void> cancel(std::string_view id) override;
    Result<std::size_t> expire(std::chrono::seconds max_idle) override;

private:
    Clock::time_point now() const { return config_.clock ? config_.clock() : Clock::now(); }
    // Last activity: info.json's time, or the data file's mtime when bytes arrived later.
    static Clock::time_point last_activity(const SessionMeta& meta, const struct ::stat& data);
    [[nodiscard]] Result<void> check_not_expired(std::string_view id, const SessionMeta& meta,
                                                 const struct ::stat& data) const;
    [[nodiscard]] Result<signing::Digest> digest_of(const std::string& id, int fd,
                                                    std::uint64_t size);
    [[nodiscard]] Result<void> publish(const std::string& id, int fd, const Digest& digest);

    Layout layout_;
    BlobStoreConfig config_;
    // Shared with writers, which may outlive a call but must not outlive the store's states.
    std::shared_ptr<HashStates> states_ = std::make_shared<HashStates>();
};

// The writer of the filesystem store (upload_writer.cpp).
[[nodiscard]] std::unique_ptr<UploadWriter> make_upload_writer(Layout layout, std::string id,
                                                               LockedSession session,
                                                               SessionMeta meta,
                                                               std::optional<HashState> state,
                                                               std::shared_ptr<HashStates> states,
                                                               const BlobStoreConfig& config);

}  // namespace pylon::registry::blob::detail
