// TUF repository (specification 1.0.x): the publishing side. A Repository is a directory that any
// static HTTP server can serve as is:
//
//   DIR/metadata/1.root.json, 2.root.json, ...   every root version (clients walk this chain)
//   DIR/metadata/root.json                        copy of the newest root
//   DIR/metadata/timestamp.json                   never versioned
//   DIR/metadata/N.snapshot.json, snapshot.json   (N. names only with consistent snapshots)
//   DIR/metadata/N.targets.json, targets.json
//   DIR/metadata/N.<delegated>.json, <delegated>.json
//   DIR/targets/<dir>/<sha256hex>.<basename>      a target file (consistent snapshots), or
//   DIR/targets/<target path>                     (without consistent snapshots)
//
// Clients use DIR/metadata/ as their metadata URL and DIR/targets/ as their targets URL.
//
// Changes (targets, delegations, keys, expiry) are staged in memory and take effect at publish():
// it gives every changed role one new version, signs it with the keys it is handed, checks the
// role's threshold, and writes the files — roots and targets roles first, then snapshot, then
// timestamp, so that a client never sees metadata that refers to a file not yet written. Target
// bytes are written into DIR/targets/ when they are added (an unreferenced file harms nobody);
// files are never deleted, since clients part-way through an update may still need them.
//
// A targets role may also be signed elsewhere and handed over whole (import_role): a registry
// that holds only the online snapshot and timestamp keys hosts roles signed on its clients.
//
// Every file is written atomically (write_file_atomic or a temp file + rename). Metadata loaded
// from disk keeps fields this code does not know, and they are written back when re-signed.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "pylon/common/bytes.h"
#include "pylon/common/result.h"
#include "pylon/signing/keys.h"
#include "pylon/signing/tuf/metadata.h"

namespace pylon::signing::tuf {

// How long each new version of a role is valid, counted from publish() (delegated roles use
// `targets`). A role's expiry is set only when it gets a new version.
struct ExpiryPolicy {
    std::chrono::days root{365};
    std::chrono::days targets{90};
    std::chrono::days snapshot{7};
    std::chrono::days timestamp{1};

    std::chrono::days for_role(std::string_view role) const;
};

// The private keys publish() may sign with, per role name ("root", "targets", "snapshot",
// "timestamp" or a delegated role). The keys are referenced, not copied: they must outlive this.
class Signers {
public:
    Signers& add(std::string role, const PrivateKey& key);
    std::vector<const PrivateKey*> for_role(std::string_view role) const;

private:
    std::map<std::string, std::vector<const PrivateKey*>, std::less<>> keys_;
};

// The public keys of a role and how many of them must sign.
struct RoleKeySpec {
    std::vector<PublicKey> keys;
    std::uint32_t threshold = 1;
};

struct CreateOptions {
    RoleKeySpec root;
    RoleKeySpec targets;
    RoleKeySpec snapshot;
    RoleKeySpec timestamp;
    bool consistent_snapshot = true;
};

// A delegated targets role: a namespace handed to publisher keys.
struct DelegationSpec {
    std::string name;  // [A-Za-z0-9._-]+, not a top-level role name, not starting with '.'
    std::vector<PublicKey> keys;
    std::uint32_t threshold = 1;
    bool terminating = false;
    // Exactly one of the two must be set (and non-empty).
    std::optional<std::vector<std::string>> paths;               // e.g. {"acme/*"}
    std::optional<std::vector<std::string>> path_hash_prefixes;  // hex prefixes of sha256(path)
};

// A change to the keys of a role (top-level or delegated).
struct KeyChange {
    std::vector<PublicKey> add;
    std::vector<std::string> remove_keyids;
    std::optional<std::uint32_t> threshold;
};

enum class PublishScope {
    everything,  // changed roles, then snapshot and timestamp
    roles_only,  // changed root/targets roles only; a later publish makes the snapshot
};

// What a publish() wrote.
struct PublishReport {
    std::vector<std::string> written;  // metadata file names, in the order written
    // New delegated roles left unpublished because no signing keys for them were given: they
    // appear (as version 1) at the first publish that has their keys.
    std::vector<std::string> pending;
};

class Repository {
public:
    // Stages a new repository in `dir` (created if needed; it must not already hold
    // metadata/root.json): root, targets, snapshot and timestamp, all empty, to be written as
    // version 1 by the first publish(). Errors: invalid_argument for a role with no keys, a
    // threshold of 0 or above its number of keys, or an existing repository.
    [[nodiscard]] static Result<Repository> create(const std::filesystem::path& dir,
                                                   const CreateOptions& options,
                                                   ExpiryPolicy policy = {});
    // Loads the repository in `dir` from its unversioned metadata files (root.json,
    // timestamp.json, snapshot.json, targets.json and every delegated role's file). A delegated
    // role with no file yet is staged empty, as after delegate(). Signatures are not checked.
    [[nodiscard]] static Result<Repository> open(const std::filesystem::path& dir,
                                                 ExpiryPolicy policy = {});

    const std::filesystem::path& dir() const { return dir_; }
    std::filesystem::path metadata_dir() const { return dir_ / "metadata"; }
    std::filesystem::path targets_dir() const { return dir_ / "targets"; }

    // The staged metadata (what the next publish signs), or the last published if unchanged.
    const Metadata<Root>& root() const { return root_; }
    const Metadata<Timestamp>& timestamp() const { return timestamp_; }
    const Metadata<Snapshot>& snapshot() const { return snapshot_; }
    // Errors: invalid_argument for an unknown role.
    [[nodiscard]] Result<const Metadata<Targets>*> targets(std::string_view role = "targets") const;
    // "targets" and every delegated role, in search order (depth first).
    std::vector<std::string> targets_roles() const;
    // Roles with staged changes.
    const std::set<std::string, std::less<>>& changed() const { return changed_; }

