// TrustedSet: the client's trusted TUF metadata and every check that lets new metadata in
// (tuf-spec.md §5.3–§5.6). No I/O: the Updater fetches and persists, this decides.
//
// Each update_* call either accepts the bytes (they become trusted) or returns an error and
// leaves the set exactly as it was. Order is enforced: root updates only before a timestamp is
// loaded, timestamp before snapshot, snapshot before targets.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "pylon/common/result.h"
#include "pylon/signing/tuf/metadata.h"

namespace pylon::signing::tuf::detail {

class TrustedSet {
public:
    // A set trusting `root_bytes` (which must be signed by a threshold of its own root keys;
    // expiry is not checked here). `reference` is the update start time for every expiry check.
    [[nodiscard]] static Result<TrustedSet> from_root(std::string_view root_bytes, Time reference);

    // §5.3.4–5.3.7: `bytes` must be signed by the trusted root's root role threshold and by its
    // own, with version exactly trusted + 1 (lower or equal: rollback; higher: version_mismatch).
    // Expiry is checked separately, on the final root.
    [[nodiscard]] Result<void> update_root(std::string_view bytes);
    // §5.3.10: expired if the trusted root expired before the reference time.
    [[nodiscard]] Result<void> check_root_expiry() const;

    // A timestamp read from the metadata directory: trusted (for rollback checks) if the trusted
    // root's timestamp role signed it, even when expired.
    [[nodiscard]] Result<void> load_local_timestamp(std::string_view bytes);
    // §5.4: a timestamp from the repository. Returns false (keeping the trusted one) when its
    // version equals the trusted one; rollback if lower, or if it names a lower snapshot version.
    // In every case the resulting timestamp must not be expired.
    [[nodiscard]] Result<bool> update_timestamp(std::string_view bytes);

    // A snapshot read from the metadata directory: trusted for rollback checks if the snapshot
    // role signed it. Returns whether it is also current (the version, length and hashes the
    // timestamp names, unexpired), in which case no new snapshot is needed.
    [[nodiscard]] Result<bool> load_local_snapshot(std::string_view bytes);
    // §5.5: a snapshot from the repository: length and hashes the timestamp names, signatures,
    // version the timestamp names, no rollback of its own version or of any targets version the
    // trusted snapshot lists (a file it dropped is a rollback), not expired.
    [[nodiscard]] Result<void> update_snapshot(std::string_view bytes);

    // §5.6: targets metadata of `role`, delegated by `delegator` ("root" for the top-level
    // "targets"; the delegator must be trusted already): length, hashes and version the snapshot
    // names, the delegator's keys and threshold for `role`, not expired.
    [[nodiscard]] Result<void> update_targets(const std::string& role, const std::string& delegator,
                                              std::string_view bytes);

    const Metadata<Root>& root() const { return root_; }
    const Metadata<Timestamp>* timestamp() const { return timestamp_ ? &*timestamp_ : nullptr; }
    const Metadata<Snapshot>* snapshot() const { return snapshot_ ? &*snapshot_ : nullptr; }
    const Metadata<Targets>* targets(std::string_view role) const;
    // What the trusted snapshot says about "<role>.json"; nullptr if nothing.
    const MetaFile* snapshot_meta(const std::string& role) const;
    // Forgets a delegated role (used to undo a failed target search).
    void forget_targets(const std::string& role) { targets_.erase(role); }
    Time reference_time() const { return reference_; }

private:
    TrustedSet(Metadata<Root> root, Time reference)
        : root_(std::move(root)), reference_(reference) {}
    // §5.4.4 / §5.5.6 failures once the step is meant to be final.
    [[nodiscard]] Result<void> check_timestamp_final() const;
    [[nodiscard]] Result<void> check_snapshot_final() const;

    Metadata<Root> root_;
    std::optional<Metadata<Timestamp>> timestamp_;
    std::optional<Metadata<Snapshot>> snapshot_;
    bool snapshot_final_ = false;  // snapshot_ passed every §5.5 check
    std::map<std::string, Metadata<Targets>, std::less<>> targets_;
    Time reference_;
};

}  // namespace pylon::signing::tuf::detail
