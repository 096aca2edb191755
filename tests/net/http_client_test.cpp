// HttpClient against real sockets on 127.0.0.1: a small keep-alive server defined here (the
// shared LocalHttpServer closes every connection and knows only GET), and LocalHttpServer with
// TLS for certificate checks.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include "local_http_server.h"
#include "process.h"
#include "pylon/net/http_client.h"
#include "temp_dir.h"

using pylon::net::Errc;
using pylon::net::HttpClient;
using pylon::net::HttpClientConfig;
using pylon::net::HttpRequest;
using pylon::net::Method;
using pylon::test::TempDir;

namespace {

struct SeenRequest {
    std::string method;
    std::string target;
    std::string head;  // the raw header block
    std::string body;
};

struct Reply {
    std::string raw;           // the whole response, as sent
    bool close_after = false;  // close the connection after sending (without saying so)
};

// HTTP/1.1 with keep-alive, one connection at a time, requests with Content-Length bodies.
class KeepAliveServer {
public:
    using Handler = std::function<Reply(const SeenRequest&)>;

    explicit KeepAliveServer(Handler handler) : handler_(std::move(handler)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
        REQUIRE(::listen(fd_, 8) == 0);
        socklen_t len = sizeof(addr);
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~KeepAliveServer() {
        stop_ = true;
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    std::string origin() const { return "http://127.0.0.1:" + std::to_string(port_); }
    int connections() const { return connections_; }
    std::vector<SeenRequest> seen() const {
        std::lock_guard lock(mutex_);
        return seen_;
    }

    static Reply ok(const std::string& body, const std::string& extra = {}) {
        return {"HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
                    extra + "\r\n" + body,
                false};
    }

private:
    void serve() {
        while (!stop_) {
            const int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) return;
            ++connections_;
            std::string buf;
            char tmp[65536];
            bool open = true;
            while (open) {
                std::size_t end;
                while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
                    const auto n = ::read(c, tmp, sizeof(tmp));
                    if (n <= 0) {
                        open = false;
                        break;
                    }
                    buf.append(tmp, static_cast<std::size_t>(n));
                }
                if (!open) break;
                SeenRequest rq;
                rq.head = buf.substr(0, end);
                buf.erase(0, end + 4);
                const auto sp1 = rq.head.find(' ');
                const auto sp2 = rq.head.find(' ', sp1 + 1);
                rq.method = rq.head.substr(0, sp1);
                rq.target = rq.head.substr(sp1 + 1, sp2 - sp1 - 1);
                std::size_t length = 0;
                if (auto p = rq.head.find("Content-Length: "); p != std::string::npos) {
                    length = std::stoul(rq.head.substr(p + 16));
                }
                while (buf.size() < length) {
                    const auto n = ::read(c, tmp, sizeof(tmp));
                    if (n <= 0) break;
                    buf.append(tmp, static_cast<std::size_t>(n));
                }
                rq.body = buf.substr(0, length);
                buf.erase(0, length);
                const Reply reply = handler_(rq);
                {
                    std::lock_guard lock(mutex_);
                    seen_.push_back(rq);
                }
                std::size_t sent = 0;
                while (sent < reply.raw.size()) {
                    const auto n = ::write(c, reply.raw.data() + sent, reply.raw.size() - sent);
                    if (n <= 0) break;
                    sent += static_cast<std::size_t>(n);
                }
                if (reply.close_after) open = false;
            }
            ::close(c);
        }
    }

