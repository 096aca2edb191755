#include "http_test_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>
#include <utility>

namespace pylon::test {

HttpTestClient::HttpTestClient(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return;
    timeval tv{30, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) close();
}

HttpTestClient::~HttpTestClient() {
    close();
}

void HttpTestClient::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

bool HttpTestClient::send_raw(std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n <= 0) return false;
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

bool HttpTestClient::send_request(std::string_view method, std::string_view path,
                                  std::string_view body, std::string_view extra) {
    std::string req = std::string(method) + " " + std::string(path) + " HTTP/1.1\r\n";
    req += "Host: 127.0.0.1\r\n";
    if (!body.empty() || method == "POST") {
        req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n";
    }
    req += extra;
    req += "\r\n";
    req += body;
    return send_raw(req);
}

bool HttpTestClient::fill() {
    if (fd_ < 0) return false;
    char tmp[16384];
    const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<std::size_t>(n));
    return true;
}

std::optional<std::string> HttpTestClient::read_line() {
    for (;;) {
        if (auto pos = buf_.find("\r\n"); pos != std::string::npos) {
            std::string line = buf_.substr(0, pos);
            buf_.erase(0, pos + 2);
            return line;
        }
        if (!fill()) return std::nullopt;
    }
}

bool HttpTestClient::read_exact(std::size_t n, std::string& out) {
    while (buf_.size() < n) {
        if (!fill()) return false;
    }
    out.append(buf_, 0, n);
    buf_.erase(0, n);
    return true;
}

std::optional<HttpReply> HttpTestClient::read_head() {
    auto status = read_line();
    if (!status || status->size() < 12 || status->rfind("HTTP/1.1 ", 0) != 0) return std::nullopt;
    HttpReply r;
    r.status = std::stoi(status->substr(9, 3));
    for (;;) {
        auto line = read_line();
        if (!line) return std::nullopt;
        if (line->empty()) break;
        const auto colon = line->find(':');
        if (colon == std::string::npos) return std::nullopt;
        std::string name = line->substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string value = line->substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        r.headers[name] = value;
    }
    return r;
}

std::optional<std::string> HttpTestClient::read_chunk() {
    auto size_line = read_line();
    if (!size_line) return std::nullopt;
    const std::size_t n = std::stoul(*size_line, nullptr, 16);
    std::string data;
    if (n > 0 && !read_exact(n, data)) return std::nullopt;
    std::string crlf;
    if (!read_exact(2, crlf) || crlf != "\r\n") return std::nullopt;
    if (n == 0) return std::nullopt;
    return data;
}

std::optional<std::string> HttpTestClient::read_body(const HttpReply& head) {
    std::string body;
    if (auto te = head.headers.find("transfer-encoding");
        te != head.headers.end() && te->second == "chunked") {
        for (;;) {
            auto size_line = read_line();
            if (!size_line) return std::nullopt;
            const std::size_t n = std::stoul(*size_line, nullptr, 16);
            if (n > 0 && !read_exact(n, body)) return std::nullopt;
            std::string crlf;
            if (!read_exact(2, crlf) || crlf != "\r\n") return std::nullopt;
            if (n == 0) return body;
        }
    }
    auto cl = head.headers.find("content-length");
    if (cl == head.headers.end()) return std::nullopt;
    if (!read_exact(std::stoul(cl->second), body)) return std::nullopt;
    return body;
}

std::optional<HttpReply> HttpTestClient::request(std::string_view method, std::string_view path,
                                                 std::string_view body, std::string_view extra) {
    if (!send_request(method, path, body, extra)) return std::nullopt;
    auto head = read_head();
    if (!head) return std::nullopt;
    auto b = read_body(*head);
    if (!b) return std::nullopt;
    head->body = std::move(*b);
    return head;
}

std::optional<std::string> HttpTestClient::read_available() {
    if (buf_.empty() && !fill()) return std::nullopt;
    return std::exchange(buf_, {});
}

bool HttpTestClient::closed_by_peer(int timeout_ms) {
    if (fd_ < 0) return true;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    char c;
    return ::recv(fd_, &c, 1, MSG_PEEK) == 0;
}

std::vector<std::string> sse_data(std::string_view body) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos < body.size()) {
        const auto end = body.find("\n\n", pos);
        if (end == std::string_view::npos) break;
        std::string_view event = body.substr(pos, end - pos);
        if (event.rfind("data: ", 0) == 0) out.emplace_back(event.substr(6));
        pos = end + 2;
    }
    return out;
}

}  // namespace pylon::test
