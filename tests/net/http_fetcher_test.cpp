// HttpFetcher against a real server on 127.0.0.1 (LocalHttpServer): statuses, redirects, size
// limits with and without Content-Length, timeouts, refused connections, and HTTPS certificate
// checks with certificates made by the openssl CLI.
#include "pylon/net/http_fetcher.h"

#include <catch2/catch.hpp>

#include <fstream>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "local_http_server.h"
#include "process.h"
#include "pylon/net/url.h"
#include "temp_dir.h"

using pylon::net::HttpFetcher;
using pylon::net::HttpFetcherConfig;
using pylon::signing::tuf::Errc;
using pylon::test::CannedResponse;
using pylon::test::LocalHttpServer;
using pylon::test::TempDir;

namespace {

std::unique_ptr<HttpFetcher> make_fetcher(HttpFetcherConfig config = {}) {
    auto fetcher = HttpFetcher::create(std::move(config));
    REQUIRE(fetcher.ok());
    return std::move(fetcher).value();
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// A port on 127.0.0.1 that nothing listens on (bound, read, closed).
std::uint16_t unused_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    ::close(fd);
    return ntohs(addr.sin_port);
}

}  // namespace

TEST_CASE("HttpFetcher gets a 200 body") {
    LocalHttpServer server;
    server.route("/metadata/1.root.json", LocalHttpServer::ok("{\"signed\":{}}"));
    auto fetcher = make_fetcher();
    auto body = fetcher->fetch(server.url("/metadata/1.root.json"), 1024);
    REQUIRE(body.ok());
    CHECK(pylon::to_string(*body) == "{\"signed\":{}}");
    CHECK(server.requests() == std::vector<std::string>{"/metadata/1.root.json"});

    SECTION("a body of exactly max_length is accepted") {
        auto exact = fetcher->fetch(server.url("/metadata/1.root.json"), 13);
        REQUIRE(exact.ok());
        CHECK(exact->size() == 13);
    }
    SECTION("an empty body") {
        server.route("/empty", LocalHttpServer::ok(""));
        auto empty = fetcher->fetch(server.url("/empty"), 0);
        REQUIRE(empty.ok());
        CHECK(empty->empty());
    }
}

TEST_CASE("HttpFetcher reads chunked and close-delimited bodies") {
    LocalHttpServer server;
    CannedResponse chunked;
    chunked.head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    chunked.body = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    server.route("/chunked", chunked);
    CannedResponse unframed;
    unframed.head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
    unframed.body = "until the end";
    server.route("/unframed", unframed);
    auto fetcher = make_fetcher();

    auto a = fetcher->fetch(server.url("/chunked"), 100);
    REQUIRE(a.ok());
    CHECK(pylon::to_string(*a) == "hello world");
    auto b = fetcher->fetch(server.url("/unframed"), 100);
    REQUIRE(b.ok());
    CHECK(pylon::to_string(*b) == "until the end");
}

TEST_CASE("HttpFetcher fails on non-200 statuses, naming the URL and the status") {
    LocalHttpServer server;
    server.route("/gone", LocalHttpServer::status(410, "Gone", "gone"));
    auto fetcher = make_fetcher();

    auto missing = fetcher->fetch(server.url("/2.root.json"), 1024);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code() == Errc::fetch_failed);
    CHECK(contains(missing.error().message(), server.url("/2.root.json")));
    CHECK(contains(missing.error().message(), "404"));

    auto gone = fetcher->fetch(server.url("/gone"), 1024);
    REQUIRE_FALSE(gone.ok());
    CHECK(gone.error().code() == Errc::fetch_failed);
    CHECK(contains(gone.error().message(), "410"));

    SECTION("a 404 with a huge error page is still fetch_failed, not too_large") {
        server.route("/big404", LocalHttpServer::status(404, "Not Found", std::string(5000, 'e')));
        auto r = fetcher->fetch(server.url("/big404"), 10);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == Errc::fetch_failed);
    }
}

