// Updater: the TUF client (specification 1.0.x, tuf-spec.md §5 "Detailed client workflow").
//
// It keeps the client's trusted metadata in one directory and brings it up to date from a
// repository through a Fetcher:
//
//     Updater updater(dir, "https://repo/metadata/", "https://repo/targets/", fetcher);
//     PYLON_TRY(updater.refresh());                         // root chain, timestamp, snapshot,
//                                                           // targets
//     PYLON_TRY_ASSIGN(TargetInfo info, updater.get_targetinfo("models/a.gguf"));
//     if (!updater.find_cached_target(info, local_file)) {
//         PYLON_TRY(updater.download_target(info, local_file));
//     }
//
// On-disk state: only the current trusted metadata files, under their non-versioned names, at the
// top of `metadata_dir`: root.json, timestamp.json, snapshot.json, targets.json and
// <delegated role>.json (role names percent-encoded, so "a/b" is stored as "a%2Fb.json"). The
// directory must hold a trusted root.json before the first refresh (placed there out of band).
// Each file is written atomically, and only after every check on it passed.
//
// Failure contract: a call that fails leaves every file in `metadata_dir` as it was, with one
// exception the specification requires: root metadata accepted during a refresh (each verified by
// the previous root and by itself, §5.3.8) stays trusted even when a later step fails, including
// the final root's expiry check. When a new root rotates the timestamp or snapshot keys, the
// trusted timestamp.json and snapshot.json are deleted (fast-forward recovery, §5.3.11).
//
// Error codes (tuf/errors.h) name the attack a check refused: rollback, expired (indefinite
// freeze), version_mismatch (mix-and-match), length_mismatch / hash_mismatch (arbitrary
// installation), too_large (endless data), threshold_not_met (malicious mirror, key compromise
// below threshold), target_not_found (wrong software), fetch_failed, not_initialized.
//
// An Updater is not thread-safe; one instance per metadata directory at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "pylon/common/result.h"
#include "pylon/signing/tuf/errors.h"
#include "pylon/signing/tuf/fetcher.h"
#include "pylon/signing/tuf/metadata.h"

namespace pylon::signing::tuf {

namespace detail {
class TrustedSet;  // the verification state machine (src/tuf/trusted_set.h)
}  // namespace detail

// The current time read through libc time(), whole seconds (so harnesses that fake the clock by
// interposing time() are honoured).
Time libc_now();

struct UpdaterConfig {
    // Upper bounds on metadata sizes (endless data). When the referring metadata states a length,
    // the smaller of that length and the bound is used.
    std::uint64_t max_root_length = 512 * 1024;
    std::uint64_t max_timestamp_length = 16 * 1024;
    std::uint64_t max_snapshot_length = 2 * 1024 * 1024;
    std::uint64_t max_targets_length = 5 * 1024 * 1024;  // top-level and delegated targets
    // How many new root versions one refresh accepts at most.
    std::uint32_t max_root_rotations = 256;
    // How many targets roles (the top-level one included) one target search visits at most.
    std::uint32_t max_delegations = 32;
    // The clock; empty means libc_now(). Read once per refresh (the update start time, against
    // which every expiry is checked).
    std::function<Time()> clock;
};

// A target as trusted metadata describes it.
struct TargetInfo {
    std::string path;  // the target path, as named in targets metadata
    TargetFile file;   // length, hashes, custom
    std::string role;  // the targets role that listed it ("targets" or a delegated role)
};

class Updater {
public:
    // `metadata_base_url` and `target_base_url` are prefixes to which file names are appended (a
    // missing trailing '/' is added). `fetcher` must outlive the Updater.
    Updater(std::filesystem::path metadata_dir, std::string metadata_base_url,
            std::string target_base_url, Fetcher& fetcher, UpdaterConfig config = {});
    ~Updater();
    Updater(const Updater&) = delete;
    Updater& operator=(const Updater&) = delete;

    // Brings root, timestamp, snapshot and top-level targets up to date (§5.1–§5.6), persisting
    // each verified file. Fetches "<N>.root.json" for N = trusted version + 1, ... until one is
    // not found; "timestamp.json"; "<V>.snapshot.json" and "<V>.targets.json" when the root sets
    // consistent_snapshot, else "snapshot.json" and "targets.json". Metadata already trusted and
    // still current (same version, hashes, unexpired) is not fetched again. Errors: see the file
    // comment; not_initialized when metadata_dir has no root.json (a root.json that does not
    // verify by itself is that error, e.g. threshold_not_met). Timestamp, snapshot and targets
    // files are written together once all of them verified. After a failure the in-memory state
    // is dropped and the next call starts again from the files.
    [[nodiscard]] Result<void> refresh();

    // Finds `target_path` by preorder depth-first search of the targets delegation graph (§5.6.7),
    // fetching and persisting delegated targets metadata as needed ("<V>.<role>.json" or
    // "<role>.json"), honouring delegated paths and terminating delegations, visiting at most
    // config.max_delegations roles. Calls refresh() first if no refresh has succeeded yet.
    // Errors: target_not_found, or any error verifying delegated metadata.
    [[nodiscard]] Result<TargetInfo> get_targetinfo(std::string_view target_path);

    // `file` if it exists and its length and hashes match `info`; nullopt otherwise (missing,
    // unreadable or different files are not errors). Never downloads.
    std::optional<std::filesystem::path> find_cached_target(
        const TargetInfo& info, const std::filesystem::path& file) const;

    // Downloads the target to `dest_file` (written atomically, parent directory must exist):
    // from target_base_url + "<dir>/<sha256>.<basename>" when the trusted root sets
    // consistent_snapshot, else target_base_url + path, reading at most info.file.length bytes,
    // and verifying length and hashes before anything is written. Errors: too_large,
    // length_mismatch, hash_mismatch, fetch_failed, not_initialized (no successful refresh).
    [[nodiscard]] Result<void> download_target(const TargetInfo& info,
                                               const std::filesystem::path& dest_file);

    // The trusted metadata after a successful refresh(); nullptr before one (or after a failed
    // one). Delegated roles are loaded by get_targetinfo().
    const Metadata<Root>* trusted_root() const;
    const Metadata<Timestamp>* trusted_timestamp() const;
    const Metadata<Snapshot>* trusted_snapshot() const;
    const Metadata<Targets>* trusted_targets(std::string_view role = "targets") const;

    const std::filesystem::path& metadata_dir() const { return metadata_dir_; }

    // The file name a role's metadata is stored and fetched under: its name percent-encoded
    // (every byte outside [A-Za-z0-9._~-]) followed by ".json".
    static std::string role_file_name(std::string_view role);

private:
    std::filesystem::path metadata_dir_;
    std::string metadata_base_url_;
    std::string target_base_url_;
    Fetcher& fetcher_;
    UpdaterConfig config_;
    std::unique_ptr<detail::TrustedSet> trusted_;  // null until a refresh succeeds
};

}  // namespace pylon::signing::tuf
