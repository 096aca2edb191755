// Bad input over HTTP: every request below is answered 4xx with a JSON error naming the problem,
// and leaves everything stored as it was (stored_state before and after).
#include <catch2/catch.hpp>

#include "api_fixture.h"

namespace pylon::registry_api::test {
namespace {

struct Case {
    std::string label;
    Method method;
    std::string path;
    std::string body;
    unsigned status;
    std::string code;     // "" when the answer comes from the HTTP layer (any code)
    std::string message;  // a part of error.message
};

void expect_refused(ApiServer& s, const std::string& token, const std::vector<Case>& cases) {
    for (const Case& c : cases) {
        const Json before = stored_state(s);
        const Reply r = s.call(c.method, c.path, token, c.body);
        INFO(c.label << ": " << c.path << " " << c.body.substr(0, 200) << " -> " << r.status << " "
                     << r.body);
        CHECK(r.status == c.status);
        if (!c.code.empty()) CHECK(r.error_code() == c.code);
        CHECK_FALSE(r.error_code().empty());
        CHECK_THAT(r.error_message(), Catch::Contains(c.message));
        CHECK(stored_state(s) == before);
    }
}

Json model_body(const std::string& name, const Json& lic = license()) {
    return {{"name", name}, {"license", lic}};
}

}  // namespace

TEST_CASE("malformed JSON, wrong shapes, unknown fields and wrong types are refused",
          "[registry_api][input]") {
    ApiServer s;
    AcmeSetup a(s);
    const std::string models = "/v1/namespaces/acme/models";
    Json nested_license = model_body("m1");
    nested_license["license"]["xyz"] = 1;
    Json unknown_top = model_body("m1");
    unknown_top["colour"] = "red";
    Json long_description = model_body("m1");
    long_description["description"] = std::string(4097, 'd');
    Json commercial = model_body("m1");
    commercial["license"]["commercial_use"] = "yes";

    expect_refused(
        s, a.publish_token,
        {
            {"malformed", Method::post, models, R"({"name": "m1",)", 400, "invalid_json", "JSON"},
            {"not JSON", Method::post, models, "name=m1", 400, "invalid_json", "JSON"},
            {"an array", Method::post, models, R"([{"name": "m1"}])", 400, "invalid_json",
             "JSON object"},
            {"empty body", Method::post, models, "", 400, "invalid_json", "JSON object"},
            {"duplicate key", Method::post, models,
             R"({"name": "m1", "name": "m2", "license": {"spdx": "MIT"}})", 400, "invalid_json",
             ""},
            {"unknown field", Method::post, models, unknown_top.dump(), 400, "invalid_field",
             "colour: is not a known field"},
            {"unknown nested field", Method::post, models, nested_license.dump(), 400,
             "invalid_field", "license.xyz: is not a known field"},
            {"name of the wrong type", Method::post, models,
             R"({"name": 5, "license": {"spdx": "MIT"}})", 400, "invalid_field",
             "name: must be a string"},
            {"licence of the wrong type", Method::post, models,
             R"({"name": "m1", "license": "MIT"})", 400, "invalid_field",
             "license: must be an object"},
            {"missing licence", Method::post, models, R"({"name": "m1"})", 400, "invalid_field",
             "license: is required"},
            {"bool of the wrong type", Method::post, models, commercial.dump(), 400,
             "invalid_field", "license.commercial_use: must be true or false"},
            {"over-long description", Method::post, models, long_description.dump(), 400,
             "invalid_field", "description: is longer than 4096 bytes"},
            {"release: unknown field", Method::post, "/v1/models/acme/tiny/releases",
             R"({"version": "1.1.0", "channel": "beta"})", 400, "invalid_field", "channel"},
            {"token: a scope that is none", Method::post, "/v1/tokens",
             R"({"name": "t", "scopes": ["root"]})", 403, "forbidden", "admin"},
        });

    // The same shapes on an admin route, where the token may create.
    expect_refused(
        s, s.admin(),
        {
            {"token: unknown scope", Method::post, "/v1/tokens",
             R"({"name": "t", "scopes": ["root"]})", 400, "invalid_field", "scopes"},
            {"token: traversal in a scope", Method::post, "/v1/tokens",
             R"({"name": "t", "scopes": ["publish:../x"]})", 400, "invalid_field", "scopes"},
            {"token: no scopes", Method::post, "/v1/tokens", R"({"name": "t", "scopes": []})", 400,
             "invalid_field", "scopes"},
            {"token: expiry out of range", Method::post, "/v1/tokens",
             R"({"name": "t", "scopes": ["read"], "expires_in_days": 0})", 400, "invalid_field",
             "expires_in_days"},
            {"token: expiry of the wrong type", Method::post, "/v1/tokens",
             R"({"name": "t", "scopes": ["read"], "expires_in_days": "7"})", 400, "invalid_field",
             "expires_in_days: must be an integer"},
            {"namespace: over-long description", Method::post, "/v1/namespaces",
             Json{{"name", "n1"}, {"description", std::string(5000, 'x')}}.dump(), 400,
             "invalid_field", "description"},
            {"top-level targets: not JSON", Method::post, "/v1/tuf/targets", "{", 400,
             "invalid_json", "JSON"},
        });
}

TEST_CASE("bodies over 1 MiB on JSON routes are refused with 413", "[registry_api][input]") {
    ApiServer s;
    AcmeSetup a(s);
    Json big = model_body("big");
    big["description"] = std::string((1u << 20) + 16, 'x');
    expect_refused(s, a.publish_token,
                   {
                       {"oversized model", Method::post, "/v1/namespaces/acme/models", big.dump(),
                        413, "payload_too_large", ""},
                       {"oversized patch", Method::patch, "/v1/models/acme/tiny", big.dump(), 413,
                        "payload_too_large", ""},
                   });
    expect_refused(s, s.admin(),
                   {
                       {"oversized token request", Method::post, "/v1/tokens", big.dump(), 413,
                        "payload_too_large", ""},
                   });
}

TEST_CASE("names with traversal, odd characters or over 64 characters are refused",
          "[registry_api][input]") {
    ApiServer s;
    AcmeSetup a(s);
    const std::string models = "/v1/namespaces/acme/models";
    std::vector<Case> cases;
    for (const std::string& name :
         std::vector<std::string>{"../x", "a/b", "A", "a b", "caf\xc3\xa9", std::string(65, 'a'),
                                  "'; DROP TABLE models; --", "-a", "a-", ".", "", "a\nb"}) {
        cases.push_back({"model name " + name, Method::post, models, model_body(name).dump(), 400,
                         "invalid_field", "name: "});
    }
    for (const std::string& name :
         std::vector<std::string>{"../x", "a b", "A", std::string(65, 'n')}) {
        cases.push_back({"namespace name " + name, Method::post, "/v1/namespaces",
                         Json{{"name", name}}.dump(), 403, "forbidden", "admin"});
    }
    // Names in paths: refused before they reach the database.
    for (const std::string& path : std::vector<std::string>{
             "/v1/models/acme/A", "/v1/models/acme/a%20b", "/v1/models/acme/caf%C3%A9",
             "/v1/models/acme/" + std::string(65, 'm'),
             "/v1/models/acme/x';DROP%20TABLE%20models;--", "/v1/namespaces/ACME"}) {
        cases.push_back({"path " + path, Method::get, path, "", 400, "invalid_field", ""});
    }
    cases.push_back({"build name with a slash", Method::post, a.release + "/builds",
                     s.build_body("a/b", a.digest, a.blob.size()).dump(), 400, "invalid_field",
                     "name"});
    expect_refused(s, a.publish_token, cases);

    std::vector<Case> admin_cases;
    for (const std::string& name :
         std::vector<std::string>{"../x", "a b", "A", std::string(65, 'n'), "a%2Fb"}) {
        admin_cases.push_back({"namespace name " + name, Method::post, "/v1/namespaces",
                               Json{{"name", name}}.dump(), 400, "invalid_field", "name: "});
    }
    expect_refused(s, s.admin(), admin_cases);

    // Encoded slashes and dot segments in the path never reach a handler.
    for (const std::string path : {"/v1/models/acme/a%2Fb", "/v1/models/acme/../x",
                                   "/v1/models/acme/%2E%2E", "/v1/namespaces/acme/./models"}) {
        const Json before = stored_state(s);
        const Reply r = s.get(path, a.read_token);
        INFO(path << " -> " << r.status << " " << r.body);
        CHECK(r.status == 400);
        CHECK(stored_state(s) == before);
    }
}

TEST_CASE("SQL metacharacters are refused as names and stored verbatim as free text",
          "[registry_api][input]") {
    ApiServer s;
    AcmeSetup a(s);
    const std::string evil = "'; DROP TABLE models; -- \"quoted\" \\ %_ \xe2\x9c\x93";
    Json body = model_body("sql");
    body["description"] = evil;
    const Reply created = s.post("/v1/namespaces/acme/models", a.publish_token, body);
    REQUIRE(created.status == 201);
    CHECK(created.json().at("description") == evil);
    const Reply read = s.get("/v1/models/acme/sql", a.read_token);
    REQUIRE(read.status == 200);
    CHECK(read.json().at("description") == evil);

    // A search with metacharacters is data, not SQL: it finds nothing and breaks nothing.
    const Reply search = s.get("/v1/models?q=%27%3B%20DROP%20TABLE%20models%3B--", a.read_token);
    REQUIRE(search.status == 200);
    CHECK(search.json().at("items").empty());
    const Reply wildcard = s.get("/v1/models?q=%25", a.read_token);
    REQUIRE(wildcard.status == 200);
    CHECK(wildcard.json().at("items").empty());
    CHECK(s.get("/v1/models?limit=500", a.read_token).json().at("items").size() == 2);

    // Release notes too.
    const Reply rel = s.post("/v1/models/acme/tiny/releases", a.publish_token,
                             {{"version", "1.1.0"}, {"notes", evil}});
    REQUIRE(rel.status == 201);
    CHECK(s.get("/v1/models/acme/tiny/releases/1.1.0", a.read_token).json().at("notes") == evil);
}

TEST_CASE("versions, licence expressions and regions are checked", "[registry_api][input]") {
    ApiServer s;
    AcmeSetup a(s);
    const std::string models = "/v1/namespaces/acme/models";
    const std::string releases = "/v1/models/acme/tiny/releases";
    std::vector<Case> cases;
    for (const std::string v : {"1.0", "01.0.0", "1.0.0-", "v1.0.0", "1.0.0-01", "1.0.0+", "1..0",
                                "1.0.0.0", "a.b.c", ""}) {
        cases.push_back({"version " + v, Method::post, releases, Json{{"version", v}}.dump(), 400,
                         "invalid_field", "version: "});
    }
    for (const std::string spdx : {"MIT AND", "FOO-1.0", "mit or apache-2.0", "MIT OR", "(MIT",
                                   "MIT WITH FOO-exception", "LicenseRef-", "AND MIT", ""}) {
        cases.push_back({"spdx " + spdx, Method::post, models,
                         model_body("m1", license(spdx)).dump(), 400, "invalid_field",
                         "license.spdx"});
    }
    for (const Json& regions : {Json::array({"usa"}), Json::array({"us"}), Json::array({"U1"}),
                                Json::array({1}), Json("DE")}) {
        Json lic = license("MIT");
        lic["regions_denied"] = regions;
        cases.push_back({"regions " + regions.dump(), Method::post, models,
                         model_body("m1", lic).dump(), 400, "invalid_field",
                         "license.regions_denied"});
    }
    Json both = license("MIT");
    both["regions_allowed"] = {"DE"};
    both["regions_denied"] = {"DE"};
    cases.push_back({"region allowed and denied", Method::post, models,
                     model_body("m1", both).dump(), 400, "invalid_field", "DE"});
    expect_refused(s, a.publish_token, cases);

    const std::vector<std::string> good = {"MIT OR Apache-2.0", "LicenseRef-llama2",
                                           "Apache-2.0 WITH LLVM-exception",
                                           "(MIT AND BSD-3-Clause) OR GPL-2.0+"};
    for (std::size_t i = 0; i < good.size(); ++i) {
        const std::string name = "good" + std::to_string(i);
        Json lic = license(good[i]);
        lic["regions_denied"] = {"XX"};
        const Reply r = s.post(models, a.publish_token, model_body(name, lic));
        INFO(good[i] << ": " << r.body);
        REQUIRE(r.status == 201);
        const Json read = s.get("/v1/models/acme/" + name, a.read_token).json();
        CHECK(read.at("license").at("spdx") == good[i]);
        CHECK(read.at("license").at("regions_denied") == Json::array({"XX"}));
    }
    for (const std::string v : {"1.0.1", "2.0.0-rc.1", "1.0.2+build.5"}) {
        INFO(v);
        CHECK(s.post(releases, a.publish_token, {{"version", v}}).status == 201);
    }
}

TEST_CASE("builds must name uploaded blobs of the right size", "[registry_api][input]") {
    ApiServer s;
    AcmeSetup a(s);
    const std::string builds = a.release + "/builds";
    const std::string never = digest_of("never uploaded");
    Json unknown_target = s.build_body("b1", a.digest, a.blob.size());
    unknown_target["target"]["foo"] = "bar";
    Json unknown_file = s.build_body("b1", a.digest, a.blob.size());
    unknown_file["files"][0]["mode"] = 420;
    Json isa_type = s.build_body("b1", a.digest, a.blob.size());
    isa_type["target"]["isa"] = "avx2";
    Json no_files = s.build_body("b1", a.digest, a.blob.size());
    no_files["files"] = Json::array();
    Json dup_isa = s.build_body("b1", a.digest, a.blob.size(), {"avx2", "avx2"});
    Json bad_digest = s.build_body("b1", "sha256:1234", a.blob.size());
    Json long_quant = s.build_body("b1", a.digest, a.blob.size());
    long_quant["quantization"] = std::string(33, 'Q');
    expect_refused(
        s, a.publish_token,
        {
            {"never uploaded", Method::post, builds, s.build_body("b1", never, 10).dump(), 404,
             "not_found", never},
            {"wrong size", Method::post, builds,
             s.build_body("b1", a.digest, a.blob.size() + 1).dump(), 400, "invalid_field", "size"},
            {"unknown target field", Method::post, builds, unknown_target.dump(), 400,
             "invalid_field", "target.foo: is not a known field"},
            {"unknown file field", Method::post, builds, unknown_file.dump(), 400, "invalid_field",
             "files[0].mode"},
            {"isa of the wrong type", Method::post, builds, isa_type.dump(), 400, "invalid_field",
             "target.isa: must be an array"},
            {"isa listed twice", Method::post, builds, dup_isa.dump(), 400, "invalid_field",
             "listed twice"},
            {"no files", Method::post, builds, no_files.dump(), 400, "invalid_field", "files"},
            {"malformed digest", Method::post, builds, bad_digest.dump(), 400, "invalid_field",
             "files[0].digest"},
            {"over-long quantization", Method::post, builds, long_quant.dump(), 400,
             "invalid_field", "quantization"},
            {"release that does not exist", Method::post,
             "/v1/models/acme/tiny/releases/9.9.9/builds",
             s.build_body("b1", a.digest, a.blob.size()).dump(), 404, "not_found", "9.9.9"},
        });
}

}  // namespace pylon::registry_api::test
