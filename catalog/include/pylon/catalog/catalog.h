// Catalog: the registry's domain model over PostgreSQL — namespaces, publisher keys, models,
// releases, builds, blobs, attestations, API tokens, fleets and devices, and the audit log.
//
// Contracts shared by every method:
// - Thread-safe; each call takes a pooled connection for its duration.
// - Atomic: a call that changes several rows does so in one transaction, and a call that fails
//   leaves the database as it was.
// - Errors are catalog::Errc codes: not_found names what is missing ("model acme/tiny not
//   found"), conflict an existing entry, invalid_state the state that forbids the call,
//   invalid_argument a malformed value, database a server or connection failure.
// - Names (namespaces, models, versions, builds, files) are stored verbatim; validating their
//   character set is the caller's policy.
// - Lists use keyset pagination (PageRequest/Page); cursors are opaque and stable under inserts.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pylon/catalog/connection_pool.h"
#include "pylon/catalog/types.h"
#include "pylon/common/result.h"

namespace pylon::catalog {

// Fixed key of the advisory lock publish_release holds while its side effect runs, so that
// publishes (and the TUF metadata they write) are serialised across registry replicas.
inline constexpr long long kPublishLockKey = 0x70796c6f6e747566;  // "pylontuf"

struct ModelFilter {
    std::optional<std::string> ns;             // only this namespace
    std::optional<std::string> name_contains;  // plain substring of the model name
};

// What a device has. A build matches when its arch equals `arch`, its ISA features are a
// subset of `isa`, its accelerator is "none" or equals `accelerator`, its min_ram_mb is at most
// `ram_mb` (when given), its format equals `format` (when given), and it lives in namespace `ns`
// (when given). Only builds of published releases match (never drafts or yanked releases).
struct BuildQuery {
    std::string arch;
    std::vector<std::string> isa;
    std::optional<std::string> accelerator;
    std::optional<std::int64_t> ram_mb;
    std::optional<std::string> format;
    std::optional<std::string> ns;
};

struct BuildMatch {
    std::string ns;
    std::string model;
    std::string version;
    Build build;
};

struct AuditFilter {
    std::optional<std::string> actor;
    std::optional<std::string> action;
};

class Catalog {
public:
    virtual ~Catalog() = default;

    // --- namespaces -------------------------------------------------------------------------
    // conflict when the name is taken; invalid_argument for an empty name.
    virtual Result<Namespace> create_namespace(const std::string& name,
                                               const std::string& description) = 0;
    virtual Result<Namespace> get_namespace(const std::string& name) = 0;
    // By creation order.
    virtual Result<Page<Namespace>> list_namespaces(const PageRequest& page) = 0;

    // --- publisher keys (the namespace's delegated-targets keys) -----------------------------
    // Replaces the namespace's whole key set and threshold. invalid_argument unless
    // 1 <= threshold <= keys.size(), keyids are distinct and non-empty, and each key_json is a
    // JSON object.
    virtual Result<void> set_publisher_keys(const std::string& ns,
                                            const std::vector<PublisherKey>& keys,
                                            int threshold) = 0;
    // A namespace without keys gives an empty set with threshold 1.
    virtual Result<PublisherKeySet> list_publisher_keys(const std::string& ns) = 0;

    // --- models -------------------------------------------------------------------------------
    // not_found when the namespace is missing; conflict when the model exists.
    virtual Result<Model> create_model(const std::string& ns, const std::string& name,
                                       const std::string& description, const License& license) = 0;
    virtual Result<Model> get_model(const std::string& ns, const std::string& name) = 0;
    // By creation order.
    virtual Result<Page<Model>> list_models(const ModelFilter& filter, const PageRequest& page) = 0;
    // Changes the given fields (and updated_at); fields left unset are untouched.
    virtual Result<Model> update_model(const std::string& ns, const std::string& name,
                                       const std::optional<std::string>& description,
                                       const std::optional<License>& license) = 0;

    // --- releases -----------------------------------------------------------------------------
    // A new draft. not_found when the model is missing; conflict when the version exists.
    virtual Result<Release> create_release(const std::string& ns, const std::string& model,
                                           const std::string& version, const std::string& notes,
                                           const License& license) = 0;
    virtual Result<Release> get_release(const std::string& ns, const std::string& model,
                                        const std::string& version) = 0;
    // Newest first (by creation). not_found when the model is missing.
    virtual Result<Page<Release>> list_releases(const std::string& ns, const std::string& model,
                                                const PageRequest& page) = 0;

