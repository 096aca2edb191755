// The director endpoint: GET /v1/device/director — the device's signed director document, the
// best-fitting build of its desired release, answered at once or as a long poll parked in
// DirectorWatch (docs/API.md, "Director documents").
#include "api/attestations.h"
#include "api/context.h"
#include "api/director_watch.h"
#include "api/validation.h"
#include "pylon/common/hardware_fit.h"
#include "pylon/signing/tuf/director.h"

namespace pylon::registry::api {

namespace {

HardwareHas hardware_has(const std::string& hardware_json) {
    HardwareHas has;
    const Json j = Json::parse(hardware_json, nullptr, false);
    if (!j.is_object()) return has;
    has.arch = j.value("arch", "");
    has.isa = j.value("isa", std::vector<std::string>{});
    has.accelerators = j.value("accelerators", std::vector<std::string>{});
    has.ram_mb = j.value("ram_mb", std::int64_t{0});
    return has;
}

// A release and its builds, read before the director document's transaction: the signer runs
// inside that transaction and must not take a second pooled connection (under load every worker
// could hold one and wait for another).
struct ReleaseBuilds {
    catalog::Release release;
    std::vector<catalog::Build> builds;
};

// What the director names for a device: the best-fitting build of its desired release, or no
// target with the reason.
Result<signing::tuf::DirectorDocument> plan(const catalog::Device& d,
                                            const std::optional<catalog::ReleaseName>& release,
                                            const std::optional<ReleaseBuilds>& known) {
    signing::tuf::DirectorDocument doc;
    doc.device = {d.id, d.fleet, d.name};
    if (!release) {
        doc.note = "no release is assigned to this device";
        return doc;
    }
    if (!known || known->release.id != release->id) {
        // The assignment changed after it was read: the caller reads it again.
        return Error(Errc::conflict, "the device's assignment changed while its document was made");
    }
    const std::string name = release->ns + "/" + release->model + " " + release->version;
    const catalog::Release& rel = known->release;
    const auto& builds = known->builds;
    std::string why;
    const catalog::Build* best = best_build(builds, d.hardware, &why);
    if (best == nullptr) {
        doc.note = "no build of " + name + " fits this device (" + why + ")";
        return doc;
    }
    const auto targets = expected_targets(rel, {*best});
    // The model file: the build's .gguf file (its only file, for the builds Pylon publishes).
    for (const auto& [path, file] : targets) {
        if (!doc.target_path || path.ends_with(".gguf")) {
            doc.target_path = path;
            doc.target = file;
        }
    }
    return doc;
}

Result<std::optional<ReleaseBuilds>> read_release_builds(
    ApiContext& ctx, const std::optional<catalog::ReleaseName>& release) {
    if (!release) return std::optional<ReleaseBuilds>();
    PYLON_TRY_ASSIGN(auto rel,
                     ctx.catalog.get_release(release->ns, release->model, release->version));
    PYLON_TRY_ASSIGN(auto builds, ctx.catalog.list_builds(rel.id));
    return std::optional(ReleaseBuilds{std::move(rel), std::move(builds)});
}

}  // namespace

const catalog::Build* best_build(const std::vector<catalog::Build>& builds,
                                 const std::string& hardware_json, std::string* why) {
    const HardwareHas has = hardware_has(hardware_json);
    const catalog::Build* best = nullptr;
    for (const auto& b : builds) {
        const HardwareNeeds needs{b.target.arch, b.target.isa, b.target.accelerator,
                                  b.target.min_ram_mb};
        if (auto m = hardware_mismatch(has, needs)) {
            if (why) *why += (why->empty() ? "" : "; ") + b.name + ": " + *m;
            continue;
        }
        if (best == nullptr ||
            hardware_prefer(
                needs, HardwareNeeds{best->target.arch, best->target.isa, best->target.accelerator,
                                     best->target.min_ram_mb})) {
            best = &b;
        }
    }
    return best;
}

// The longest a director request waits for a change (below common proxy and client timeouts).
constexpr std::uint32_t kMaxDirectorWait = 60;

// GET /v1/device/director: the response, or (may_wait, nothing new yet) none: the request then
// parks in ctx.director_watch for `wait` seconds and this runs again, not waiting, when it wakes.
struct DirectorAnswer {
    std::optional<http::Response> response;
    std::int64_t device = 0;
    std::uint64_t generation = 0;
    std::uint32_t wait = 0;
};

DirectorAnswer director_answer(ApiContext& ctx, const http::Request& req, bool may_wait) {
    DirectorAnswer out;
    std::optional<std::uint32_t> wait;
    if (const auto prefer = req.headers.get("Prefer")) wait = prefer_wait(*prefer);
    if (wait) wait = std::min(*wait, kMaxDirectorWait);
    // nullopt: park the request (out.device, out.generation and out.wait are set).
    auto answer = [&]() -> Result<std::optional<http::Response>> {
        if (ctx.director_key == nullptr) {
            return Error(Errc::unavailable, "this registry has no director key");
        }
        PYLON_TRY_ASSIGN(auto d, authenticate_device(ctx, req));
        // The release's builds are read only when a document must be signed (the signer says
        // so with a conflict): a poll answered with the stored document costs no more queries.
        std::optional<ReleaseBuilds> known;
        std::optional<catalog::ReleaseName> wanted;  // the release the signer asked for
        // Read before the document: a change committed after this read wakes the request.
        const std::uint64_t generation =
            ctx.director_watch != nullptr ? ctx.director_watch->generation(d.id) : 0;
        const catalog::Catalog::DirectorSigner sign =
            [&](std::int64_t version, catalog::Timestamp expires,
                const std::optional<catalog::ReleaseName>& release) -> Result<std::string> {
            wanted = release;
            PYLON_TRY_ASSIGN(auto doc, plan(d, release, known));
            doc.version = version;
            doc.expires = std::chrono::time_point_cast<std::chrono::seconds>(expires);
            return signing::tuf::sign_director_document(doc, *ctx.director_key);
        };
        auto issued = ctx.catalog.director_document(d.id, ctx.director_lifetime, sign);
        for (int attempt = 0;
             !issued && attempt < 3 && issued.error().code() == make_error_code(Errc::conflict);
             ++attempt) {
            PYLON_TRY_ASSIGN(known, read_release_builds(ctx, wanted));
            issued = ctx.catalog.director_document(d.id, ctx.director_lifetime, sign);
        }
        PYLON_TRY_ASSIGN(auto doc, std::move(issued));
        const std::string etag = "\"" + std::to_string(doc.version) + "\"";
        http::Response res = http::Response::empty(304);
        if (const auto inm = req.headers.get("If-None-Match"); inm && none_match(*inm, etag)) {
            if (may_wait && wait && *wait > 0 && ctx.director_watch != nullptr) {
                out.device = d.id;
                out.generation = generation;
                out.wait = *wait;
                return std::optional<http::Response>();
            }
        } else {
            res = http::Response::json(200, Json::object());
            res.body = std::move(doc.document);
        }
        res.headers.set("ETag", etag);
        res.headers.set("Cache-Control", "no-store");
        if (wait) res.headers.set("Preference-Applied", "wait=" + std::to_string(*wait));
        return res;
    };
    auto r = answer();
    if (!r) {
        out.response = error_response(r.error());
    } else {
        out.response = std::move(*r);
    }
    return out;
}

void add_director_routes(http::Router& router, ApiContext& ctx) {
    // The device's director document (application/json, exactly as signed), ETag "<version>".
    // With If-None-Match naming the version the device holds and "Prefer: wait=N" (RFC 7240),
    // the request waits up to N seconds (at most kMaxDirectorWait) for a change without holding
    // a thread, then answers 200 with the new document or 304.
    router.add_deferred(
        "GET", "/v1/device/director", [&ctx](http::Request& req, http::Responder responder) {
            auto a = director_answer(ctx, req, true);
            if (a.response) {
                responder.send(std::move(*a.response));
                return;
            }
            ctx.director_watch->wait(a.device, a.generation,
                                     DirectorWatch::Clock::now() + std::chrono::seconds(a.wait),
                                     [&ctx, &req, responder](bool) {
                                         responder.send_from_worker([&ctx, &req] {
                                             return *director_answer(ctx, req, false).response;
                                         });
                                     });
        });
}

}  // namespace pylon::registry::api
