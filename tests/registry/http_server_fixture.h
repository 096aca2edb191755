// A started Server on 127.0.0.1 port 0 for tests, with its router, metrics and captured
// access-log entries.
#pragma once

#include <catch2/catch.hpp>

#include <memory>
#include <mutex>
#include <vector>

#include "pylon/registry/http/server.h"
#include "pylon/registry/metrics.h"

namespace pylon::test {

inline registry::http::ServerConfig small_config() {
    registry::http::ServerConfig config;
    config.host = "127.0.0.1";
    config.port = 0;
    config.io_threads = 2;
    config.worker_threads = 4;
    config.shutdown_grace = std::chrono::seconds(10);
    return config;
}

class TestServer {
public:
    explicit TestServer(std::shared_ptr<registry::http::Router> router,
                        registry::http::ServerConfig config = small_config(),
                        registry::http::Hooks hooks = {}) {
        hooks.metrics = &metrics;
        if (!hooks.access_log) {
            hooks.access_log = [this](const registry::http::AccessLogEntry& e) {
                std::lock_guard lock(mutex_);
                log_.push_back(e);
            };
        }
        auto created = registry::http::Server::create(std::move(config), router, std::move(hooks));
        REQUIRE(created.ok());
        server = std::move(created).value();
        auto started = server->start();
        REQUIRE(started.ok());
    }
    ~TestServer() { server->stop(); }

    std::uint16_t port() const { return server->port(); }
    std::vector<registry::http::AccessLogEntry> log() const {
        std::lock_guard lock(mutex_);
        return log_;
    }

    registry::Metrics metrics;
    std::unique_ptr<registry::http::Server> server;

private:
    mutable std::mutex mutex_;
    std::vector<registry::http::AccessLogEntry> log_;
};

}  // namespace pylon::test
