// ConnectionPool: a fixed-size pool of PostgreSQL connections shared by the catalog's calls.
//
// Thread-safe. Connections are opened on demand up to `size`; a caller that finds none free
// waits up to the acquire timeout and then gets Errc::database ("no database connection free
// within 5s"). A connection that broke (server restart, network) is dropped when its user
// notices, and a fresh one is opened on the next acquisition. Every connection runs with
// TimeZone=UTC and DateStyle=ISO.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "pylon/common/result.h"

namespace pylon::catalog {

class ConnectionPool {
public:
    // `conninfo` is a libpq connection string or URI; empty uses libpq's defaults and the PG*
    // environment variables. Opens one connection to check the settings: Errc::database when
    // it fails (the message names the server, never the password), Errc::invalid_argument when
    // size is 0.
    [[nodiscard]] static Result<std::shared_ptr<ConnectionPool>> create(
        std::string conninfo, std::size_t size,
        std::chrono::milliseconds acquire_timeout = std::chrono::seconds(5));

    ~ConnectionPool();
    ConnectionPool(const ConnectionPool&) = delete;
    ConnectionPool& operator=(const ConnectionPool&) = delete;

    // Runs `SELECT 1` on a pooled connection: the readiness check.
    [[nodiscard]] Result<void> ping();

    std::size_t size() const;

    // The implementation, for the catalog library's own code (it holds libpqxx types).
    class Impl;
    Impl& impl() { return *impl_; }

private:
    explicit ConnectionPool(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace pylon::catalog
