// TufHost's private state, shared by tuf_host.cpp (queries, submissions, refresh) and
// tuf_bootstrap.cpp (first start, online keys).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <mutex>
#include <optional>

#include "pylon/registry/tuf/tuf_host.h"
#include "pylon/signing/keys.h"
#include "pylon/signing/tuf/repository.h"

namespace pylon::registry::tuf {

// Identifies one version of a file replaced by rename: a new version is a new inode.
struct FileStamp {
    ino_t inode = 0;
    off_t size = 0;
    std::int64_t mtime_ns = 0;

    friend bool operator==(const FileStamp&, const FileStamp&) = default;
};

struct TufHost::Impl {
    Impl(std::filesystem::path dir_, TufHostOptions options_, signing::PrivateKey snapshot,
         signing::PrivateKey timestamp)
        : dir(std::move(dir_)),
          options(std::move(options_)),
          snapshot_key(std::move(snapshot)),
          timestamp_key(std::move(timestamp)) {}

    std::filesystem::path repo_dir() const { return dir / "repo"; }
    Time now() const;
    signing::tuf::Signers signers() const;
    // Re-reads the repository from disk (callers hold `mutex`).
    [[nodiscard]] Result<void> reload() const;
    // reload() when timestamp.json changed since the last load (another replica published).
    [[nodiscard]] Result<void> reload_if_stale() const;

    const std::filesystem::path dir;
    const TufHostOptions options;
    const signing::PrivateKey snapshot_key;
    const signing::PrivateKey timestamp_key;

    mutable std::mutex mutex;
    mutable std::optional<signing::tuf::Repository> repo;  // as on disk
    mutable FileStamp loaded;                              // timestamp.json when repo was read
};

namespace detail {

// Creates dir/repo (and the key files) when dir/repo/metadata/root.json does not exist.
[[nodiscard]] Result<void> bootstrap_if_needed(const std::filesystem::path& dir,
                                               const TufHostOptions& options, Time now);

// Loads a PKCS#8 PEM key file that only its owner may read (permission_denied otherwise).
[[nodiscard]] Result<signing::PrivateKey> load_owner_only_key(const std::filesystem::path& file);

// invalid_argument unless `key` is one of root's keys for top-level role `role`.
[[nodiscard]] Result<void> check_online_key(const signing::tuf::Root& root, const std::string& role,
                                            const signing::PrivateKey& key);

}  // namespace detail

}  // namespace pylon::registry::tuf