    // Adds a build with its files to a draft release and returns it as stored (ids set, ISA
    // sorted). invalid_state unless the release is a draft; not_found naming the digest when a
    // file's blob was never recorded; invalid_argument when a file's size differs from its
    // blob's, file names repeat, or there are no files; conflict when the build name is taken.
    virtual Result<Build> add_build(const std::string& ns, const std::string& model,
                                    const std::string& version, const Build& build) = 0;
    // Removes a build (its files and attestations with it) from a draft release.
    virtual Result<void> remove_build(const std::string& ns, const std::string& model,
                                      const std::string& version, const std::string& build) = 0;
    // Builds with their files, by name.
    virtual Result<std::vector<Build>> list_builds(const std::string& ns, const std::string& model,
                                                   const std::string& version) = 0;
    virtual Result<std::vector<Build>> list_builds(std::int64_t release_id) = 0;

    // Stores an attestation of a draft release (of one of its builds when `build` is set).
    // invalid_state unless a draft; not_found when the build is missing.
    virtual Result<Attestation> add_attestation(const std::string& ns, const std::string& model,
                                                const std::string& version,
                                                const std::optional<std::string>& build,
                                                AttestationKind kind, const std::string& body,
                                                const std::string& keyid) = 0;
    // In insertion order.
    virtual Result<std::vector<Attestation>> list_attestations(const std::string& ns,
                                                               const std::string& model,
                                                               const std::string& version) = 0;

    // Publishes a draft. In one transaction: locks the release row, takes
    // pg_advisory_xact_lock(kPublishLockKey), checks the release is a draft with at least one
    // build (invalid_state otherwise), runs `side_effect` (the caller writes TUF metadata
    // there; may be empty), then marks the release published. When side_effect fails its error
    // is returned and the release stays a draft. side_effect runs at most once per call.
    virtual Result<Release> publish_release(const std::string& ns, const std::string& model,
                                            const std::string& version,
                                            const std::function<Result<void>()>& side_effect) = 0;
    // Runs `fn` inside a transaction holding pg_advisory_xact_lock(kPublishLockKey), the lock
    // publish_release holds around its side effect: every writer of the shared TUF repository
    // (publishes, new top-level targets, timestamp re-signing) takes turns across replicas. `fn`
    // runs once and must not call the catalog (the transaction holds a pooled connection).
    virtual Result<void> with_tuf_lock(const std::function<Result<void>()>& fn) = 0;
    // published → yanked, with the reason. invalid_state for drafts and yanked releases.
    virtual Result<Release> yank_release(const std::string& ns, const std::string& model,
                                         const std::string& version, const std::string& reason) = 0;

    // Builds of published releases that fit the query, by build id.
    virtual Result<Page<BuildMatch>> search_builds(const BuildQuery& query,
                                                   const PageRequest& page) = 0;

    // --- blobs --------------------------------------------------------------------------------
    // Records a verified blob. Idempotent: recording the same digest with the same size returns
    // the existing row; a different size is a conflict. invalid_argument unless the digest is
    // "sha256:" and 64 lower-case hex digits and size >= 0.
    virtual Result<Blob> record_blob(const std::string& digest, std::int64_t size) = 0;
    virtual Result<Blob> get_blob(const std::string& digest) = 0;

    // --- API tokens ---------------------------------------------------------------------------
    // `token_hash` is the SHA-256 of the token in lower-case hex (invalid_argument otherwise);
    // the token itself never reaches the catalog. conflict when the hash exists.
    virtual Result<ApiToken> create_token(const std::string& name, const std::string& token_hash,
                                          const std::vector<std::string>& scopes,
                                          const std::optional<Timestamp>& expires_at,
                                          const std::string& created_by) = 0;
    // The live token with this hash: not_found when missing, revoked or expired. Updates
    // last_used_at, at most once a minute per token (the returned value is the stored one).
    virtual Result<ApiToken> find_token_by_hash(const std::string& token_hash) = 0;
    // By id, revoked and expired ones included.
    virtual Result<Page<ApiToken>> list_tokens(const PageRequest& page) = 0;
    // not_found for an unknown id; revoking a revoked token changes nothing.
    virtual Result<void> revoke_token(std::int64_t id) = 0;
    // Every token ever created, revoked ones included (zero only on a fresh installation).
    virtual Result<std::int64_t> count_tokens() = 0;

