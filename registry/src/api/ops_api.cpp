// Operational endpoints: liveness, readiness, metrics and the API description.
#include "api/context.h"

namespace pylon::registry::api {

void add_ops_routes(http::Router& router, ApiContext& ctx) {
    router.add("GET", "/healthz", [](http::Request&) {
        return http::Response::json(200, {{"status", "ok"}});
    });

    router.add("GET", "/readyz", [&ctx](http::Request&) {
        auto ping = ctx.catalog.ping();
        if (!ping) {
            return http::Response::json(
                503, {{"status", "unavailable"}, {"database", "unreachable"}});
        }
        return http::Response::json(200, {{"status", "ready"}, {"database", "ok"}});
    });

    router.add("GET", "/metrics", [&ctx](http::Request&) {
        return http::Response::text(200, ctx.metrics.render(), Metrics::kContentType);
    });

    router.add("GET", "/openapi.yaml", [&ctx](http::Request&) {
        return http::Response::text(200, ctx.openapi_yaml, "application/yaml");
    });
}

}  // namespace pylon::registry::api
