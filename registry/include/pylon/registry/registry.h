// Registry: one registry node — the catalog (PostgreSQL), the blob store, the TUF repository
// and the REST API on an HTTP server — wired together, with its background tasks.
//
// Start-up (Registry::start): connect to the database and apply the migrations (under an
// advisory lock, so replicas may start together); open the blob store under DATA/blobs and the
// TUF repository under DATA/tuf (bootstrapping it on first start); mirror the namespaces'
// publisher keys from the TUF delegations into the catalog; on a database without any API token,
// create the bootstrap admin token and write it to DATA/admin.token (mode 0600; it is never
// logged); then listen. Background tasks: expire idle upload sessions, and re-sign the TUF
// timestamp and snapshot before they expire.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pylon/common/config.h"
#include "pylon/common/result.h"
#include "pylon/registry/http/server.h"

namespace pylon::registry {

struct RegistryConfig {
    http::ServerConfig server;       // listen address, threads, timeouts, TLS
    std::filesystem::path data_dir;  // blobs/, tuf/, admin.token
    std::string database_url;        // libpq conninfo or URI; empty: the PG* variables, or
                                     // the embedded cluster when none is set ("embedded")
    std::filesystem::path embedded_postgres_bin_dir;  // empty: found (embedded_postgres.h)
    std::string embedded_postgres_user = "postgres";  // runs the embedded server under root
    std::size_t db_pool_size = 0;                     // 0: the number of worker threads
    std::uint64_t max_blob_size = std::uint64_t{64} << 30;
    std::chrono::seconds upload_session_idle{24 * 3600};  // then the session is removed
    std::chrono::seconds maintenance_interval{60};        // how often background tasks run
    std::chrono::milliseconds rollout_interval{1000};     // how often rollouts advance
    // TUF bootstrap from offline-made metadata (all four, or none: generate keys).
    std::optional<std::filesystem::path> tuf_root_file;
    std::optional<std::filesystem::path> tuf_targets_file;
    std::optional<std::filesystem::path> tuf_snapshot_key_file;
    std::optional<std::filesystem::path> tuf_timestamp_key_file;

    // Reads the [registry] table of a config (keys: listen = "host:port", data_dir,
    // database_url, embedded_postgres_bin_dir, embedded_postgres_user, io_threads, worker_threads,
    // db_pool_size, tls_cert, tls_key, max_blob_size, max_connections, upload_session_idle_seconds,
    // maintenance_interval_seconds, rollout_interval_ms, header_timeout_ms, body_read_timeout_ms,
    // idle_timeout_ms, shutdown_grace_ms, tuf_root_file, tuf_targets_file, tuf_snapshot_key,
    // tuf_timestamp_key), environment overrides included (PYLON_REGISTRY_LISTEN, ...).
    [[nodiscard]] static Result<RegistryConfig> from_config(const Config& config);
};

// Every key RegistryConfig::from_config reads ("registry.listen", ...); a config file with any
// other key is refused.
[[nodiscard]] const std::vector<std::string_view>& registry_config_keys();

// "host:port", "[v6]:port" → host and port. Errc::invalid_argument otherwise.
[[nodiscard]] Result<std::pair<std::string, std::uint16_t>> parse_listen(std::string_view text);

class Registry {
public:
    [[nodiscard]] static Result<std::unique_ptr<Registry>> create(RegistryConfig config);
    ~Registry();
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    // Everything in the file comment, up to listening. Errors name the step that failed.
    [[nodiscard]] Result<void> start();
    std::uint16_t port() const;
    // The REST routes served, as (method, pattern) — after start().
    std::vector<std::pair<std::string, std::string>> routes() const;
    // SIGTERM / SIGINT stop the registry gracefully (call before start()).
    void install_signal_handlers();
    // Graceful: in-flight requests finish; background tasks stop. Idempotent.
    void stop();
    void wait();

    struct Impl;

private:
    explicit Registry(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace pylon::registry
