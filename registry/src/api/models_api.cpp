// Models, and the hardware search over published builds.
#include <charconv>

#include "api/context.h"
#include "api/validation.h"
#include "api/views.h"

namespace pylon::registry::api {

namespace {

// Splits "a,b,c" (empty items refused).
Result<std::vector<std::string>> comma_list(std::string_view field, std::string_view text) {
    std::vector<std::string> out;
    if (text.empty()) return out;
    std::size_t start = 0;
    while (true) {
        const auto comma = text.find(',', start);
        std::string item(text.substr(start, comma == std::string_view::npos ? text.npos
                                                                             : comma - start));
        PYLON_TRY(check_item_name(field, item));
        out.push_back(std::move(item));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    if (out.size() > 64) return Error(Errc::bad_request, std::string(field) + ": too many items");
    return out;
}

}  // namespace

void add_model_routes(http::Router& router, ApiContext& ctx) {
    router.add("POST", "/v1/namespaces/{ns}/models",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   const std::string& ns = req.param("ns");
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_publish(who, ns));
                   PYLON_TRY(check_name("namespace", ns));
                   PYLON_TRY_ASSIGN(Json body, parse_object(req.body));
                   ObjectReader r(body);
                   PYLON_TRY_ASSIGN(std::string name, r.string("name", 64));
                   PYLON_TRY(check_name("name", name));
                   PYLON_TRY_ASSIGN(auto description, r.optional_string("description", 4096));
                   PYLON_TRY_ASSIGN(const Json* license_json, r.object("license", true));
                   PYLON_TRY_ASSIGN(auto license, read_license(*license_json, "license"));
                   PYLON_TRY(r.finish());
                   PYLON_TRY_ASSIGN(auto model, ctx.catalog.create_model(
                                                    ns, name, description.value_or(""), license));
                   audit(ctx, req, who, "model.create", ns + "/" + name,
                         {{"license", license.spdx}});
                   return http::Response::json(201, to_json(model));
               }));

    router.add("GET", "/v1/models", wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_read(who));
                   PYLON_TRY_ASSIGN(auto page, page_request(req));
                   catalog::ModelFilter filter;
                   filter.ns = req.query_param("namespace");
                   if (filter.ns) {
                       PYLON_TRY(check_name("namespace", *filter.ns));
                   }
                   filter.name_contains = req.query_param("q");
                   if (filter.name_contains && filter.name_contains->size() > 64) {
                       return Error(Errc::bad_request, "q: longer than 64 characters");
                   }
                   PYLON_TRY_ASSIGN(auto models, ctx.catalog.list_models(filter, page));
                   return http::Response::json(
                       200, page_json(models, [](const auto& m) { return to_json(m); }));
               }));

    router.add("GET", "/v1/models/{ns}/{model}",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_read(who));
                   PYLON_TRY(check_name("namespace", req.param("ns")));
                   PYLON_TRY(check_name("model", req.param("model")));
                   PYLON_TRY_ASSIGN(auto model,
                                    ctx.catalog.get_model(req.param("ns"), req.param("model")));
                   return http::Response::json(200, to_json(model));
               }));

    router.add("PATCH", "/v1/models/{ns}/{model}",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   const std::string& ns = req.param("ns");
                   const std::string& name = req.param("model");
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_publish(who, ns));
                   PYLON_TRY(check_name("namespace", ns));
                   PYLON_TRY(check_name("model", name));
                   PYLON_TRY_ASSIGN(Json body, parse_object(req.body));
                   ObjectReader r(body);
                   PYLON_TRY_ASSIGN(auto description, r.optional_string("description", 4096));
                   PYLON_TRY_ASSIGN(const Json* license_json, r.object("license", false));
                   std::optional<catalog::License> license;
                   if (license_json) {
                       PYLON_TRY_ASSIGN(license, read_license(*license_json, "license"));
                   }
                   PYLON_TRY(r.finish());
                   PYLON_TRY_ASSIGN(auto model,
                                    ctx.catalog.update_model(ns, name, description, license));
                   audit(ctx, req, who, "model.update", ns + "/" + name, body);
                   return http::Response::json(200, to_json(model));
               }));

    router.add("GET", "/v1/builds", wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_read(who));
                   PYLON_TRY_ASSIGN(auto page, page_request(req));
                   catalog::BuildQuery q;
                   auto arch = req.query_param("arch");
                   if (!arch) return Error(Errc::bad_request, "arch: the query needs ?arch=");
                   PYLON_TRY(check_item_name("arch", *arch));
                   q.arch = *arch;
                   PYLON_TRY_ASSIGN(q.isa, comma_list("isa", req.query_param("isa").value_or("")));
                   q.accelerator = req.query_param("accelerator");
                   if (q.accelerator) {
                       PYLON_TRY(check_item_name("accelerator", *q.accelerator));
                   }
                   if (auto ram = req.query_param("ram_mb")) {
                       std::int64_t v = 0;
                       const auto [end, ec] = std::from_chars(ram->data(), ram->data() + ram->size(), v);
                       if (ec != std::errc() || end != ram->data() + ram->size() || v < 0) {
                           return Error(Errc::bad_request, "ram_mb: must be a whole number");
                       }
                       q.ram_mb = v;
                   }
                   q.format = req.query_param("format");
                   if (q.format) {
                       PYLON_TRY(check_item_name("format", *q.format));
                   }
                   q.ns = req.query_param("namespace");
                   if (q.ns) {
                       PYLON_TRY(check_name("namespace", *q.ns));
                   }
                   PYLON_TRY_ASSIGN(auto matches, ctx.catalog.search_builds(q, page));
                   return http::Response::json(
                       200, page_json(matches, [](const catalog::BuildMatch& m) {
                           catalog::Release r;
                           r.ns = m.ns;
                           r.model = m.model;
                           r.version = m.version;
                           Json j = to_json(m.build, r);
                           j["namespace"] = m.ns;
                           j["model"] = m.model;
                           j["version"] = m.version;
                           return j;
                       }));
               }));
}

}  // namespace pylon::registry::api
