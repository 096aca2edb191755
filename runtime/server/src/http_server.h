// A small HTTP/1.1 server for the runtime's local API (no TLS; Beast stays in http_server.cpp).
//
// Contract:
// - One I/O thread. Connections are kept alive; pipelined requests are answered in order.
// - A request head is limited to max_header_bytes and a body to max_body_bytes (Content-Length
//   or chunked); a larger one is answered 413 (431 for the head) and the connection closed.
//   A request head must arrive within idle_timeout of the server starting to wait for it
//   (request_timeout when part of it is already buffered), its body within request_timeout after
//   the head; otherwise the connection is closed.
// - The handler runs on the I/O thread and must not block: it answers at once or hands the
//   Exchange to another thread. Exchange calls are thread-safe.
// - Full responses carry Content-Length. Streamed responses (begin_stream / write / end) use
//   chunked transfer encoding (to an HTTP/1.0 client: no framing, and the connection closes at
//   the end), each write() one chunk sent as soon as possible; write() blocks
//   while more than max_pending_bytes wait to go out (backpressure) and gives up (closing the
//   connection) when the client has not taken them within write_timeout.
// - A disconnect is noticed while a request is being handled, not only when a write fails: the
//   connection is read in the background (pipelined bytes are kept for the next request), and
//   end-of-stream or an error there runs the Exchange's on_disconnect callbacks. A client that
//   half-closes its side after sending a request is therefore treated as gone.
// - stop() closes the listener and idle connections at once, lets requests in progress finish
//   for up to `grace`, then closes everything.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pylon/common/result.h"

namespace pylon::runtime_server {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
    std::string method;  // as sent, e.g. "GET"
    std::string path;    // the target up to '?', not percent-decoded
    std::string query;   // after '?', possibly empty
    HeaderList headers;  // names lower-cased, in order received
    std::string body;
    std::string remote;  // "ip:port" of the client

    // The first header with this (lower-case) name.
    std::optional<std::string_view> header(std::string_view name) const;
};

struct HttpResponse {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    HeaderList headers;  // extra fields (Content-Type/Length and Connection are set by the server)
};

// The server's side of one request. respond() or begin_stream() is called exactly once.
class Exchange {
public:
    virtual ~Exchange() = default;
    virtual void respond(HttpResponse response) = 0;
    // Sends the head of a streamed response.
    virtual void begin_stream(int status, std::string content_type, HeaderList headers = {}) = 0;
    // Sends `data` as one chunk (empty data is skipped). False when the client is gone or did
    // not keep up (see the file comment): nothing more will be sent.
    virtual bool write(std::string data) = 0;
    // Ends the streamed response.
    virtual void end() = 0;
    // Runs `callback` (on an unspecified thread) when the client disconnects before the response
    // has been sent, or at once if it already has. Must be quick and must not call back into
    // this Exchange.
    virtual void on_disconnect(std::function<void()> callback) = 0;
    virtual bool disconnected() const = 0;
};

using Handler = std::function<void(HttpRequest request, std::shared_ptr<Exchange> exchange)>;
// Builds the body of an error the server answers by itself (400, 408, 413, 431, 503).
using ErrorResponder = std::function<HttpResponse(int status, std::string_view message)>;

struct HttpServerConfig {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;  // 0: any free port (see HttpServer::port())
    std::size_t max_header_bytes = 16u << 10;
    std::size_t max_body_bytes = 1u << 20;
    std::size_t max_connections = 256;
    std::size_t max_pending_bytes = 1u << 20;
    std::chrono::milliseconds request_timeout{30'000};
    std::chrono::milliseconds idle_timeout{60'000};
    std::chrono::milliseconds write_timeout{30'000};
};

class HttpServer {
public:
    // Binds and listens (Errc::io_error naming the address when it cannot), then serves on its
    // own thread.
    [[nodiscard]] static Result<std::unique_ptr<HttpServer>> start(HttpServerConfig config,
                                                                   Handler handler,
                                                                   ErrorResponder errors);
    ~HttpServer();  // stop(0)
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    std::uint16_t port() const noexcept;
    // Idempotent; returns when every connection is closed and the I/O thread has ended.
    void stop(std::chrono::milliseconds grace);

    struct Impl;

private:
    explicit HttpServer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace pylon::runtime_server