    // Stores `data` under DIR/targets/ at once and stages the target in `role`. `target_path`
    // is relative, '/'-separated, with no empty, "." or ".." segment; a delegated role must be
    // allowed the path by its delegation. Replaces an existing entry of the same path.
    [[nodiscard]] Result<TargetFile> add_target(std::string_view target_path, ByteView data,
                                                std::optional<Json> custom = std::nullopt,
                                                std::string_view role = "targets");
    // The same for a file, streamed (memory does not grow with the file).
    [[nodiscard]] Result<TargetFile> add_target_file(std::string_view target_path,
                                                     const std::filesystem::path& file,
                                                     std::optional<Json> custom = std::nullopt,
                                                     std::string_view role = "targets");
    // Removes the target from `role`'s metadata (the stored file stays). Error:
    // target_not_found when the role does not list it.
    [[nodiscard]] Result<void> remove_target(std::string_view target_path,
                                             std::string_view role = "targets");

    // Delegates to a new role from `delegator` (appended: searched after the existing ones), and
    // stages the new role's metadata, empty. Errors: invalid_argument for a bad or taken name,
    // bad threshold, or paths that are not exactly one of the two kinds.
    [[nodiscard]] Result<void> delegate(const DelegationSpec& spec,
                                        std::string_view delegator = "targets");

    // Changes the keys of a top-level role (staging a new root) or of a delegated role
    // (staging its delegator). The role itself is staged too, so that it is re-signed with its
    // new keys. Errors: invalid_argument for an unknown role or key ID, or a threshold of 0 or
    // above the number of keys left.
    [[nodiscard]] Result<void> change_keys(std::string_view role, const KeyChange& change);

    // Stages a new version of `role` (its expiry renewed from the policy at publish).
    [[nodiscard]] Result<void> bump(std::string_view role);
    // Stages a new version of `role` that expires at `expires` instead of by the policy.
    [[nodiscard]] Result<void> set_expiry(std::string_view role, Time expires);

    // Stages a new version of targets role `role` ("targets" or a delegated role) that was
    // signed elsewhere (the registry holds no targets keys): `bytes` is the whole metadata file.
    // Checked: strict parse and "_type"; a threshold of signatures by the delegator's keys for
    // the role (root's "targets" role, or the delegation entry of the role that delegates it);
    // version == the role's current version + 1 (1 for a delegated role never published); not
    // expired at `now`; every target path well-formed and, for a delegated role, allowed by its
    // delegation's paths; delegated role names usable as file names and not delegated by another
    // role. The role's staged changes, if any, are replaced. publish() then writes exactly these
    // bytes (it does not re-sign them). Delegations the new metadata adds are staged empty and
    // pending until their own first import; roles it no longer delegates (and roles only they
    // delegated) are dropped, but the snapshot keeps their last entry, since TUF clients refuse a
    // snapshot that stops listing a file (spec §5.5.5). Errors: invalid_argument (unknown role,
    // target path not delegated, bad role name), malformed_metadata, wrong_role_type,
    // threshold_not_met, rollback (version not above the current one), version_mismatch (a
    // version beyond current + 1), expired. On error nothing staged changes.
    [[nodiscard]] Result<void> import_role(std::string_view role, std::string_view bytes, Time now);

    // Signs and writes every staged role (see the top of this file). With
    // PublishScope::everything the snapshot is re-made when any targets role changed or was
    // bumped, and the timestamp always is (so a publish with nothing staged refreshes the
    // timestamp). Each new root is signed by a threshold of the previous root's root keys and
    // of its own. Errors: threshold_not_met naming the role when the keys given do not reach a
    // role's threshold; invalid_argument for a key not authorised for the role it is given for.
    // On a signing error nothing is written; on any error the staged state is unchanged (a
    // failed write may leave some new files, which a retried publish overwrites).
    [[nodiscard]] Result<PublishReport> publish(const Signers& signers, Time now,
                                                PublishScope scope = PublishScope::everything);

private:
    struct TargetsRole {
        Metadata<Targets> md;
        std::string bytes;       // the file as on disk; empty when never written
        bool published = false;  // a file exists
        bool imported = false;   // md/bytes came from import_role: publish writes them as is
    };

    Repository() = default;
    [[nodiscard]] Result<TargetsRole*> find_targets(std::string_view role);
    // The delegator of a delegated role and its entry there; nullopt pair for top-level roles.
    [[nodiscard]] Result<std::pair<TargetsRole*, DelegatedRole*>> find_delegation(
        std::string_view role);
    [[nodiscard]] Result<void> check_role(std::string_view role) const;
    // A valid target path that `role` exists and is delegated (invalid_argument otherwise).
    [[nodiscard]] Result<void> check_target_role(std::string_view target_path,
                                                 std::string_view role);
    // After a role's delegations changed: stages every newly delegated role empty and drops
    // the roles no longer reachable from "targets".
    void reconcile_delegations();
    [[nodiscard]] Result<TargetFile> stage_target(std::string_view target_path, TargetFile file,
                                                  std::string_view role);

    std::filesystem::path dir_;
    ExpiryPolicy policy_;
    Metadata<Root> root_;
    std::optional<Metadata<Root>> published_root_;  // the newest root on disk
    Metadata<Timestamp> timestamp_;
    Metadata<Snapshot> snapshot_;
    std::string snapshot_bytes_;
    std::map<std::string, TargetsRole, std::less<>> targets_;
    std::set<std::string, std::less<>> changed_;
    std::map<std::string, Time, std::less<>> expiry_override_;
};

}  // namespace pylon::signing::tuf