    Handler handler_;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> connections_{0};
    mutable std::mutex mutex_;
    std::vector<SeenRequest> seen_;
    std::thread thread_;
};

std::unique_ptr<HttpClient> make_client(const std::string& origin, HttpClientConfig config = {}) {
    auto c = HttpClient::create(origin, std::move(config));
    REQUIRE(c.ok());
    return std::move(c).value();
}

std::string random_bytes(std::size_t n) {
    std::mt19937 rng(42);
    std::string s(n, '\0');
    for (auto& ch : s) ch = static_cast<char>(rng() & 0xff);
    return s;
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("HttpClient reuses one connection for consecutive requests") {
    KeepAliveServer server([](const SeenRequest& rq) {
        return KeepAliveServer::ok("hello " + rq.target, "X-Thing: yes\r\n");
    });
    auto client = make_client(server.origin());
    for (int i = 0; i < 3; ++i) {
        auto r = client->get("/a" + std::to_string(i));
        REQUIRE(r.ok());
        CHECK(r->status == 200);
        CHECK(r->body == "hello /a" + std::to_string(i));
        CHECK(r->headers.get("x-thing") == "yes");
        CHECK(r->headers.get("X-THING") == "yes");
        CHECK_FALSE(r->headers.get("missing").has_value());
    }
    CHECK(server.connections() == 1);
    CHECK(client->connections_opened() == 1);
}

TEST_CASE("HttpClient sends every method with headers and a body; statuses are results") {
    KeepAliveServer server([](const SeenRequest& rq) {
        if (rq.method == "DELETE") return Reply{"HTTP/1.1 204 No Content\r\n\r\n", false};
        if (rq.method == "PATCH") {
            return Reply{"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope", false};
        }
        return KeepAliveServer::ok(rq.method + ":" + rq.body);
    });
    auto client = make_client(server.origin());
    for (const auto m : {Method::post, Method::put, Method::patch, Method::delete_}) {
        pylon::net::HttpHeaders h;
        h.add("X-Custom", "v1");
        auto r = client->request(m, "/x?y=1", m == Method::delete_ ? "" : "payload", h);
        REQUIRE(r.ok());
        if (m == Method::delete_) CHECK(r->status == 204);
        if (m == Method::patch) CHECK(r->status == 404);
        if (m == Method::post) CHECK(r->body == "POST:payload");
    }
    const auto seen = server.seen();
    REQUIRE(seen.size() == 4);
    CHECK(seen[0].method == "POST");
    CHECK(seen[1].method == "PUT");
    CHECK(seen[2].method == "PATCH");
    CHECK(seen[3].method == "DELETE");
    CHECK(seen[2].target == "/x?y=1");
    CHECK(seen[2].body == "payload");
    CHECK(contains(seen[0].head, "X-Custom: v1"));
    CHECK(server.connections() == 1);
}

TEST_CASE("HttpClient streams a request body from a file range, reporting progress") {
    TempDir dir;
    const std::string data = random_bytes(1 << 20);
    const auto file = dir.write("blob.bin", data);
    KeepAliveServer server(
        [](const SeenRequest& rq) { return KeepAliveServer::ok(std::to_string(rq.body.size())); });
    auto client = make_client(server.origin());
    HttpRequest rq;
    rq.method = Method::patch;
    rq.target = "/upload";
    rq.body_file = pylon::net::FileRange{file, 1000, 600'000};
    std::vector<std::uint64_t> progress;
    rq.upload_progress = [&](std::uint64_t done, std::uint64_t total) {
        CHECK(total == 600'000);
        progress.push_back(done);
    };
    auto r = client->send(rq);
    REQUIRE(r.ok());
    CHECK(r->body == "600000");
    REQUIRE(server.seen().size() == 1);
    CHECK(server.seen()[0].body == data.substr(1000, 600'000));
    REQUIRE(progress.size() >= 2);
    CHECK(std::is_sorted(progress.begin(), progress.end()));
    CHECK(progress.back() == 600'000);

    SECTION("a range past the end of the file is refused before sending") {
        rq.body_file = pylon::net::FileRange{file, data.size() - 10, 11};
        auto bad = client->send(rq);
        REQUIRE_FALSE(bad.ok());
        CHECK(bad.error().code() == Errc::file_error);
    }
    SECTION("no length means to the end of the file") {
        rq.body_file = pylon::net::FileRange{file, data.size() - 5, std::nullopt};
        rq.upload_progress = nullptr;
        auto tail = client->send(rq);
        REQUIRE(tail.ok());
        CHECK(tail->body == "5");
    }
}

TEST_CASE("HttpClient streams a response into a file, within max_response_size") {
    TempDir dir;
    const std::string big = random_bytes(700'000);
    KeepAliveServer server([&](const SeenRequest& rq) {
        if (rq.target == "/chunked") {
            return Reply{
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                false};
        }
        return KeepAliveServer::ok(big);
    });
    auto client = make_client(server.origin());
    HttpRequest rq;
    rq.target = "/big";
    rq.max_response_size = big.size();
    rq.response_file = dir / "out.bin";
    std::uint64_t last = 0;
    rq.download_progress = [&](std::uint64_t done, std::uint64_t total) {
        CHECK(total == big.size());
        CHECK(done >= last);
        last = done;
    };
    auto r = client->send(rq);
    REQUIRE(r.ok());
    CHECK(r->body.empty());
    CHECK(r->body_size == big.size());
    CHECK(last == big.size());
    CHECK(pylon::test::read_all(dir / "out.bin") == big);

    SECTION("a declared length over the limit fails and leaves no file") {
        rq.max_response_size = big.size() - 1;
        rq.response_file = dir / "too.bin";
        auto t = client->send(rq);
        REQUIRE_FALSE(t.ok());
        CHECK(t.error().code() == Errc::too_large);
        CHECK(contains(t.error().message(), "GET " + server.origin() + "/big"));
        CHECK_FALSE(std::filesystem::exists(dir / "too.bin"));
    }
    SECTION("a chunked body over the limit fails as it passes it") {
        HttpRequest c;
        c.target = "/chunked";
        c.max_response_size = 8;
        auto t = client->send(c);
        REQUIRE_FALSE(t.ok());
        CHECK(t.error().code() == Errc::too_large);
        c.max_response_size = 11;
        auto fits = client->send(c);
        REQUIRE(fits.ok());
        CHECK(fits->body == "hello world");
    }
}

TEST_CASE("HttpClient reads no body for HEAD and keeps the connection") {
    KeepAliveServer server([](const SeenRequest& rq) {
        if (rq.method == "HEAD") {
            return Reply{"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", false};
        }
        return KeepAliveServer::ok("after");
    });
    auto client = make_client(server.origin());
    auto h = client->request(Method::head, "/blob");
    REQUIRE(h.ok());
    CHECK(h->status == 200);
    CHECK(h->headers.get("content-length") == "1000");
    CHECK(h->body.empty());
    auto g = client->get("/next");
    REQUIRE(g.ok());
    CHECK(g->body == "after");
    CHECK(server.connections() == 1);
}

TEST_CASE("HttpClient replaces a connection the server closed") {
    SECTION("closed silently while idle: the request is sent again on a new connection") {
        KeepAliveServer server([](const SeenRequest&) {
            auto r = KeepAliveServer::ok("x");
            r.close_after = true;
            return r;
        });
        auto client = make_client(server.origin());
        REQUIRE(client->get("/1").ok());
        auto second = client->get("/2");
        REQUIRE(second.ok());
        CHECK(second->body == "x");
        CHECK(client->connections_opened() == 2);
        CHECK(server.seen().size() == 2);
    }
    SECTION("Connection: close is honoured") {
        KeepAliveServer server([](const SeenRequest&) {
            auto r = KeepAliveServer::ok("y", "Connection: close\r\n");
            r.close_after = true;
            return r;
        });
        auto client = make_client(server.origin());
        REQUIRE(client->get("/1").ok());
        REQUIRE(client->get("/2").ok());
        CHECK(client->connections_opened() == 2);
    }
}

TEST_CASE("HttpClient transport errors name the URL") {
    SECTION("connection refused") {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
        socklen_t len = sizeof(addr);
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
        ::close(fd);  // bound, never listened: nothing accepts on this port
        const std::string origin = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
        auto r = make_client(origin)->get("/v1/whoami");
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == Errc::connection_failed);
        CHECK(contains(r.error().message(), "GET " + origin + "/v1/whoami"));
    }
    SECTION("a server that never answers times out") {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
        REQUIRE(::listen(fd, 4) == 0);  // the kernel completes the handshake; nobody reads
        socklen_t len = sizeof(addr);
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
        HttpClientConfig config;
        config.read_timeout = std::chrono::milliseconds(200);
        auto client =
            make_client("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)), config);
        const auto start = std::chrono::steady_clock::now();
        auto r = client->get("/slow");
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == Errc::timeout);
        CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
        ::close(fd);
    }
    SECTION("requests for another origin and malformed headers are refused") {
        auto client = make_client("http://127.0.0.1:9");
        auto other = client->get("http://example.com/x");
        REQUIRE_FALSE(other.ok());
        CHECK(other.error().code() == Errc::invalid_request);
        pylon::net::HttpHeaders h;
        h.add("X-Bad", "a\r\nInjected: 1");
        auto bad = client->get("/x", h);
        REQUIRE_FALSE(bad.ok());
        CHECK(bad.error().code() == Errc::invalid_request);
        CHECK_FALSE(HttpClient::create("ftp://host/").ok());
    }
}

TEST_CASE("HttpClient long polls: server_wait extends the wait, cancel() ends it") {
    // A server that answers after 600 ms.
    KeepAliveServer server([](const SeenRequest&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(600));
        return KeepAliveServer::ok("late");
    });
    HttpClientConfig config;
    config.read_timeout = std::chrono::milliseconds(200);
    auto client = make_client(server.origin(), config);
    // Without server_wait the read timeout ends it; with it the answer arrives.
    auto plain = client->get("/poll");
    REQUIRE_FALSE(plain.ok());
    CHECK(plain.error().code() == Errc::timeout);
    HttpRequest rq;
    rq.target = "/poll";
    rq.server_wait = std::chrono::seconds(2);
    auto waited = client->send(rq);
    REQUIRE(waited.ok());
    CHECK(waited->body == "late");

    // cancel() from another thread ends a request in flight at once, and every later one.
    rq.server_wait = std::chrono::seconds(30);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(::listen(fd, 4) == 0);  // nobody answers
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    auto silent = make_client("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)));
    std::thread canceller([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        silent->cancel();
    });
    const auto start = std::chrono::steady_clock::now();
    auto r = silent->send(rq);
    canceller.join();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == Errc::cancelled);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
    auto later = silent->get("/again");
    REQUIRE_FALSE(later.ok());
    CHECK(later.error().code() == Errc::cancelled);
    ::close(fd);
}

TEST_CASE("HttpClient over HTTPS verifies the chain and the host name") {
    TempDir dir;
    const auto r = pylon::test::run_process(
        {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", (dir / "c.key").string(), "-out",
         (dir / "c.pem").string()});
    REQUIRE(r.exit_code == 0);
    pylon::test::LocalHttpServer server(pylon::test::TlsIdentity{dir / "c.pem", dir / "c.key"});
    server.route("/v1/whoami", pylon::test::LocalHttpServer::ok("{\"name\":\"ci\"}"));

    HttpClientConfig trusting;
    trusting.ca_file = dir / "c.pem";
    auto ok = make_client(server.url("/", "localhost"), trusting)->get("/v1/whoami");
    REQUIRE(ok.ok());
    CHECK(ok->status == 200);
    CHECK(ok->body == "{\"name\":\"ci\"}");

    auto untrusted = make_client(server.url("/"))->get("/v1/whoami");
    REQUIRE_FALSE(untrusted.ok());
    CHECK(untrusted.error().code() == Errc::tls_failed);

    HttpClientConfig missing;
    missing.ca_file = dir / "nope.pem";
    auto bad = HttpClient::create(server.url("/"), missing);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code() == Errc::tls_failed);
}
