// Operational endpoints: liveness, readiness, metrics and the API description.
#include "api/context.h"

namespace pylon::registry::api {

void add_ops_routes(http::Router& router, ApiContext& ctx) {
    // Answered on the I/O thread: nothing here blocks.
    auto inline_route = [&router](std::string_view pattern, http::Handler h) {
        router.add_fast(
            "GET", pattern, [h](http::Request& r) { return std::optional<http::Response>(h(r)); },
            h);
    };
    inline_route("/healthz",
                 [](http::Request&) { return http::Response::json(200, {{"status", "ok"}}); });

    router.add("GET", "/readyz", [&ctx](http::Request&) {
        auto ping = ctx.catalog.ping();
        if (!ping) {
            return http::Response::json(
                503, {{"status", "unavailable"}, {"database", "unreachable"}});
        }
        return http::Response::json(200, {{"status", "ready"}, {"database", "ok"}});
    });

    inline_route("/metrics", [&ctx](http::Request&) {
        return http::Response::text(200, ctx.metrics.render(), Metrics::kContentType);
    });
    inline_route("/openapi.yaml", [&ctx](http::Request&) {
        return http::Response::text(200, ctx.openapi_yaml, "application/yaml");
    });
}

}  // namespace pylon::registry::api
