// What every REST handler works with, and the helpers they share: authentication, the audit
// log, pagination, and turning a Result into an HTTP response.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "api/auth.h"
#include "api/errors.h"
#include "pylon/catalog/catalog.h"
#include "pylon/catalog/errors.h"
#include "pylon/common/result.h"
#include "pylon/registry/blob/blob_store.h"
#include "pylon/registry/http/message.h"
#include "pylon/registry/http/router.h"
#include "pylon/registry/metrics.h"
#include "pylon/registry/tuf/tuf_host.h"
#include "pylon/signing/keys.h"

namespace pylon::registry::api {

using Json = nlohmann::json;

// Tokens verified recently (token hash → principal), so that an authenticated request costs no
// database query. An entry lives at most kTtl and never past the token's own expiry. Revoking a
// token through this registry drops it at once; on other replicas it stays usable for at most
// kTtl (docs/SECURITY.md). Bounded: when full, it is emptied.
class TokenCache {
public:
    static constexpr std::chrono::seconds kTtl{10};
    static constexpr std::size_t kMaxEntries = 65536;

    std::optional<Principal> get(const std::string& hash);
    void put(const std::string& hash, const Principal& principal,
             std::optional<std::chrono::system_clock::time_point> expires_at);
    void erase_token(const std::string& token_id);

private:
    struct Entry {
        Principal principal;
        std::chrono::steady_clock::time_point deadline;
    };
    std::mutex mutex_;
    std::unordered_map<std::string, Entry> entries_;
};

class DirectorWatch;

struct ApiContext {
    catalog::Catalog& catalog;
    blob::BlobStore& blobs;
    tuf::TufHost& tuf;
    Metrics& metrics;
    std::string openapi_yaml;
    TokenCache tokens;
    // The director's online key (signs per-device director documents); null: no device API.
    const signing::PrivateKey* director_key = nullptr;
    // How long a director document is valid (re-issued after half of it).
    std::chrono::seconds director_lifetime{std::chrono::hours(24)};
    // Parked long polls of director documents; null: requests never wait.
    DirectorWatch* director_watch = nullptr;
};

// The JSON error response for any Error (status and code from classify()); 5xx details are
// logged, never sent.
http::Response error_response(const Error& error);

// The caller, from its bearer token. Errc::unauthorized when there is no valid token.
[[nodiscard]] Result<Principal> authenticate(ApiContext& ctx, const http::Request& request);
// The caller when its token is in the cache (no database query: usable on an I/O thread), or
// nullopt (no token, a malformed one, or one not verified recently: authenticate() decides).
std::optional<Principal> cached_principal(ApiContext& ctx, const http::Request& request);
// Errc::forbidden unless the principal may read / publish to `ns` / administer.
[[nodiscard]] Result<void> require_read(const Principal& p);
[[nodiscard]] Result<void> require_publish(const Principal& p, std::string_view ns);
[[nodiscard]] Result<void> require_admin(const Principal& p);

// Appends an audit entry for a mutating call (failures to record are logged; the call already
// happened).
void audit(ApiContext& ctx, const http::Request& request, const Principal& who,
           std::string_view action, std::string_view target, Json details = Json::object());

// ?limit= and ?page_token= (Errc::bad_request when malformed).
[[nodiscard]] Result<catalog::PageRequest> page_request(const http::Request& request);
// {"items": [...], "next_page_token": ...}
template <typename T, typename F>
Json page_json(const catalog::Page<T>& page, F&& to_json) {
    Json items = Json::array();
    for (const auto& item : page.items) items.push_back(to_json(item));
    Json out = {{"items", std::move(items)}};
    if (page.next) out["next_page_token"] = *page.next;
    return out;
}

// A handler body: returns a Response or an Error (mapped by error_response). Exceptions are
// caught and answered 500.
using ApiHandler = std::function<Result<http::Response>(http::Request&)>;
http::Handler wrap(ApiHandler handler);
// A fast path (http::FastHandler) from a function that may answer with an Error: nullopt passes
// the request on to the worker-thread handler.
using ApiFast = std::function<std::optional<Result<http::Response>>(http::Request&)>;
http::FastHandler wrap_fast(ApiFast fast);
// The same for the finishing half of a streamed route; the sink is the one begin() returned.
using ApiFinish = std::function<Result<http::Response>(http::Request&, http::BodySink*)>;
http::StreamFinish wrap_finish(ApiContext& ctx, ApiFinish finish);

// Serves a stored blob: ETag = "<digest>", If-None-Match → 304, a single "Range: bytes=a-b"
// (or a-, or -n) → 206 with Content-Range, an unsatisfiable one → 416; the body goes out with
// sendfile. Errc::not_found when the store does not have it.
[[nodiscard]] Result<http::Response> serve_blob(
    ApiContext& ctx, const http::Request& request, const blob::Digest& digest,
    std::string_view content_type = "application/octet-stream");

// Registration of each group of routes.
void add_ops_routes(http::Router& router, ApiContext& ctx);
void add_token_routes(http::Router& router, ApiContext& ctx);
void add_namespace_routes(http::Router& router, ApiContext& ctx);
void add_model_routes(http::Router& router, ApiContext& ctx);
void add_release_routes(http::Router& router, ApiContext& ctx);
void add_blob_routes(http::Router& router, ApiContext& ctx);
void add_tuf_routes(http::Router& router, ApiContext& ctx);
void add_device_routes(http::Router& router, ApiContext& ctx);
void add_rollout_routes(http::Router& router, ApiContext& ctx);
void add_director_routes(http::Router& router, ApiContext& ctx);

// The device of "Authorization: Bearer pyd_…" (Errc::unauthorized for an unknown or revoked
// credential).
[[nodiscard]] Result<catalog::Device> authenticate_device(ApiContext& ctx,
                                                          const http::Request& req);

// The build that fits a device's hardware probe (JSON text) best, by the shared rule of
// common/hardware_fit.h; nullptr when none does, and then *why (when given) names each build's
// reason.
const catalog::Build* best_build(const std::vector<catalog::Build>& builds,
                                 const std::string& hardware_json, std::string* why);

// Mirrors the publisher keys of every namespace delegation in the current top-level targets
// role into the catalog (at start-up, so that a crash between the two never leaves them apart).
[[nodiscard]] Result<void> sync_all_publisher_keys(ApiContext& ctx);

}  // namespace pylon::registry::api