TEST_CASE("HttpFetcher refuses bodies larger than max_length") {
    LocalHttpServer server;
    auto fetcher = make_fetcher();

    SECTION("Content-Length above the limit is refused before the body is read") {
        CannedResponse huge;
        huge.head = "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n";
        huge.body = "abc";
        server.route("/huge", huge);
        auto r = fetcher->fetch(server.url("/huge"), 1024);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == Errc::too_large);
        CHECK(contains(r.error().message(), server.url("/huge")));
    }
    SECTION("one byte over the limit with Content-Length") {
        server.route("/over", LocalHttpServer::ok(std::string(1025, 'a')));
        auto r = fetcher->fetch(server.url("/over"), 1024);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == Errc::too_large);
    }
    SECTION("an endless chunked body") {
        CannedResponse endless;
        endless.head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        endless.repeat = "1000\r\n" + std::string(0x1000, 'z') + "\r\n";
        server.route("/endless", endless);
        auto r = fetcher->fetch(server.url("/endless"), 100'000);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == Errc::too_large);
    }
    SECTION("an endless body without a length (ends at close, which never comes)") {
        CannedResponse endless;
        endless.head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
        endless.repeat = std::string(64 * 1024, 'y');
        server.route("/endless", endless);
        auto r = fetcher->fetch(server.url("/endless"), 100'000);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == Errc::too_large);
    }
}

TEST_CASE("HttpFetcher follows a few redirects, and no more") {
    LocalHttpServer server;
    auto redirect = [](const std::string& to) {
        CannedResponse r;
        r.head = "HTTP/1.1 302 Found\r\nLocation: " + to + "\r\nContent-Length: 0\r\n\r\n";
        return r;
    };
    server.route("/a", redirect("/b"));
    server.route("/b", redirect(server.url("/dir/c")));
    server.route("/dir/c", redirect("d?x=1"));
    server.route("/dir/d?x=1", LocalHttpServer::ok("landed"));
    server.route("/loop", redirect("/loop"));
    server.route("/nowhere", redirect("ftp://example.com/x"));
    auto fetcher = make_fetcher();

    auto r = fetcher->fetch(server.url("/a"), 100);
    REQUIRE(r.ok());
    CHECK(pylon::to_string(*r) == "landed");
    CHECK(server.requests() == std::vector<std::string>{"/a", "/b", "/dir/c", "/dir/d?x=1"});

    auto loop = fetcher->fetch(server.url("/loop"), 100);
    REQUIRE_FALSE(loop.ok());
    CHECK(loop.error().code() == Errc::fetch_failed);
    CHECK(contains(loop.error().message(), "redirects"));

    auto bad = fetcher->fetch(server.url("/nowhere"), 100);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code() == Errc::fetch_failed);
}

TEST_CASE("HttpFetcher reports a refused connection as fetch_failed") {
    const std::string url = "http://127.0.0.1:" + std::to_string(unused_port()) + "/root.json";
    auto fetcher = make_fetcher();
    auto r = fetcher->fetch(url, 100);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == Errc::fetch_failed);
    CHECK(contains(r.error().message(), url));
}

TEST_CASE("HttpFetcher times out on a server that stalls") {
    LocalHttpServer server;
    CannedResponse slow = LocalHttpServer::ok("late");
    slow.delay_before_body = std::chrono::milliseconds(3000);
    server.route("/slow", slow);
    HttpFetcherConfig config;
    config.read_timeout = std::chrono::milliseconds(300);
    auto fetcher = make_fetcher(config);
    const auto start = std::chrono::steady_clock::now();
    auto r = fetcher->fetch(server.url("/slow"), 100);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == Errc::fetch_failed);
    CHECK(contains(r.error().message(), "timed out"));
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(2500));
}

TEST_CASE("HttpFetcher rejects malformed URLs as fetch_failed") {
    auto fetcher = make_fetcher();
    for (const std::string url : {"ftp://x/y", "not a url", "http:///path", "http://h:99999/"}) {
        auto r = fetcher->fetch(url, 100);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == Errc::fetch_failed);
    }
}

