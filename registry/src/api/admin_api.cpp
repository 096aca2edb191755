// Tokens, the audit log and namespaces.
#include "api/context.h"
#include "api/validation.h"
#include "api/views.h"

namespace pylon::registry::api {

void add_token_routes(http::Router& router, ApiContext& ctx) {
    router.add("GET", "/v1/whoami", wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   return http::Response::json(
                       200, {{"id", who.token_id}, {"name", who.name}, {"scopes", who.scopes}});
               }));

    router.add("POST", "/v1/tokens", wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY_ASSIGN(Json body, parse_object(req.body));
                   ObjectReader r(body);
                   PYLON_TRY_ASSIGN(std::string name, r.string("name", 128));
                   if (name.empty()) return Error(Errc::invalid_field, "name: must not be empty");
                   PYLON_TRY_ASSIGN(auto scopes, r.string_list("scopes", 32, 80));
                   if (scopes.empty()) {
                       return Error(Errc::invalid_field, "scopes: at least one scope is needed");
                   }
                   for (const auto& s : scopes) PYLON_TRY(check_scope(s));
                   PYLON_TRY_ASSIGN(auto days, r.optional_int("expires_in_days", 1, 3650));
                   PYLON_TRY(r.finish());
                   std::optional<catalog::Timestamp> expires;
                   if (days) expires = std::chrono::system_clock::now() + std::chrono::days(*days);
                   const std::string token = generate_token();
                   PYLON_TRY_ASSIGN(auto stored, ctx.catalog.create_token(name, hash_token(token),
                                                                          scopes, expires,
                                                                          who.actor()));
                   audit(ctx, req, who, "token.create", "token " + std::to_string(stored.id),
                         {{"name", name}, {"scopes", scopes}});
                   Json out = to_json(stored);
                   out["token"] = token;  // shown once, never stored
                   return http::Response::json(201, out);
               }));

    router.add("GET", "/v1/tokens", wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY_ASSIGN(auto page, page_request(req));
                   PYLON_TRY_ASSIGN(auto tokens, ctx.catalog.list_tokens(page));
                   return http::Response::json(
                       200, page_json(tokens, [](const auto& t) { return to_json(t); }));
               }));

    router.add("DELETE", "/v1/tokens/{id}",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY_ASSIGN(std::int64_t id, parse_id(req.param("id"), "token"));
                   PYLON_TRY(ctx.catalog.revoke_token(id));
                   ctx.tokens.erase_token(std::to_string(id));
                   audit(ctx, req, who, "token.revoke", "token " + std::to_string(id));
                   return http::Response::empty(204);
               }));

    router.add("GET", "/v1/audit", wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY_ASSIGN(auto page, page_request(req));
                   catalog::AuditFilter filter;
                   filter.actor = req.query_param("actor");
                   filter.action = req.query_param("action");
                   PYLON_TRY_ASSIGN(auto entries, ctx.catalog.list_audit(page, filter));
                   return http::Response::json(
                       200, page_json(entries, [](const auto& e) { return to_json(e); }));
               }));
}

void add_namespace_routes(http::Router& router, ApiContext& ctx) {
    router.add("POST", "/v1/namespaces", wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_admin(who));
                   PYLON_TRY_ASSIGN(Json body, parse_object(req.body));
                   ObjectReader r(body);
                   PYLON_TRY_ASSIGN(std::string name, r.string("name", 64));
                   PYLON_TRY(check_name("name", name));
                   PYLON_TRY_ASSIGN(auto description, r.optional_string("description", 4096));
                   PYLON_TRY(r.finish());
                   PYLON_TRY_ASSIGN(auto ns,
                                    ctx.catalog.create_namespace(name, description.value_or("")));
                   audit(ctx, req, who, "namespace.create", name);
                   return http::Response::json(201, to_json(ns));
               }));

    router.add("GET", "/v1/namespaces", wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_read(who));
                   PYLON_TRY_ASSIGN(auto page, page_request(req));
                   PYLON_TRY_ASSIGN(auto list, ctx.catalog.list_namespaces(page));
                   return http::Response::json(
                       200, page_json(list, [](const auto& n) { return to_json(n); }));
               }));

    router.add("GET", "/v1/namespaces/{ns}",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_read(who));
                   PYLON_TRY(check_name("namespace", req.param("ns")));
                   PYLON_TRY_ASSIGN(auto ns, ctx.catalog.get_namespace(req.param("ns")));
                   return http::Response::json(200, to_json(ns));
               }));

    router.add("GET", "/v1/namespaces/{ns}/keys",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_read(who));
                   PYLON_TRY(check_name("namespace", req.param("ns")));
                   PYLON_TRY_ASSIGN(auto set, ctx.catalog.list_publisher_keys(req.param("ns")));
                   Json keys = Json::array();
                   for (const auto& k : set.keys) {
                       keys.push_back({{"keyid", k.keyid}, {"key", Json::parse(k.key_json)}});
                   }
                   return http::Response::json(
                       200, {{"keys", std::move(keys)}, {"threshold", set.threshold}});
               }));
}

}  // namespace pylon::registry::api
