// The catalog's domain types: plain values, as stored and as returned by Catalog.
//
// Identifiers are the database's 64-bit ids. Timestamps are UTC time points kept to the
// microsecond (PostgreSQL's precision; finer parts are truncated on the way in).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pylon/common/result.h"

namespace pylon::catalog {

using Timestamp = std::chrono::system_clock::time_point;

// "2026-11-21T17:19:19Z", or "2026-11-21T17:19:19.123456Z" when there are microseconds.
std::string format_rfc3339(Timestamp t);
// Accepts RFC 3339 with 'Z' or a numeric offset and up to 9 fractional digits.
// Errc::invalid_argument otherwise.
[[nodiscard]] Result<Timestamp> parse_rfc3339(std::string_view text);

// Licence terms, part of the signed metadata of a model and of each release.
struct License {
    std::string spdx;                          // SPDX expression; LicenseRef-... for model licences
    std::optional<bool> commercial_use;        // unset: the terms do not say
    std::vector<std::string> regions_allowed;  // ISO 3166 codes; empty: everywhere not denied
    std::vector<std::string> regions_denied;
    bool acceptance_required = false;
    std::string attribution;

    bool operator==(const License&) const = default;
};

// {"spdx": "...", "commercial_use": true, "regions_allowed": [...], "regions_denied": [...],
//  "acceptance_required": false, "attribution": "..."}; commercial_use is omitted when unset.
nlohmann::json to_json(const License& license);
// Strict: every present field must have its type; unknown fields are refused.
// Errc::invalid_argument naming the field otherwise.
[[nodiscard]] Result<License> license_from_json(const nlohmann::json& json);

struct Namespace {
    std::int64_t id = 0;
    std::string name;
    std::string description;
    Timestamp created_at;
};

struct Model {
    std::int64_t id = 0;
    std::string ns;
    std::string name;
    std::string description;
    License license;
    Timestamp created_at;
    Timestamp updated_at;
};

enum class ReleaseState { draft, published, yanked };
std::string_view to_string(ReleaseState state);
// Errc::invalid_argument for anything but "draft", "published", "yanked".
[[nodiscard]] Result<ReleaseState> parse_release_state(std::string_view text);

struct Release {
    std::int64_t id = 0;
    std::string ns;
    std::string model;
    std::string version;
    ReleaseState state = ReleaseState::draft;
    std::string notes;
    License license;
    Timestamp created_at;
    std::optional<Timestamp> published_at;
    std::optional<Timestamp> yanked_at;
    std::string yank_reason;
};

// What a device must have to run a build. The device's hardware probe uses the same vocabulary.
struct HardwareTarget {
    std::string arch;                  // x86_64, aarch64, ...
    std::vector<std::string> isa;      // required features (avx2, neon, ...), sorted, no duplicates
    std::string accelerator = "none";  // "none" runs anywhere; otherwise e.g. "cuda-sm87"
    std::int64_t min_ram_mb = 0;

    bool operator==(const HardwareTarget&) const = default;
};

struct BuildFile {
    std::string name;
    std::string digest;  // "sha256:<64 hex>", a recorded blob
    std::int64_t size = 0;

    bool operator==(const BuildFile&) const = default;
};

struct Build {
    std::int64_t id = 0;          // set by the catalog
    std::int64_t release_id = 0;  // set by the catalog
    std::string name;             // e.g. "x86_64-avx2-q4_0", unique within its release
    HardwareTarget target;
    std::string format;            // gguf, ...
    std::string quantization;      // Q4_0, ...
    std::vector<BuildFile> files;  // sorted by name when returned
    Timestamp created_at;
};

struct Blob {
    std::string digest;
    std::int64_t size = 0;
    Timestamp created_at;
};

enum class AttestationKind { provenance, model_signature };
std::string_view to_string(AttestationKind kind);
[[nodiscard]] Result<AttestationKind> parse_attestation_kind(std::string_view text);

struct Attestation {
    std::int64_t id = 0;
    std::int64_t release_id = 0;
    std::optional<std::string> build;  // the build it covers; unset: the whole release
    AttestationKind kind = AttestationKind::provenance;
    std::string body;   // the exact bytes as uploaded (DSSE envelope / signature bundle)
    std::string keyid;  // the key that signed it
    Timestamp created_at;
};

struct PublisherKey {
    std::string keyid;
    std::string key_json;  // the TUF key object, as JSON

    bool operator==(const PublisherKey&) const = default;
};

struct PublisherKeySet {
    std::vector<PublisherKey> keys;  // sorted by keyid
    int threshold = 1;
};

struct ApiToken {
    std::int64_t id = 0;
    std::string name;
    std::vector<std::string> scopes;
    Timestamp created_at;
    std::optional<Timestamp> expires_at;
    bool revoked = false;
    std::optional<Timestamp> last_used_at;
    std::string created_by;
};

// A group of devices that share enrolment tokens and rollouts.
struct Fleet {
    std::int64_t id = 0;
    std::string name;
    std::string description;
    Timestamp created_at;
    std::string region;           // ISO 3166 code where its devices stand ("" unknown)
    bool commercial_use = false;  // its devices are used commercially
};

struct EnrollmentToken {
    std::int64_t id = 0;
    std::string fleet;
    std::string name;
    std::optional<std::int32_t> max_uses;  // unset: any number of devices
    std::int32_t uses = 0;
    Timestamp created_at;
    std::optional<Timestamp> expires_at;
    bool revoked = false;
    std::string created_by;
};

// A release as a device refers to it.
struct ReleaseName {
    std::int64_t id = 0;
    std::string ns;
    std::string model;
    std::string version;

