// Fleets, enrolment tokens and devices (operators: admin tokens), and the device API (devices:
// enrolment tokens, then their own credentials): enrolment with proof of key possession,
// hardware updates and signed status reports. The director document: director_api.cpp.
#include "api/attestations.h"
#include "api/context.h"
#include "api/validation.h"
#include "api/views.h"
#include "pylon/signing/dsse.h"
#include "pylon/signing/json.h"
#include "pylon/signing/tuf/director.h"

namespace pylon::registry::api {

namespace {

// Device reports are DSSE envelopes of this payload type, signed with the device key.
constexpr std::string_view kReportType = "application/vnd.pylon.device-report+json";
constexpr std::size_t kMaxHardwareJson = 16 * 1024;

Json release_ref(const std::optional<catalog::ReleaseName>& r) {
    if (!r) return nullptr;
    return {{"namespace", r->ns}, {"model", r->model}, {"version", r->version}};
}

Json fleet_json(const catalog::Fleet& f) {
    return {{"name", f.name},
            {"description", f.description},
            {"region", f.region},
            {"commercial_use", f.commercial_use},
            {"created_at", catalog::format_rfc3339(f.created_at)}};
}

Json enrollment_json(const catalog::EnrollmentToken& t) {
    Json j = {{"id", std::to_string(t.id)},
              {"fleet", t.fleet},
              {"name", t.name},
              {"uses", t.uses},
              {"revoked", t.revoked},
              {"created_by", t.created_by},
              {"created_at", catalog::format_rfc3339(t.created_at)}};
    if (t.max_uses) j["max_uses"] = *t.max_uses;
    set_time(j, "expires_at", t.expires_at);
    return j;
}

Json device_json(const catalog::Device& d) {
    Json j = {{"id", std::to_string(d.id)},
              {"fleet", d.fleet},
              {"name", d.name},
              {"public_key", Json::parse(d.public_key, nullptr, false)},
              {"labels", Json::parse(d.labels, nullptr, false)},
              {"hardware", Json::parse(d.hardware, nullptr, false)},
              {"enrolled_at", catalog::format_rfc3339(d.enrolled_at)},
              {"current", release_ref(d.current)},
              {"desired", release_ref(d.desired)},
              {"update_state", d.update_state},
              {"director_version", d.director_version},
              {"last_error", d.last_error},
              {"revoked", d.revoked}};
    set_time(j, "last_seen_at", d.last_seen_at);
    return j;
}

// A hardware probe as the agent sends it: {"arch", "isa", "accelerators", "ram_mb",
// "cpu_model"}, checked field by field.
Result<Json> hardware_from(const Json* hw) {
    if (hw == nullptr) return Error(Errc::invalid_field, "hardware: required");
    ObjectReader r(*hw, "hardware");
    PYLON_TRY_ASSIGN(std::string arch, r.string("arch", 32));
    PYLON_TRY(check_name(r.path("arch"), arch));
    PYLON_TRY_ASSIGN(auto isa, r.string_list("isa", 64, 32));
    for (const auto& f : isa) PYLON_TRY(check_name(r.path("isa"), f));
    PYLON_TRY_ASSIGN(auto accelerators, r.string_list("accelerators", 16, 32));
    for (const auto& a : accelerators) PYLON_TRY(check_name(r.path("accelerators"), a));
    PYLON_TRY_ASSIGN(auto ram, r.optional_int("ram_mb", 0, std::int64_t{1} << 40));
    PYLON_TRY_ASSIGN(auto cpu, r.optional_string("cpu_model", 256));
    PYLON_TRY(r.finish());
    return Json{{"arch", arch},
                {"isa", isa},
                {"accelerators", accelerators},
                {"ram_mb", ram.value_or(0)},
                {"cpu_model", cpu.value_or("")}};
}

}  // namespace

// The device credential of "Authorization: Bearer pyd_…".
Result<catalog::Device> authenticate_device(ApiContext& ctx, const http::Request& req) {
    PYLON_TRY_ASSIGN(std::string token,
                     bearer_token(req.headers.get("Authorization"), "pyd_", "a device credential"));
    auto device = ctx.catalog.find_device_by_credential(hash_token(token));
    if (!device) {
        if (device.error().code() == make_error_code(catalog::Errc::not_found)) {
            return Error(Errc::unauthorized, "unknown or revoked device credential");
        }
        return std::move(device).error();
    }
    return device;
}

void add_device_routes(http::Router& router, ApiContext& ctx) {
    // --- operators ------------------------------------------------------------------------------
    router.add("POST", "/v1/fleets", wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY_ASSIGN(Json body, parse_object(req.body));
                   ObjectReader r(body);
                   PYLON_TRY_ASSIGN(std::string name, r.string("name", 64));
                   PYLON_TRY(check_name("name", name));
                   PYLON_TRY_ASSIGN(auto description, r.optional_string("description", 4096));
                   PYLON_TRY_ASSIGN(auto region, r.optional_string("region", 2));
                   PYLON_TRY_ASSIGN(auto commercial, r.optional_bool("commercial_use"));
                   PYLON_TRY(r.finish());
                   PYLON_TRY_ASSIGN(auto f, ctx.catalog.create_fleet(name, description.value_or(""),
                                                                     region.value_or(""),
                                                                     commercial.value_or(false)));
                   audit(ctx, req, who, "fleet.create", name, fleet_json(f));
                   return http::Response::json(201, fleet_json(f));
               }));

    // Where and how the fleet's devices are used (what rollouts check licences against).
    router.add(
        "PUT", "/v1/fleets/{fleet}", wrap([&ctx](http::Request& req) -> Result<http::Response> {
            PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
            PYLON_TRY(require_admin(who));
            PYLON_TRY(check_name("fleet", req.param("fleet")));
            PYLON_TRY_ASSIGN(Json body, parse_object(req.body));
            ObjectReader r(body);
            PYLON_TRY_ASSIGN(auto region, r.optional_string("region", 2));
            PYLON_TRY_ASSIGN(auto commercial, r.optional_bool("commercial_use"));
            PYLON_TRY(r.finish());
            PYLON_TRY_ASSIGN(auto current, ctx.catalog.get_fleet(req.param("fleet")));
            PYLON_TRY_ASSIGN(auto f,
                             ctx.catalog.update_fleet(current.name, region.value_or(current.region),
                                                      commercial.value_or(current.commercial_use)));
            audit(ctx, req, who, "fleet.update", f.name, fleet_json(f));
            return http::Response::json(200, fleet_json(f));
        }));

    router.add("GET", "/v1/fleets/{fleet}",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY(check_name("fleet", req.param("fleet")));
                   PYLON_TRY_ASSIGN(auto f, ctx.catalog.get_fleet(req.param("fleet")));
                   return http::Response::json(200, fleet_json(f));
               }));

    router.add("GET", "/v1/fleets", wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY_ASSIGN(auto page, page_request(req));
                   PYLON_TRY_ASSIGN(auto list, ctx.catalog.list_fleets(page));
                   return http::Response::json(200, page_json(list, fleet_json));
               }));

    router.add(
        "POST", "/v1/fleets/{fleet}/enrollment-tokens",
        wrap([&ctx](http::Request& req) -> Result<http::Response> {
            PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
            PYLON_TRY(require_admin(who));
            PYLON_TRY(check_name("fleet", req.param("fleet")));
            PYLON_TRY_ASSIGN(Json body, parse_object(req.body.empty() ? "{}" : req.body));
            ObjectReader r(body);
            PYLON_TRY_ASSIGN(auto name, r.optional_string("name", 128));
            PYLON_TRY_ASSIGN(auto max_uses, r.optional_int("max_uses", 1, 1000000));
            PYLON_TRY_ASSIGN(auto hours, r.optional_int("expires_in_hours", 1, 24 * 3650));
            PYLON_TRY(r.finish());
            std::optional<catalog::Timestamp> expires;
            if (hours) expires = std::chrono::system_clock::now() + std::chrono::hours(*hours);
            const std::string token = "pye_" + generate_token().substr(4);
            PYLON_TRY_ASSIGN(
                auto stored,
                ctx.catalog.create_enrollment_token(
                    req.param("fleet"), name.value_or(""), hash_token(token),
                    max_uses ? std::optional<std::int32_t>(static_cast<std::int32_t>(*max_uses))
                             : std::nullopt,
                    expires, who.actor()));
            audit(ctx, req, who, "enrollment_token.create",
                  "fleet " + req.param("fleet") + " token " + std::to_string(stored.id));
            Json out = enrollment_json(stored);
            out["token"] = token;  // shown once, never stored
            return http::Response::json(201, out);
        }));

    router.add("GET", "/v1/fleets/{fleet}/enrollment-tokens",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY(check_name("fleet", req.param("fleet")));
                   PYLON_TRY_ASSIGN(auto page, page_request(req));
                   PYLON_TRY_ASSIGN(auto list,
                                    ctx.catalog.list_enrollment_tokens(req.param("fleet"), page));
                   return http::Response::json(200, page_json(list, enrollment_json));
               }));

    router.add("DELETE", "/v1/fleets/{fleet}/enrollment-tokens/{id}",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY(check_name("fleet", req.param("fleet")));
                   PYLON_TRY_ASSIGN(auto id, parse_id(req.param("id"), "enrolment token"));
                   PYLON_TRY(ctx.catalog.revoke_enrollment_token(req.param("fleet"), id));
                   audit(ctx, req, who, "enrollment_token.revoke",
                         "fleet " + req.param("fleet") + " token " + std::to_string(id));
                   return http::Response::empty(204);
               }));

    router.add("GET", "/v1/devices", wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY_ASSIGN(auto page, page_request(req));
                   const auto fleet = req.query_param("fleet");
                   if (fleet) PYLON_TRY(check_name("fleet", *fleet));
                   PYLON_TRY_ASSIGN(auto list, ctx.catalog.list_devices(fleet, page));
                   return http::Response::json(200, page_json(list, device_json));
               }));

    router.add("GET", "/v1/devices/{id}",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY_ASSIGN(auto id, parse_id(req.param("id"), "device"));
                   PYLON_TRY_ASSIGN(auto d, ctx.catalog.get_device(id));
                   return http::Response::json(200, device_json(d));
               }));

    router.add("GET", "/v1/devices/{id}/events",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY_ASSIGN(auto id, parse_id(req.param("id"), "device"));
                   PYLON_TRY_ASSIGN(auto page, page_request(req));
                   PYLON_TRY_ASSIGN(auto list, ctx.catalog.list_device_events(id, page));
                   return http::Response::json(
                       200, page_json(list, [](const catalog::DeviceEvent& e) {
                           return Json{{"id", std::to_string(e.id)},
                                       {"at", catalog::format_rfc3339(e.at)},
                                       {"kind", e.kind},
                                       {"details", Json::parse(e.details, nullptr, false)}};
                       }));
               }));

    // An operator's assignment: {"model": "ns/name", "version": "1.0.0"}.
    router.add("PUT", "/v1/devices/{id}/release",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY_ASSIGN(auto id, parse_id(req.param("id"), "device"));
                   PYLON_TRY_ASSIGN(Json body, parse_object(req.body));
                   ObjectReader r(body);
                   PYLON_TRY_ASSIGN(std::string model, r.string("model", 129));
                   PYLON_TRY_ASSIGN(std::string version, r.string("version", 64));
                   PYLON_TRY(r.finish());
                   PYLON_TRY_ASSIGN(const auto names, split_model(model));
                   PYLON_TRY_ASSIGN(
                       auto d, ctx.catalog.assign_release(id, names.first, names.second, version,
                                                          who.actor()));
                   audit(ctx, req, who, "device.assign", "device " + std::to_string(id),
                         {{"release", model + " " + version}});
                   return http::Response::json(200, device_json(d));
               }));

    // Replaces the device's labels ({"labels": {"key": "value", ...}}), which rollout
    // selectors match.
    router.add("PUT", "/v1/devices/{id}/labels",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY_ASSIGN(auto id, parse_id(req.param("id"), "device"));
                   PYLON_TRY_ASSIGN(Json body, parse_object(req.body));
                   ObjectReader r(body);
                   PYLON_TRY_ASSIGN(const Json* labels, r.object("labels", true));
                   PYLON_TRY(r.finish());
                   if (labels->size() > 64) {
                       return Error(Errc::invalid_field, "labels: at most 64");
                   }
                   for (const auto& [k, v] : labels->items()) {
                       PYLON_TRY(check_name("labels", k));
                       if (!v.is_string() || v.get<std::string>().size() > 255) {
                           return Error(Errc::invalid_field,
                                        "labels." + k + ": a string of at most 255 bytes");
                       }
                   }
                   PYLON_TRY_ASSIGN(auto d, ctx.catalog.set_device_labels(id, labels->dump()));
                   audit(ctx, req, who, "device.label", "device " + std::to_string(id),
                         {{"labels", *labels}});
                   return http::Response::json(200, device_json(d));
               }));

    router.add("DELETE", "/v1/devices/{id}",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY_ASSIGN(auto id, parse_id(req.param("id"), "device"));
                   PYLON_TRY(ctx.catalog.revoke_device(id));
                   audit(ctx, req, who, "device.revoke", "device " + std::to_string(id));
                   return http::Response::empty(204);
               }));

    // --- devices --------------------------------------------------------------------------------
    // Enrolment: "Authorization: Bearer <enrolment token>", {"name", "public_key" (a TUF
    // Ed25519 key), "hardware", "proof"}: proof is a DSSE envelope by that key over the
    // canonical JSON of {"name", "public_key", "hardware"}, so nobody enrols a key they do not
    // hold. Answers the device (its id), its credential (shown once) and the director's key.
    router.add(
        "POST", "/v1/device/enroll", wrap([&ctx](http::Request& req) -> Result<http::Response> {
            if (ctx.director_key == nullptr) {
                return Error(Errc::unavailable, "this registry has no director key");
            }
            PYLON_TRY_ASSIGN(std::string token, bearer_token(req.headers.get("Authorization"),
                                                             "pye_", "an enrolment token"));
            PYLON_TRY_ASSIGN(Json body, parse_object(req.body));
            ObjectReader r(body);
            PYLON_TRY_ASSIGN(std::string name, r.string("name", 64));
            PYLON_TRY(check_name("name", name));
            PYLON_TRY_ASSIGN(const Json* key_json, r.object("public_key", true));
            PYLON_TRY_ASSIGN(const Json* hw_json, r.object("hardware", true));
            PYLON_TRY_ASSIGN(const Json* proof_json, r.object("proof", true));
            PYLON_TRY(r.finish());
            auto key = signing::PublicKey::from_tuf(*key_json);
            if (!key || key->type() != signing::KeyType::ed25519) {
                return Error(Errc::invalid_field, "public_key: expected a TUF ed25519 key");
            }
            PYLON_TRY_ASSIGN(Json hardware, hardware_from(hw_json));
            auto envelope = signing::Envelope::from_json(*proof_json);
            if (!envelope) return Error(Errc::invalid_field, "proof: not a DSSE envelope");
            PYLON_TRY_ASSIGN(
                const std::string expected,
                signing::canonical_json(
                    Json{{"name", name}, {"public_key", *key_json}, {"hardware", *hw_json}}));
            PYLON_TRY_ASSIGN(const std::string key_text, signing::canonical_json(*key_json));
            auto verified =
                signing::dsse_verify(*envelope, {*key}, 1, "application/vnd.pylon.enrollment+json");
            if (!verified ||
                std::string(verified->payload.begin(), verified->payload.end()) != expected) {
                return Error(Errc::bad_signature,
                             "proof: not a signature by public_key over this enrolment");
            }
            const std::string credential = "pyd_" + generate_token().substr(4);
            auto device = ctx.catalog.enroll_device(hash_token(token), name, key_text,
                                                    hardware.dump(), hash_token(credential));
            if (!device) {
                if (device.error().code() == make_error_code(catalog::Errc::not_found)) {
                    return Error(Errc::unauthorized,
                                 "the enrolment token is unknown, revoked, expired or used up");
                }
                return std::move(device).error();
            }
            Json out = {
                {"device", device_json(*device)},
                {"credential", credential},
                {"director_key",
                 signing::tuf::Key::from_public_key(ctx.director_key->public_key()).to_json()}};
            return http::Response::json(201, out);
        }));

    router.add("GET", "/v1/device", wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(auto d, authenticate_device(ctx, req));
                   return http::Response::json(200, device_json(d));
               }));

    router.add("PUT", "/v1/device/hardware",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(auto d, authenticate_device(ctx, req));
                   if (req.body.size() > kMaxHardwareJson) {
                       return Error(Errc::payload_too_large, "hardware: larger than 16 KiB");
                   }
                   PYLON_TRY_ASSIGN(Json body, parse_object(req.body));
                   PYLON_TRY_ASSIGN(Json hardware, hardware_from(&body));
                   PYLON_TRY_ASSIGN(auto updated,
                                    ctx.catalog.update_device_hardware(d.id, hardware.dump()));
                   return http::Response::json(200, device_json(updated));
               }));

    // A status report: a DSSE envelope (kReportType) signed with the device key, whose payload
    // is {"state", "current": {"namespace", "model", "version"} | null, "error", "target", …}.
    router.add(
        "POST", "/v1/device/reports", wrap([&ctx](http::Request& req) -> Result<http::Response> {
            PYLON_TRY_ASSIGN(auto d, authenticate_device(ctx, req));
            auto envelope = signing::Envelope::parse(req.body);
            if (!envelope) return Error(Errc::invalid_json, "a report is a DSSE envelope");
            PYLON_TRY_ASSIGN(auto key, signing::PublicKey::from_tuf(Json::parse(d.public_key)));
            auto verified = signing::dsse_verify(*envelope, {key}, 1, kReportType);
            if (!verified) {
                return Error(Errc::bad_signature, "the report is not signed by this device's key");
            }
            PYLON_TRY_ASSIGN(Json payload, parse_object(std::string(verified->payload.begin(),
                                                                    verified->payload.end())));
            catalog::DeviceReport report;
            const auto state = payload.find("state");
            if (state == payload.end() || !state->is_string()) {
                return Error(Errc::invalid_field, "state: required");
            }
            report.update_state = state->get<std::string>();
            if (const auto e = payload.find("error"); e != payload.end() && e->is_string()) {
                report.error = e->get<std::string>().substr(0, 2048);
            }
            if (const auto c = payload.find("current"); c != payload.end() && c->is_object()) {
                auto rel = ctx.catalog.get_release(c->value("namespace", ""), c->value("model", ""),
                                                   c->value("version", ""));
                if (!rel) return Error(Errc::invalid_field, "current: no such release");
                report.current_release_id = rel->id;
            }
            report.body = Json{{"report", payload}, {"envelope", envelope->to_json()}}.dump();
            auto stored = ctx.catalog.record_device_report(d.id, report);
            if (!stored) {
                if (stored.error().code() == make_error_code(catalog::Errc::invalid_argument)) {
                    return Error(Errc::invalid_field, stored.error().message());
                }
                return std::move(stored).error();
            }
            return http::Response::json(202, {{"update_state", stored->update_state}});
        }));
}

}  // namespace pylon::registry::api
