// Streamed request bodies (sinks) and file responses (sendfile on plain TCP, pread through TLS)
// over a real loopback socket; TLS with a certificate made by the openssl CLI, checked by curl.
#include <fcntl.h>

#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "http_server_fixture.h"
#include "http_test_client.h"
#include "process.h"
#include "pylon/registry/http/errors.h"
#include "pylon/signing/sha256.h"
#include "temp_dir.h"

using namespace std::chrono_literals;
using pylon::Result;
using pylon::registry::http::BodySink;
using pylon::registry::http::FileBody;
using pylon::registry::http::Request;
using pylon::registry::http::Response;
using pylon::registry::http::Router;
using pylon::registry::http::UniqueFd;
using pylon::test::TempDir;
using pylon::test::TestClient;
using pylon::test::TestServer;
using StreamStart = std::variant<std::unique_ptr<BodySink>, Response>;

namespace {

// Hashes what it receives; fails once `fail_after` bytes have passed (when set).
class HashingSink final : public BodySink {
public:
    explicit HashingSink(std::uint64_t fail_after = UINT64_MAX) : fail_after_(fail_after) {}
    Result<void> write(pylon::ByteView chunk) override {
        bytes += chunk.size();
        ++calls;
        max_chunk = std::max<std::size_t>(max_chunk, chunk.size());
        if (bytes > fail_after_) return pylon::Error(pylon::Errc::io_error, "disk full");
        hash.update(chunk);
        return {};
    }
    pylon::signing::Sha256 hash;
    std::uint64_t bytes = 0;
    std::uint64_t calls = 0;
    std::size_t max_chunk = 0;

private:
    std::uint64_t fail_after_;
};

std::string pattern_bytes(std::size_t n, unsigned seed) {
    std::string s(n, '\0');
    std::mt19937 rng(seed);
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
}

std::shared_ptr<Router> upload_router() {
    auto router = std::make_shared<Router>();
    router->add_streamed(
        "PUT", "/blobs/{name}",
        [](Request& r) -> StreamStart {
            if (r.param("name") == "forbidden") return Response::error(403, "denied", "no");
            if (r.param("name") == "failing") return std::make_unique<HashingSink>(1000);
            return std::make_unique<HashingSink>();
        },
        [](Request& r, std::unique_ptr<BodySink> sink) {
            auto& s = static_cast<HashingSink&>(*sink);
            return Response::json(201, {{"name", r.param("name")},
                                        {"bytes", s.bytes},
                                        {"sha256", pylon::signing::to_hex(s.hash.finish())},
                                        {"max_chunk", s.max_chunk}});
        },
        {.max_body = 1ull << 30});
    return router;
}

}  // namespace

TEST_CASE("Streamed uploads reach the sink byte for byte, in large chunks") {
    TestServer server(upload_router());
    const auto body = pattern_bytes(64u << 20, 1);
    const auto expected = pylon::signing::to_hex(pylon::signing::sha256(body));

    TestClient c(server.port(), 60s);
    REQUIRE(c.send("PUT /blobs/big HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n"));
    REQUIRE(c.send(body));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 201);
    auto j = nlohmann::json::parse(r->body);
    CHECK(j["bytes"] == body.size());
    CHECK(j["sha256"] == expected);
    CHECK(j["max_chunk"] == 1u << 20);
    // The connection serves the next request only after recording the previous one.
    REQUIRE(c.send(pylon::test::get_request("/sync")));
    REQUIRE(c.read_response());
    CHECK(server.metrics.value("pylon_http_received_bytes_total") == double(body.size()));

    SECTION("chunked transfer-encoding with 100-continue") {
        const auto part = body.substr(0, 3u << 20);
        REQUIRE(
            c.send("PUT /blobs/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                   "Expect: 100-continue\r\n\r\n"));
        auto interim = c.read_response();
        REQUIRE(interim);
        REQUIRE(interim->status == 100);
        std::string wire;
        for (std::size_t off = 0; off < part.size(); off += 300000) {
            const auto piece = part.substr(off, 300000);
            char size[32];
            std::snprintf(size, sizeof(size), "%zx\r\n", piece.size());
            wire += size + piece + "\r\n";
        }
        wire += "0\r\n\r\n";
        REQUIRE(c.send(wire));
        r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 201);
        j = nlohmann::json::parse(r->body);
        CHECK(j["bytes"] == part.size());
        CHECK(j["sha256"] == pylon::signing::to_hex(pylon::signing::sha256(part)));
    }
}

