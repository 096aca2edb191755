// TufHost: the registry's TUF image repository. It holds only the online snapshot and timestamp
// keys; every targets role (the top-level one, signed with the offline targets key by the
// registry admin, and each namespace's delegated role, signed by its publisher) is signed on the
// client side (signing::tuf::TargetsEditor), submitted whole, verified, and then snapshot and
// timestamp are re-signed here.
//
// Directory layout (`dir` given to open()):
//   dir/repo/metadata/...       a signing::tuf::Repository (layout in repository.h); served as
//                               /tuf/metadata/<file>. Target files are not kept under
//                               dir/repo/targets: the registry serves them from its blob store.
//   dir/keys/snapshot.key       online keys, PKCS#8 PEM, mode 0600 (refused when group- or
//   dir/keys/timestamp.key      world-accessible)
//   dir/offline-keys/root.key   written only by a default bootstrap; to be moved offline
//   dir/offline-keys/targets.key
//
// Thread-safe. Changes (submit_role, refresh_if_expiring) are serialised by a mutex and start
// from the files on disk, so several replicas sharing `dir` stay correct when the caller also
// holds a cross-process lock (a PostgreSQL advisory lock) around those calls; reads notice a
// snapshot another replica published and reload.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pylon/common/result.h"
#include "pylon/signing/tuf/metadata.h"
#include "pylon/signing/tuf/repository.h"

namespace pylon::registry::tuf {

using Time = signing::tuf::Time;

struct TufHostOptions {
    // Bootstrap from offline-made metadata instead of generating keys: root.json and version 1
    // of the top-level targets (both signed offline), and the online keys root names for
    // snapshot and timestamp (PKCS#8 PEM files). All four or none.
    std::optional<std::filesystem::path> root_file;
    std::optional<std::filesystem::path> targets_file;
    std::optional<std::filesystem::path> snapshot_key_file;
    std::optional<std::filesystem::path> timestamp_key_file;
    // Lifetimes of new versions: timestamp 1 day, snapshot 7 days by default; root and targets
    // only matter for the default bootstrap.
    signing::tuf::ExpiryPolicy expiry;
    // The clock for submissions and the bootstrap; empty means the system clock.
    std::function<Time()> clock;
};

// What the top-level targets (or another role) says about a delegated role: who may sign it.
struct RoleDelegation {
    signing::tuf::DelegatedRole role;               // keyids, threshold, paths, terminating
    std::map<std::string, signing::tuf::Key> keys;  // the keys role.keyids names
    std::string delegator;                          // the role that delegates it
};

struct SubmitReport {
    std::int64_t version = 0;           // the accepted role's version
    std::int64_t snapshot_version = 0;  // after the publish
    std::int64_t timestamp_version = 0;
    std::vector<std::string> written;  // metadata files written, in order
    std::vector<std::string> pending;  // delegated roles declared but not yet submitted
};

// A target file found through the current metadata (for /tuf/targets/...).
struct TargetRef {
    std::string path;        // the target path, e.g. "acme/llama/1.0.0/x86_64-avx2/model.gguf"
    std::string sha256_hex;  // lowercase; the blob to serve
    std::uint64_t length = 0;
};

// The registry's extra check of a submission, after the signatures and versions verified and
// before anything is published; `previous` is null for a role's first version.
using SubmitCheck =
    std::function<Result<void>(const signing::tuf::Metadata<signing::tuf::Targets>& incoming,
                               const signing::tuf::Metadata<signing::tuf::Targets>* previous)>;

class TufHost {
public:
    // Opens the repository in `dir`, bootstrapping it when dir/repo/metadata/root.json does not
    // exist (see TufHostOptions; without root_file: new Ed25519 root, targets, snapshot and
    // timestamp keys, version 1 of every role published, and a warning that
    // dir/offline-keys/ must be moved offline). Errors: invalid_argument (half-given bootstrap
    // options, online keys that root does not name, a non-empty dir/repo without root.json),
    // permission_denied (an online key file readable by others), tuf errors from verifying an
    // offline-made root, I/O errors.
    [[nodiscard]] static Result<std::unique_ptr<TufHost>> open(std::filesystem::path dir,
                                                               TufHostOptions options = {});
    ~TufHost();
    TufHost(const TufHost&) = delete;
    TufHost& operator=(const TufHost&) = delete;

    std::filesystem::path metadata_dir() const;

    // The bytes of a metadata file for /tuf/metadata/<file_name>. Only "<role>.json" and
    // "<N>.<role>.json" names (role: [A-Za-z0-9._-]+, not starting with '.'; N: digits) are
    // served; anything else, and files that do not exist, is not_found.
    [[nodiscard]] Result<std::string> metadata_bytes(std::string_view file_name) const;

    // The current published metadata file of a targets role ("targets" or a delegated role):
    // what a client edits. not_found for an unknown or never-published role.
    [[nodiscard]] Result<std::string> current_role(std::string_view role) const;
    // Who may sign delegated role `role`. not_found when no role delegates it.
    [[nodiscard]] Result<RoleDelegation> delegation(std::string_view role) const;

    // Accepts a new version of a targets role signed on the client side: verifies it
    // (Repository::import_role: signatures, version, expiry, delegated paths), runs `check`
    // (may be empty; it runs under this host's lock, so it must not call back into this
    // TufHost), then publishes a new snapshot and timestamp with the online keys. On any
    // error nothing on disk changes (a failed write aside) and the in-memory state is re-read
    // from disk. Errors: those of import_role, of `check`, of the publish.
    [[nodiscard]] Result<SubmitReport> submit_role(std::string_view role, std::string_view bytes,
                                                   const SubmitCheck& check = {});

    // Finds the target served at /tuf/targets/<consistent_path>, where consistent_path is
    // "<dir>/<sha256hex>.<basename>" (spec §5.7.2): the target "<dir>/<basename>" as the client
    // would find it (delegation search from "targets", honouring paths and terminating roles),
    // whose sha256 is that hex. not_found otherwise (also for malformed names).
    [[nodiscard]] Result<TargetRef> resolve_target(std::string_view consistent_path) const;

    // Re-signs the timestamp when it expires within half its lifetime from `now`, and the
    // snapshot too when it does. Returns whether anything was published.
    [[nodiscard]] Result<bool> refresh_if_expiring(Time now);

private:
    struct Impl;
    explicit TufHost(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace pylon::registry::tuf
