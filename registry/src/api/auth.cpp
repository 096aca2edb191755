#include "api/auth.h"

#include <sodium.h>

#include <algorithm>

#include "api/errors.h"
#include "api/validation.h"
#include "pylon/signing/encoding.h"
#include "pylon/signing/sha256.h"

namespace pylon::registry::api {

namespace {
constexpr std::string_view kPrefix = "pyl_";
constexpr std::string_view kPublish = "publish:";
}  // namespace

bool Principal::is_admin() const {
    return std::find(scopes.begin(), scopes.end(), "admin") != scopes.end();
}

bool Principal::can_read() const {
    return std::any_of(scopes.begin(), scopes.end(), [](const std::string& s) {
        return s == "admin" || s == "read" || s.rfind(kPublish, 0) == 0;
    });
}

bool Principal::can_publish(std::string_view ns) const {
    return std::any_of(scopes.begin(), scopes.end(), [&](const std::string& s) {
        return s == "admin" ||
               (s.size() == kPublish.size() + ns.size() && s.rfind(kPublish, 0) == 0 &&
                std::string_view(s).substr(kPublish.size()) == ns);
    });
}

std::string Principal::actor() const {
    return "token " + token_id + " (" + name + ")";
}

std::string generate_token() {
    if (sodium_init() < 0) std::abort();  // cannot happen after the first successful call
    Bytes raw(32);
    randombytes_buf(raw.data(), raw.size());
    return std::string(kPrefix) + signing::base64url_encode(raw);
}

std::string hash_token(std::string_view token) {
    return signing::to_hex(signing::sha256(token));
}

Result<void> check_scope(std::string_view scope) {
    if (scope == "admin" || scope == "read") return {};
    if (scope.rfind(kPublish, 0) == 0) return check_name("scopes", scope.substr(kPublish.size()));
    return Error(Errc::invalid_field, "scopes: \"" + std::string(scope.substr(0, 64)) +
                                          "\" is not a scope (admin, read or publish:<namespace>)");
}

Result<std::string> bearer_token(std::optional<std::string_view> header, std::string_view prefix,
                                 std::string_view what) {
    if (!header) {
        return Error(Errc::unauthorized,
                     "this call needs " + std::string(what) + " (Authorization: Bearer …)");
    }
    constexpr std::string_view kBearer = "Bearer ";
    std::string_view v = *header;
    if (v.size() <= kBearer.size() || v.substr(0, kBearer.size()) != kBearer) {
        return Error(Errc::unauthorized, "the Authorization header must be \"Bearer <token>\"");
    }
    v.remove_prefix(kBearer.size());
    if (v.size() > 256 || v.rfind(prefix, 0) != 0) {
        return Error(Errc::unauthorized, "the bearer token is not " + std::string(what));
    }
    return std::string(v);
}

}  // namespace pylon::registry::api
