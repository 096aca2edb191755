// The authorization matrix of docs/API.md, endpoint by endpoint: without a token, with a
// malformed, unknown, revoked or expired token → 401; with a token lacking the scope → 403; with
// the right scope → the endpoint's answer. Refused calls must leave no trace (audit log
// unchanged). The rows run in order, so that each successful mutating call prepares the next.
#include <catch2/catch.hpp>

#include <functional>

#include "api_fixture.h"

namespace pylon::registry_api::test {
namespace {

enum class Scope { any, read, publish, admin };

struct Row {
    Method method;
    std::function<std::string()> path;
    Scope scope;
    unsigned expected;                  // with the right scope
    std::function<std::string()> body;  // empty function: no body
    std::function<net::HttpHeaders()> headers;
    std::function<void(const Reply&)> after;  // inspects the successful answer
};

std::function<std::string()> fixed(std::string s) {
    return [s = std::move(s)] { return s; };
}

std::string describe(const Row& row) {
    return std::string(net::to_string(row.method)) + " " + row.path();
}

std::size_t audit_count(ApiServer& s) {
    const Reply r = s.get("/v1/audit?limit=500", s.admin());
    REQUIRE(r.status == 200);
    return r.json().at("items").size();
}

std::string upload_id(const Reply& r) {
    const std::string location = r.header("Location");
    REQUIRE(location.rfind("/v1/namespaces/acme/uploads/", 0) == 0);
    return location.substr(location.rfind('/') + 1);
}

}  // namespace

TEST_CASE("every endpoint answers 401 without a valid token and 403 without its scope",
          "[registry_api][auth]") {
    ApiServer s;
    AcmeSetup a(s);

    std::string revoked_id, expired_id, victim_id;
    const std::string revoked = s.create_token({"admin"}, &revoked_id, "revoked");
    const std::string expired = s.create_token({"admin"}, &expired_id, "expired");
    s.create_token({"read"}, &victim_id, "victim");
    REQUIRE(s.call(Method::delete_, "/v1/tokens/" + revoked_id, s.admin()).status == 204);
    s.db().exec("UPDATE api_tokens SET expires_at = now() - interval '1 hour' WHERE id = " +
                expired_id);
    // Both worked before: the refusals below are about revocation and expiry, nothing else.
    REQUIRE(s.get("/v1/whoami", revoked).status == 401);
    REQUIRE(s.get("/v1/whoami", expired).status == 401);

    const std::string rel = a.release;
    const std::string rel2 = "/v1/models/acme/tiny/releases/2.0.0";
    const std::string chunk = "abc";
    std::string session, session2;
    const auto beta_key = new_key();
    const auto octets = [] {
        net::HttpHeaders h;
        h.add("Content-Type", "application/octet-stream");
        return h;
    };

    const std::vector<Row> rows = {
        {Method::get,
         fixed("/v1/whoami"),
         Scope::any,
         200,
         {},
         {},
         [](const Reply& r) { CHECK(r.json().at("name") == "reader"); }},
        {Method::post,
         fixed("/v1/tokens"),
         Scope::admin,
         201,
         fixed(R"({"name": "made", "scopes": ["read"]})"),
         {},
         {}},
        {Method::get, fixed("/v1/tokens"), Scope::admin, 200, {}, {}, {}},
        {Method::delete_, [&] { return "/v1/tokens/" + victim_id; }, Scope::admin, 204, {}, {}, {}},
        {Method::get, fixed("/v1/audit"), Scope::admin, 200, {}, {}, {}},
        {Method::post,
         fixed("/v1/namespaces"),
         Scope::admin,
         201,
         fixed(R"({"name": "beta"})"),
         {},
         {}},
        {Method::get, fixed("/v1/namespaces"), Scope::read, 200, {}, {}, {}},
        {Method::get, fixed("/v1/namespaces/acme"), Scope::read, 200, {}, {}, {}},
        {Method::get,
         fixed("/v1/namespaces/acme/keys"),
         Scope::read,
         200,
         {},
         {},
         [&](const Reply& r) { CHECK(r.json().at("keys").at(0).at("keyid") == a.key.key_id()); }},
        {Method::post,
         fixed("/v1/namespaces/acme/models"),
         Scope::publish,
         201,
         fixed(R"({"name": "small", "license": {"spdx": "MIT"}})"),
         {},
         {}},
        {Method::get, fixed("/v1/models?namespace=acme"), Scope::read, 200, {}, {}, {}},
        {Method::get, fixed("/v1/models/acme/tiny"), Scope::read, 200, {}, {}, {}},
        {Method::patch,
         fixed("/v1/models/acme/tiny"),
         Scope::publish,
         200,
         fixed(R"({"description": "patched"})"),
         {},
         {}},
        {Method::post,
         fixed("/v1/models/acme/tiny/releases"),
         Scope::publish,
         201,
         fixed(R"({"version": "2.0.0"})"),
         {},
         {}},
        {Method::get, fixed("/v1/models/acme/tiny/releases"), Scope::read, 200, {}, {}, {}},
        {Method::get, fixed(rel), Scope::read, 200, {}, {}, {}},
        {Method::post,
         fixed("/v1/namespaces/acme/uploads"),
         Scope::publish,
         202,
         {},
         {},
         [&](const Reply& r) { session = upload_id(r); }},
        {Method::patch, [&] { return "/v1/namespaces/acme/uploads/" + session; }, Scope::publish,
         202, fixed(chunk),
         [&] {
             auto h = octets();
             h.add("Content-Range", "0-2");
             return h;
         },
         [](const Reply& r) { CHECK(r.header("Range") == "0-2"); }},
        {Method::get,
         [&] { return "/v1/namespaces/acme/uploads/" + session; },
         Scope::publish,
         204,
         {},
         {},
         [](const Reply& r) { CHECK(r.header("Range") == "0-2"); }},
        {Method::put,
         [&] { return "/v1/namespaces/acme/uploads/" + session + "?digest=" + digest_of(chunk); },
         Scope::publish,
         201,
         {},
         {},
         {}},
        {Method::post,
         fixed("/v1/namespaces/acme/uploads"),
         Scope::publish,
         202,
         {},
         {},
         [&](const Reply& r) { session2 = upload_id(r); }},
        {Method::delete_,
         [&] { return "/v1/namespaces/acme/uploads/" + session2; },
         Scope::publish,
         204,
         {},
         {},
         {}},
        {Method::head, [&] { return "/v1/blobs/" + a.digest; }, Scope::read, 200, {}, {}, {}},
        {Method::get,
         [&] { return "/v1/blobs/" + a.digest; },
         Scope::read,
         200,
         {},
         {},
         [&](const Reply& r) { CHECK(r.body == a.blob); }},
        {Method::post,
         fixed(rel + "/builds"),
         Scope::publish,
         201,
         [&] { return s.build_body("b1", a.digest, a.blob.size()).dump(); },
         {},
         {}},
        {Method::post,
         fixed(rel2 + "/builds"),
         Scope::publish,
         201,
         [&] { return s.build_body("gone", a.digest, a.blob.size()).dump(); },
         {},
         {}},
        {Method::delete_, fixed(rel2 + "/builds/gone"), Scope::publish, 204, {}, {}, {}},
        {Method::post,
         fixed(rel + "/attestations"),
         Scope::publish,
         201,
         [&] {
             return Json{{"kind", "provenance"},
                         {"build", "b1"},
                         {"envelope", provenance(a.key, "model.gguf", a.blob)}}
                 .dump();
         },
         {},
         {}},
        {Method::get,
         fixed(rel + "/attestations"),
         Scope::read,
         200,
         {},
         {},
         [](const Reply& r) { CHECK(r.json().at("items").size() == 1); }},
        {Method::post,
         fixed(rel + "/publish"),
         Scope::publish,
         200,
         [&] {
             const auto role = s.sign_role("acme", s.release_targets(rel, s.admin()), a.key);
             return Json{{"targets_metadata", Json::parse(role)}}.dump();
         },
         {},
         [](const Reply& r) { CHECK(r.json().at("state") == "published"); }},
        {Method::get,
         fixed("/v1/builds?arch=x86_64&isa=avx2"),
         Scope::read,
         200,
         {},
         {},
         [](const Reply& r) { CHECK(r.json().at("items").size() == 1); }},
        {Method::post,
         fixed(rel + "/yank"),
         Scope::publish,
         200,
         fixed(R"({"reason": "test"})"),
         {},
         {}},
        {Method::post,
         fixed("/v1/tuf/targets"),
         Scope::admin,
         200,
         [&] { return s.delegation_json("beta", beta_key); },
         {},
         {}},
    };

    struct Attempt {
        std::string label;
        std::optional<std::string> authorization;  // the whole header value
        unsigned status;
    };
    const std::vector<Attempt> unauthenticated = {
        {"no token", std::nullopt, 401},
        {"not a bearer header", "Basic YWRtaW46YWRtaW4=", 401},
        {"not a Pylon token", "Bearer abcdef", 401},
        {"unknown token", "Bearer pyl_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 401},
        {"revoked token", "Bearer " + revoked, 401},
        {"expired token", "Bearer " + expired, 401},
    };

    for (const Row& row : rows) {
        const std::string what = describe(row);
        const std::size_t audit_before = audit_count(s);
        auto send = [&](std::optional<std::string> authorization) {
            net::HttpHeaders h = row.headers ? row.headers() : net::HttpHeaders{};
            if (authorization) h.add("Authorization", *authorization);
            return s.call(row.method, row.path(), {}, row.body ? row.body() : std::string(),
                          std::move(h));
        };
        auto expect_error = [&](const Reply& r, unsigned status, const std::string& label) {
            INFO(what << " with " << label << ": " << r.body);
            CHECK(r.status == status);
            if (row.method == Method::head) return;
            CHECK(r.error_code() == (status == 401 ? "unauthorized" : "forbidden"));
            CHECK_FALSE(r.error_message().empty());
            if (label == "unknown token" || label == "revoked token" || label == "expired token") {
                CHECK_THAT(r.error_message(), Catch::Contains("unknown, revoked or expired"));
            }
            if (status == 403) CHECK_THAT(r.error_message(), Catch::Contains("scope"));
        };
        for (const auto& attempt : unauthenticated) {
            expect_error(send(attempt.authorization), attempt.status, attempt.label);
        }
        std::vector<std::pair<std::string, std::string>> forbidden;
        if (row.scope == Scope::publish) {
            forbidden = {{"read", a.read_token}, {"publish:other", a.other_token}};
        } else if (row.scope == Scope::admin) {
            forbidden = {{"read", a.read_token}, {"publish:acme", a.publish_token}};
        }
        for (const auto& [label, token] : forbidden) {
            expect_error(send("Bearer " + token), 403, label + " token");
        }
        {
            INFO(what << ": refused calls must not be audited");
            CHECK(audit_count(s) == audit_before);
        }

        const std::string& good = row.scope == Scope::admin     ? s.admin()
                                  : row.scope == Scope::publish ? a.publish_token
                                                                : a.read_token;
        const Reply ok = send("Bearer " + good);
        INFO(what << " with the right scope: " << ok.body);
        REQUIRE(ok.status == row.expected);
        if (row.after) row.after(ok);
    }
}

TEST_CASE("public endpoints answer without a token, and ignore a bad one", "[registry_api][auth]") {
    ApiServer s;
    for (const std::string path :
         {"/healthz", "/readyz", "/metrics", "/openapi.yaml", "/tuf/metadata/root.json",
          "/tuf/metadata/timestamp.json", "/tuf/metadata/1.root.json"}) {
        INFO(path);
        const Reply anonymous = s.get(path);
        CHECK(anonymous.status == 200);
        CHECK_FALSE(anonymous.body.empty());
        net::HttpHeaders h;
        h.add("Authorization", "Bearer pyl_unknown");
        CHECK(s.call(Method::get, path, {}, {}, std::move(h)).status == 200);
    }
    CHECK(s.get("/readyz").json().at("database") == "ok");
    CHECK_THAT(s.get("/openapi.yaml").body, Catch::Contains("/v1/namespaces/{ns}/uploads"));
    CHECK(s.get("/tuf/metadata/root.json").json().at("signed").at("_type") == "root");
    // A target that does not exist is 404, not 401: the TUF tree is public.
    const Reply missing =
        s.get("/tuf/targets/acme/tiny/1.0.0/b1/" + std::string(64, 'a') + ".model.gguf");
    CHECK(missing.status == 404);
    CHECK(missing.error_code() == "not_found");
}

}  // namespace pylon::registry_api::test