    bool operator==(const ReleaseName&) const = default;
};

struct Device {
    std::int64_t id = 0;
    std::string fleet;
    std::string name;
    std::string public_key;       // the device's Ed25519 identity key (TUF key JSON)
    std::string labels = "{}";    // a JSON object, as text
    std::string hardware = "{}";  // the agent's hardware probe, as JSON text
    Timestamp enrolled_at;
    std::optional<Timestamp> last_seen_at;
    std::optional<ReleaseName> current;  // what the device last reported running
    std::optional<ReleaseName> desired;  // what it is assigned
    std::string update_state = "idle";   // the agent's journal state, as last reported
    std::int64_t director_version = 0;   // the last director document version issued
    std::string last_error;
    bool revoked = false;
};

// --- rollouts -------------------------------------------------------------------------------

// One wave of a rollout: a share of the selected devices (percent of all compatible devices, or
// a count; the last wave takes every device left), when to advance and when to abort.
struct WaveSpec {
    std::optional<std::int32_t> percent;  // 1..100
    std::optional<std::int32_t> count;    // >= 1
    double success_threshold = 1.0;  // advance when succeeded / devices >= this (after the soak)
    double failure_threshold = 0.0;  // abort when failed / devices > this
    std::int32_t soak_seconds = 0;   // wait this long after reaching success before advancing
};

// What an operator asks for; `fit` says why a device cannot take the release (no build fits its
// hardware), or nullopt when it can.
struct RolloutSpec {
    std::string ns, model, version;
    std::string fleet;
    std::string selector = "{}";  // JSON object: label -> value or [values] (any of them)
    std::vector<WaveSpec> waves;
    bool auto_rollback = true;
    bool start = true;  // false: created pending, started by resume
    std::optional<std::pair<std::int32_t, std::int32_t>> window;  // UTC minutes [start, end)
    std::string created_by;
    std::function<std::optional<std::string>(const std::string& hardware_json)> fit;
};

struct WaveStatus {
    std::int32_t position = 0;
    WaveSpec spec;
    std::string state;  // pending, running, soaking, succeeded, failed
    std::int64_t devices = 0, pending = 0, assigned = 0, succeeded = 0, failed = 0, rolled_back = 0;
    std::optional<Timestamp> started_at, soak_until, finished_at;
};

struct Rollout {
    std::int64_t id = 0;
    ReleaseName release;
    std::string fleet;
    std::string selector = "{}";
    std::string state;  // pending, running, paused, completed, aborted, rolled_back
    bool auto_rollback = true;
    std::optional<std::pair<std::int32_t, std::int32_t>> window;
    std::string reason;
    std::string created_by;
    Timestamp created_at;
    Timestamp updated_at;
    std::optional<Timestamp> finished_at;
    std::vector<WaveStatus> waves;
    std::int64_t incompatible = 0;
};

struct RolloutDevice {
    std::int64_t device_id = 0;
    std::string device;                // its name in the fleet
    std::optional<std::int32_t> wave;  // none: incompatible
    std::string state;  // pending, assigned, succeeded, failed, incompatible, rolled_back
    std::optional<ReleaseName> previous;
    std::string reason;
    Timestamp updated_at;
};

struct RolloutEvent {
    std::int64_t id = 0;
    Timestamp at;
    std::string kind;
    std::string actor;
    std::string details = "{}";
};

struct RolloutFilter {
    std::optional<std::string> fleet;
    std::optional<std::string> state;  // "active": pending, running or paused
};

// What `pylon rollback --fleet` did.
struct FleetRollback {
    std::optional<std::int64_t> rollout_id;  // the rollout it ended or undid
    std::int64_t devices = 0;                // devices given a new desired release
};

struct LicenseAcceptance {
    std::int64_t id = 0;
    std::string model;  // "ns/model"
    std::string license_sha256;
    std::string spdx;
    std::string accepted_by;
    Timestamp accepted_at;
};

// A director document as stored: its version, text and expiry, and the release it names.
struct DirectorDocument {
    std::int64_t version = 0;
    std::string document;  // the signed JSON, as served
    Timestamp expires_at;
    std::optional<std::int64_t> release_id;
};

// What the agent reports: its state, the release it runs (when it runs one), an error, and the
// whole signed report for the event log.
struct DeviceReport {
    std::string update_state;
    std::optional<std::int64_t> current_release_id;
    std::string error;
    std::string body = "{}";  // the report as received (JSON text), kept in device_events
};

struct DeviceEvent {
    std::int64_t id = 0;
    Timestamp at;
    std::string kind;            // "enrolled", "report", "assigned", ...
    std::string details = "{}";  // a JSON object, as text
};

struct AuditEntry {
    std::int64_t id = 0;  // set by the catalog
    Timestamp at;         // set by the catalog
    std::string actor;
    std::string action;
    std::string target;
    std::string remote_addr;
    std::string details = "{}";  // a JSON object, as text
};

// Keyset pagination. `after` is the opaque cursor a previous Page returned in `next` (empty for
// the first page). `limit` 0 means 50; values over 500 are treated as 500.
struct PageRequest {
    std::string after;
    std::uint32_t limit = 50;
};

inline constexpr std::uint32_t kDefaultPageLimit = 50;
inline constexpr std::uint32_t kMaxPageLimit = 500;

template <class T>
struct Page {
    std::vector<T> items;
    std::optional<std::string> next;  // set only when more items exist
};

}  // namespace pylon::catalog
