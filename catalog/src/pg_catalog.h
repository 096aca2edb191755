// PostgresCatalog: Catalog over PostgreSQL. Its methods are split by concept over
// pg_catalog.cpp (namespaces, keys, models), pg_releases.cpp (releases, attestations,
// publishing), pg_builds.cpp (builds, search), pg_tokens.cpp (blobs, tokens, audit) and
// pg_devices.cpp (fleets, enrolment, devices, director documents, reports).
#pragma once

#include <memory>
#include <pqxx/row>
#include <pqxx/transaction>
#include <string>

#include "pg_util.h"
#include "pylon/catalog/catalog.h"

namespace pylon::catalog {

// Column lists and joins shared by the queries; the read_* functions below take rows that
// start with these columns, in this order.
inline constexpr const char* kNamespaceColumns = "ns.id, ns.name, ns.description, ns.created_at";
inline constexpr const char* kModelColumns =
    "m.id, n.name, m.name, m.description, m.license::text, m.created_at, m.updated_at";
inline constexpr const char* kModelFrom =
    " FROM models m JOIN namespaces n ON n.id = m.namespace_id ";
inline constexpr const char* kReleaseColumns =
    "r.id, n.name, m.name, r.version, r.state, r.notes, r.license::text, r.created_at, "
    "r.published_at, r.yanked_at, r.yank_reason";
inline constexpr const char* kReleaseFrom =
    " FROM releases r JOIN models m ON m.id = r.model_id JOIN namespaces n ON n.id = "
    "m.namespace_id ";
inline constexpr const char* kBuildColumns =
    "b.id, b.release_id, b.name, b.arch, array_to_json(b.isa)::text, b.accelerator, "
    "b.min_ram_mb, b.format, b.quantization, b.created_at";

Namespace read_namespace(const pqxx::row& row);
Model read_model(const pqxx::row& row);
Release read_release(const pqxx::row& row);
Build read_build(const pqxx::row& row);  // without files

std::string model_name(const std::string& ns, const std::string& model);
std::string release_name(const std::string& ns, const std::string& model,
                         const std::string& version);

struct ReleaseRef {
    std::int64_t id = 0;
    ReleaseState state = ReleaseState::draft;
};

class PostgresCatalog final : public Catalog {
public:
    explicit PostgresCatalog(std::shared_ptr<ConnectionPool> pool) : pool_(std::move(pool)) {}

    Result<Namespace> create_namespace(const std::string& name,
                                       const std::string& description) override;
    Result<Namespace> get_namespace(const std::string& name) override;
    Result<Page<Namespace>> list_namespaces(const PageRequest& page) override;

    Result<void> set_publisher_keys(const std::string& ns, const std::vector<PublisherKey>& keys,
                                    int threshold) override;
    Result<PublisherKeySet> list_publisher_keys(const std::string& ns) override;

    Result<Model> create_model(const std::string& ns, const std::string& name,
                               const std::string& description, const License& license) override;
    Result<Model> get_model(const std::string& ns, const std::string& name) override;
    Result<Page<Model>> list_models(const ModelFilter& filter, const PageRequest& page) override;
    Result<Model> update_model(const std::string& ns, const std::string& name,
                               const std::optional<std::string>& description,
                               const std::optional<License>& license) override;

    Result<Release> create_release(const std::string& ns, const std::string& model,
                                   const std::string& version, const std::string& notes,
                                   const License& license) override;
    Result<Release> get_release(const std::string& ns, const std::string& model,
                                const std::string& version) override;
    Result<Page<Release>> list_releases(const std::string& ns, const std::string& model,
                                        const PageRequest& page) override;

    Result<Build> add_build(const std::string& ns, const std::string& model,
                            const std::string& version, const Build& build) override;
    Result<void> remove_build(const std::string& ns, const std::string& model,
                              const std::string& version, const std::string& build) override;
    Result<std::vector<Build>> list_builds(const std::string& ns, const std::string& model,
                                           const std::string& version) override;
    Result<std::vector<Build>> list_builds(std::int64_t release_id) override;

    Result<Attestation> add_attestation(const std::string& ns, const std::string& model,
                                        const std::string& version,
                                        const std::optional<std::string>& build,
                                        AttestationKind kind, const std::string& body,
                                        const std::string& keyid) override;
    Result<std::vector<Attestation>> list_attestations(const std::string& ns,
                                                       const std::string& model,
                                                       const std::string& version) override;

    Result<Release> publish_release(const std::string& ns, const std::string& model,
                                    const std::string& version,
                                    const std::function<Result<void>()>& side_effect) override;
    Result<void> with_tuf_lock(const std::function<Result<void>()>& fn) override;
    Result<Release> yank_release(const std::string& ns, const std::string& model,
                                 const std::string& version, const std::string& reason) override;

    Result<Page<BuildMatch>> search_builds(const BuildQuery& query,
                                           const PageRequest& page) override;

    Result<Blob> record_blob(const std::string& digest, std::int64_t size) override;
    Result<Blob> get_blob(const std::string& digest) override;

    Result<ApiToken> create_token(const std::string& name, const std::string& token_hash,
                                  const std::vector<std::string>& scopes,
                                  const std::optional<Timestamp>& expires_at,
                                  const std::string& created_by) override;
    Result<ApiToken> find_token_by_hash(const std::string& token_hash) override;
    Result<Page<ApiToken>> list_tokens(const PageRequest& page) override;
    Result<void> revoke_token(std::int64_t id) override;
    Result<std::int64_t> count_tokens() override;

