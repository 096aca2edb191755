// A deliberately plain HTTP/1.1 client over a POSIX socket for the runtime server's tests: it
// sends bytes exactly as given (malformed requests too), reads Content-Length and chunked
// responses, can read a stream piece by piece and drop the connection at any point.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pylon::test {

struct HttpReply {
    int status = 0;
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string body;                            // de-chunked
};

class HttpTestClient {
public:
    // Connects to 127.0.0.1:port; every read waits at most 30 s.
    explicit HttpTestClient(std::uint16_t port);
    ~HttpTestClient();
    HttpTestClient(const HttpTestClient&) = delete;
    HttpTestClient& operator=(const HttpTestClient&) = delete;

    bool connected() const { return fd_ >= 0; }
    bool send_raw(std::string_view bytes);
    // Sends a request (Content-Length set when there is a body) and reads the whole response.
    std::optional<HttpReply> request(std::string_view method, std::string_view path,
                                     std::string_view body = {}, std::string_view extra = {});
    bool send_request(std::string_view method, std::string_view path, std::string_view body = {},
                      std::string_view extra = {});
    // Reads a response head (status and headers; body left unread).
    std::optional<HttpReply> read_head();
    // After read_head() of a chunked response: the next chunk's payload; nullopt at the end.
    std::optional<std::string> read_chunk();
    // After read_head(): the rest of the body (Content-Length or chunked).
    std::optional<std::string> read_body(const HttpReply& head);
    // After read_head(): whatever body bytes come next, nullopt once the server has closed.
    std::optional<std::string> read_available();
    // True when the server closed the connection (reads EOF within `timeout_ms`).
    bool closed_by_peer(int timeout_ms);
    void close();

private:
    bool fill();  // reads more into buf_; false on EOF or error
    std::optional<std::string> read_line();
    bool read_exact(std::size_t n, std::string& out);

    int fd_ = -1;
    std::string buf_;
};

// The `data:` payloads of a server-sent-events body, in order.
std::vector<std::string> sse_data(std::string_view body);

}  // namespace pylon::test
