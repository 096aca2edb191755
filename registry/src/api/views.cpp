#include "api/views.h"

#include <algorithm>
#include <set>

#include "api/errors.h"
#include "api/validation.h"

namespace pylon::registry::api {

using catalog::format_rfc3339;

void set_time(Json& j, const char* key, const std::optional<catalog::Timestamp>& t) {
    if (t) j[key] = format_rfc3339(*t);
}

Json to_json(const catalog::Namespace& ns) {
    return {{"name", ns.name},
            {"description", ns.description},
            {"created_at", format_rfc3339(ns.created_at)}};
}

Json to_json(const catalog::Model& m) {
    return {{"namespace", m.ns},
            {"name", m.name},
            {"description", m.description},
            {"license", catalog::to_json(m.license)},
            {"created_at", format_rfc3339(m.created_at)},
            {"updated_at", format_rfc3339(m.updated_at)}};
}

Json to_json(const catalog::Release& r) {
    Json j = {{"namespace", r.ns},
              {"model", r.model},
              {"version", r.version},
              {"state", std::string(catalog::to_string(r.state))},
              {"notes", r.notes},
              {"license", catalog::to_json(r.license)},
              {"created_at", format_rfc3339(r.created_at)}};
    set_time(j, "published_at", r.published_at);
    set_time(j, "yanked_at", r.yanked_at);
    if (r.state == catalog::ReleaseState::yanked) j["yank_reason"] = r.yank_reason;
    return j;
}

Json to_json(const catalog::HardwareTarget& t) {
    return {{"arch", t.arch},
            {"isa", t.isa},
            {"accelerator", t.accelerator},
            {"min_ram_mb", t.min_ram_mb}};
}

std::string target_path(const catalog::Release& release, const catalog::Build& build,
                        const catalog::BuildFile& file) {
    return release.ns + "/" + release.model + "/" + release.version + "/" + build.name + "/" +
           file.name;
}

Json to_json(const catalog::Build& b, const catalog::Release& release) {
    Json files = Json::array();
    for (const auto& f : b.files) {
        files.push_back({{"name", f.name},
                         {"digest", f.digest},
                         {"size", f.size},
                         {"target_path", target_path(release, b, f)}});
    }
    return {{"name", b.name},
            {"target", to_json(b.target)},
            {"format", b.format},
            {"quantization", b.quantization},
            {"files", std::move(files)},
            {"created_at", format_rfc3339(b.created_at)}};
}

Json to_json(const catalog::Attestation& a, bool with_body) {
    Json j = {{"kind", std::string(catalog::to_string(a.kind))},
              {"keyid", a.keyid},
              {"created_at", format_rfc3339(a.created_at)}};
    if (a.build) j["build"] = *a.build;
    if (with_body) j["envelope"] = Json::parse(a.body);
    return j;
}

Json release_json(const catalog::Release& release, const std::vector<catalog::Build>& builds,
                  const std::vector<catalog::Attestation>& attestations) {
    Json j = to_json(release);
    j["builds"] = Json::array();
    for (const auto& b : builds) j["builds"].push_back(to_json(b, release));
    j["attestations"] = Json::array();
    for (const auto& a : attestations) j["attestations"].push_back(to_json(a, false));
    return j;
}

Json to_json(const catalog::ApiToken& t) {
    Json j = {{"id", std::to_string(t.id)},
              {"name", t.name},
              {"scopes", t.scopes},
              {"revoked", t.revoked},
              {"created_by", t.created_by},
              {"created_at", format_rfc3339(t.created_at)}};
    set_time(j, "expires_at", t.expires_at);
    set_time(j, "last_used_at", t.last_used_at);
    return j;
}

Json to_json(const catalog::AuditEntry& e) {
    Json details = Json::parse(e.details, nullptr, false);
    return {{"id", std::to_string(e.id)},
            {"at", format_rfc3339(e.at)},
            {"actor", e.actor},
            {"action", e.action},
            {"target", e.target},
            {"remote_addr", e.remote_addr},
            {"details", details.is_discarded() ? Json::object() : details}};
}

Result<catalog::License> read_license(const Json& json, const std::string& path) {
    if (!json.is_object()) return Error(Errc::invalid_field, path + ": must be an object");
    ObjectReader r(json, path);
    catalog::License l;
    PYLON_TRY_ASSIGN(l.spdx, r.string("spdx", 512));
    PYLON_TRY(check_spdx_expression(r.path("spdx"), l.spdx));
    PYLON_TRY_ASSIGN(l.commercial_use, r.optional_bool("commercial_use"));
    PYLON_TRY_ASSIGN(l.regions_allowed, r.string_list("regions_allowed", 300, 2));
    PYLON_TRY_ASSIGN(l.regions_denied, r.string_list("regions_denied", 300, 2));
    for (const auto* list : {&l.regions_allowed, &l.regions_denied}) {
        for (const auto& region : *list) {
            PYLON_TRY(check_region(r.path(list == &l.regions_allowed ? "regions_allowed"
                                                                      : "regions_denied"),
                                   region));
        }
    }
    for (const auto& region : l.regions_allowed) {
        if (std::count(l.regions_denied.begin(), l.regions_denied.end(), region)) {
            return Error(Errc::invalid_field,
                         path + ": region " + region + " is both allowed and denied");
        }
    }
    PYLON_TRY_ASSIGN(auto acceptance, r.optional_bool("acceptance_required"));
    l.acceptance_required = acceptance.value_or(false);
    PYLON_TRY_ASSIGN(auto attribution, r.optional_string("attribution", 4096));
    l.attribution = attribution.value_or("");
    PYLON_TRY(r.finish());
    return l;
}

Result<catalog::HardwareTarget> read_target(const Json& json, const std::string& path) {
    ObjectReader r(json, path);
    catalog::HardwareTarget t;
    PYLON_TRY_ASSIGN(t.arch, r.string("arch", 32));
    PYLON_TRY(check_item_name(r.path("arch"), t.arch));
    PYLON_TRY_ASSIGN(t.isa, r.string_list("isa", 64, 32));
    std::set<std::string> seen;
    for (const auto& f : t.isa) {
        PYLON_TRY(check_item_name(r.path("isa"), f));
        if (!seen.insert(f).second) {
            return Error(Errc::invalid_field, r.path("isa") + ": \"" + f + "\" is listed twice");
        }
    }
    std::sort(t.isa.begin(), t.isa.end());
    PYLON_TRY_ASSIGN(auto accel, r.optional_string("accelerator", 64));
    t.accelerator = accel.value_or("none");
    PYLON_TRY(check_item_name(r.path("accelerator"), t.accelerator));
    PYLON_TRY_ASSIGN(auto ram, r.optional_int("min_ram_mb", 0, std::int64_t{1} << 40));
    t.min_ram_mb = ram.value_or(0);
    PYLON_TRY(r.finish());
    return t;
}

}  // namespace pylon::registry::api
