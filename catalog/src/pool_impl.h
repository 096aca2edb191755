// ConnectionPool's implementation, shared by the catalog's sources (it holds libpqxx types,
// which never appear in public headers).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <pqxx/connection>
#include <string>
#include <vector>

#include "pylon/catalog/connection_pool.h"

namespace pylon::catalog {

class ConnectionPool::Impl {
public:
    // A connection taken from the pool, returned to it on destruction unless it is closed or
    // was marked broken (then the pool forgets it and opens a fresh one when needed).
    class Lease {
    public:
        Lease(Impl* pool, std::unique_ptr<pqxx::connection> conn)
            : pool_(pool), conn_(std::move(conn)) {}
        Lease(Lease&& other) noexcept
            : pool_(other.pool_), conn_(std::move(other.conn_)), broken_(other.broken_) {}
        Lease& operator=(Lease&&) = delete;
        ~Lease();

        pqxx::connection& conn() { return *conn_; }
        void mark_broken() { broken_ = true; }

    private:
        Impl* pool_;
        std::unique_ptr<pqxx::connection> conn_;
        bool broken_ = false;
    };

    Impl(std::string conninfo, std::size_t size, std::chrono::milliseconds acquire_timeout);

    // A free connection, or a new one while fewer than size() are open; waits up to the
    // acquire timeout. Errc::database when none frees up in time or a new one cannot open.
    [[nodiscard]] Result<Lease> acquire();
    // A connection outside the pool's accounting (apply_migrations over a conninfo uses it).
    [[nodiscard]] static Result<std::unique_ptr<pqxx::connection>> open(
        const std::string& conninfo);

    std::size_t size() const { return size_; }

private:
    void give_back(std::unique_ptr<pqxx::connection> conn, bool broken);

    const std::string conninfo_;
    const std::size_t size_;
    const std::chrono::milliseconds acquire_timeout_;
    std::mutex mu_;
    std::condition_variable freed_;
    std::vector<std::unique_ptr<pqxx::connection>> idle_;
    std::size_t open_ = 0;  // idle + leased
};

}  // namespace pylon::catalog
