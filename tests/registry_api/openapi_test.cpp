// docs match code: the OpenAPI document the registry serves (registry/openapi.yaml, also the
// reference of docs/API.md) lists exactly the routes its router serves — every method of every
// path, no more, no fewer.
#include <catch2/catch.hpp>

#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "api_fixture.h"

using namespace pylon::registry_api::test;

namespace {

// "METHOD /path/{param}" for each operation of the document's `paths` (two-space indented
// path keys, four-space indented method keys: the layout of registry/openapi.yaml).
std::set<std::string> documented(const std::string& yaml) {
    std::set<std::string> out;
    static const std::regex path_re(R"(^  (/[^ :]*):\s*$)");
    static const std::regex method_re(R"(^    (get|put|post|delete|patch|head):\s*$)");
    std::istringstream in(yaml);
    std::string line, path;
    bool in_paths = false;
    std::smatch m;
    while (std::getline(in, line)) {
        if (!line.empty() && line[0] != ' ' && line[0] != '#') in_paths = line == "paths:";
        if (!in_paths) continue;
        if (std::regex_match(line, m, path_re)) {
            path = m[1];
        } else if (!path.empty() && std::regex_match(line, m, method_re)) {
            std::string method = m[1];
            for (auto& c : method) c = static_cast<char>(std::toupper(c));
            out.insert(method + " " + path);
        }
    }
    return out;
}

}  // namespace

TEST_CASE("the OpenAPI document lists exactly the routes the registry serves", "[api][docs]") {
    ApiServer s;
    const auto doc = s.get("/openapi.yaml");
    REQUIRE(doc.status == 200);
    const auto in_doc = documented(doc.body);
    REQUIRE(in_doc.size() > 20);  // the parser found the paths

    std::set<std::string> served;
    for (const auto& [method, pattern] : s.registry().routes()) {
        // The router's catch-all parameter "{path...}" is "{path}" in OpenAPI.
        served.insert(method + " " + std::regex_replace(pattern, std::regex(R"(\.\.\.\})"), "}"));
    }
    REQUIRE(served.size() > 20);
    for (const auto& r : served) {
        INFO("served but not in openapi.yaml: " << r);
        CHECK(in_doc.contains(r));
    }
    for (const auto& r : in_doc) {
        INFO("in openapi.yaml but not served: " << r);
        CHECK(served.contains(r));
    }
}