    // --- fleets, enrolment and devices ---------------------------------------------------------
    // conflict when the name is taken; invalid_argument for a region that is not an ISO 3166
    // code ("" is allowed: unknown).
    virtual Result<Fleet> create_fleet(const std::string& name, const std::string& description,
                                       const std::string& region, bool commercial_use) = 0;
    // Sets the fleet's region and commercial use (what rollouts check licences against).
    virtual Result<Fleet> update_fleet(const std::string& name, const std::string& region,
                                       bool commercial_use) = 0;
    virtual Result<Fleet> get_fleet(const std::string& name) = 0;
    // By creation order.
    virtual Result<Page<Fleet>> list_fleets(const PageRequest& page) = 0;

    // A fleet's enrolment token; `token_hash` as for create_token. not_found for an unknown
    // fleet; invalid_argument for max_uses < 1.
    virtual Result<EnrollmentToken> create_enrollment_token(
        const std::string& fleet, const std::string& name, const std::string& token_hash,
        const std::optional<std::int32_t>& max_uses, const std::optional<Timestamp>& expires_at,
        const std::string& created_by) = 0;
    // By id. not_found for an unknown fleet.
    virtual Result<Page<EnrollmentToken>> list_enrollment_tokens(const std::string& fleet,
                                                                 const PageRequest& page) = 0;
    // not_found for an unknown id (in this fleet); revoking twice changes nothing.
    virtual Result<void> revoke_enrollment_token(const std::string& fleet, std::int64_t id) = 0;

    // Enrols a device with an enrolment token, in one transaction: the token must be live (not
    // revoked, not expired, uses below max_uses: not_found otherwise, without saying which),
    // its use is counted, and the device is created in the token's fleet with its identity key,
    // hardware probe (a JSON object) and the hash of the credential the registry hands it.
    // conflict when the fleet has a device of that name or the key is enrolled already.
    virtual Result<Device> enroll_device(const std::string& token_hash, const std::string& name,
                                         const std::string& public_key,
                                         const std::string& hardware_json,
                                         const std::string& credential_hash) = 0;
    // The live (not revoked) device with this credential hash; not_found otherwise. Updates
    // last_seen_at, at most once a minute.
    virtual Result<Device> find_device_by_credential(const std::string& credential_hash) = 0;
    virtual Result<Device> get_device(std::int64_t id) = 0;
    virtual Result<Device> get_device(const std::string& fleet, const std::string& name) = 0;
    // By id; all fleets when `fleet` is unset.
    virtual Result<Page<Device>> list_devices(const std::optional<std::string>& fleet,
                                              const PageRequest& page) = 0;
    // Replaces the stored hardware probe (a JSON object); a change makes the next director
    // document a new version (the best-fitting build may differ).
    virtual Result<Device> update_device_hardware(std::int64_t id,
                                                  const std::string& hardware_json) = 0;
    // Sets the release the device should run (an operator's assignment; rollouts later).
    // invalid_state unless the release is published; not_found for a missing one.
    virtual Result<Device> assign_release(std::int64_t device_id, const std::string& ns,
                                          const std::string& model, const std::string& version,
                                          const std::string& set_by) = 0;
    virtual Result<void> revoke_device(std::int64_t id) = 0;

    // The device's director document: the stored one when it still names the desired release,
    // more than half of `lifetime` remains and it does not outlive `lifetime` from now (a
    // shortened lifetime takes effect at once); otherwise, in one transaction
    // with the device row locked, the next version is taken and `sign(version, expires_at,
    // desired release or nullopt)` makes the document, which is stored and returned (a failing
    // sign() changes nothing). Versions only grow, so a replayed older document is detectable.
    using DirectorSigner = std::function<Result<std::string>(
        std::int64_t version, Timestamp expires_at, const std::optional<ReleaseName>& release)>;
    virtual Result<DirectorDocument> director_document(std::int64_t device_id,
                                                       std::chrono::seconds lifetime,
                                                       const DirectorSigner& sign) = 0;

    // Records a status report: an event (kind "report", the body as details), the device's
    // update state, error and last_seen_at, and, when it names one, its current release.
    // invalid_argument for an unknown state or a body that is not a JSON object; not_found for a
    // current release that does not exist.
    virtual Result<Device> record_device_report(std::int64_t device_id,
                                                const DeviceReport& report) = 0;
    // The device's events (enrolment, assignments, reports), newest first.
    virtual Result<Page<DeviceEvent>> list_device_events(std::int64_t device_id,
                                                         const PageRequest& page) = 0;

