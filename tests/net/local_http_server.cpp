#include "local_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

namespace pylon::test {

namespace {

// A connection's byte stream, plain or TLS.
class Conn {
public:
    Conn(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
    ~Conn() {
        if (ssl_) {
            SSL_shutdown(ssl_);
            SSL_free(ssl_);
        }
        ::close(fd_);
    }
    long read(char* buf, std::size_t n) {
        if (ssl_) return SSL_read(ssl_, buf, static_cast<int>(n));
        return ::recv(fd_, buf, n, 0);
    }
    bool write_all(const std::string& data) {
        std::size_t done = 0;
        while (done < data.size()) {
            const long w =
                ssl_ ? SSL_write(ssl_, data.data() + done, static_cast<int>(data.size() - done))
                     : ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
            if (w <= 0) return false;
            done += static_cast<std::size_t>(w);
        }
        return true;
    }

private:
    int fd_;
    SSL* ssl_;
};

}  // namespace

LocalHttpServer::LocalHttpServer(std::optional<TlsIdentity> tls) {
    ::signal(SIGPIPE, SIG_IGN);
    if (tls) {
        SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, tls->cert_file.c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, tls->key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
            SSL_CTX_free(ctx);
            throw std::runtime_error("LocalHttpServer: cannot load the TLS identity");
        }
        tls_ctx_ = ctx;
    }
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listen_fd_, 16) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        throw std::runtime_error("LocalHttpServer: cannot listen on 127.0.0.1");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
}

LocalHttpServer::~LocalHttpServer() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
    SSL_CTX_free(static_cast<SSL_CTX*>(tls_ctx_));
}

std::string LocalHttpServer::url(const std::string& path, const std::string& host) const {
    return std::string(tls_ctx_ ? "https://" : "http://") + host + ":" + std::to_string(port_) +
           path;
}

void LocalHttpServer::route(const std::string& path, CannedResponse response) {
    std::lock_guard lock(mutex_);
    routes_[path] = std::move(response);
}

void LocalHttpServer::serve_directory(std::filesystem::path root) {
    std::lock_guard lock(mutex_);
    root_ = std::move(root);
}

std::vector<std::string> LocalHttpServer::requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
}

CannedResponse LocalHttpServer::ok(const std::string& body) {
    return status(200, "OK", body);
}

CannedResponse LocalHttpServer::status(int code, const std::string& reason,
                                       const std::string& body) {
    CannedResponse r;
    r.head = "HTTP/1.1 " + std::to_string(code) + " " + reason +
             "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    r.body = body;
    return r;
}

void LocalHttpServer::serve() {
    while (!stop_) {
        pollfd pfd{listen_fd_, POLLIN, 0};
        if (::poll(&pfd, 1, 50) <= 0) continue;
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) handle(fd);
    }
}

void LocalHttpServer::handle(int fd) {
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    SSL* ssl = nullptr;
    if (tls_ctx_) {
        ssl = SSL_new(static_cast<SSL_CTX*>(tls_ctx_));
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) != 1) {  // e.g. the client refused our certificate
            ERR_clear_error();
            SSL_free(ssl);
            ::close(fd);
            return;
        }
    }
    Conn conn(fd, ssl);
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 65536) {
        const long n = conn.read(buf, sizeof(buf));
        if (n <= 0) return;
        request.append(buf, static_cast<std::size_t>(n));
    }
    std::istringstream line(request.substr(0, request.find("\r\n")));
    std::string method, target;
    line >> method >> target;

    CannedResponse response;
    {
        std::lock_guard lock(mutex_);
        requests_.push_back(target);
        if (auto it = routes_.find(target); it != routes_.end()) {
            response = it->second;
        } else if (root_ && target.find("..") == std::string::npos && target.size() > 1) {
            const auto file = *root_ / target.substr(1);
            std::ifstream in(file, std::ios::binary);
            if (in && std::filesystem::is_regular_file(file)) {
                response = ok(std::string(std::istreambuf_iterator<char>(in), {}));
            } else {
                response = status(404, "Not Found", "not found\n");
            }
        } else {
            response = status(404, "Not Found", "not found\n");
        }
    }
    if (!conn.write_all(response.head)) return;
    for (auto waited = std::chrono::milliseconds(0); waited < response.delay_before_body && !stop_;
         waited += std::chrono::milliseconds(10)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!conn.write_all(response.body)) return;
    // Stops when the client hangs up (the point of the test), or after 1 GiB as a backstop.
    for (std::size_t sent = 0; !response.repeat.empty() && sent < (1u << 30) && !stop_;
         sent += response.repeat.size()) {
        if (!conn.write_all(response.repeat)) return;
    }
}

}  // namespace pylon::test
