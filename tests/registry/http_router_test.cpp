// Router: pattern syntax, parameters, specificity, 404 vs 405 with Allow, HEAD via GET.
#include "pylon/registry/http/router.h"

#include <catch2/catch.hpp>

#include <stdexcept>

using pylon::registry::http::Request;
using pylon::registry::http::Response;
using pylon::registry::http::RouteMatch;
using pylon::registry::http::Router;

namespace {

Response ok(Request&) {
    return Response::empty(200);
}

}  // namespace

TEST_CASE("Router matches literals and parameters") {
    Router router;
    router.add("GET", "/", ok);
    router.add("GET", "/v1/models", ok);
    router.add("GET", "/v1/models/{namespace}/{name}", ok);
    router.add("PUT", "/v1/models/{namespace}/{name}", ok);
    router.add("GET", "/v1/blobs/{digest}", ok);
    router.add("GET", "/v1/files/{path...}", ok);

    auto root = router.match("GET", "/");
    REQUIRE(root.status == RouteMatch::Status::found);
    CHECK(root.route->pattern == "/");

    auto m = router.match("GET", "/v1/models/acme/tiny");
    REQUIRE(m.status == RouteMatch::Status::found);
    CHECK(m.route->pattern == "/v1/models/{namespace}/{name}");
    CHECK(m.params == pylon::registry::http::Params{{"namespace", "acme"}, {"name", "tiny"}});

    auto put = router.match("PUT", "/v1/models/acme/tiny");
    REQUIRE(put.status == RouteMatch::Status::found);
    CHECK(put.route->method == "PUT");

    auto rest = router.match("GET", "/v1/files/a/b/c.gguf");
    REQUIRE(rest.status == RouteMatch::Status::found);
    CHECK(rest.params == pylon::registry::http::Params{{"path", "a/b/c.gguf"}});

    SECTION("a parameter takes exactly one non-empty segment") {
        CHECK(router.match("GET", "/v1/blobs/").status == RouteMatch::Status::not_found);
        CHECK(router.match("GET", "/v1/blobs/a/b").status == RouteMatch::Status::not_found);
        CHECK(router.match("GET", "/v1/models/acme").status == RouteMatch::Status::not_found);
    }
    SECTION("a rest parameter needs at least one segment and no empty ones") {
        CHECK(router.match("GET", "/v1/files").status == RouteMatch::Status::not_found);
        CHECK(router.match("GET", "/v1/files/").status == RouteMatch::Status::not_found);
        CHECK(router.match("GET", "/v1/files/a//b").status == RouteMatch::Status::not_found);
    }
    SECTION("a trailing slash is another path") {
        CHECK(router.match("GET", "/v1/models/").status == RouteMatch::Status::not_found);
    }
    SECTION("unknown paths are 404, known paths with another method 405 with Allow") {
        CHECK(router.match("GET", "/nope").status == RouteMatch::Status::not_found);
        auto del = router.match("DELETE", "/v1/models/acme/tiny");
        CHECK(del.status == RouteMatch::Status::method_not_allowed);
        CHECK(del.allow == "GET, HEAD, PUT");
        CHECK(del.route == nullptr);
    }
    SECTION("HEAD is served by GET routes") {
        auto head = router.match("HEAD", "/v1/models/acme/tiny");
        REQUIRE(head.status == RouteMatch::Status::found);
        CHECK(head.route->method == "GET");
    }
    SECTION("methods are case-sensitive") {
        CHECK(router.match("get", "/v1/models").status == RouteMatch::Status::method_not_allowed);
    }
}

TEST_CASE("Router prefers the most specific pattern, whatever the order of registration") {
    Router router;
    router.add("GET", "/v1/{any...}", ok);
    router.add("GET", "/v1/{kind}/latest", ok);
    router.add("GET", "/v1/models/latest", ok);
    router.add("GET", "/v1/models/{name}", ok);

    CHECK(router.match("GET", "/v1/models/latest").route->pattern == "/v1/models/latest");
    CHECK(router.match("GET", "/v1/models/x").route->pattern == "/v1/models/{name}");
    CHECK(router.match("GET", "/v1/blobs/latest").route->pattern == "/v1/{kind}/latest");
    CHECK(router.match("GET", "/v1/blobs/x").route->pattern == "/v1/{any...}");
    CHECK(router.match("GET", "/v1/a/b/c").route->pattern == "/v1/{any...}");
}

TEST_CASE("Router explicit HEAD routes win over GET") {
    Router router;
    router.add("GET", "/x", ok);
    router.add("HEAD", "/x", ok);
    CHECK(router.match("HEAD", "/x").route->method == "HEAD");
}

TEST_CASE("Router refuses malformed patterns and duplicates") {
    Router router;
    CHECK_THROWS_AS(router.add("GET", "no-slash", ok), std::invalid_argument);
    CHECK_THROWS_AS(router.add("GET", "/a/{rest...}/b", ok), std::invalid_argument);
    CHECK_THROWS_AS(router.add("GET", "/a/{}", ok), std::invalid_argument);
    CHECK_THROWS_AS(router.add("GET", "/a/x{y}", ok), std::invalid_argument);
    CHECK_THROWS_AS(router.add("", "/a", ok), std::invalid_argument);
    router.add("GET", "/a/{b}", ok);
    CHECK_THROWS_AS(router.add("GET", "/a/{b}", ok), std::invalid_argument);
    CHECK_NOTHROW(router.add("POST", "/a/{b}", ok));
}

TEST_CASE("Router streamed routes carry their own default limit") {
    Router router;
    router.add_streamed(
        "PUT", "/up/{id}",
        [](Request&) -> std::variant<std::unique_ptr<pylon::registry::http::BodySink>, Response> {
            return Response::empty(400);
        },
        [](Request&, std::unique_ptr<pylon::registry::http::BodySink>) {
            return Response::empty(201);
        });
    router.add("POST", "/small", ok);
    auto up = router.match("PUT", "/up/1");
    REQUIRE(up.route);
    CHECK(up.route->streamed());
    CHECK(up.route->options.max_body == pylon::registry::http::kDefaultStreamedMaxBody);
    CHECK_FALSE(router.match("POST", "/small").route->streamed());
    CHECK(router.match("POST", "/small").route->options.max_body ==
          pylon::registry::http::kDefaultMaxBody);
}
