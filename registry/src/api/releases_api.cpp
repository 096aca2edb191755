// Releases: drafts, builds, attestations, publish (with the namespace's signed TUF targets
// role), yank.
#include "api/attestations.h"
#include "api/context.h"
#include "api/validation.h"
#include "api/views.h"
#include "pylon/registry/blob/digest.h"

namespace pylon::registry::api {

namespace {

struct ReleaseKey {
    std::string ns, model, version;
    std::string str() const { return ns + "/" + model + "@" + version; }
};

Result<ReleaseKey> release_key(const http::Request& req, bool with_version = true) {
    ReleaseKey k{req.param("ns"), req.param("model"), req.param("version")};
    PYLON_TRY(check_name("namespace", k.ns));
    PYLON_TRY(check_name("model", k.model));
    if (with_version) {
        PYLON_TRY(check_semver("version", k.version));
    }
    return k;
}

Result<catalog::Build> read_build(const Json& body) {
    ObjectReader r(body);
    catalog::Build b;
    PYLON_TRY_ASSIGN(b.name, r.string("name", 127));
    PYLON_TRY(check_item_name("name", b.name));
    PYLON_TRY_ASSIGN(const Json* target, r.object("target", true));
    PYLON_TRY_ASSIGN(b.target, read_target(*target, "target"));
    PYLON_TRY_ASSIGN(b.format, r.string("format", 32));
    PYLON_TRY(check_item_name("format", b.format));
    PYLON_TRY_ASSIGN(b.quantization, r.string("quantization", 32));
    PYLON_TRY(check_item_name("quantization", b.quantization));
    PYLON_TRY_ASSIGN(const Json* files, r.array("files", 256));
    if (!files || files->empty()) return Error(Errc::invalid_field, "files: at least one file");
    for (std::size_t i = 0; i < files->size(); ++i) {
        const std::string path = "files[" + std::to_string(i) + "]";
        if (!(*files)[i].is_object()) return Error(Errc::invalid_field, path + ": must be an object");
        ObjectReader f((*files)[i], path);
        catalog::BuildFile file;
        PYLON_TRY_ASSIGN(file.name, f.string("name", 127));
        PYLON_TRY(check_item_name(f.path("name"), file.name));
        PYLON_TRY_ASSIGN(file.digest, f.string("digest", 80));
        if (auto d = blob::Digest::parse(file.digest); !d) {
            return Error(Errc::invalid_field, f.path("digest") + ": " + d.error().message());
        }
        PYLON_TRY_ASSIGN(auto size, f.optional_int("size", 0, std::int64_t{1} << 50));
        if (!size) return Error(Errc::invalid_field, f.path("size") + ": is required");
        file.size = *size;
        PYLON_TRY(f.finish());
        b.files.push_back(std::move(file));
    }
    PYLON_TRY(r.finish());
    return b;
}

Result<http::Response> get_release(ApiContext& ctx, const ReleaseKey& k) {
    PYLON_TRY_ASSIGN(auto release, ctx.catalog.get_release(k.ns, k.model, k.version));
    PYLON_TRY_ASSIGN(auto builds, ctx.catalog.list_builds(release.id));
    PYLON_TRY_ASSIGN(auto attestations, ctx.catalog.list_attestations(k.ns, k.model, k.version));
    return http::Response::json(200, release_json(release, builds, attestations));
}

}  // namespace

void add_release_routes(http::Router& router, ApiContext& ctx) {
    const std::string releases = "/v1/models/{ns}/{model}/releases";
    const std::string release = releases + "/{version}";

    router.add("POST", releases, wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_publish(who, req.param("ns")));
                   PYLON_TRY_ASSIGN(ReleaseKey k, release_key(req, false));
                   PYLON_TRY_ASSIGN(Json body, parse_object(req.body));
                   ObjectReader r(body);
                   PYLON_TRY_ASSIGN(k.version, r.string("version", 64));
                   PYLON_TRY(check_semver("version", k.version));
                   PYLON_TRY_ASSIGN(auto notes, r.optional_string("notes", 16384));
                   PYLON_TRY_ASSIGN(const Json* license_json, r.object("license", false));
                   PYLON_TRY(r.finish());
                   PYLON_TRY_ASSIGN(auto model, ctx.catalog.get_model(k.ns, k.model));
                   catalog::License license = model.license;
                   if (license_json) {
                       PYLON_TRY_ASSIGN(license, read_license(*license_json, "license"));
                   }
                   PYLON_TRY_ASSIGN(auto created,
                                    ctx.catalog.create_release(k.ns, k.model, k.version,
                                                               notes.value_or(""), license));
                   audit(ctx, req, who, "release.create", k.str());
                   return http::Response::json(201, release_json(created, {}, {}));
               }));

    router.add("GET", releases, wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_read(who));
                   PYLON_TRY_ASSIGN(ReleaseKey k, release_key(req, false));
                   PYLON_TRY_ASSIGN(auto page, page_request(req));
                   PYLON_TRY_ASSIGN(auto list, ctx.catalog.list_releases(k.ns, k.model, page));
                   return http::Response::json(
                       200, page_json(list, [](const auto& r) { return to_json(r); }));
               }));

    router.add("GET", release, wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_read(who));
                   PYLON_TRY_ASSIGN(ReleaseKey k, release_key(req));
                   return get_release(ctx, k);
               }));

    router.add("POST", release + "/builds", wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_publish(who, req.param("ns")));
                   PYLON_TRY_ASSIGN(ReleaseKey k, release_key(req));
                   PYLON_TRY_ASSIGN(Json body, parse_object(req.body));
                   PYLON_TRY_ASSIGN(catalog::Build build, read_build(body));
                   PYLON_TRY_ASSIGN(auto rel, ctx.catalog.get_release(k.ns, k.model, k.version));
                   PYLON_TRY_ASSIGN(auto stored, ctx.catalog.add_build(k.ns, k.model, k.version, build));
                   audit(ctx, req, who, "build.add", k.str() + "/" + build.name);
                   return http::Response::json(201, to_json(stored, rel));
               }));

    router.add("DELETE", release + "/builds/{build}",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_publish(who, req.param("ns")));
                   PYLON_TRY_ASSIGN(ReleaseKey k, release_key(req));
                   PYLON_TRY(check_item_name("build", req.param("build")));
                   PYLON_TRY(ctx.catalog.remove_build(k.ns, k.model, k.version, req.param("build")));
                   audit(ctx, req, who, "build.remove", k.str() + "/" + req.param("build"));
                   return http::Response::empty(204);
               }));

    router.add("POST", release + "/attestations",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_publish(who, req.param("ns")));
                   PYLON_TRY_ASSIGN(ReleaseKey k, release_key(req));
                   PYLON_TRY_ASSIGN(Json body, parse_object(req.body));
                   ObjectReader r(body);
                   PYLON_TRY_ASSIGN(std::string kind_text, r.string("kind", 32));
                   auto kind = catalog::parse_attestation_kind(kind_text);
                   if (!kind) {
                       return Error(Errc::invalid_field,
                                    "kind: must be \"provenance\" or \"model_signature\"");
                   }
                   PYLON_TRY_ASSIGN(std::string build_name, r.string("build", 127));
                   PYLON_TRY(check_item_name("build", build_name));
                   PYLON_TRY_ASSIGN(const Json* envelope, r.object("envelope", true));
                   PYLON_TRY(r.finish());
                   PYLON_TRY_ASSIGN(auto builds, ctx.catalog.list_builds(k.ns, k.model, k.version));
                   const catalog::Build* build = nullptr;
                   for (const auto& b : builds) {
                       if (b.name == build_name) build = &b;
                   }
                   if (!build) {
                       return Error(Errc::not_found, "build " + build_name + " not found in " + k.str());
                   }
                   PYLON_TRY_ASSIGN(auto keys, ctx.catalog.list_publisher_keys(k.ns));
                   PYLON_TRY_ASSIGN(std::string keyid,
                                    verify_attestation(*kind, *envelope, *build, keys));
                   PYLON_TRY_ASSIGN(auto stored,
                                    ctx.catalog.add_attestation(k.ns, k.model, k.version,
                                                                build_name, *kind,
                                                                envelope->dump(), keyid));
                   audit(ctx, req, who, "attestation.add", k.str() + "/" + build_name,
                         {{"kind", kind_text}, {"keyid", keyid}});
                   return http::Response::json(201, to_json(stored, false));
               }));

    router.add("GET", release + "/attestations",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_read(who));
                   PYLON_TRY_ASSIGN(ReleaseKey k, release_key(req));
                   PYLON_TRY_ASSIGN(auto list, ctx.catalog.list_attestations(k.ns, k.model, k.version));
                   Json items = Json::array();
                   for (const auto& a : list) items.push_back(to_json(a, true));
                   return http::Response::json(200, {{"items", std::move(items)}});
               }));

    router.add("POST", release + "/publish",
               wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_publish(who, req.param("ns")));
                   PYLON_TRY_ASSIGN(ReleaseKey k, release_key(req));
                   PYLON_TRY_ASSIGN(Json body, parse_object(req.body));
                   ObjectReader r(body);
                   PYLON_TRY_ASSIGN(const Json* metadata, r.object("targets_metadata", true));
                   PYLON_TRY(r.finish());
                   PYLON_TRY_ASSIGN(auto rel, ctx.catalog.get_release(k.ns, k.model, k.version));
                   if (rel.state != catalog::ReleaseState::draft) {
                       return Error(Errc::invalid_state, k.str() + " is already " +
                                                             std::string(catalog::to_string(rel.state)));
                   }
                   PYLON_TRY_ASSIGN(auto builds, ctx.catalog.list_builds(rel.id));
                   const auto expected = expected_targets(rel, builds);
                   const std::string bytes = metadata->dump();
                   PYLON_TRY_ASSIGN(auto published, ctx.catalog.publish_release(
                                                        k.ns, k.model, k.version, [&]() -> Result<void> {
                                                            return submit_release_targets(
                                                                ctx.tuf, k.ns, bytes, expected);
                                                        }));
                   audit(ctx, req, who, "release.publish", k.str(),
                         {{"targets", expected.size()}});
                   return get_release(ctx, k);
               }),
               http::RouteOptions{4u << 20});

    router.add("POST", release + "/yank", wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
                   PYLON_TRY(require_publish(who, req.param("ns")));
                   PYLON_TRY_ASSIGN(ReleaseKey k, release_key(req));
                   PYLON_TRY_ASSIGN(Json body, parse_object(req.body));
                   ObjectReader r(body);
                   PYLON_TRY_ASSIGN(std::string reason, r.string("reason", 4096));
                   PYLON_TRY(r.finish());
                   PYLON_TRY(ctx.catalog.yank_release(k.ns, k.model, k.version, reason));
                   audit(ctx, req, who, "release.yank", k.str(), {{"reason", reason}});
                   return get_release(ctx, k);
               }));
}

}  // namespace pylon::registry::api