TEST_CASE("parse_url and resolve_url") {
    using pylon::net::parse_url;
    using pylon::net::resolve_url;
    auto u = parse_url("HTTPS://Example.COM:8443/a/b?q=1#frag");
    REQUIRE(u.ok());
    CHECK(u->scheme == "https");
    CHECK(u->host == "example.com");
    CHECK(u->port == 8443);
    CHECK(u->target == "/a/b?q=1");
    CHECK(u->to_string() == "https://example.com:8443/a/b?q=1");
    auto v6 = parse_url("http://[::1]:8080");
    REQUIRE(v6.ok());
    CHECK(v6->host == "::1");
    CHECK(v6->target == "/");
    CHECK(v6->authority() == "[::1]:8080");
    CHECK(parse_url("http://127.0.0.1/x")->authority() == "127.0.0.1");
    CHECK_FALSE(parse_url("http://user@host/").ok());
    CHECK_FALSE(parse_url("http://host/a b").ok());

    CHECK(resolve_url(*u, "/x")->to_string() == "https://example.com:8443/x");
    CHECK(resolve_url(*u, "c/../d")->to_string() == "https://example.com:8443/a/d");
    CHECK(resolve_url(*u, "//other/p")->to_string() == "https://other/p");
    CHECK(resolve_url(*u, "http://h2/z")->to_string() == "http://h2/z");
}

// HTTPS: a self-signed certificate made by the openssl CLI, trusted through `ca_file`.
TEST_CASE("HttpFetcher over HTTPS verifies the chain and the host name") {
    TempDir dir;
    auto make_cert = [&](const std::string& name, const std::string& san) {
        const auto r = pylon::test::run_process(
            {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "2", "-subj", "/CN=" + name, "-addext", "subjectAltName=" + san,
             "-keyout", (dir / (name + ".key")).string(), "-out",
             (dir / (name + ".pem")).string()});
        REQUIRE(r.exit_code == 0);
        return pylon::test::TlsIdentity{dir / (name + ".pem"), dir / (name + ".key")};
    };
    const auto good = make_cert("localhost", "DNS:localhost,IP:127.0.0.1");
    LocalHttpServer server(good);
    server.route("/root.json", LocalHttpServer::ok("secure"));

    HttpFetcherConfig trusting;
    trusting.ca_file = good.cert_file;
    auto fetcher = make_fetcher(trusting);
    auto by_ip = fetcher->fetch(server.url("/root.json"), 100);
    REQUIRE(by_ip.ok());
    CHECK(pylon::to_string(*by_ip) == "secure");
    auto by_name = fetcher->fetch(server.url("/root.json", "localhost"), 100);
    REQUIRE(by_name.ok());
    CHECK(pylon::to_string(*by_name) == "secure");

    SECTION("a certificate the trust store does not hold is refused") {
        auto system_store = make_fetcher();
        auto r = system_store->fetch(server.url("/root.json"), 100);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == Errc::fetch_failed);
        CHECK(contains(r.error().message(), "TLS handshake"));
    }
    SECTION("a trusted certificate for another name is refused") {
        const auto other = make_cert("other.example", "DNS:other.example");
        LocalHttpServer impostor(other);
        impostor.route("/root.json", LocalHttpServer::ok("evil"));
        HttpFetcherConfig trusts_other;
        trusts_other.ca_file = other.cert_file;
        auto r = make_fetcher(trusts_other)->fetch(impostor.url("/root.json"), 100);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == Errc::fetch_failed);
    }
    SECTION("a missing ca_file is refused at creation") {
        HttpFetcherConfig missing;
        missing.ca_file = dir / "nope.pem";
        CHECK_FALSE(HttpFetcher::create(missing).ok());
    }
    SECTION("a ca_file that holds no certificate is refused at the first https request") {
        // The TLS context is made lazily (a plain-HTTP client never initialises it).
        HttpFetcherConfig garbage;
        garbage.ca_file = dir / "garbage.pem";
        { std::ofstream(garbage.ca_file) << "not a certificate\n"; }
        auto lazy = HttpFetcher::create(garbage);
        REQUIRE(lazy.ok());
        auto r = (*lazy)->fetch(server.url("/root.json"), 100);
        REQUIRE_FALSE(r.ok());
        CHECK_THAT(r.error().what(), Catch::Contains("cannot set up TLS certificate verification"));
    }
}
