// A small blocking HTTP/1.1 client over POSIX sockets for server tests: sends raw bytes (so a
// test can send malformed or partial requests, pipeline, or stall) and parses responses
// (Content-Length or chunked bodies).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace pylon::test {

struct RawResponse {
    int status = 0;
    std::map<std::string, std::string> headers;  // names in lower case
    std::string body;
    std::string header(const std::string& lower_name) const {
        const auto it = headers.find(lower_name);
        return it == headers.end() ? std::string() : it->second;
    }
};

class TestClient {
public:
    explicit TestClient(std::uint16_t port,
                        std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) throw std::runtime_error("socket");
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(port);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
            ::close(fd_);
            throw std::runtime_error("connect");
        }
        timeval tv{static_cast<time_t>(timeout.count() / 1000),
                   static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    ~TestClient() {
        if (fd_ >= 0) ::close(fd_);
    }
    TestClient(const TestClient&) = delete;
    TestClient& operator=(const TestClient&) = delete;

    // False when the peer refused the bytes (closed connection).
    bool send(std::string_view data) {
        while (!data.empty()) {
            const auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            data.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    // One response; nullopt when the connection closed (or timed out) before a whole one came.
    std::optional<RawResponse> read_response(bool head_request = false) {
        std::size_t end;
        while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
            if (!fill()) return std::nullopt;
        }
        RawResponse r;
        const std::string head = buf_.substr(0, end);
        buf_.erase(0, end + 4);
        std::size_t pos = head.find("\r\n");
        const std::string status_line = head.substr(0, pos);
        if (status_line.size() < 12) return std::nullopt;
        r.status = std::stoi(status_line.substr(9, 3));
        while (pos != std::string::npos && pos < head.size()) {
            const auto next = head.find("\r\n", pos + 2);
            const auto line = head.substr(
                pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
            const auto colon = line.find(':');
            if (colon != std::string::npos) {
                std::string name = line.substr(0, colon);
                std::transform(name.begin(), name.end(), name.begin(),
                               [](unsigned char c) { return std::tolower(c); });
                auto value = line.substr(colon + 1);
                value.erase(0, value.find_first_not_of(' '));
                r.headers[name] = value;
            }
            pos = next;
        }
        if (head_request || r.status < 200 || r.status == 204 || r.status == 304) return r;
        if (r.header("transfer-encoding") == "chunked") {
            while (true) {
                std::size_t eol;
                while ((eol = buf_.find("\r\n")) == std::string::npos) {
                    if (!fill()) return std::nullopt;
                }
                const auto size = std::stoull(buf_.substr(0, eol), nullptr, 16);
                while (buf_.size() < eol + 2 + size + 2) {
                    if (!fill()) return std::nullopt;
                }
                r.body += buf_.substr(eol + 2, size);
                buf_.erase(0, eol + 2 + size + 2);
                if (size == 0) return r;
            }
        }
        const auto cl = r.header("content-length");
        if (cl.empty()) return std::nullopt;  // the server must always frame its responses
        const auto length = std::stoull(cl);
        while (buf_.size() < length) {
            if (!fill()) return std::nullopt;
        }
        r.body = buf_.substr(0, length);
        buf_.erase(0, length);
        return r;
    }

    // True when the server closed the connection (EOF or reset) within `timeout`, with no
    // further bytes.
    bool closed_within(std::chrono::milliseconds timeout) {
        pollfd pfd{fd_, POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0) return false;
        char c;
        const auto n = ::recv(fd_, &c, 1, 0);
        return n <= 0;
    }

    int fd() const { return fd_; }

private:
    bool fill() {
        char tmp[64 * 1024];
        const auto n = ::recv(fd_, tmp, sizeof(tmp), 0);
        if (n <= 0) return false;
        buf_.append(tmp, static_cast<std::size_t>(n));
        return true;
    }

    int fd_ = -1;
    std::string buf_;
};

inline std::string get_request(std::string_view target, std::string_view extra = {}) {
    return "GET " + std::string(target) + " HTTP/1.1\r\nHost: localhost\r\n" + std::string(extra) +
           "\r\n";
}

}  // namespace pylon::test
