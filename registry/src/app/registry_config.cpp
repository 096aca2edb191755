// RegistryConfig from TOML + environment.
#include <algorithm>
#include <charconv>

#include "pylon/registry/registry.h"

namespace pylon::registry {

Result<std::pair<std::string, std::uint16_t>> parse_listen(std::string_view text) {
    auto bad = [&] {
        return Error(pylon::Errc::invalid_argument, "listen address \"" +
                                                        std::string(text.substr(0, 80)) +
                                                        "\" is not HOST:PORT (or [IPv6]:PORT)");
    };
    std::string host;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return bad();
        }
        host = std::string(text.substr(1, close - 1));
        port_text = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos || text.find(':') != colon) return bad();
        host = std::string(text.substr(0, colon));
        port_text = text.substr(colon + 1);
    }
    unsigned port = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (host.empty() || port_text.empty() || ec != std::errc() ||
        end != port_text.data() + port_text.size() || port > 65535) {
        return bad();
    }
    return std::pair{host, static_cast<std::uint16_t>(port)};
}

const std::vector<std::string_view>& registry_config_keys() {
    static const std::vector<std::string_view> keys = {
        "registry.listen",
        "registry.data_dir",
        "registry.database_url",
        "registry.embedded_postgres_bin_dir",
        "registry.embedded_postgres_user",
        "registry.io_threads",
        "registry.worker_threads",
        "registry.db_pool_size",
        "registry.max_connections",
        "registry.tls_cert",
        "registry.tls_key",
        "registry.max_blob_size",
        "registry.upload_session_idle_seconds",
        "registry.maintenance_interval_seconds",
        "registry.rollout_interval_ms",
        "registry.header_timeout_ms",
        "registry.body_read_timeout_ms",
        "registry.idle_timeout_ms",
        "registry.shutdown_grace_ms",
        "registry.tuf_root_file",
        "registry.tuf_targets_file",
        "registry.tuf_snapshot_key",
        "registry.tuf_timestamp_key",
    };
    return keys;
}

