// Rollouts (admin): create, list, status, devices, events, pause / resume / abort; a fleet's
// rollback in one call; licence acceptances. The orchestration itself is
// Catalog::advance_rollouts, run by the registry's orchestrator thread.
#include <fmt/format.h>

#include <cctype>

#include "api/context.h"
#include "api/validation.h"
#include "api/views.h"

namespace pylon::registry::api {

namespace {

Json release_json(const catalog::ReleaseName& r) {
    return {{"namespace", r.ns}, {"model", r.model}, {"version", r.version}};
}

std::string minutes_text(std::int32_t m) {
    return fmt::format("{:02}:{:02}", m / 60, m % 60);
}

Json wave_json(const catalog::WaveStatus& w) {
    Json j = {{"position", w.position + 1},
              {"state", w.state},
              {"success_threshold", w.spec.success_threshold},
              {"failure_threshold", w.spec.failure_threshold},
              {"soak_seconds", w.spec.soak_seconds},
              {"devices", w.devices},
              {"pending", w.pending},
              {"assigned", w.assigned},
              {"succeeded", w.succeeded},
              {"failed", w.failed},
              {"rolled_back", w.rolled_back}};
    if (w.spec.percent) j["percent"] = *w.spec.percent;
    if (w.spec.count) j["count"] = *w.spec.count;
    set_time(j, "started_at", w.started_at);
    set_time(j, "soak_until", w.soak_until);
    set_time(j, "finished_at", w.finished_at);
    return j;
}

Json rollout_json(const catalog::Rollout& r) {
    Json waves = Json::array();
    std::int64_t devices = 0, succeeded = 0, failed = 0;
    for (const auto& w : r.waves) {
        waves.push_back(wave_json(w));
        devices += w.devices;
        succeeded += w.succeeded;
        failed += w.failed;
    }
    Json j = {{"id", std::to_string(r.id)},
              {"release", release_json(r.release)},
              {"fleet", r.fleet},
              {"selector", Json::parse(r.selector, nullptr, false)},
              {"state", r.state},
              {"auto_rollback", r.auto_rollback},
              {"reason", r.reason},
              {"created_by", r.created_by},
              {"created_at", catalog::format_rfc3339(r.created_at)},
              {"updated_at", catalog::format_rfc3339(r.updated_at)},
              {"waves", waves},
              {"devices", devices},
              {"succeeded", succeeded},
              {"failed", failed},
              {"incompatible", r.incompatible}};
    if (r.window) {
        j["maintenance_window"] =
            minutes_text(r.window->first) + "-" + minutes_text(r.window->second);
    }
    set_time(j, "finished_at", r.finished_at);
    return j;
}

Json rollout_device_json(const catalog::RolloutDevice& d) {
    Json j = {{"device_id", std::to_string(d.device_id)},
              {"device", d.device},
              {"state", d.state},
              {"reason", d.reason},
              {"updated_at", catalog::format_rfc3339(d.updated_at)}};
    j["wave"] = d.wave ? Json(*d.wave + 1) : Json();
    j["previous"] = d.previous ? release_json(*d.previous) : Json();
    return j;
}

// "HH:MM" → minutes after midnight.
Result<std::int32_t> parse_clock(std::string_view s) {
    if (s.size() != 5 || s[2] != ':' || !std::isdigit(static_cast<unsigned char>(s[0])) ||
        !std::isdigit(static_cast<unsigned char>(s[1])) ||
        !std::isdigit(static_cast<unsigned char>(s[3])) ||
        !std::isdigit(static_cast<unsigned char>(s[4]))) {
        return Error(Errc::invalid_field, "maintenance_window: expected HH:MM-HH:MM (UTC)");
    }
    const int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 23 || m > 59) {
        return Error(Errc::invalid_field, "maintenance_window: expected HH:MM-HH:MM (UTC)");
    }
    return h * 60 + m;
}

Result<catalog::WaveSpec> wave_from(const Json& j, std::size_t index) {
    const std::string path = "waves[" + std::to_string(index) + "]";
    if (!j.is_object()) return Error(Errc::invalid_field, path + ": an object");
    catalog::WaveSpec w;
    const auto number = [&](const char* key, double fallback) -> Result<double> {
        const auto it = j.find(key);
        if (it == j.end()) return fallback;
        if (!it->is_number() || it->get<double>() < 0 || it->get<double>() > 1) {
            return Error(Errc::invalid_field, path + "." + key + ": a number from 0 to 1");
        }
        return it->get<double>();
    };
    PYLON_TRY_ASSIGN(w.success_threshold, number("success_threshold", 1.0));
    PYLON_TRY_ASSIGN(w.failure_threshold, number("failure_threshold", 0.0));
    Json rest = j;
    rest.erase("success_threshold");
    rest.erase("failure_threshold");
    ObjectReader r(rest, path);
    PYLON_TRY_ASSIGN(auto percent, r.optional_int("percent", 1, 100));
    PYLON_TRY_ASSIGN(auto count, r.optional_int("count", 1, 10'000'000));
    PYLON_TRY_ASSIGN(auto soak, r.optional_int("soak_seconds", 0, 30 * 86400));
    PYLON_TRY(r.finish());
    if (percent.has_value() == count.has_value()) {
        return Error(Errc::invalid_field, path + ": give either percent or count");
    }
    if (percent) w.percent = static_cast<std::int32_t>(*percent);
    if (count) w.count = static_cast<std::int32_t>(*count);
    w.soak_seconds = static_cast<std::int32_t>(soak.value_or(0));
    return w;
}

}  // namespace

