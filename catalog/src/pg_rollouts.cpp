// PostgresCatalog: rollout creation (selection, waves, licence checks), listing, manual
// transitions and licence acceptances, and the steps rollouts_internal.h shares with the
// orchestrator (pg_rollout_orchestrator.cpp). Every rollout state change writes a rollout event
// and an audit entry in the same transaction.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "pg_catalog.h"
#include "pylon/catalog/errors.h"
#include "rollouts_internal.h"

namespace pylon::catalog {
namespace rollouts {

using Json = nlohmann::json;

bool active_state(const std::string& s) {
    return s == "pending" || s == "running" || s == "paused";
}

// Appends a rollout event and the matching audit entry.
void rollout_event(pqxx::work& tx, std::int64_t rollout, const std::string& kind,
                   const std::string& actor, const Json& details) {
    tx.exec_params(
        "INSERT INTO rollout_events (rollout_id, kind, actor, details) VALUES ($1, $2, $3, "
        "$4::jsonb)",
        rollout, kind, actor, details.dump());
    tx.exec_params(
        "INSERT INTO audit_log (actor, action, target, details) VALUES ($1, $2, $3, $4::jsonb)",
        actor.empty() ? std::string("orchestrator") : actor, "rollout." + kind,
        "rollout/" + std::to_string(rollout), details.dump());
}

constexpr const char* kRolloutSelect =
    "SELECT r.id, rel.id, n.name, m.name, rel.version, f.name, r.selector::text, r.state,"
    " r.auto_rollback, r.window_start_minute, r.window_end_minute, r.reason, r.created_by,"
    " r.created_at, r.updated_at, r.finished_at"
    " FROM rollouts r JOIN fleets f ON f.id = r.fleet_id JOIN releases rel ON rel.id = r.release_id"
    " JOIN models m ON m.id = rel.model_id JOIN namespaces n ON n.id = m.namespace_id ";

Rollout read_rollout(const pqxx::row& row) {
    Rollout r;
    r.id = row[0].as<std::int64_t>();
    r.release = ReleaseName{row[1].as<std::int64_t>(), row[2].as<std::string>(),
                            row[3].as<std::string>(), row[4].as<std::string>()};
    r.fleet = row[5].as<std::string>();
    r.selector = row[6].as<std::string>();
    r.state = row[7].as<std::string>();
    r.auto_rollback = row[8].as<bool>();
    if (!row[9].is_null())
        r.window = std::pair{row[9].as<std::int32_t>(), row[10].as<std::int32_t>()};
    r.reason = row[11].as<std::string>();
    r.created_by = row[12].as<std::string>();
    r.created_at = to_timestamp(row[13]);
    r.updated_at = to_timestamp(row[14]);
    r.finished_at = to_optional_timestamp(row[15]);
    return r;
}

Result<void> require_rollout(pqxx::work& tx, std::int64_t id) {
    const auto exists = tx.exec_params("SELECT 1 FROM rollouts WHERE id = $1", id);
    if (exists.empty()) return Error(Errc::not_found, fmt::format("rollout {} not found", id));
    return {};
}

// The rollout with its waves and their counts.
Result<Rollout> load_rollout(pqxx::work& tx, std::int64_t id, bool lock) {
    const auto r = tx.exec_params(
        std::string(kRolloutSelect) + "WHERE r.id = $1" + (lock ? " FOR UPDATE OF r" : ""), id);
    if (r.empty()) return Error(Errc::not_found, fmt::format("rollout {} not found", id));
    Rollout out = read_rollout(r[0]);
    const auto waves = tx.exec_params(
        "SELECT position, percent, device_count, success_threshold::float8,"
        " failure_threshold::float8, soak_seconds, state, started_at, soak_until, finished_at"
        " FROM rollout_waves WHERE rollout_id = $1 ORDER BY position",
        id);
    for (const auto& w : waves) {
        WaveStatus s;
        s.position = w[0].as<std::int32_t>();
        if (!w[1].is_null()) s.spec.percent = w[1].as<std::int32_t>();
        if (!w[2].is_null()) s.spec.count = w[2].as<std::int32_t>();
        s.spec.success_threshold = w[3].as<double>();
        s.spec.failure_threshold = w[4].as<double>();
        s.spec.soak_seconds = w[5].as<std::int32_t>();
        s.state = w[6].as<std::string>();
        s.started_at = to_optional_timestamp(w[7]);
        s.soak_until = to_optional_timestamp(w[8]);
        s.finished_at = to_optional_timestamp(w[9]);
        out.waves.push_back(s);
    }
    const auto counts = tx.exec_params(
        "SELECT wave, state, count(*) FROM rollout_devices WHERE rollout_id = $1"
        " GROUP BY wave, state",
        id);
    for (const auto& c : counts) {
        const auto n = c[2].as<std::int64_t>();
        const auto state = c[1].as<std::string>();
        if (c[0].is_null()) {
            out.incompatible += n;
            continue;
        }
        const auto pos = c[0].as<std::int32_t>();
        if (pos < 0 || static_cast<std::size_t>(pos) >= out.waves.size()) continue;
        WaveStatus& s = out.waves[static_cast<std::size_t>(pos)];
        s.devices += n;
        if (state == "pending") s.pending += n;
        if (state == "assigned") s.assigned += n;
        if (state == "succeeded") s.succeeded += n;
        if (state == "failed") s.failed += n;
        if (state == "rolled_back") s.rolled_back += n;
    }
    return out;
}

Result<std::int64_t> release_id_of(pqxx::work& tx, const std::string& ns, const std::string& model,
                                   const std::string& version) {
    PYLON_TRY_ASSIGN(const auto rel, find_release(tx, ns, model, version, false));
    if (rel.state != ReleaseState::published) {
        return Error(Errc::invalid_state,
                     fmt::format("release {} is {}, not published",
                                 release_name(ns, model, version), to_string(rel.state)));
    }
    return rel.id;
}

// Returns every device the rollout assigned (and that still has its release as desired) to its
// previous release; members end rolled_back (failed ones stay failed, for the record). The number
// of devices reassigned.
std::int64_t roll_back_members(pqxx::work& tx, std::int64_t rollout, std::int64_t release,
                               const std::string& actor) {
    const auto r = tx.exec_params(
        "WITH m AS (UPDATE rollout_devices SET updated_at = now(),"
        " state = CASE WHEN state = 'failed' THEN 'failed' ELSE 'rolled_back' END"
        " WHERE rollout_id = $1 AND state IN ('assigned', 'succeeded', 'failed')"
        " RETURNING device_id, previous_release_id)"
        " UPDATE devices d SET desired_release_id = m.previous_release_id, desired_set_at = now(),"
        " desired_set_by = $3 FROM m WHERE d.id = m.device_id AND d.desired_release_id = $2"
        " AND d.revoked_at IS NULL RETURNING d.id, m.previous_release_id::text",
        rollout, release, actor.empty() ? fmt::format("rollout {}", rollout) : actor);
    for (const auto& row : r) {
        const auto device = row[0].as<std::int64_t>();
        notify_director(tx, device);
        add_device_event(
            tx, device, "rolled_back",
            Json{{"rollout", rollout},
                 {"to_release_id", row[1].is_null() ? Json() : Json(row[1].as<std::string>())}}
                .dump(),
            rollout);
    }
    return static_cast<std::int64_t>(r.size());
}

// Ends an active rollout: aborted, or (rollback) rolled_back with its members returned.
std::int64_t end_rollout(pqxx::work& tx, const Rollout& r, const std::string& actor,
                         const std::string& reason, bool rollback) {
    std::int64_t moved = 0;
    if (rollback) moved = roll_back_members(tx, r.id, r.release.id, actor);
    const std::string state = rollback ? "rolled_back" : "aborted";
    tx.exec_params(
        "UPDATE rollouts SET state = $2, reason = $3, updated_at = now(),"
        " finished_at = coalesce(finished_at, now()) WHERE id = $1",
        r.id, state, reason);
    tx.exec_params(
        "UPDATE rollout_waves SET state = 'failed', finished_at = now()"
        " WHERE rollout_id = $1 AND state IN ('running', 'soaking')",
        r.id);
    tx.exec_params("UPDATE rollout_devices SET active = false WHERE rollout_id = $1", r.id);
    Json details = {{"from", r.state}, {"reason", reason}};
    if (rollback) details["devices_rolled_back"] = moved;
    rollout_event(tx, r.id, rollback ? "rolled_back" : "aborted", actor, details);
    return moved;
}

}  // namespace rollouts

namespace {

using Json = nlohmann::json;
using namespace rollouts;

// A stable pseudo-random order of a rollout's devices (splitmix64 of both ids): waves are a
// spread of the fleet, not its oldest devices first.
std::uint64_t spread(std::int64_t rollout, std::int64_t device) {
    std::uint64_t z =
        (static_cast<std::uint64_t>(rollout) << 40) ^ static_cast<std::uint64_t>(device);
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// Whether a device's labels (JSON object) satisfy a selector: every key present with the value,
// or one of the values of a list.
bool matches(const Json& selector, const Json& labels) {
    for (const auto& [key, want] : selector.items()) {
        const auto it = labels.find(key);
        if (it == labels.end() || !it->is_string()) return false;
        const std::string have = it->get<std::string>();
        if (want.is_string()) {
            if (have != want.get<std::string>()) return false;
        } else {
            bool any = false;
            for (const auto& w : want) any = any || (w.is_string() && w.get<std::string>() == have);
            if (!any) return false;
        }
    }
    return true;
}

Result<Json> parse_selector(const std::string& text) {
    const Json j = Json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        return Error(Errc::invalid_argument, "a selector is a JSON object of label: value");
    }
    for (const auto& [k, v] : j.items()) {
        const bool list =
            v.is_array() && !v.empty() &&
            std::all_of(v.begin(), v.end(), [](const Json& e) { return e.is_string(); });
        if (k.empty() || (!v.is_string() && !list)) {
            return Error(Errc::invalid_argument,
                         "selector: label " + k + " must be a string or a list of strings");
        }
    }
    return j;
}

Result<void> check_waves(const std::vector<WaveSpec>& waves) {
    if (waves.empty() || waves.size() > 20) {
        return Error(Errc::invalid_argument, "a rollout has 1 to 20 waves");
    }
    for (std::size_t i = 0; i < waves.size(); ++i) {
        const auto& w = waves[i];
        const std::string at = fmt::format("wave {}: ", i + 1);
        if (w.percent.has_value() == w.count.has_value()) {
            return Error(Errc::invalid_argument, at + "give either a percentage or a count");
        }
        if (w.percent && (*w.percent < 1 || *w.percent > 100)) {
            return Error(Errc::invalid_argument, at + "a percentage is 1 to 100");
        }
        if (w.count && *w.count < 1) {
            return Error(Errc::invalid_argument, at + "a count is at least 1");
        }
        if (!(w.success_threshold >= 0 && w.success_threshold <= 1) ||
            !(w.failure_threshold >= 0 && w.failure_threshold <= 1)) {
            return Error(Errc::invalid_argument, at + "thresholds are between 0 and 1");
        }
        if (w.soak_seconds < 0 || w.soak_seconds > 30 * 86400) {
            return Error(Errc::invalid_argument, at + "a soak time is 0 to 30 days");
        }
    }
    return {};
}

}  // namespace

using namespace rollouts;

Result<Rollout> PostgresCatalog::create_rollout(const RolloutSpec& spec) {
    PYLON_TRY(check_waves(spec.waves));
    PYLON_TRY_ASSIGN(const Json selector, parse_selector(spec.selector));
    if (spec.window) {
        const auto [a, b] = *spec.window;
        if (a < 0 || a > 1439 || b < 0 || b > 1439) {
            return Error(Errc::invalid_argument, "a maintenance window is HH:MM-HH:MM (UTC)");
        }
    }
    const std::string what =
        fmt::format("creating a rollout of {} to fleet {}",
                    release_name(spec.ns, spec.model, spec.version), spec.fleet);
    return transact(what, [&](pqxx::work& tx) -> Result<Rollout> {
        const auto f = tx.exec_params(
            "SELECT id, region, commercial_use FROM fleets WHERE name = $1", spec.fleet);
        if (f.empty()) return Error(Errc::not_found, fmt::format("fleet {} not found", spec.fleet));
        const auto fleet = f[0][0].as<std::int64_t>();
        const auto region = f[0][1].as<std::string>();
        const bool commercial = f[0][2].as<bool>();
        PYLON_TRY_ASSIGN(const auto release, release_id_of(tx, spec.ns, spec.model, spec.version));
        PYLON_TRY_ASSIGN(const Release rel, load_release(tx, release));
        const std::string name = release_name(spec.ns, spec.model, spec.version);

        // Licence terms against the fleet, and acceptance when the licence asks for it.
        const License& lic = rel.license;
        const auto refuse = [&](const std::string& why) {
            return Error(Errc::license_refused,
                         fmt::format("the licence of {} ({}) {}", name,
                                     lic.spdx.empty() ? "no SPDX expression" : lic.spdx, why));
        };
        if (!region.empty() && std::find(lic.regions_denied.begin(), lic.regions_denied.end(),
                                         region) != lic.regions_denied.end()) {
            return refuse(
                fmt::format("excludes region {}, where fleet {} stands", region, spec.fleet));
        }
        if (!lic.regions_allowed.empty() &&
            std::find(lic.regions_allowed.begin(), lic.regions_allowed.end(), region) ==
                lic.regions_allowed.end()) {
            return refuse(region.empty()
                              ? fmt::format("is limited to regions {} and fleet {} has no region",
                                            fmt::join(lic.regions_allowed, ", "), spec.fleet)
                              : fmt::format("does not cover region {} of fleet {} (only {})",
                                            region, spec.fleet,
                                            fmt::join(lic.regions_allowed, ", ")));
        }
        if (commercial && lic.commercial_use.has_value() && !*lic.commercial_use) {
            return refuse(
                fmt::format("forbids commercial use, and fleet {} is commercial", spec.fleet));
        }
        if (lic.acceptance_required) {
            const auto a = tx.exec_params(
                "SELECT 1 FROM license_acceptances a JOIN releases r ON r.model_id = a.model_id"
                " WHERE r.id = $1 AND a.license_sha256 ="
                " encode(sha256(convert_to(r.license::text, 'UTF8')), 'hex')",
                release);
            if (a.empty()) {
                return refuse(fmt::format(
                    "requires acceptance, not yet recorded (pylon license accept {}/{}@{})",
                    spec.ns, spec.model, spec.version));
            }
        }

        // The fleet's live devices that match, and their active rollouts.
        const auto devices = tx.exec_params(
            "SELECT d.id, d.name, d.labels::text, d.hardware::text, rd.rollout_id"
            " FROM devices d LEFT JOIN rollout_devices rd ON rd.device_id = d.id AND rd.active"
            " WHERE d.fleet_id = $1 AND d.revoked_at IS NULL ORDER BY d.id",
            fleet);
        struct Member {
            std::int64_t id;
            std::string reason;  // incompatible when set
        };
        std::vector<Member> compatible, incompatible;
        std::vector<std::string> busy;
        std::optional<std::int64_t> busy_in;
        for (const auto& d : devices) {
            const Json labels = Json::parse(d[2].as<std::string>(), nullptr, false);
            if (!matches(selector, labels.is_object() ? labels : Json::object())) continue;
            if (!d[4].is_null()) {
                busy.push_back(d[1].as<std::string>());
                busy_in = d[4].as<std::int64_t>();
                continue;
            }
            std::optional<std::string> why;
            if (spec.fit) why = spec.fit(d[3].as<std::string>());
            if (why) {
                incompatible.push_back({d[0].as<std::int64_t>(), *why});
            } else {
                compatible.push_back({d[0].as<std::int64_t>(), ""});
            }
        }
        if (!busy.empty()) {
            return Error(
                Errc::conflict,
                fmt::format("device {}/{} is already in active rollout {}{}; a device "
                            "takes part in one active rollout at a time (pause or abort "
                            "it, or narrow the selector)",
                            spec.fleet, busy.front(), *busy_in,
                            busy.size() > 1 ? fmt::format(" (and {} more devices)", busy.size() - 1)
                                            : std::string()));
        }
        if (compatible.empty() && incompatible.empty()) {
            return Error(Errc::invalid_argument,
                         fmt::format("no live device of fleet {} matches the selector {}",
                                     spec.fleet, selector.dump()));
        }

        const auto created = tx.exec_params(
            "INSERT INTO rollouts (release_id, fleet_id, selector, state, auto_rollback,"
            " created_by, window_start_minute, window_end_minute)"
            " VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8) RETURNING id",
            release, fleet, selector.dump(), spec.start ? "running" : "pending", spec.auto_rollback,
            spec.created_by, spec.window ? std::optional(spec.window->first) : std::nullopt,
            spec.window ? std::optional(spec.window->second) : std::nullopt);
        const auto id = created[0][0].as<std::int64_t>();
        for (std::size_t i = 0; i < spec.waves.size(); ++i) {
            const auto& w = spec.waves[i];
            tx.exec_params(
                "INSERT INTO rollout_waves (rollout_id, position, percent, device_count,"
                " success_threshold, failure_threshold, soak_seconds)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                id, static_cast<std::int32_t>(i), w.percent, w.count, w.success_threshold,
                w.failure_threshold, w.soak_seconds);
        }
        std::sort(compatible.begin(), compatible.end(), [&](const Member& a, const Member& b) {
            return spread(id, a.id) < spread(id, b.id);
        });
        const auto total = static_cast<std::int64_t>(compatible.size());
        std::int64_t next = 0;
        for (std::size_t i = 0; i < spec.waves.size(); ++i) {
            const auto& w = spec.waves[i];
            std::int64_t n = w.count ? *w.count
                                     : static_cast<std::int64_t>(std::ceil(
                                           static_cast<double>(total) * *w.percent / 100.0));
            if (i + 1 == spec.waves.size()) n = total - next;
            n = std::clamp<std::int64_t>(n, 0, total - next);
            for (std::int64_t k = 0; k < n; ++k, ++next) {
                tx.exec_params(
                    "INSERT INTO rollout_devices (rollout_id, device_id, wave) VALUES ($1, $2, $3)",
                    id, compatible[static_cast<std::size_t>(next)].id,
                    static_cast<std::int32_t>(i));
            }
        }
        for (const auto& m : incompatible) {
            tx.exec_params(
                "INSERT INTO rollout_devices (rollout_id, device_id, wave, state, reason, active)"
                " VALUES ($1, $2, NULL, 'incompatible', $3, false)",
                id, m.id, m.reason);
            add_device_event(tx, m.id, "incompatible", Json{{"reason", m.reason}}.dump(), id);
        }
        rollout_event(tx, id, "created", spec.created_by,
                      {{"release", name},
                       {"fleet", spec.fleet},
                       {"selector", selector},
                       {"devices", total},
                       {"incompatible", incompatible.size()},
                       {"waves", spec.waves.size()},
                       {"state", spec.start ? "running" : "pending"}});
        return load_rollout(tx, id);
    });
}

Result<Rollout> PostgresCatalog::get_rollout(std::int64_t id) {
    return transact("reading a rollout",
                    [&](pqxx::work& tx) -> Result<Rollout> { return load_rollout(tx, id); });
}

Result<Page<Rollout>> PostgresCatalog::list_rollouts(const RolloutFilter& filter,
                                                     const PageRequest& page) {
    PYLON_TRY_ASSIGN(const auto bounds, page_bounds(page));
    return transact("listing rollouts", [&](pqxx::work& tx) -> Result<Page<Rollout>> {
        const bool active = filter.state && *filter.state == "active";
        const auto r = tx.exec_params(
            "SELECT r.id FROM rollouts r JOIN fleets f ON f.id = r.fleet_id"
            " WHERE ($1::text IS NULL OR f.name = $1) AND ($2::text IS NULL OR r.state = $2)"
            " AND (NOT $3 OR r.state IN ('pending', 'running', 'paused'))"
            " AND ($4::bigint IS NULL OR r.id < $4) ORDER BY r.id DESC LIMIT $5",
            filter.fleet, active ? std::nullopt : filter.state, active, bounds.after,
            static_cast<std::int64_t>(bounds.limit) + 1);
        std::vector<Rollout> items;
        for (const auto& row : r) {
            PYLON_TRY_ASSIGN(auto one, load_rollout(tx, row[0].as<std::int64_t>()));
            items.push_back(std::move(one));
        }
        return make_page(std::move(items), bounds.limit, [](const Rollout& x) { return x.id; });
    });
}

Result<Page<RolloutDevice>> PostgresCatalog::list_rollout_devices(
    std::int64_t id, const std::optional<std::string>& state, const PageRequest& page) {
    PYLON_TRY_ASSIGN(const auto bounds, page_bounds(page));
    return transact("listing rollout devices", [&](pqxx::work& tx) -> Result<Page<RolloutDevice>> {
        PYLON_TRY(require_rollout(tx, id));
        const auto r = tx.exec_params(
            "SELECT rd.device_id, d.name, rd.wave, rd.state, pr.id, pn.name, pm.name, pr.version,"
            " rd.reason, rd.updated_at FROM rollout_devices rd JOIN devices d ON d.id = "
            "rd.device_id"
            " LEFT JOIN releases pr ON pr.id = rd.previous_release_id"
            " LEFT JOIN models pm ON pm.id = pr.model_id"
            " LEFT JOIN namespaces pn ON pn.id = pm.namespace_id"
            " WHERE rd.rollout_id = $1 AND ($2::text IS NULL OR rd.state = $2)"
            " AND ($3::bigint IS NULL OR rd.device_id > $3) ORDER BY rd.device_id LIMIT $4",
            id, state, bounds.after, static_cast<std::int64_t>(bounds.limit) + 1);
        std::vector<RolloutDevice> items;
        for (const auto& row : r) {
            RolloutDevice d;
            d.device_id = row[0].as<std::int64_t>();
            d.device = row[1].as<std::string>();
            if (!row[2].is_null()) d.wave = row[2].as<std::int32_t>();
            d.state = row[3].as<std::string>();
            if (!row[4].is_null()) {
                d.previous = ReleaseName{row[4].as<std::int64_t>(), row[5].as<std::string>(),
                                         row[6].as<std::string>(), row[7].as<std::string>()};
            }
            d.reason = row[8].as<std::string>();
            d.updated_at = to_timestamp(row[9]);
            items.push_back(std::move(d));
        }
        return make_page(std::move(items), bounds.limit,
                         [](const RolloutDevice& x) { return x.device_id; });
    });
}

Result<Page<RolloutEvent>> PostgresCatalog::list_rollout_events(std::int64_t id,
                                                                const PageRequest& page) {
    PYLON_TRY_ASSIGN(const auto bounds, page_bounds(page));
    return transact("listing rollout events", [&](pqxx::work& tx) -> Result<Page<RolloutEvent>> {
        PYLON_TRY(require_rollout(tx, id));
        const auto r = tx.exec_params(
            "SELECT id, at, kind, actor, details::text FROM rollout_events WHERE rollout_id = $1"
            " AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
            id, bounds.after, static_cast<std::int64_t>(bounds.limit) + 1);
        std::vector<RolloutEvent> items;
        for (const auto& row : r) {
            items.push_back(RolloutEvent{row[0].as<std::int64_t>(), to_timestamp(row[1]),
                                         row[2].as<std::string>(), row[3].as<std::string>(),
                                         row[4].as<std::string>()});
        }
        return make_page(std::move(items), bounds.limit,
                         [](const RolloutEvent& x) { return x.id; });
    });
}

Result<Rollout> PostgresCatalog::pause_rollout(std::int64_t id, const std::string& actor,
                                               const std::string& reason) {
    return transact(fmt::format("pausing rollout {}", id), [&](pqxx::work& tx) -> Result<Rollout> {
        PYLON_TRY_ASSIGN(const auto r, load_rollout(tx, id, true));
        if (r.state != "running") {
            return Error(
                Errc::invalid_state,
                fmt::format("rollout {} is {}: only a running rollout pauses", id, r.state));
        }
        tx.exec_params(
            "UPDATE rollouts SET state = 'paused', reason = $2, updated_at = now() WHERE id = $1",
            id, reason);
        rollout_event(tx, id, "paused", actor, {{"reason", reason}});
        return load_rollout(tx, id);
    });
}

Result<Rollout> PostgresCatalog::resume_rollout(std::int64_t id, const std::string& actor) {
    return transact(fmt::format("resuming rollout {}", id), [&](pqxx::work& tx) -> Result<Rollout> {
        PYLON_TRY_ASSIGN(const auto r, load_rollout(tx, id, true));
        if (r.state != "paused" && r.state != "pending") {
            return Error(Errc::invalid_state,
                         fmt::format("rollout {} is {}: only a paused or pending rollout resumes",
                                     id, r.state));
        }
        tx.exec_params(
            "UPDATE rollouts SET state = 'running', reason = '', updated_at = now() WHERE id = $1",
            id);
        rollout_event(tx, id, r.state == "pending" ? "started" : "resumed", actor, Json::object());
        return load_rollout(tx, id);
    });
}

Result<Rollout> PostgresCatalog::abort_rollout(std::int64_t id, const std::string& actor,
                                               const std::string& reason, bool rollback) {
    return transact(fmt::format("aborting rollout {}", id), [&](pqxx::work& tx) -> Result<Rollout> {
        PYLON_TRY_ASSIGN(const auto r, load_rollout(tx, id, true));
        if (!active_state(r.state)) {
            return Error(Errc::invalid_state, fmt::format("rollout {} is {} already", id, r.state));
        }
        end_rollout(tx, r, actor, reason.empty() ? "aborted by " + actor : reason, rollback);
        return load_rollout(tx, id);
    });
}

Result<LicenseAcceptance> PostgresCatalog::accept_license(const std::string& ns,
                                                          const std::string& model,
                                                          const std::string& version,
                                                          const std::string& by) {
    if (by.empty()) return Error(Errc::invalid_argument, "who accepts the licence is empty");
    return transact(
        fmt::format("accepting the licence of {}", release_name(ns, model, version)),
        [&](pqxx::work& tx) -> Result<LicenseAcceptance> {
            PYLON_TRY_ASSIGN(const auto rel, find_release(tx, ns, model, version, false));
            tx.exec_params(
                "INSERT INTO license_acceptances (model_id, license_sha256, spdx, accepted_by)"
                " SELECT r.model_id, encode(sha256(convert_to(r.license::text, 'UTF8')), 'hex'),"
                " coalesce(r.license->>'spdx', ''), $2 FROM releases r WHERE r.id = $1"
                " ON CONFLICT (model_id, license_sha256) DO NOTHING",
                rel.id, by);
            const auto a = tx.exec_params(
                "SELECT a.id, a.license_sha256, a.spdx, a.accepted_by, a.accepted_at"
                " FROM license_acceptances a JOIN releases r ON r.model_id = a.model_id"
                " WHERE r.id = $1 AND a.license_sha256 ="
                " encode(sha256(convert_to(r.license::text, 'UTF8')), 'hex')",
                rel.id);
            return LicenseAcceptance{a[0][0].as<std::int64_t>(), ns + "/" + model,
                                     a[0][1].as<std::string>(),  a[0][2].as<std::string>(),
                                     a[0][3].as<std::string>(),  to_timestamp(a[0][4])};
        });
}

Result<std::optional<LicenseAcceptance>> PostgresCatalog::find_license_acceptance(
    const std::string& ns, const std::string& model, const std::string& version) {
    return transact(
        "finding a licence acceptance",
        [&](pqxx::work& tx) -> Result<std::optional<LicenseAcceptance>> {
            PYLON_TRY_ASSIGN(const auto rel, find_release(tx, ns, model, version, false));
            const auto a = tx.exec_params(
                "SELECT a.id, a.license_sha256, a.spdx, a.accepted_by, a.accepted_at"
                " FROM license_acceptances a JOIN releases r ON r.model_id = a.model_id"
                " WHERE r.id = $1 AND a.license_sha256 ="
                " encode(sha256(convert_to(r.license::text, 'UTF8')), 'hex')",
                rel.id);
            if (a.empty()) return std::optional<LicenseAcceptance>();
            return std::optional(LicenseAcceptance{
                a[0][0].as<std::int64_t>(), ns + "/" + model, a[0][1].as<std::string>(),
                a[0][2].as<std::string>(), a[0][3].as<std::string>(), to_timestamp(a[0][4])});
        });
}

}  // namespace pylon::catalog