TEST_CASE("Streamed routes: begin() refusing answers without reading, sink errors abort") {
    pylon::registry::http::Hooks hooks;
    hooks.error_response = [](const pylon::Error& e) {
        return Response::error(507, "insufficient_storage", e.message());
    };
    TestServer server(upload_router(), pylon::test::small_config(), hooks);

    SECTION("refused by begin(): no 100 Continue, the body is never read") {
        TestClient c(server.port());
        REQUIRE(
            c.send("PUT /blobs/forbidden HTTP/1.1\r\nHost: x\r\nContent-Length: 500000000\r\n"
                   "Expect: 100-continue\r\n\r\n"));
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 403);
        CHECK(r->header("connection") == "close");
        CHECK(c.closed_within(5s));
    }
    SECTION("a failing sink maps through error_response and closes the connection") {
        TestClient c(server.port());
        const auto body = pattern_bytes(5000, 2);
        REQUIRE(c.send("PUT /blobs/failing HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" +
                       body));
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 507);
        CHECK(nlohmann::json::parse(r->body)["error"]["message"] == "disk full");
        CHECK(c.closed_within(5s));
    }
    SECTION("above the route's max_body: 413") {
        TestClient c(server.port());
        REQUIRE(c.send("PUT /blobs/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000000\r\n\r\n"));
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 413);
    }
}

namespace {

std::shared_ptr<Router> file_router(const std::filesystem::path& file) {
    auto router = std::make_shared<Router>();
    router->add("GET", "/file", [file](Request& r) {
        UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd) return Response::error(500, "internal", "open");
        const auto size = std::filesystem::file_size(file);
        const auto offset = std::stoull(r.query_param("offset").value_or("0"));
        const auto length = std::stoull(r.query_param("length").value_or(std::to_string(size)));
        Response resp;
        resp.headers.set("Content-Type", "application/octet-stream");
        resp.file = FileBody{std::move(fd), offset, length};
        return resp;
    });
    router->add("GET", "/json", [](Request& r) { return Response::json(200, {{"tls", r.tls}}); });
    return router;
}

}  // namespace

TEST_CASE("File responses: sendfile on plain TCP, exact bytes and Content-Length") {
    TempDir dir;
    const auto content = pattern_bytes(48u << 20, 3);
    const auto file = dir.write("blob.bin", content);
    TestServer server(file_router(file));

    TestClient c(server.port(), 60s);
    REQUIRE(c.send(pylon::test::get_request("/file")));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->header("content-length") == std::to_string(content.size()));
    CHECK(r->body == content);

    REQUIRE(c.send(pylon::test::get_request("/file?offset=1000&length=123457")));
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->body == content.substr(1000, 123457));

    REQUIRE(c.send("HEAD /file HTTP/1.1\r\nHost: x\r\n\r\n"));
    r = c.read_response(true);
    REQUIRE(r);
    CHECK(r->header("content-length") == std::to_string(content.size()));
    REQUIRE(c.send(pylon::test::get_request("/file?offset=5&length=3")));
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->body == content.substr(5, 3));

    const auto out = dir / "curl.out";
    const auto curl = pylon::test::run_process(
        {"curl", "-sS", "-o", out.string(), "-w", "%{http_code} %{size_download}",
         "http://127.0.0.1:" + std::to_string(server.port()) + "/file"});
    REQUIRE(curl.exit_code == 0);
    CHECK(curl.out == "200 " + std::to_string(content.size()));
    CHECK(pylon::test::read_all(out) == content);

    SECTION("a file shorter than announced aborts the connection") {
        TestClient d(server.port());
        REQUIRE(d.send(pylon::test::get_request("/file?offset=0&length=" +
                                                std::to_string(content.size() + 10))));
        CHECK_FALSE(d.read_response());
    }
}