    // Replaces the device's labels (a JSON object of string values); an event records them.
    virtual Result<Device> set_device_labels(std::int64_t id, const std::string& labels_json) = 0;

    // --- rollouts ------------------------------------------------------------------------------
    // Creates a rollout in one transaction: selects the fleet's live devices matching the
    // selector, marks those `fit` refuses incompatible (with the reason), spreads the others
    // over the waves (a stable pseudo-random order), and starts it (running) unless spec.start
    // is false. invalid_argument for a bad spec; invalid_state for an unpublished release;
    // conflict, naming the rollout, when a selected device is in another active rollout;
    // not_found for an unknown fleet or release. Every state change of a rollout is a
    // rollout event and an audit entry (actor: who asked, or "orchestrator").
    virtual Result<Rollout> create_rollout(const RolloutSpec& spec) = 0;
    virtual Result<Rollout> get_rollout(std::int64_t id) = 0;
    // Newest first.
    virtual Result<Page<Rollout>> list_rollouts(const RolloutFilter& filter,
                                                const PageRequest& page) = 0;
    // By device id; `state` filters.
    virtual Result<Page<RolloutDevice>> list_rollout_devices(
        std::int64_t id, const std::optional<std::string>& state, const PageRequest& page) = 0;
    // Newest first.
    virtual Result<Page<RolloutEvent>> list_rollout_events(std::int64_t id,
                                                           const PageRequest& page) = 0;
    // running -> paused (no new wave starts; assigned devices keep their assignment).
    virtual Result<Rollout> pause_rollout(std::int64_t id, const std::string& actor,
                                          const std::string& reason) = 0;
    // pending or paused -> running.
    virtual Result<Rollout> resume_rollout(std::int64_t id, const std::string& actor) = 0;
    // An active rollout -> aborted; with `rollback`, every device it assigned gets its previous
    // release back (new director documents) and the state is rolled_back.
    virtual Result<Rollout> abort_rollout(std::int64_t id, const std::string& actor,
                                          const std::string& reason, bool rollback) = 0;
    // The orchestrator's step over every running rollout (each in its own transaction, rows
    // another replica holds are skipped): starts the next wave inside the maintenance window,
    // moves a wave to soaking / succeeded at its success threshold, aborts (and rolls back)
    // past its failure threshold, completes the rollout after its last wave. Returns how many
    // rollouts changed.
    virtual Result<std::int64_t> advance_rollouts() = 0;
    // Rolls a fleet back in one step. Without `version`: the fleet's latest rollout is aborted
    // if active, and every device it assigned returns to its previous release. With it: the
    // latest rollout ends the same way, and every live device of the fleet assigned a release of
    // that rollout's model is assigned `version` of it. not_found when the fleet has no rollout.
    virtual Result<FleetRollback> rollback_fleet(const std::string& fleet,
                                                 const std::optional<std::string>& version,
                                                 const std::string& actor) = 0;

    // --- licence acceptances -------------------------------------------------------------------
    // Records that `by` accepted the licence of this release (its terms' SHA-256 and SPDX
    // expression) for the organisation; accepting again keeps the first record.
    virtual Result<LicenseAcceptance> accept_license(const std::string& ns,
                                                     const std::string& model,
                                                     const std::string& version,
                                                     const std::string& by) = 0;
    // The acceptance of the licence this release carries now, if any.
    virtual Result<std::optional<LicenseAcceptance>> find_license_acceptance(
        const std::string& ns, const std::string& model, const std::string& version) = 0;

    // --- audit log ----------------------------------------------------------------------------
    // Appends an entry (id and at are set by the catalog) and returns it. invalid_argument
    // when details is not a JSON object or actor/action is empty.
    virtual Result<AuditEntry> append_audit(const AuditEntry& entry) = 0;
    // Newest first.
    virtual Result<Page<AuditEntry>> list_audit(const PageRequest& page,
                                                const AuditFilter& filter) = 0;

    // Readiness: the database answers.
    virtual Result<void> ping() = 0;
};

// A Catalog over the pool's database; the schema must be migrated (apply_migrations).
[[nodiscard]] Result<std::unique_ptr<Catalog>> make_postgres_catalog(
    std::shared_ptr<ConnectionPool> pool);

}  // namespace pylon::catalog