Result<RegistryConfig> RegistryConfig::from_config(const Config& config) {
    RegistryConfig c;
    // A misspelt key would otherwise be silently ignored.
    const auto& keys = registry_config_keys();
    for (const auto& k : config.file_keys()) {
        if (std::find(keys.begin(), keys.end(), k) == keys.end()) {
            return Error(pylon::Errc::invalid_argument,
                         "unknown key " + k + " (the registry reads the [registry] table: " +
                             "docs/OPERATIONS.md, deploy/config/registry.toml)");
        }
    }
    auto count = [&](std::string_view key, std::int64_t fallback,
                     std::int64_t max) -> Result<std::int64_t> {
        PYLON_TRY_ASSIGN(std::int64_t v, config.get_int(key, fallback));
        if (v < 0 || v > max) {
            return Error(pylon::Errc::invalid_argument,
                         std::string(key) + " must be between 0 and " + std::to_string(max));
        }
        return v;
    };
    auto optional_path = [&](std::string_view key) -> Result<std::optional<std::filesystem::path>> {
        PYLON_TRY_ASSIGN(std::string v, config.get_string(key, ""));
        if (v.empty()) return std::optional<std::filesystem::path>();
        return std::optional<std::filesystem::path>(v);
    };
    auto millis = [&](std::string_view key, std::chrono::milliseconds& out) -> Result<void> {
        PYLON_TRY_ASSIGN(std::int64_t v, count(key, out.count(), 24 * 3600 * 1000));
        out = std::chrono::milliseconds(v);
        return {};
    };

    PYLON_TRY_ASSIGN(std::string listen, config.get_string("registry.listen", "127.0.0.1:8080"));
    PYLON_TRY_ASSIGN(auto hp, parse_listen(listen));
    c.server.host = hp.first;
    c.server.port = hp.second;
    PYLON_TRY_ASSIGN(std::string data_dir, config.get_string("registry.data_dir", ""));
    c.data_dir = data_dir;
    PYLON_TRY_ASSIGN(c.database_url, config.get_string("registry.database_url", ""));
    PYLON_TRY_ASSIGN(std::string pg_bin,
                     config.get_string("registry.embedded_postgres_bin_dir", ""));
    c.embedded_postgres_bin_dir = pg_bin;
    PYLON_TRY_ASSIGN(c.embedded_postgres_user,
                     config.get_string("registry.embedded_postgres_user", "postgres"));
    if (c.embedded_postgres_user.empty()) {
        return Error(pylon::Errc::invalid_argument, "registry.embedded_postgres_user is empty");
    }
    PYLON_TRY_ASSIGN(auto io, count("registry.io_threads", 0, 256));
    PYLON_TRY_ASSIGN(auto workers, count("registry.worker_threads", 0, 1024));
    PYLON_TRY_ASSIGN(auto pool, count("registry.db_pool_size", 0, 1024));
    c.server.io_threads = static_cast<unsigned>(io);
    c.server.worker_threads = static_cast<unsigned>(workers);
    c.db_pool_size = static_cast<std::size_t>(pool);
    PYLON_TRY_ASSIGN(auto max_conn,
                     count("registry.max_connections",
                           static_cast<std::int64_t>(c.server.max_connections), 1'000'000));
    if (max_conn == 0) {
        return Error(pylon::Errc::invalid_argument, "registry.max_connections must be at least 1");
    }
    c.server.max_connections = static_cast<std::size_t>(max_conn);
    PYLON_TRY_ASSIGN(auto cert, optional_path("registry.tls_cert"));
    PYLON_TRY_ASSIGN(auto key, optional_path("registry.tls_key"));
    if (cert.has_value() != key.has_value()) {
        return Error(pylon::Errc::invalid_argument,
                     "registry.tls_cert and registry.tls_key go together");
    }
    if (cert) c.server.tls = http::TlsConfig{*cert, *key};
    PYLON_TRY_ASSIGN(auto max_blob,
                     count("registry.max_blob_size", static_cast<std::int64_t>(c.max_blob_size),
                           std::int64_t{1} << 50));
    c.max_blob_size = static_cast<std::uint64_t>(max_blob);
    PYLON_TRY_ASSIGN(auto idle, count("registry.upload_session_idle_seconds",
                                      c.upload_session_idle.count(), 30 * 24 * 3600));
    c.upload_session_idle = std::chrono::seconds(idle);
    PYLON_TRY_ASSIGN(auto interval, count("registry.maintenance_interval_seconds",
                                          c.maintenance_interval.count(), 24 * 3600));
    if (interval == 0) {
        return Error(pylon::Errc::invalid_argument,
                     "registry.maintenance_interval_seconds must be at least 1");
    }
    c.maintenance_interval = std::chrono::seconds(interval);
    PYLON_TRY(millis("registry.rollout_interval_ms", c.rollout_interval));
    if (c.rollout_interval.count() < 10) {
        return Error(pylon::Errc::invalid_argument,
                     "registry.rollout_interval_ms must be at least 10");
    }
    PYLON_TRY(millis("registry.header_timeout_ms", c.server.header_timeout));
    PYLON_TRY(millis("registry.body_read_timeout_ms", c.server.body_read_timeout));
    PYLON_TRY(millis("registry.idle_timeout_ms", c.server.idle_timeout));
    PYLON_TRY(millis("registry.shutdown_grace_ms", c.server.shutdown_grace));
    PYLON_TRY_ASSIGN(c.tuf_root_file, optional_path("registry.tuf_root_file"));
    PYLON_TRY_ASSIGN(c.tuf_targets_file, optional_path("registry.tuf_targets_file"));
    PYLON_TRY_ASSIGN(c.tuf_snapshot_key_file, optional_path("registry.tuf_snapshot_key"));
    PYLON_TRY_ASSIGN(c.tuf_timestamp_key_file, optional_path("registry.tuf_timestamp_key"));
    return c;
}

}  // namespace pylon::registry