TEST_CASE("TLS listener: files and JSON over HTTPS, checked by curl") {
    TempDir dir;
    const auto cert = dir / "server.pem";
    const auto key = dir / "server.key";
    const auto made = pylon::test::run_process({"openssl", "req", "-x509", "-newkey", "ec",
                                                "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                                "-days", "2", "-subj", "/CN=localhost", "-addext",
                                                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                                                "-keyout", key.string(), "-out", cert.string()});
    REQUIRE(made.exit_code == 0);
    const auto content = pattern_bytes(5u << 20, 4);
    const auto file = dir.write("blob.bin", content);

    auto config = pylon::test::small_config();
    config.tls = pylon::registry::http::TlsConfig{cert, key};
    TestServer server(file_router(file), config);
    const auto base = "https://127.0.0.1:" + std::to_string(server.port());

    const auto out = dir / "tls.out";
    auto curl = pylon::test::run_process({"curl", "-sS", "--cacert", cert.string(), "-o",
                                          out.string(), "-w", "%{http_code}", base + "/file"});
    REQUIRE(curl.exit_code == 0);
    CHECK(curl.out == "200");
    CHECK(pylon::test::read_all(out) == content);

    curl = pylon::test::run_process(
        {"curl", "-sS", "--cacert", cert.string(), base + "/json", base + "/json"});
    REQUIRE(curl.exit_code == 0);
    CHECK(curl.out == R"({"tls":true}{"tls":true})");

    SECTION("TLS 1.1 is refused") {
        curl = pylon::test::run_process({"curl", "-sS", "--cacert", cert.string(), "--tlsv1.1",
                                         "--tls-max", "1.1", base + "/json"});
        CHECK(curl.exit_code != 0);
    }
    SECTION("plain HTTP to the TLS port gets no HTTP answer") {
        TestClient c(server.port(), 5s);
        REQUIRE(c.send(pylon::test::get_request("/json")));
        CHECK_FALSE(c.read_response());
    }

    SECTION("a bad key file is an Error at create()") {
        auto bad = pylon::test::small_config();
        bad.tls = pylon::registry::http::TlsConfig{cert, dir / "missing.key"};
        auto s = pylon::registry::http::Server::create(bad, file_router(file));
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().code() == pylon::registry::http::Errc::tls_config);
    }
}

// Throughput over loopback, run by hand: registry_tests "[.perf]". A 2 GiB sparse file (page
// cache speed, so the network path is what is measured) downloaded and uploaded by curl.
TEST_CASE("Throughput of 2 GiB downloads (sendfile) and uploads (sink)", "[.perf]") {
    TempDir dir;
    const auto file = dir / "big.bin";
    { std::ofstream out(file, std::ios::binary); }
    std::filesystem::resize_file(file, 2ull << 30);
    auto router = file_router(file);
    router->add_streamed(
        "PUT", "/sink", [](Request&) -> StreamStart { return std::make_unique<HashingSink>(); },
        [](Request&, std::unique_ptr<BodySink> sink) {
            return Response::text(200, std::to_string(static_cast<HashingSink&>(*sink).bytes));
        });
    TestServer server(router);
    const auto base = "http://127.0.0.1:" + std::to_string(server.port());
    auto down = pylon::test::run_process({"curl", "-sS", "-o", "/dev/null", "-w",
                                          "%{size_download} %{speed_download}", base + "/file"});
    REQUIRE(down.exit_code == 0);
    WARN("download: bytes, bytes/s = " << down.out);
    auto up = pylon::test::run_process({"curl", "-sS", "-T", file.string(), "-w",
                                        " %{size_upload} %{speed_upload}", base + "/sink"});
    REQUIRE(up.exit_code == 0);
    WARN("upload (SHA-256 in the sink): body, bytes, bytes/s = " << up.out);
}