    Result<Fleet> create_fleet(const std::string& name, const std::string& description,
                               const std::string& region, bool commercial_use) override;
    Result<Fleet> update_fleet(const std::string& name, const std::string& region,
                               bool commercial_use) override;
    Result<Fleet> get_fleet(const std::string& name) override;
    Result<Page<Fleet>> list_fleets(const PageRequest& page) override;
    Result<EnrollmentToken> create_enrollment_token(const std::string& fleet,
                                                    const std::string& name,
                                                    const std::string& token_hash,
                                                    const std::optional<std::int32_t>& max_uses,
                                                    const std::optional<Timestamp>& expires_at,
                                                    const std::string& created_by) override;
    Result<Page<EnrollmentToken>> list_enrollment_tokens(const std::string& fleet,
                                                         const PageRequest& page) override;
    Result<void> revoke_enrollment_token(const std::string& fleet, std::int64_t id) override;
    Result<Device> enroll_device(const std::string& token_hash, const std::string& name,
                                 const std::string& public_key, const std::string& hardware_json,
                                 const std::string& credential_hash) override;
    Result<Device> find_device_by_credential(const std::string& credential_hash) override;
    Result<Device> get_device(std::int64_t id) override;
    Result<Device> get_device(const std::string& fleet, const std::string& name) override;
    Result<Page<Device>> list_devices(const std::optional<std::string>& fleet,
                                      const PageRequest& page) override;
    Result<Device> update_device_hardware(std::int64_t id,
                                          const std::string& hardware_json) override;
    Result<Device> assign_release(std::int64_t device_id, const std::string& ns,
                                  const std::string& model, const std::string& version,
                                  const std::string& set_by) override;
    Result<void> revoke_device(std::int64_t id) override;
    Result<DirectorDocument> director_document(std::int64_t device_id,
                                               std::chrono::seconds lifetime,
                                               const DirectorSigner& sign) override;
    Result<Device> record_device_report(std::int64_t device_id,
                                        const DeviceReport& report) override;
    Result<Page<DeviceEvent>> list_device_events(std::int64_t device_id,
                                                 const PageRequest& page) override;

    Result<Device> set_device_labels(std::int64_t id, const std::string& labels_json) override;

    Result<Rollout> create_rollout(const RolloutSpec& spec) override;
    Result<Rollout> get_rollout(std::int64_t id) override;
    Result<Page<Rollout>> list_rollouts(const RolloutFilter& filter,
                                        const PageRequest& page) override;
    Result<Page<RolloutDevice>> list_rollout_devices(std::int64_t id,
                                                     const std::optional<std::string>& state,
                                                     const PageRequest& page) override;
    Result<Page<RolloutEvent>> list_rollout_events(std::int64_t id,
                                                   const PageRequest& page) override;
    Result<Rollout> pause_rollout(std::int64_t id, const std::string& actor,
                                  const std::string& reason) override;
    Result<Rollout> resume_rollout(std::int64_t id, const std::string& actor) override;
    Result<Rollout> abort_rollout(std::int64_t id, const std::string& actor,
                                  const std::string& reason, bool rollback) override;
    Result<std::int64_t> advance_rollouts() override;
    Result<FleetRollback> rollback_fleet(const std::string& fleet,
                                         const std::optional<std::string>& version,
                                         const std::string& actor) override;
    Result<LicenseAcceptance> accept_license(const std::string& ns, const std::string& model,
                                             const std::string& version,
                                             const std::string& by) override;
    Result<std::optional<LicenseAcceptance>> find_license_acceptance(
        const std::string& ns, const std::string& model, const std::string& version) override;

    Result<AuditEntry> append_audit(const AuditEntry& entry) override;
    Result<Page<AuditEntry>> list_audit(const PageRequest& page,
                                        const AuditFilter& filter) override;

    Result<void> ping() override;

private:
    template <typename F>
    auto transact(std::string_view what, F&& f, bool retry = true) {
        return with_transaction(pool_->impl(), what, std::forward<F>(f), retry);
    }

    std::shared_ptr<ConnectionPool> pool_;
};

// Shared steps, run inside a caller's transaction.
Result<std::int64_t> namespace_id(pqxx::work& tx, const std::string& ns);
Result<std::int64_t> model_id(pqxx::work& tx, const std::string& ns, const std::string& model);
// Locks the release row (FOR UPDATE) when `lock` is set.
Result<ReleaseRef> find_release(pqxx::work& tx, const std::string& ns, const std::string& model,
                                const std::string& version, bool lock);
Result<Release> load_release(pqxx::work& tx, std::int64_t release_id);
// Builds of a release with their files, by name.
std::vector<Build> load_builds(pqxx::work& tx, std::int64_t release_id);
// Fills in the files of `builds`.
void load_files(pqxx::work& tx, std::vector<Build>& builds);
// A device's report reached it: its active rollout membership (if any) moves to succeeded
// (healthy on the rollout's release) or failed (a failed update or a refusal).
[[nodiscard]] Result<void> rollout_device_reported(pqxx::work& tx, std::int64_t device_id,
                                                   const DeviceReport& report);
// The director's change notification for a device (delivered on commit).
void notify_director(pqxx::work& tx, std::int64_t device);
// An event of the device (device_events), optionally tied to a rollout.
void add_device_event(pqxx::work& tx, std::int64_t device, const std::string& kind,
                      const std::string& details,
                      std::optional<std::int64_t> rollout = std::nullopt);

}  // namespace pylon::catalog
