// LocalHttpServer: a deliberately small HTTP/1.1 (optionally TLS) server on 127.0.0.1 and an
// ephemeral port, for testing clients against a real socket. It answers one connection at a time
// on its own thread, with canned raw responses per path (so a test can send any header, wrong
// lengths, endless bodies) or files from a directory. Not for production: no keep-alive, no
// pipelining, GET only.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace pylon::test {

struct CannedResponse {
    std::string head;  // status line and headers, ending with the blank line
    std::string body;
    std::chrono::milliseconds delay_before_body{0};
    std::string repeat;  // when not empty: after `body`, sent again and again until the client
                         // hangs up (an endless response)
};

struct TlsIdentity {
    std::filesystem::path cert_file;  // PEM certificate chain
    std::filesystem::path key_file;   // PEM private key
};

class LocalHttpServer {
public:
    // Starts listening; throws std::runtime_error when it cannot.
    explicit LocalHttpServer(std::optional<TlsIdentity> tls = std::nullopt);
    ~LocalHttpServer();
    LocalHttpServer(const LocalHttpServer&) = delete;
    LocalHttpServer& operator=(const LocalHttpServer&) = delete;

    std::uint16_t port() const { return port_; }
    // "http://127.0.0.1:PORT" + path (https:// with TLS); `host` replaces 127.0.0.1.
    std::string url(const std::string& path, const std::string& host = "127.0.0.1") const;

    void route(const std::string& path, CannedResponse response);
    // Paths without a route are files under `root` (404 when missing, or outside it).
    void serve_directory(std::filesystem::path root);
    // The request targets received so far, in order.
    std::vector<std::string> requests() const;

    // A 200 response with Content-Length.
    static CannedResponse ok(const std::string& body);
    static CannedResponse status(int code, const std::string& reason, const std::string& body);

private:
    void serve();
    void handle(int fd);

    int listen_fd_ = -1;
    std::uint16_t port_ = 0;
    void* tls_ctx_ = nullptr;  // SSL_CTX*
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    std::map<std::string, CannedResponse> routes_;
    std::optional<std::filesystem::path> root_;
    std::vector<std::string> requests_;
    std::thread thread_;
};

}  // namespace pylon::test
