// Server: the registry's HTTP/1.1 server (HTTPS when a certificate is configured).
//
// Threads: `io_threads` run the sockets (parsing, BodySink::write, sendfile); `worker_threads`
// run handlers, StreamBegin and StreamFinish, which may block on the database. Keep-alive and
// pipelining per HTTP/1.1 (HTTP/1.0 closes unless it asked for keep-alive); every response
// carries Content-Length. Errors the server answers itself use Response::error's JSON shape:
// 400 bad_request, 404 not_found, 405 method_not_allowed (with Allow), 408 timeout,
// 413 payload_too_large, 431 headers_too_large, 500 internal, 503 shutting_down / overloaded.
//
// Each request yields one access-log line (never the query string nor the Authorization header)
// and, with Hooks::metrics, these series: pylon_http_requests_total{method,route,status},
// pylon_http_request_duration_seconds{route} (histogram), pylon_http_connections_active,
// pylon_http_received_bytes_total, pylon_http_sent_bytes_total.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "pylon/common/result.h"
#include "pylon/registry/http/message.h"
#include "pylon/registry/http/router.h"

namespace pylon::registry {
class Metrics;
}

namespace pylon::registry::http {

struct TlsConfig {
    std::filesystem::path cert_file;  // PEM certificate chain, leaf first
    std::filesystem::path key_file;   // PEM private key
};

struct ServerConfig {
    std::string host = "127.0.0.1";  // an IP address (v4 or v6) or a resolvable name
    std::uint16_t port = 0;          // 0: an ephemeral port, see Server::port()
    unsigned io_threads = 0;         // 0: std::thread::hardware_concurrency()
    unsigned worker_threads = 0;     // 0: twice the io threads
    std::uint32_t max_header_bytes = 16 * 1024;
    std::chrono::milliseconds header_timeout{
        10'000};  // the whole request head, from its first byte
    std::chrono::milliseconds body_read_timeout{30'000};  // without progress
    std::chrono::milliseconds idle_timeout{60'000};       // keep-alive wait for the next request
    std::chrono::milliseconds write_timeout{60'000};      // without progress
    std::size_t max_connections = 10'000;  // beyond: answered 503 and closed (plain TCP)
    std::optional<TlsConfig> tls;          // set: the listener speaks TLS (>= 1.2) only
    std::chrono::milliseconds shutdown_grace{30'000};
};

// One finished request, for the access log.
struct AccessLogEntry {
    std::string method;
    std::string path;   // decoded path, never the query string
    std::string route;  // the matched pattern, "" when none matched
    int status = 0;
    std::uint64_t bytes_received = 0;  // request body bytes
    std::uint64_t bytes_sent = 0;      // response body bytes
    std::chrono::microseconds duration{0};
    std::string remote_address;
};

struct Hooks {
    // Maps an Error from a BodySink to the response (default_error_response when empty).
    std::function<Response(const Error&)> error_response;
    // Replaces the default spdlog access-log line when set.
    std::function<void(const AccessLogEntry&)> access_log;
    // Where request metrics go (none when null); must outlive the server.
    Metrics* metrics = nullptr;
    // Called once when stop() begins (before waiting for requests in flight): answer the
    // requests that deferred routes hold, so that they do not wait out the grace period.
    std::function<void()> on_stop;
};

// pylon::Errc::limit_exceeded → 413, invalid_argument / parse_error → 400, not_found → 404,
// permission_denied → 403, anything else → 500 with a generic message (internal details are
// logged, never sent).
Response default_error_response(const Error& error);

class Server {
public:
    // Validates the configuration and loads the TLS identity; binds nothing yet.
    [[nodiscard]] static Result<std::unique_ptr<Server>> create(
        ServerConfig config, std::shared_ptr<const Router> router, Hooks hooks = {});
    // Stops the server (as stop()) if it is still running.
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds, listens and starts the threads. Errc::listen_failed names the address.
    [[nodiscard]] Result<void> start();
    // The bound port (after start()).
    std::uint16_t port() const;
    // Graceful stop: stops accepting, closes idle keep-alive connections, lets in-flight requests
    // finish for up to shutdown_grace (then closes what is left), joins the threads. Idempotent;
    // blocks. Must not be called from a handler (it joins the worker threads).
    void stop();
    // Blocks until the server has stopped (by stop(), or a signal after install_signal_handlers).
    void wait();
    // SIGTERM and SIGINT make the server stop() (on a thread of its own). Call before start().
    void install_signal_handlers();

    struct Impl;

private:
    explicit Server(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace pylon::registry::http
