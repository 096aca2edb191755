// HttpClient: a general HTTP/1.1 client for one origin (scheme, host, port), over HTTP or HTTPS.
//
// Contract:
// - Connections are kept alive and reused for the next request to the origin; a connection the
//   server closed while idle is replaced transparently (the request is sent again only when
//   nothing of the answer was received). Redirects are not followed: a 3xx is returned as is.
// - HTTPS verifies the server's chain against the system CA store (or `ca_file` when set) and the
//   certificate's names against the host; there is no switch to turn verification off.
// - Every connect (with the TLS handshake), write and read waits at most its timeout, and one
//   request at most `total_timeout`, so a server that drips bytes cannot hold the client.
// - A request body is a string, or a byte range of a file streamed from disk (memory does not
//   grow with its size). A response body goes into a string or is streamed into a file; either
//   way it never grows past `max_response_size` (a larger Content-Length is refused before the
//   body is read).
// - Any HTTP status is a successful Result: the caller judges 4xx and 5xx. Errors (net::Errc)
//   are transport failures, each message naming the method and the URL.
// One HttpClient performs one request at a time (it is not thread-safe).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "pylon/common/result.h"

namespace pylon::net {

enum class Errc {
    ok = 0,
    invalid_request = 1,    // a malformed URL, another origin, a bad method or header
    connection_failed = 2,  // name resolution failed, or the connection was refused / unreachable
    timeout = 3,            // connect, a read or write, or the whole request took too long
    tls_failed = 4,         // TLS set-up or handshake failed (an untrusted or misnamed certificate)
    too_large = 5,          // the response body is larger than max_response_size
    protocol_error = 6,     // a malformed response, or the connection broke during the exchange
    file_error = 7,         // the local file to send or to write could not be read or written
    cancelled = 8,          // HttpClient::cancel() was called
};

const std::error_category& net_category() noexcept;
std::error_code make_error_code(Errc e) noexcept;

enum class Method { get, head, post, put, patch, delete_ };
std::string_view to_string(Method method) noexcept;

struct HttpClientConfig {
    std::chrono::milliseconds connect_timeout{10'000};  // resolve + TCP connect + TLS handshake
    std::chrono::milliseconds read_timeout{30'000};     // each write or read on the connection
    std::chrono::milliseconds total_timeout{300'000};   // one request, from send to last byte
    std::filesystem::path ca_file;  // PEM CA certificates trusted instead of the system store
    std::string user_agent = "pylon";
};

// Bytes done so far and the total (the total is 0 when unknown, e.g. a chunked response).
using ProgressCallback = std::function<void(std::uint64_t done, std::uint64_t total)>;

// A byte range of a file: [offset, offset + length); no length means up to the end of the file.
struct FileRange {
    std::filesystem::path path;
    std::uint64_t offset = 0;
    std::optional<std::uint64_t> length;
};

// Header fields in the order received; names compare case-insensitively.
class HttpHeaders {
public:
    void add(std::string name, std::string value);
    // The first field named `name`, or nullopt.
    std::optional<std::string> get(std::string_view name) const;
    const std::vector<std::pair<std::string, std::string>>& all() const { return fields_; }

private:
    std::vector<std::pair<std::string, std::string>> fields_;
};

struct HttpRequest {
    Method method = Method::get;
    // "/path?query" on the client's origin, or an absolute URL that must name the same origin.
    std::string target = "/";
    HttpHeaders headers;  // Host, User-Agent and Content-Length are set by the client
    std::string body;     // sent when body_file is not set
    std::optional<FileRange> body_file;
    ProgressCallback upload_progress;  // called after each piece of the body is written

    std::uint64_t max_response_size = 16u << 20;
    // A long poll: the server may hold the answer back this long (e.g. "Prefer: wait=N"); added
    // to the read timeout for the response head and to the total timeout.
    std::chrono::milliseconds server_wait{0};
    // When set, the response body is streamed into this file (created or truncated, mode 0644)
    // instead of HttpResponse::body; on failure the file is removed.
    std::optional<std::filesystem::path> response_file;
    ProgressCallback download_progress;  // called after each piece of the body is read
};

struct HttpResponse {
    unsigned status = 0;
    HttpHeaders headers;
    std::string body;             // empty when streamed into response_file
    std::uint64_t body_size = 0;  // bytes of body received (into either destination)
};

class HttpClient {
public:
    // `origin` is an http:// or https:// URL; only its scheme, host and port are used. Fails
    // (Errc::invalid_request or tls_failed) on a bad URL or a ca_file that cannot be loaded.
    [[nodiscard]] static Result<std::unique_ptr<HttpClient>> create(std::string_view origin,
                                                                    HttpClientConfig config = {});
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    [[nodiscard]] Result<HttpResponse> send(const HttpRequest& request);
    // Ends the request in flight (on another thread) and every later one with Errc::cancelled.
    // Thread-safe; for shutting down a client blocked in a long poll.
    void cancel();

    // Shorthands for a request with only a target, headers and a string body.
    [[nodiscard]] Result<HttpResponse> get(std::string target, HttpHeaders headers = {});
    [[nodiscard]] Result<HttpResponse> request(Method method, std::string target,
                                               std::string body = {}, HttpHeaders headers = {});

    // "scheme://host[:port]".
    const std::string& origin() const;
    // How many connections were opened so far (keep-alive reuse is observable in tests).
    std::uint64_t connections_opened() const;

private:
    struct Impl;
    explicit HttpClient(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace pylon::net

template <>
struct std::is_error_code_enum<pylon::net::Errc> : std::true_type {};