void add_rollout_routes(http::Router& router, ApiContext& ctx) {
    // {"model": "ns/name", "version", "fleet", "selector"?: {label: value | [values]},
    //  "waves": [{"percent" | "count", "success_threshold"?, "failure_threshold"?,
    //  "soak_seconds"?}], "auto_rollback"?: true, "start"?: true,
    //  "maintenance_window"?: "HH:MM-HH:MM"}
    router.add(
        "POST", "/v1/rollouts", wrap([&ctx](http::Request& req) -> Result<http::Response> {
            PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
            PYLON_TRY(require_admin(who));
            PYLON_TRY_ASSIGN(Json body, parse_object(req.body));
            catalog::RolloutSpec spec;
            {
                const auto waves = body.find("waves");
                if (waves == body.end() || !waves->is_array() || waves->empty() ||
                    waves->size() > 20) {
                    return Error(Errc::invalid_field, "waves: a list of 1 to 20 waves");
                }
                for (std::size_t i = 0; i < waves->size(); ++i) {
                    PYLON_TRY_ASSIGN(auto w, wave_from((*waves)[i], i));
                    spec.waves.push_back(w);
                }
            }
            ObjectReader r(body);
            PYLON_TRY_ASSIGN(std::string model, r.string("model", 129));
            PYLON_TRY_ASSIGN(spec.version, r.string("version", 64));
            PYLON_TRY_ASSIGN(spec.fleet, r.string("fleet", 64));
            PYLON_TRY(check_name("fleet", spec.fleet));
            PYLON_TRY_ASSIGN(const Json* selector, r.object("selector", false));
            PYLON_TRY(r.array("waves", 20));
            PYLON_TRY_ASSIGN(auto auto_rollback, r.optional_bool("auto_rollback"));
            PYLON_TRY_ASSIGN(auto start, r.optional_bool("start"));
            PYLON_TRY_ASSIGN(auto window, r.optional_string("maintenance_window", 11));
            PYLON_TRY(r.finish());
            PYLON_TRY_ASSIGN(auto names, split_model(model));
            spec.ns = names.first;
            spec.model = names.second;
            if (selector != nullptr) spec.selector = selector->dump();
            spec.auto_rollback = auto_rollback.value_or(true);
            spec.start = start.value_or(true);
            if (window) {
                if (window->size() != 11 || (*window)[5] != '-') {
                    return Error(Errc::invalid_field,
                                 "maintenance_window: expected HH:MM-HH:MM (UTC)");
                }
                PYLON_TRY_ASSIGN(auto a, parse_clock(std::string_view(*window).substr(0, 5)));
                PYLON_TRY_ASSIGN(auto b, parse_clock(std::string_view(*window).substr(6)));
                spec.window = std::pair{a, b};
            }
            spec.created_by = who.actor();
            // Which devices no build of the release fits, and why.
            PYLON_TRY_ASSIGN(auto rel, ctx.catalog.get_release(spec.ns, spec.model, spec.version));
            PYLON_TRY_ASSIGN(auto builds, ctx.catalog.list_builds(rel.id));
            const std::string name = model + "@" + spec.version;
            spec.fit = [&builds, name](const std::string& hw) -> std::optional<std::string> {
                std::string why;
                if (best_build(builds, hw, &why) != nullptr) return std::nullopt;
                return builds.empty() ? "release " + name + " has no builds"
                                      : "no build of " + name + " fits (" + why + ")";
            };
            PYLON_TRY_ASSIGN(auto rollout, ctx.catalog.create_rollout(spec));
            audit(ctx, req, who, "rollout.create", "rollout/" + std::to_string(rollout.id),
                  {{"release", name}, {"fleet", spec.fleet}});
            return http::Response::json(201, rollout_json(rollout));
        }));

    router.add("GET", "/v1/rollouts", wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY_ASSIGN(auto page, page_request(req));
                   catalog::RolloutFilter filter;
                   if (auto f = req.query_param("fleet")) {
                       PYLON_TRY(check_name("fleet", *f));
                       filter.fleet = std::string(*f);
                   }
                   if (auto s = req.query_param("state")) filter.state = std::string(*s);
                   PYLON_TRY_ASSIGN(auto list, ctx.catalog.list_rollouts(filter, page));
                   return http::Response::json(200, page_json(list, rollout_json));
               }));

    router.add("GET", "/v1/rollouts/{id}",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY_ASSIGN(auto id, parse_id(req.param("id"), "rollout"));
                   PYLON_TRY_ASSIGN(auto r, ctx.catalog.get_rollout(id));
                   return http::Response::json(200, rollout_json(r));
               }));

    router.add("GET", "/v1/rollouts/{id}/devices",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY_ASSIGN(auto id, parse_id(req.param("id"), "rollout"));
                   PYLON_TRY_ASSIGN(auto page, page_request(req));
                   std::optional<std::string> state;
                   if (auto s = req.query_param("state")) state = std::string(*s);
                   PYLON_TRY_ASSIGN(auto list, ctx.catalog.list_rollout_devices(id, state, page));
                   return http::Response::json(200, page_json(list, rollout_device_json));
               }));

    router.add("GET", "/v1/rollouts/{id}/events",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY_ASSIGN(auto id, parse_id(req.param("id"), "rollout"));
                   PYLON_TRY_ASSIGN(auto page, page_request(req));
                   PYLON_TRY_ASSIGN(auto list, ctx.catalog.list_rollout_events(id, page));
                   return http::Response::json(
                       200, page_json(list, [](const catalog::RolloutEvent& e) {
                           return Json{{"id", std::to_string(e.id)},
                                       {"at", catalog::format_rfc3339(e.at)},
                                       {"kind", e.kind},
                                       {"actor", e.actor.empty() ? "orchestrator" : e.actor},
                                       {"details", Json::parse(e.details, nullptr, false)}};
                       }));
               }));

    // pause / resume / abort: {"reason"?} (abort: {"reason"?, "rollback"?: auto_rollback}).
    for (const std::string action : {"pause", "resume", "abort"}) {
        router.add(
            "POST", "/v1/rollouts/{id}/" + action,
            wrap([&ctx, action](http::Request& req) -> Result<http::Response> {
                PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                PYLON_TRY(require_admin(who));
                PYLON_TRY_ASSIGN(auto id, parse_id(req.param("id"), "rollout"));
                PYLON_TRY_ASSIGN(Json body, parse_object(req.body.empty() ? "{}" : req.body));
                ObjectReader r(body);
                PYLON_TRY_ASSIGN(auto reason, r.optional_string("reason", 1000));
                std::optional<bool> rollback;
                if (action == "abort") {
                    PYLON_TRY_ASSIGN(rollback, r.optional_bool("rollback"));
                }
                PYLON_TRY(r.finish());
                catalog::Rollout out;
                if (action == "pause") {
                    PYLON_TRY_ASSIGN(
                        out, ctx.catalog.pause_rollout(
                                 id, who.actor(), reason.value_or("paused by " + who.actor())));
                } else if (action == "resume") {
                    PYLON_TRY_ASSIGN(out, ctx.catalog.resume_rollout(id, who.actor()));
                } else {
                    PYLON_TRY_ASSIGN(const auto current, ctx.catalog.get_rollout(id));
                    PYLON_TRY_ASSIGN(
                        out, ctx.catalog.abort_rollout(id, who.actor(), reason.value_or(""),
                                                       rollback.value_or(current.auto_rollback)));
                }
                return http::Response::json(200, rollout_json(out));
            }));
    }

    // A fleet back to where it was: {"to"?: "VERSION"} (see Catalog::rollback_fleet).
    router.add("POST", "/v1/fleets/{fleet}/rollback",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY(check_name("fleet", req.param("fleet")));
                   PYLON_TRY_ASSIGN(Json body, parse_object(req.body.empty() ? "{}" : req.body));
                   ObjectReader r(body);
                   PYLON_TRY_ASSIGN(auto to, r.optional_string("to", 64));
                   PYLON_TRY(r.finish());
                   PYLON_TRY_ASSIGN(auto out,
                                    ctx.catalog.rollback_fleet(std::string(req.param("fleet")), to,
                                                               who.actor()));
                   Json j = {{"fleet", req.param("fleet")}, {"devices", out.devices}};
                   j["rollout"] = out.rollout_id ? Json(std::to_string(*out.rollout_id)) : Json();
                   if (to) j["to"] = *to;
                   audit(ctx, req, who, "fleet.rollback", std::string(req.param("fleet")), j);
                   return http::Response::json(200, j);
               }));

    // The organisation accepts a release's licence: {"model": "ns/name", "version"}.
    router.add("POST", "/v1/license-acceptances",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY_ASSIGN(Json body, parse_object(req.body));
                   ObjectReader r(body);
                   PYLON_TRY_ASSIGN(std::string model, r.string("model", 129));
                   PYLON_TRY_ASSIGN(std::string version, r.string("version", 64));
                   PYLON_TRY(r.finish());
                   PYLON_TRY_ASSIGN(auto names, split_model(model));
                   PYLON_TRY_ASSIGN(auto a, ctx.catalog.accept_license(names.first, names.second,
                                                                       version, who.actor()));
                   const Json j = {{"id", std::to_string(a.id)},
                                   {"model", a.model},
                                   {"license_sha256", a.license_sha256},
                                   {"spdx", a.spdx},
                                   {"accepted_by", a.accepted_by},
                                   {"accepted_at", catalog::format_rfc3339(a.accepted_at)}};
                   audit(ctx, req, who, "license.accept", model + "@" + version, j);
                   return http::Response::json(201, j);
               }));
}

}  // namespace pylon::registry::api
