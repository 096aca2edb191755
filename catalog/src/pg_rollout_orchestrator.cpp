// PostgresCatalog: the rollout orchestrator's step (waves started in the maintenance window,
// soaks, success and failure thresholds, completion, abort with rollback), member states moved
// by device reports, and fleet rollbacks.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "pg_catalog.h"
#include "pylon/catalog/errors.h"
#include "rollouts_internal.h"

namespace pylon::catalog {
namespace {

using Json = nlohmann::json;
using namespace rollouts;

bool in_window(const std::optional<std::pair<std::int32_t, std::int32_t>>& window,
               std::int32_t minute) {
    if (!window) return true;
    const auto [start, end] = *window;
    if (start == end) return true;
    return start < end ? (minute >= start && minute < end) : (minute >= start || minute < end);
}

// One orchestration step of a running rollout (locked). True when something changed.
bool step(pqxx::work& tx, Rollout& r) {
    const auto now_minute = tx.exec(
        "SELECT (extract(hour FROM now() AT TIME ZONE 'UTC') * 60 +"
        " extract(minute FROM now() AT TIME ZONE 'UTC'))::int");
    const std::int32_t minute = now_minute[0][0].as<std::int32_t>();
    bool changed = false;
    for (auto& w : r.waves) {
        if (w.state == "succeeded") continue;
        const Json where = {{"wave", w.position + 1}};
        if (w.state == "pending") {
            if (!in_window(r.window, minute)) return changed;
            tx.exec_params(
                "UPDATE rollout_waves SET state = 'running', started_at = now()"
                " WHERE rollout_id = $1 AND position = $2",
                r.id, w.position);
            // Assign: remember what each device had (desired, else what it runs).
            const auto members = tx.exec_params(
                "UPDATE rollout_devices rd SET state = 'assigned', updated_at = now(),"
                " previous_release_id = coalesce(d.desired_release_id, d.current_release_id)"
                " FROM devices d WHERE d.id = rd.device_id AND rd.rollout_id = $1 AND rd.wave = $2"
                " AND rd.state = 'pending' AND d.revoked_at IS NULL RETURNING rd.device_id",
                r.id, w.position);
            for (const auto& m : members) {
                const auto device = m[0].as<std::int64_t>();
                tx.exec_params(
                    "UPDATE devices SET desired_release_id = $2, desired_set_at = now(),"
                    " desired_set_by = $3 WHERE id = $1",
                    device, r.release.id, fmt::format("rollout {}", r.id));
                notify_director(tx, device);
                add_device_event(tx, device, "assigned",
                                 Json{{"release", release_name(r.release.ns, r.release.model,
                                                               r.release.version)},
                                      {"by", fmt::format("rollout {}", r.id)}}
                                     .dump(),
                                 r.id);
            }
            tx.exec_params(
                "UPDATE rollout_devices SET state = 'failed', reason = 'the device was revoked',"
                " updated_at = now() WHERE rollout_id = $1 AND wave = $2 AND state = 'pending'",
                r.id, w.position);
            Json d = where;
            d["devices"] = members.size();
            rollout_event(tx, r.id, "wave_started", "", d);
            changed = true;
            // Counts changed: reload them next step.
            return changed;
        }
        const double total = static_cast<double>(std::max<std::int64_t>(w.devices, 1));
        const double failed = static_cast<double>(w.failed);
        if (w.failed > 0 && failed / total > w.spec.failure_threshold) {
            const std::string reason =
                fmt::format("wave {}: {} of {} devices failed (failure threshold {:.0f}%)",
                            w.position + 1, w.failed, w.devices, w.spec.failure_threshold * 100);
            end_rollout(tx, r, "", reason, r.auto_rollback);
            return true;
        }
        const bool reached =
            w.devices == 0 || static_cast<double>(w.succeeded) / total >= w.spec.success_threshold;
        if (w.state == "running") {
            if (!reached) return changed;
            if (w.spec.soak_seconds > 0) {
                tx.exec_params(
                    "UPDATE rollout_waves SET state = 'soaking',"
                    " soak_until = now() + $3 * interval '1 second'"
                    " WHERE rollout_id = $1 AND position = $2",
                    r.id, w.position, w.spec.soak_seconds);
                Json d = where;
                d["soak_seconds"] = w.spec.soak_seconds;
                d["succeeded"] = w.succeeded;
                rollout_event(tx, r.id, "wave_soaking", "", d);
                return true;
            }
        } else if (w.state == "soaking") {
            const auto due = tx.exec_params(
                "SELECT soak_until <= now() FROM rollout_waves WHERE rollout_id = $1 AND position "
                "= $2",
                r.id, w.position);
            if (!due[0][0].as<bool>()) return changed;
            if (!reached) {
                // Devices failed or left during the soak: back to waiting for the threshold.
                tx.exec_params(
                    "UPDATE rollout_waves SET state = 'running', soak_until = NULL"
                    " WHERE rollout_id = $1 AND position = $2",
                    r.id, w.position);
                return true;
            }
        }
        tx.exec_params(
            "UPDATE rollout_waves SET state = 'succeeded', finished_at = now()"
            " WHERE rollout_id = $1 AND position = $2",
            r.id, w.position);
        Json d = where;
        d["succeeded"] = w.succeeded;
        d["failed"] = w.failed;
        d["devices"] = w.devices;
        rollout_event(tx, r.id, "wave_succeeded", "", d);
        w.state = "succeeded";
        changed = true;
    }
    // Every wave succeeded.
    tx.exec_params(
        "UPDATE rollouts SET state = 'completed', updated_at = now(), finished_at = now()"
        " WHERE id = $1",
        r.id);
    tx.exec_params("UPDATE rollout_devices SET active = false WHERE rollout_id = $1", r.id);
    rollout_event(tx, r.id, "completed", "", Json::object());
    return true;
}

}  // namespace

using namespace rollouts;

Result<void> rollout_device_reported(pqxx::work& tx, std::int64_t device_id,
                                     const DeviceReport& report) {
    const auto m = tx.exec_params(
        "SELECT rd.rollout_id, rd.state, r.release_id FROM rollout_devices rd"
        " JOIN rollouts r ON r.id = rd.rollout_id"
        " WHERE rd.device_id = $1 AND rd.active AND rd.state IN ('assigned', 'succeeded', "
        "'failed')",
        device_id);
    if (m.empty()) return {};
    const auto rollout = m[0][0].as<std::int64_t>();
    const auto state = m[0][1].as<std::string>();
    const auto release = m[0][2].as<std::int64_t>();
    std::string next = state;
    std::string reason;
    if (report.update_state == "healthy" && report.current_release_id == release) {
        next = "succeeded";
    } else if (state == "assigned" && report.current_release_id != release &&
               (report.update_state == "failed" || report.update_state == "rolled_back" ||
                !report.error.empty())) {
        next = "failed";
        reason = report.error.empty() ? "the update failed (" + report.update_state + ")"
                                      : report.error.substr(0, 1000);
    }
    if (next == state) return {};
    tx.exec_params(
        "UPDATE rollout_devices SET state = $3, reason = $4, updated_at = now()"
        " WHERE rollout_id = $1 AND device_id = $2",
        rollout, device_id, next, reason);
    add_device_event(tx, device_id, "rollout_" + next, Json{{"reason", reason}}.dump(), rollout);
    return {};
}

Result<std::int64_t> PostgresCatalog::advance_rollouts() {
    PYLON_TRY_ASSIGN(
        const auto ids,
        transact("finding running rollouts",
                 [&](pqxx::work& tx) -> Result<std::vector<std::int64_t>> {
                     std::vector<std::int64_t> out;
                     for (const auto& row :
                          tx.exec("SELECT id FROM rollouts WHERE state = 'running' ORDER BY id")) {
                         out.push_back(row[0].as<std::int64_t>());
                     }
                     return out;
                 }));
    std::int64_t changed = 0;
    for (const auto id : ids) {
        auto one =
            transact(fmt::format("advancing rollout {}", id), [&](pqxx::work& tx) -> Result<bool> {
                // Another replica's orchestrator holds it: skip this time.
                const auto locked = tx.exec_params(
                    "SELECT state FROM rollouts WHERE id = $1"
                    " FOR UPDATE SKIP LOCKED",
                    id);
                if (locked.empty() || locked[0][0].as<std::string>() != "running") {
                    return false;
                }
                bool any = false;
                for (int i = 0; i < 8; ++i) {  // a few steps per call
                    PYLON_TRY_ASSIGN(auto r, load_rollout(tx, id));
                    if (r.state != "running" || !step(tx, r)) break;
                    any = true;
                }
                return any;
            });
        if (!one) return std::move(one).error();
        if (*one) ++changed;
    }
    return changed;
}

Result<FleetRollback> PostgresCatalog::rollback_fleet(const std::string& fleet,
                                                      const std::optional<std::string>& version,
                                                      const std::string& actor) {
    return transact(
        fmt::format("rolling back fleet {}", fleet), [&](pqxx::work& tx) -> Result<FleetRollback> {
            const auto f = tx.exec_params("SELECT id FROM fleets WHERE name = $1", fleet);
            if (f.empty()) return Error(Errc::not_found, fmt::format("fleet {} not found", fleet));
            const auto fid = f[0][0].as<std::int64_t>();
            const auto latest = tx.exec_params(
                "SELECT id FROM rollouts WHERE fleet_id = $1 ORDER BY id DESC LIMIT 1 FOR UPDATE",
                fid);
            if (latest.empty()) {
                return Error(Errc::not_found,
                             fmt::format("fleet {} has had no rollout to roll back", fleet));
            }
            PYLON_TRY_ASSIGN(const auto r, load_rollout(tx, latest[0][0].as<std::int64_t>()));
            FleetRollback out;
            out.rollout_id = r.id;
            const std::string reason =
                version ? fmt::format("fleet rollback to {} by {}", *version, actor)
                        : fmt::format("fleet rollback by {}", actor);
            if (!version) {
                if (r.state == "rolled_back") {
                    return Error(Errc::invalid_state,
                                 fmt::format("rollout {} of fleet {} is rolled back already; "
                                             "name a version (--to) to go further back",
                                             r.id, fleet));
                }
                if (active_state(r.state)) {
                    out.devices = end_rollout(tx, r, actor, reason, true);
                } else {
                    out.devices = roll_back_members(tx, r.id, r.release.id, actor);
                    tx.exec_params(
                        "UPDATE rollouts SET state = 'rolled_back', reason = $2, updated_at = now()"
                        " WHERE id = $1",
                        r.id, reason);
                    rollout_event(tx, r.id, "rolled_back", actor,
                                  {{"from", r.state},
                                   {"reason", reason},
                                   {"devices_rolled_back", out.devices}});
                }
                return out;
            }
            PYLON_TRY_ASSIGN(const auto target,
                             release_id_of(tx, r.release.ns, r.release.model, *version));
            if (active_state(r.state)) {
                end_rollout(tx, r, actor, reason, false);
            } else if (r.state == "completed") {
                tx.exec_params(
                    "UPDATE rollouts SET state = 'rolled_back', reason = $2, updated_at = now()"
                    " WHERE id = $1",
                    r.id, reason);
                rollout_event(tx, r.id, "rolled_back", actor,
                              {{"from", r.state}, {"reason", reason}});
            }
            const auto moved = tx.exec_params(
                "UPDATE devices d SET desired_release_id = $2, desired_set_at = now(),"
                " desired_set_by = $3 FROM releases cur"
                " WHERE d.fleet_id = $1 AND d.revoked_at IS NULL AND cur.id = d.desired_release_id"
                " AND cur.model_id = (SELECT model_id FROM releases WHERE id = $2)"
                " AND d.desired_release_id <> $2 RETURNING d.id",
                fid, target, actor);
            for (const auto& row : moved) {
                const auto device = row[0].as<std::int64_t>();
                notify_director(tx, device);
                add_device_event(
                    tx, device, "assigned",
                    Json{{"release", release_name(r.release.ns, r.release.model, *version)},
                         {"by", actor},
                         {"fleet_rollback", true}}
                        .dump(),
                    r.id);
            }
            tx.exec_params(
                "UPDATE rollout_devices SET state = 'rolled_back', updated_at = now()"
                " WHERE rollout_id = $1 AND state IN ('assigned', 'succeeded', 'failed')",
                r.id);
            out.devices = static_cast<std::int64_t>(moved.size());
            return out;
        });
}

}  // namespace pylon::catalog
