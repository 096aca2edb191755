// The TUF image repository over HTTP:
//   GET  /tuf/metadata/{file}     metadata files, public (devices and any TUF client)
//   GET  /tuf/targets/{path...}   target files by consistent-snapshot name, from the blob store
//   POST /v1/tuf/targets          (admin) a new top-level targets version signed offline, which
//                                 is how a namespace gets delegated to its publisher keys
#include "api/context.h"
#include "api/validation.h"
#include "pylon/common/log.h"

namespace pylon::registry::api {

namespace {

using signing::tuf::Metadata;
using signing::tuf::Targets;

constexpr std::uint64_t kMaxTargetsBody = 4u << 20;

// Every delegation of the top-level targets must be a namespace that exists, delegated the
// paths "<ns>/*/*/*/*" (the target path convention), so that one namespace can never sign for
// another.
Result<void> check_top_level(ApiContext& ctx, const Metadata<Targets>& incoming) {
    if (!incoming.signed_.targets.empty()) {
        return Error(Errc::invalid_field,
                     "the top-level targets role lists no targets itself: files are published "
                     "through their namespace's role");
    }
    if (!incoming.signed_.delegations) return {};
    for (const auto& role : incoming.signed_.delegations->roles) {
        PYLON_TRY(check_name("delegations.roles.name", role.name));
        auto ns = ctx.catalog.get_namespace(role.name);
        if (!ns) {
            return Error(Errc::invalid_field, "delegated role " + role.name +
                                                  " is not a namespace of this registry "
                                                  "(create it first: POST /v1/namespaces)");
        }
        const std::vector<std::string> expected = {role.name + "/*/*/*/*"};
        if (!role.paths || *role.paths != expected) {
            return Error(Errc::invalid_field, "delegated role " + role.name +
                                                  " must be delegated exactly the paths [\"" +
                                                  expected.front() + "\"]");
        }
    }
    return {};
}

// Mirrors each namespace delegation's keys into the catalog (publisher keys).
Result<void> sync_publisher_keys(ApiContext& ctx, const Metadata<Targets>& top) {
    if (!top.signed_.delegations) return {};
    const auto& d = *top.signed_.delegations;
    for (const auto& role : d.roles) {
        std::vector<catalog::PublisherKey> keys;
        for (const auto& id : role.keyids) {
            auto it = d.keys.find(id);
            if (it == d.keys.end()) continue;
            keys.push_back({id, it->second.to_json().dump()});
        }
        PYLON_TRY(
            ctx.catalog.set_publisher_keys(role.name, keys, static_cast<int>(role.threshold)));
    }
    return {};
}

}  // namespace

Result<void> sync_all_publisher_keys(ApiContext& ctx) {
    PYLON_TRY_ASSIGN(std::string bytes, ctx.tuf.current_role("targets"));
    PYLON_TRY_ASSIGN(auto top, Metadata<Targets>::parse(bytes));
    return sync_publisher_keys(ctx, top);
}

void add_tuf_routes(http::Router& router, ApiContext& ctx) {
    // Small files read from the page cache: answered on the I/O thread.
    http::Handler metadata = [&ctx](http::Request& req) {
        auto bytes = ctx.tuf.metadata_bytes(req.param("file"));
        if (!bytes) {
            return http::Response::error(
                404, "not_found", "no TUF metadata file " + req.param("file").substr(0, 128));
        }
        http::Response r = http::Response::text(200, std::move(bytes).value(), "application/json");
        r.headers.set("Cache-Control", "no-cache");
        return r;
    };
    router.add_fast(
        "GET", "/tuf/metadata/{file}",
        [metadata](http::Request& req) { return std::optional<http::Response>(metadata(req)); },
        metadata);

    router.add("GET", "/tuf/targets/{path...}",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   auto ref = ctx.tuf.resolve_target(req.param("path"));
                   if (!ref) return Error(Errc::not_found, "no such TUF target");
                   PYLON_TRY_ASSIGN(auto digest, blob::Digest::parse("sha256:" + ref->sha256_hex));
                   return serve_blob(ctx, req, digest);
               }));

    router.add(
        "POST", "/v1/tuf/targets", wrap([&ctx](http::Request& req) -> Result<http::Response> {
            PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
            PYLON_TRY(require_admin(who));
            PYLON_TRY(parse_object(req.body));  // a clear JSON error before TUF parsing
            // The catalog checks first (they need connections of their own), then the write
            // under the publish lock shared by every replica.
            PYLON_TRY_ASSIGN(auto parsed, Metadata<Targets>::parse(req.body));
            PYLON_TRY(check_top_level(ctx, parsed));
            std::optional<Metadata<Targets>> accepted;
            std::optional<tuf::SubmitReport> submitted;
            PYLON_TRY(ctx.catalog.with_tuf_lock([&]() -> Result<void> {
                PYLON_TRY_ASSIGN(submitted,
                                 ctx.tuf.submit_role("targets", req.body,
                                                     [&](const Metadata<Targets>& incoming,
                                                         const Metadata<Targets>*) -> Result<void> {
                                                         accepted = incoming;
                                                         return {};
                                                     }));
                return {};
            }));
            const auto& report = *submitted;
            auto synced = sync_publisher_keys(ctx, *accepted);
            if (!synced) {
                log::error(
                    "publisher keys not mirrored into the catalog ({}); they will be at "
                    "the next start",
                    synced.error().to_string());
            }
            audit(ctx, req, who, "tuf.targets", "targets",
                  {{"version", report.version}, {"pending", report.pending}});
            return http::Response::json(200, {{"role", "targets"},
                                              {"version", report.version},
                                              {"snapshot_version", report.snapshot_version},
                                              {"timestamp_version", report.timestamp_version},
                                              {"pending", report.pending}});
        }),
        http::RouteOptions{kMaxTargetsBody});
}

}  // namespace pylon::registry::api
