#include "pylon/catalog/connection_pool.h"

#include <fmt/format.h>

#include <pqxx/except>
#include <utility>

#include "pg_util.h"
#include "pool_impl.h"
#include "pylon/catalog/errors.h"

namespace pylon::catalog {

ConnectionPool::Impl::Lease::~Lease() {
    if (pool_ != nullptr && conn_ != nullptr) pool_->give_back(std::move(conn_), broken_);
}

ConnectionPool::Impl::Impl(std::string conninfo, std::size_t size,
                           std::chrono::milliseconds acquire_timeout)
    : conninfo_(std::move(conninfo)), size_(size), acquire_timeout_(acquire_timeout) {}

Result<std::unique_ptr<pqxx::connection>> ConnectionPool::Impl::open(const std::string& conninfo) {
    try {
        auto conn = std::make_unique<pqxx::connection>(conninfo);
        // Timestamps are read back as text; fix their rendering whatever the server's defaults.
        // set_variable (not a plain SET) so that libpqxx restores them if it reconnects.
        conn->set_variable("TimeZone", "'UTC'");
        conn->set_variable("DateStyle", "'ISO'");
        return conn;
    } catch (const std::exception& e) {
        // libpq's message names host, port and user, never the password.
        std::string why = e.what();
        while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
        return Error(Errc::database, fmt::format("cannot connect to the database: {}", why));
    }
}

Result<ConnectionPool::Impl::Lease> ConnectionPool::Impl::acquire() {
    std::unique_lock lock(mu_);
    const bool got =
        freed_.wait_for(lock, acquire_timeout_, [&] { return !idle_.empty() || open_ < size_; });
    if (!got) {
        return Error(Errc::database, fmt::format("no database connection free within {}",
                                                 format_duration(acquire_timeout_)));
    }
    if (!idle_.empty()) {
        auto conn = std::move(idle_.back());
        idle_.pop_back();
        return Lease(this, std::move(conn));
    }
    ++open_;
    lock.unlock();
    auto conn = open(conninfo_);
    if (!conn) {
        lock.lock();
        --open_;
        freed_.notify_one();
        return std::move(conn).error();
    }
    return Lease(this, std::move(conn).value());
}

void ConnectionPool::Impl::give_back(std::unique_ptr<pqxx::connection> conn, bool broken) {
    const bool keep = !broken && conn->is_open();
    std::unique_ptr<pqxx::connection> dropped;  // closed outside the lock
    {
        std::lock_guard lock(mu_);
        if (keep) {
            idle_.push_back(std::move(conn));
        } else {
            dropped = std::move(conn);
            --open_;
        }
    }
    freed_.notify_one();
}

ConnectionPool::ConnectionPool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ConnectionPool::~ConnectionPool() = default;

Result<std::shared_ptr<ConnectionPool>> ConnectionPool::create(
    std::string conninfo, std::size_t size, std::chrono::milliseconds acquire_timeout) {
    if (size == 0) return Error(Errc::invalid_argument, "connection pool size must be at least 1");
    auto impl = std::make_unique<Impl>(std::move(conninfo), size, acquire_timeout);
    {
        // Fail at start-up, not on the first request, when the settings are wrong.
        PYLON_TRY_ASSIGN(auto lease, impl->acquire());
    }
    return std::shared_ptr<ConnectionPool>(new ConnectionPool(std::move(impl)));
}

Result<void> ConnectionPool::ping() {
    return with_transaction(*impl_, "pinging the database", [](pqxx::work& tx) -> Result<void> {
        tx.exec("SELECT 1");
        return ok();
    });
}

std::size_t ConnectionPool::size() const {
    return impl_->size();
}

}  // namespace pylon::catalog
