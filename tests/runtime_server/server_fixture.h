// A runtime_server::Server on 127.0.0.1 (any free port) over stories260K Q8_0, and helpers to
// talk to it with the plain test client.
#pragma once

#include <catch2/catch.hpp>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "http_test_client.h"
#include "pylon/runtime_server/server.h"

namespace pylon::test {

inline std::string stories_model() {
    return std::string(PYLON_TEST_DATA) + "/runtime/stories260K-q8_0.gguf";
}

inline runtime_server::ServeConfig test_config() {
    runtime_server::ServeConfig c;
    c.model_path = stories_model();
    c.port = 0;
    c.threads = 1;
    c.shutdown_grace = std::chrono::milliseconds(2000);
    return c;
}

struct TestServer {
    explicit TestServer(runtime_server::ServeConfig config = test_config(), bool wait = true) {
        auto s = runtime_server::Server::start(std::move(config));
        REQUIRE(s.ok());
        server = std::move(*s);
        if (wait) {
            auto loaded = server->wait_until_loaded();
            REQUIRE(loaded.ok());
        }
    }
    std::uint16_t port() const { return server->port(); }

    // One request on a fresh connection.
    HttpReply call(std::string_view method, std::string_view path, std::string_view body = {},
                   std::string_view extra = {}) const {
        HttpTestClient c(port());
        REQUIRE(c.connected());
        auto r = c.request(method, path, body, extra);
        REQUIRE(r.has_value());
        return *r;
    }
    HttpReply post(std::string_view path, const nlohmann::json& body) const {
        return call("POST", path, body.dump());
    }
    // The value of an unlabelled series (or of a full "name{labels}" key) in /metrics; -1 when
    // absent.
    double metric(std::string_view series) const {
        const HttpReply r = call("GET", "/metrics");
        const std::string key = std::string(series) + " ";
        std::size_t pos = 0;
        while ((pos = r.body.find(key, pos)) != std::string::npos) {
            if (pos == 0 || r.body[pos - 1] == '\n') {
                return std::stod(r.body.substr(pos + key.size()));
            }
            pos += key.size();
        }
        return -1;
    }

    std::unique_ptr<runtime_server::Server> server;
};

}  // namespace pylon::test
