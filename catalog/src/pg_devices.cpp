// PostgresCatalog: fleets, enrolment tokens, devices, director documents and device reports.
#include <fmt/format.h>

#include <cctype>

#include <nlohmann/json.hpp>

#include "pg_catalog.h"
#include "pylon/catalog/change_listener.h"
#include "pylon/catalog/errors.h"

namespace pylon::catalog {
namespace {

bool is_json_object(const std::string& text) {
    const auto j = nlohmann::json::parse(text, nullptr, false);
    return !j.is_discarded() && j.is_object();
}

constexpr const char* kFleetColumns =
    "f.id, f.name, f.description, f.created_at, f.region, f.commercial_use";

Fleet read_fleet(const pqxx::row& row) {
    return Fleet{row[0].as<std::int64_t>(), row[1].as<std::string>(), row[2].as<std::string>(),
                 to_timestamp(row[3]),      row[4].as<std::string>(), row[5].as<bool>()};
}

Result<void> check_region(const std::string& region) {
    if (region.empty() ||
        (region.size() == 2 && std::isupper(static_cast<unsigned char>(region[0])) &&
         std::isupper(static_cast<unsigned char>(region[1])))) {
        return {};
    }
    return Error(Errc::invalid_argument,
                 "a region is an ISO 3166 alpha-2 code such as DE (or empty: unknown)");
}

constexpr const char* kEnrollmentColumns =
    "t.id, f.name, t.name, t.max_uses, t.uses, t.created_at, t.expires_at,"
    " t.revoked_at IS NOT NULL, t.created_by";

EnrollmentToken read_enrollment(const pqxx::row& row) {
    EnrollmentToken t;
    t.id = row[0].as<std::int64_t>();
    t.fleet = row[1].as<std::string>();
    t.name = row[2].as<std::string>();
    if (!row[3].is_null()) t.max_uses = row[3].as<std::int32_t>();
    t.uses = row[4].as<std::int32_t>();
    t.created_at = to_timestamp(row[5]);
    t.expires_at = to_optional_timestamp(row[6]);
    t.revoked = row[7].as<bool>();
    t.created_by = row[8].as<std::string>();
    return t;
}

// The device row with its fleet and both releases by name.
constexpr const char* kDeviceSelect =
    "SELECT d.id, f.name, d.name, d.public_key, d.labels::text, d.hardware::text, d.enrolled_at,"
    " d.last_seen_at, cr.id, cn.name, cm.name, cr.version, dr.id, dn.name, dm.name, dr.version,"
    " d.update_state, d.director_version, d.last_error, d.revoked_at IS NOT NULL"
    " FROM devices d JOIN fleets f ON f.id = d.fleet_id"
    " LEFT JOIN releases cr ON cr.id = d.current_release_id"
    " LEFT JOIN models cm ON cm.id = cr.model_id LEFT JOIN namespaces cn ON cn.id = cm.namespace_id"
    " LEFT JOIN releases dr ON dr.id = d.desired_release_id"
    " LEFT JOIN models dm ON dm.id = dr.model_id LEFT JOIN namespaces dn ON dn.id = "
    "dm.namespace_id ";

std::optional<ReleaseName> read_release_name(const pqxx::row& row, int first) {
    if (row[first].is_null()) return std::nullopt;
    return ReleaseName{row[first].as<std::int64_t>(), row[first + 1].as<std::string>(),
                       row[first + 2].as<std::string>(), row[first + 3].as<std::string>()};
}

Device read_device(const pqxx::row& row) {
    Device d;
    d.id = row[0].as<std::int64_t>();
    d.fleet = row[1].as<std::string>();
    d.name = row[2].as<std::string>();
    d.public_key = row[3].as<std::string>();
    d.labels = row[4].as<std::string>();
    d.hardware = row[5].as<std::string>();
    d.enrolled_at = to_timestamp(row[6]);
    d.last_seen_at = to_optional_timestamp(row[7]);
    d.current = read_release_name(row, 8);
    d.desired = read_release_name(row, 12);
    d.update_state = row[16].as<std::string>();
    d.director_version = row[17].as<std::int64_t>();
    d.last_error = row[18].as<std::string>();
    d.revoked = row[19].as<bool>();
    return d;
}

Result<Device> load_device(pqxx::work& tx, std::int64_t id) {
    const auto r = tx.exec_params(std::string(kDeviceSelect) + "WHERE d.id = $1", id);
    if (r.empty()) return Error(Errc::not_found, fmt::format("device {} not found", id));
    return read_device(r[0]);
}

Result<std::int64_t> fleet_id(pqxx::work& tx, const std::string& fleet) {
    const auto r = tx.exec_params("SELECT id FROM fleets WHERE name = $1", fleet);
    if (r.empty()) return Error(Errc::not_found, fmt::format("fleet {} not found", fleet));
    return r[0][0].as<std::int64_t>();
}

void add_event(pqxx::work& tx, std::int64_t device, const std::string& kind,
               const std::string& details) {
    tx.exec_params(
        "INSERT INTO device_events (device_id, kind, details) VALUES ($1, $2, $3::jsonb)", device,
        kind, details);
}

}  // namespace

// Tells every registry replica (ChangeListener) that the device's director document may change;
// delivered when the transaction commits, not at all when it rolls back.
void notify_director(pqxx::work& tx, std::int64_t device) {
    tx.exec_params("SELECT pg_notify($1, $2)", std::string(kDirectorChannel),
                   std::to_string(device));
}

void add_device_event(pqxx::work& tx, std::int64_t device, const std::string& kind,
                      const std::string& details, std::optional<std::int64_t> rollout) {
    tx.exec_params(
        "INSERT INTO device_events (device_id, kind, details, rollout_id)"
        " VALUES ($1, $2, $3::jsonb, $4)",
        device, kind, details, rollout);
}

Result<Fleet> PostgresCatalog::create_fleet(const std::string& name, const std::string& description,
                                            const std::string& region, bool commercial_use) {
    if (name.empty()) return Error(Errc::invalid_argument, "fleet name is empty");
    PYLON_TRY(check_region(region));
    return transact(fmt::format("creating fleet {}", name), [&](pqxx::work& tx) -> Result<Fleet> {
        const auto r = tx.exec_params(
            fmt::format("INSERT INTO fleets AS f (name, description, region, commercial_use)"
                        " VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING RETURNING {}",
                        kFleetColumns),
            name, description, region, commercial_use);
        if (r.empty()) return Error(Errc::conflict, fmt::format("fleet {} already exists", name));
        return read_fleet(r[0]);
    });
}

Result<Fleet> PostgresCatalog::update_fleet(const std::string& name, const std::string& region,
                                            bool commercial_use) {
    PYLON_TRY(check_region(region));
    return transact(fmt::format("updating fleet {}", name), [&](pqxx::work& tx) -> Result<Fleet> {
        const auto r = tx.exec_params(
            fmt::format("UPDATE fleets AS f SET region = $2, commercial_use = $3 WHERE name = $1"
                        " RETURNING {}",
                        kFleetColumns),
            name, region, commercial_use);
        if (r.empty()) return Error(Errc::not_found, fmt::format("fleet {} not found", name));
        return read_fleet(r[0]);
    });
}

Result<Device> PostgresCatalog::set_device_labels(std::int64_t id, const std::string& labels_json) {
    const auto j = nlohmann::json::parse(labels_json, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        return Error(Errc::invalid_argument, "device labels must be a JSON object");
    }
    for (const auto& [k, v] : j.items()) {
        if (k.empty() || k.size() > 63 || !v.is_string() || v.get<std::string>().size() > 255) {
            return Error(Errc::invalid_argument,
                         "device labels: keys of 1 to 63 bytes, string values up to 255 bytes");
        }
    }
    return transact(fmt::format("labelling device {}", id), [&](pqxx::work& tx) -> Result<Device> {
        const auto r = tx.exec_params(
            "UPDATE devices SET labels = $2::jsonb WHERE id = $1 AND revoked_at IS NULL"
            " RETURNING id",
            id, j.dump());
        if (r.empty()) return Error(Errc::not_found, fmt::format("device {} not found", id));
        add_event(tx, id, "labels", j.dump());
        return load_device(tx, id);
    });
}

Result<Fleet> PostgresCatalog::get_fleet(const std::string& name) {
    return transact("reading fleet", [&](pqxx::work& tx) -> Result<Fleet> {
        const auto r = tx.exec_params(
            fmt::format("SELECT {} FROM fleets f WHERE f.name = $1", kFleetColumns), name);
        if (r.empty()) return Error(Errc::not_found, fmt::format("fleet {} not found", name));
        return read_fleet(r[0]);
    });
}

Result<Page<Fleet>> PostgresCatalog::list_fleets(const PageRequest& page) {
    PYLON_TRY_ASSIGN(const auto bounds, page_bounds(page));
    return transact("listing fleets", [&](pqxx::work& tx) -> Result<Page<Fleet>> {
        const auto r = tx.exec_params(
            fmt::format("SELECT {} FROM fleets f WHERE ($1::bigint IS NULL OR f.id > $1)"
                        " ORDER BY f.id LIMIT $2",
                        kFleetColumns),
            bounds.after, static_cast<std::int64_t>(bounds.limit) + 1);
        std::vector<Fleet> items;
        for (const auto& row : r) items.push_back(read_fleet(row));
        return make_page(std::move(items), bounds.limit, [](const Fleet& f) { return f.id; });
    });
}

Result<EnrollmentToken> PostgresCatalog::create_enrollment_token(
    const std::string& fleet, const std::string& name, const std::string& token_hash,
    const std::optional<std::int32_t>& max_uses, const std::optional<Timestamp>& expires_at,
    const std::string& created_by) {
    if (!is_lower_hex(token_hash, 64)) {
        return Error(Errc::invalid_argument, "token hash must be 64 lower-case hex digits");
    }
    if (max_uses && *max_uses < 1) {
        return Error(Errc::invalid_argument, "an enrolment token's max_uses must be at least 1");
    }
    return transact(
        fmt::format("creating an enrolment token for fleet {}", fleet),
        [&](pqxx::work& tx) -> Result<EnrollmentToken> {
            PYLON_TRY_ASSIGN(const auto fid, fleet_id(tx, fleet));
            const auto r = tx.exec_params(
                "INSERT INTO enrollment_tokens (fleet_id, name, token_hash, max_uses, expires_at,"
                " created_by) VALUES ($1, $2, $3, $4, $5::timestamptz, $6)"
                " ON CONFLICT (token_hash) DO NOTHING RETURNING id",
                fid, name, token_hash, max_uses, timestamp_param(expires_at), created_by);
            if (r.empty()) {
                return Error(Errc::conflict, "an enrolment token with this hash exists");
            }
            const auto t = tx.exec_params(
                fmt::format("SELECT {} FROM enrollment_tokens t JOIN fleets f ON f.id = t.fleet_id"
                            " WHERE t.id = $1",
                            kEnrollmentColumns),
                r[0][0].as<std::int64_t>());
            return read_enrollment(t[0]);
        });
}

Result<Page<EnrollmentToken>> PostgresCatalog::list_enrollment_tokens(const std::string& fleet,
                                                                      const PageRequest& page) {
    PYLON_TRY_ASSIGN(const auto bounds, page_bounds(page));
    return transact("listing enrolment tokens",
                    [&](pqxx::work& tx) -> Result<Page<EnrollmentToken>> {
                        PYLON_TRY_ASSIGN(const auto fid, fleet_id(tx, fleet));
                        const auto r = tx.exec_params(
                            fmt::format("SELECT {} FROM enrollment_tokens t JOIN fleets f ON"
                                        " f.id = t.fleet_id WHERE t.fleet_id = $1 AND"
                                        " ($2::bigint IS NULL OR t.id > $2) ORDER BY t.id LIMIT $3",
                                        kEnrollmentColumns),
                            fid, bounds.after, static_cast<std::int64_t>(bounds.limit) + 1);
                        std::vector<EnrollmentToken> items;
                        for (const auto& row : r) items.push_back(read_enrollment(row));
                        return make_page(std::move(items), bounds.limit,
                                         [](const EnrollmentToken& t) { return t.id; });
                    });
}

Result<void> PostgresCatalog::revoke_enrollment_token(const std::string& fleet, std::int64_t id) {
    return transact(
        fmt::format("revoking enrolment token {}", id), [&](pqxx::work& tx) -> Result<void> {
            PYLON_TRY_ASSIGN(const auto fid, fleet_id(tx, fleet));
            const auto r = tx.exec_params(
                "UPDATE enrollment_tokens SET revoked_at = coalesce(revoked_at, now())"
                " WHERE id = $1 AND fleet_id = $2 RETURNING id",
                id, fid);
            if (r.empty()) {
                return Error(Errc::not_found,
                             fmt::format("enrolment token {} not found in fleet {}", id, fleet));
            }
            return ok();
        });
}

Result<Device> PostgresCatalog::enroll_device(const std::string& token_hash,
                                              const std::string& name,
                                              const std::string& public_key,
                                              const std::string& hardware_json,
                                              const std::string& credential_hash) {
    if (name.empty()) return Error(Errc::invalid_argument, "device name is empty");
    if (public_key.empty()) return Error(Errc::invalid_argument, "device public key is empty");
    if (!is_lower_hex(credential_hash, 64)) {
        return Error(Errc::invalid_argument, "credential hash must be 64 lower-case hex digits");
    }
    if (!is_json_object(hardware_json)) {
        return Error(Errc::invalid_argument, "device hardware must be a JSON object");
    }
    return transact(
        fmt::format("enrolling device {}", name), [&](pqxx::work& tx) -> Result<Device> {
            // The token row is locked so that concurrent enrolments count its uses exactly.
            const auto t = tx.exec_params(
                "SELECT id, fleet_id FROM enrollment_tokens WHERE token_hash = $1"
                " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
                " AND (max_uses IS NULL OR uses < max_uses) FOR UPDATE",
                token_hash);
            if (t.empty()) {
                return Error(Errc::not_found,
                             "the enrolment token is unknown, revoked, expired or used up");
            }
            const auto token_id = t[0][0].as<std::int64_t>();
            const auto fid = t[0][1].as<std::int64_t>();
            const auto taken = tx.exec_params(
                "SELECT 1 FROM devices WHERE (fleet_id = $1 AND name = $2) OR public_key = $3", fid,
                name, public_key);
            if (!taken.empty()) {
                return Error(Errc::conflict,
                             fmt::format("device {} (or its key) is enrolled already", name));
            }
            const auto r = tx.exec_params(
                "INSERT INTO devices (fleet_id, name, public_key, hardware, credential_hash,"
                " enrollment_token_id, last_seen_at) VALUES ($1, $2, $3, $4::jsonb, $5, $6, now())"
                " RETURNING id",
                fid, name, public_key, hardware_json, credential_hash, token_id);
            tx.exec_params("UPDATE enrollment_tokens SET uses = uses + 1 WHERE id = $1", token_id);
            const auto id = r[0][0].as<std::int64_t>();
            add_event(tx, id, "enrolled", nlohmann::json{{"enrollment_token", token_id}}.dump());
            return load_device(tx, id);
        });
}

Result<Device> PostgresCatalog::find_device_by_credential(const std::string& credential_hash) {
    return transact("looking up a device", [&](pqxx::work& tx) -> Result<Device> {
        const auto r = tx.exec_params(
            std::string(kDeviceSelect) + "WHERE d.credential_hash = $1 AND d.revoked_at IS NULL",
            credential_hash);
        if (r.empty()) return Error(Errc::not_found, "no device has this credential");
        Device d = read_device(r[0]);
        const auto u = tx.exec_params(
            "UPDATE devices SET last_seen_at = now() WHERE id = $1"
            " AND (last_seen_at IS NULL OR last_seen_at < now() - interval '1 minute')"
            " RETURNING last_seen_at",
            d.id);
        if (!u.empty()) d.last_seen_at = to_timestamp(u[0][0]);
        return d;
    });
}

Result<Device> PostgresCatalog::get_device(std::int64_t id) {
    return transact("reading a device", [&](pqxx::work& tx) { return load_device(tx, id); });
}

Result<Device> PostgresCatalog::get_device(const std::string& fleet, const std::string& name) {
    return transact("reading a device", [&](pqxx::work& tx) -> Result<Device> {
        const auto r = tx.exec_params(
            std::string(kDeviceSelect) + "WHERE f.name = $1 AND d.name = $2", fleet, name);
        if (r.empty()) {
            return Error(Errc::not_found, fmt::format("device {}/{} not found", fleet, name));
        }
        return read_device(r[0]);
    });
}

Result<Page<Device>> PostgresCatalog::list_devices(const std::optional<std::string>& fleet,
                                                   const PageRequest& page) {
    PYLON_TRY_ASSIGN(const auto bounds, page_bounds(page));
    return transact("listing devices", [&](pqxx::work& tx) -> Result<Page<Device>> {
        if (fleet) PYLON_TRY(fleet_id(tx, *fleet));
        const auto r = tx.exec_params(
            std::string(kDeviceSelect) +
                "WHERE ($1::text IS NULL OR f.name = $1) AND ($2::bigint IS NULL OR d.id > $2)"
                " ORDER BY d.id LIMIT $3",
            fleet, bounds.after, static_cast<std::int64_t>(bounds.limit) + 1);
        std::vector<Device> items;
        for (const auto& row : r) items.push_back(read_device(row));
        return make_page(std::move(items), bounds.limit, [](const Device& d) { return d.id; });
    });
}

Result<Device> PostgresCatalog::update_device_hardware(std::int64_t id,
                                                       const std::string& hardware_json) {
    if (!is_json_object(hardware_json)) {
        return Error(Errc::invalid_argument, "device hardware must be a JSON object");
    }
    return transact(fmt::format("updating device {}", id), [&](pqxx::work& tx) -> Result<Device> {
        const auto r = tx.exec_params(
            "UPDATE devices SET hardware = $2::jsonb, director_document = NULL"
            " WHERE id = $1 AND hardware <> $2::jsonb RETURNING id",
            id, hardware_json);
        if (!r.empty()) add_event(tx, id, "hardware", hardware_json);
        return load_device(tx, id);
    });
}

Result<Device> PostgresCatalog::assign_release(std::int64_t device_id, const std::string& ns,
                                               const std::string& model, const std::string& version,
                                               const std::string& set_by) {
    return transact(
        fmt::format("assigning {} to device {}", release_name(ns, model, version), device_id),
        [&](pqxx::work& tx) -> Result<Device> {
            PYLON_TRY_ASSIGN(const auto rel, find_release(tx, ns, model, version, false));
            if (rel.state != ReleaseState::published) {
                return Error(Errc::invalid_state,
                             fmt::format("release {} is {}, not published",
                                         release_name(ns, model, version), to_string(rel.state)));
            }
            const auto r = tx.exec_params(
                "UPDATE devices SET desired_release_id = $2, desired_set_at = now(),"
                " desired_set_by = $3 WHERE id = $1 AND revoked_at IS NULL RETURNING id",
                device_id, rel.id, set_by);
            if (r.empty()) {
                return Error(Errc::not_found, fmt::format("device {} not found", device_id));
            }
            notify_director(tx, device_id);
            add_event(tx, device_id, "assigned",
                      nlohmann::json{{"release", release_name(ns, model, version)}, {"by", set_by}}
                          .dump());
            return load_device(tx, device_id);
        });
}

Result<void> PostgresCatalog::revoke_device(std::int64_t id) {
    return transact(fmt::format("revoking device {}", id), [&](pqxx::work& tx) -> Result<void> {
        const auto r = tx.exec_params(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING "
            "id",
            id);
        if (r.empty()) return Error(Errc::not_found, fmt::format("device {} not found", id));
        notify_director(tx, id);
        add_event(tx, id, "revoked", "{}");
        return ok();
    });
}

Result<DirectorDocument> PostgresCatalog::director_document(std::int64_t device_id,
                                                            std::chrono::seconds lifetime,
                                                            const DirectorSigner& sign) {
    if (lifetime.count() < 2) {
        return Error(Errc::invalid_argument, "a director document must live at least 2 seconds");
    }
    // Not retried on a broken connection: sign() may have run (harmless, but not repeated).
    return transact(
        fmt::format("issuing the director document of device {}", device_id),
        [&](pqxx::work& tx) -> Result<DirectorDocument> {
            // First without a lock: serving the stored document is then a read-only
            // transaction (no row lock, no WAL, no commit flush) — what almost every poll of a
            // large fleet is. Only a document to re-issue takes the row lock, and is checked
            // again under it.
            std::optional<std::int64_t> desired;
            for (const bool lock : {false, true}) {
                const auto r = tx.exec_params(
                    std::string("SELECT director_version, director_document, director_expires_at,"
                                " director_release_id, desired_release_id,"
                                " director_expires_at - now() > $2 * interval '1 second' / 2"
                                " AND director_expires_at <= now() + $2 * interval '1 second'"
                                " FROM devices WHERE id = $1 AND revoked_at IS NULL") +
                        (lock ? " FOR UPDATE" : ""),
                    device_id, static_cast<std::int64_t>(lifetime.count()));
                if (r.empty()) {
                    return Error(Errc::not_found, fmt::format("device {} not found", device_id));
                }
                const auto& row = r[0];
                desired =
                    row[4].is_null() ? std::optional<std::int64_t>() : row[4].as<std::int64_t>();
                const auto named =
                    row[3].is_null() ? std::optional<std::int64_t>() : row[3].as<std::int64_t>();
                const bool fresh = !row[5].is_null() && row[5].as<bool>();
                if (!row[1].is_null() && fresh && desired == named) {
                    return DirectorDocument{row[0].as<std::int64_t>(), row[1].as<std::string>(),
                                            to_timestamp(row[2]), named};
                }
            }
            std::optional<ReleaseName> release;
            if (desired) {
                const auto rel = tx.exec_params(
                    "SELECT r.id, n.name, m.name, r.version FROM releases r JOIN models m ON"
                    " m.id = r.model_id JOIN namespaces n ON n.id = m.namespace_id WHERE r.id = $1",
                    *desired);
                release = read_release_name(rel[0], 0);
            }
            const auto v = tx.exec_params(
                "UPDATE devices SET director_version = director_version + 1 WHERE id = $1"
                " RETURNING director_version, date_trunc('second', now()) + $2 * interval '1 "
                "second'",
                device_id, static_cast<std::int64_t>(lifetime.count()));
            const auto version = v[0][0].as<std::int64_t>();
            const Timestamp expires = to_timestamp(v[0][1]);
            PYLON_TRY_ASSIGN(std::string doc, sign(version, expires, release));
            tx.exec_params(
                "UPDATE devices SET director_document = $2, director_expires_at = $3::timestamptz,"
                " director_release_id = $4 WHERE id = $1",
                device_id, doc, format_rfc3339(expires), desired);
            return DirectorDocument{version, std::move(doc), expires, desired};
        },
        false);
}

Result<Device> PostgresCatalog::record_device_report(std::int64_t device_id,
                                                     const DeviceReport& report) {
    static constexpr std::string_view kStates[] = {"idle",   "downloading", "verifying",
                                                   "staged", "activating",  "healthy",
                                                   "failed", "rolled_back"};
    if (std::find(std::begin(kStates), std::end(kStates), report.update_state) ==
        std::end(kStates)) {
        return Error(Errc::invalid_argument,
                     fmt::format("unknown update state \"{}\"", report.update_state.substr(0, 40)));
    }
    if (!is_json_object(report.body)) {
        return Error(Errc::invalid_argument, "a device report must be a JSON object");
    }
    return transact(
        fmt::format("recording a report of device {}", device_id),
        [&](pqxx::work& tx) -> Result<Device> {
            if (report.current_release_id) {
                const auto rel = tx.exec_params("SELECT 1 FROM releases WHERE id = $1",
                                                *report.current_release_id);
                if (rel.empty()) {
                    return Error(Errc::not_found,
                                 fmt::format("release {} not found", *report.current_release_id));
                }
            }
            const auto r = tx.exec_params(
                "UPDATE devices SET update_state = $2, last_error = $3, last_seen_at = now(),"
                " current_release_id = coalesce($4, current_release_id)"
                " WHERE id = $1 AND revoked_at IS NULL RETURNING id",
                device_id, report.update_state, report.error, report.current_release_id);
            if (r.empty()) {
                return Error(Errc::not_found, fmt::format("device {} not found", device_id));
            }
            add_event(tx, device_id, "report", report.body);
            PYLON_TRY(rollout_device_reported(tx, device_id, report));
            return load_device(tx, device_id);
        });
}

Result<Page<DeviceEvent>> PostgresCatalog::list_device_events(std::int64_t device_id,
                                                              const PageRequest& page) {
    PYLON_TRY_ASSIGN(const auto bounds, page_bounds(page));
    return transact("listing device events", [&](pqxx::work& tx) -> Result<Page<DeviceEvent>> {
        PYLON_TRY(load_device(tx, device_id));
        const auto r = tx.exec_params(
            "SELECT id, at, kind, details::text FROM device_events WHERE device_id = $1"
            " AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
            device_id, bounds.after, static_cast<std::int64_t>(bounds.limit) + 1);
        std::vector<DeviceEvent> items;
        for (const auto& row : r) {
            items.push_back(DeviceEvent{row[0].as<std::int64_t>(), to_timestamp(row[1]),
                                        row[2].as<std::string>(), row[3].as<std::string>()});
        }
        return make_page(std::move(items), bounds.limit, [](const DeviceEvent& e) { return e.id; });
    });
}

}  // namespace pylon::catalog
