// Server over a real loopback socket, driven by a raw client: routing, JSON errors, keep-alive,
// pipelining, body limits, chunked bodies, 100-continue, malformed and unsafe requests,
// timeouts, HEAD, graceful stop, concurrency and the metrics it records.
#include "pylon/registry/http/server.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "http_server_fixture.h"
#include "http_test_client.h"
#include "pylon/registry/http/errors.h"

using namespace std::chrono_literals;
using pylon::registry::http::Request;
using pylon::registry::http::Response;
using pylon::registry::http::Router;
using pylon::test::get_request;
using pylon::test::TestClient;
using pylon::test::TestServer;
using Json = nlohmann::json;

namespace {

std::shared_ptr<Router> demo_router() {
    auto router = std::make_shared<Router>();
    router->add("GET", "/hello/{name}", [](Request& r) {
        return Response::json(200,
                              {{"hello", r.param("name")}, {"q", r.query_param("q").value_or("")}});
    });
    router->add("POST", "/echo",
                [](Request& r) { return Response::text(200, r.body, "application/octet-stream"); },
                {.max_body = 64});
    router->add("GET", "/files/{path...}",
                [](Request& r) { return Response::text(200, r.param("path")); });
    router->add("GET", "/boom",
                [](Request&) -> Response { throw std::runtime_error("secret internal detail"); });
    router->add("GET", "/nothing", [](Request&) { return Response::empty(204); });
    return router;
}

Json error_of(const pylon::test::RawResponse& r) {
    CHECK(r.header("content-type") == "application/json");
    auto j = Json::parse(r.body);
    REQUIRE(j.contains("error"));
    return j["error"];
}

}  // namespace

TEST_CASE("Server routes with parameters and answers 404/405 with JSON errors") {
    TestServer server(demo_router());
    TestClient c(server.port());

    REQUIRE(c.send(get_request("/hello/w%C3%B6rld?q=a+b%26c")));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(Json::parse(r->body) == Json{{"hello", "w\xC3\xB6rld"}, {"q", "a b&c"}});

    REQUIRE(c.send(get_request("/nope")));
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 404);
    CHECK(error_of(*r)["code"] == "not_found");

    REQUIRE(c.send("DELETE /hello/x HTTP/1.1\r\nHost: x\r\n\r\n"));
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 405);
    CHECK(r->header("allow") == "GET, HEAD");
    CHECK(error_of(*r)["code"] == "method_not_allowed");

    REQUIRE(c.send(get_request("/boom")));
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 500);
    CHECK(error_of(*r)["code"] == "internal");
    CHECK(r->body.find("secret") == std::string::npos);

    REQUIRE(c.send(get_request("/nothing")));
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 204);
    CHECK(r->header("content-length").empty());

    // Still the same connection: every response above kept it alive.
    REQUIRE(c.send(get_request("/files/a/b/c.txt")));
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->body == "a/b/c.txt");

    server.server->stop();  // every request is logged once stop() returns
    const auto log = server.log();
    REQUIRE(log.size() == 6);
    CHECK(log[0].path == "/hello/w\xC3\xB6rld");  // never the query string
    CHECK(log[0].route == "/hello/{name}");
    CHECK(log[1].status == 404);
}

TEST_CASE("Server keeps connections alive, answers pipelined requests in order") {
    TestServer server(demo_router());
    TestClient c(server.port());
    REQUIRE(c.send(get_request("/hello/a") + get_request("/hello/b") +
                   "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz" +
                   get_request("/hello/c")));
    for (const auto* expected : {"a", "b", "xyz", "c"}) {
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 200);
        if (std::string(expected) == "xyz") {
            CHECK(r->body == "xyz");
        } else {
            CHECK(Json::parse(r->body)["hello"] == expected);
        }
        CHECK(r->header("connection") != "close");
    }

    SECTION("Connection: close is honoured") {
        REQUIRE(c.send(get_request("/hello/d", "Connection: close\r\n")));
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->header("connection") == "close");
        CHECK(c.closed_within(5s));
    }
    SECTION("HTTP/1.0 closes unless it asks for keep-alive") {
        REQUIRE(c.send("GET /hello/e HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->header("connection") == "keep-alive");
        REQUIRE(c.send("GET /hello/f HTTP/1.0\r\n\r\n"));
        r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(r->header("content-length") == std::to_string(r->body.size()));
        CHECK(c.closed_within(5s));
    }
}

TEST_CASE("Server limits bodies: 413 before reading, and for chunked bodies that pass it") {
    TestServer server(demo_router());
    SECTION("announced length above max_body") {
        TestClient c(server.port());
        REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\n\r\n"));
        auto r = c.read_response();  // answered although no body byte was sent
        REQUIRE(r);
        CHECK(r->status == 413);
        CHECK(error_of(*r)["code"] == "payload_too_large");
        CHECK(r->header("connection") == "close");
        CHECK(c.closed_within(5s));
    }
    SECTION("chunked body passing max_body") {
        TestClient c(server.port());
        const std::string big(100, 'x');
        REQUIRE(
            c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "64\r\n" +
                   big + "\r\n0\r\n\r\n"));
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 413);
        CHECK(c.closed_within(5s));
    }
    SECTION("chunked body within the limit, in several chunks") {
        TestClient c(server.port());
        REQUIRE(
            c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5\r\nhello\r\n"));
        REQUIRE(c.send("6;ext=1\r\n world\r\n0\r\n\r\n"));
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(r->body == "hello world");
        REQUIRE(c.send(get_request("/hello/again")));  // the connection is still usable
        r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 200);
    }
}

TEST_CASE("Server sends 100 Continue before reading an expected body") {
    TestServer server(demo_router());
    TestClient c(server.port());
    REQUIRE(
        c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
               "Expect: 100-continue\r\n\r\n"));
    auto interim = c.read_response();
    REQUIRE(interim);
    CHECK(interim->status == 100);
    REQUIRE(c.send("data"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "data");

    SECTION("no 100 Continue when the request is refused anyway") {
        TestClient d(server.port());
        REQUIRE(
            d.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n"
                   "Expect: 100-continue\r\n\r\n"));
        auto refused = d.read_response();
        REQUIRE(refused);
        CHECK(refused->status == 413);
    }
}

TEST_CASE("Server refuses malformed requests and unsafe paths with 400") {
    TestServer server(demo_router());
    for (const std::string target :
         {"/files/../etc/passwd", "/files/a/%2e%2E/b", "/files/a%2Fb", "/files/a%2fb",
          "/files/a%00b", "/files/%zz", "/files/%4", "/files/./x", "/files/a/..",
          "http://example.com/files/a", "*"}) {
        INFO(target);
        TestClient c(server.port());
        REQUIRE(c.send(get_request(target)));
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 400);
        CHECK(error_of(*r)["code"] == "bad_request");
    }
    for (const std::string& raw :
         {std::string("GARBAGE\r\n\r\n"), std::string("GET /hello/x HTTPS/1.1\r\n\r\n"),
          std::string("GET /hello/x HTTP/1.1\r\nBad Header\r\n\r\n"),
          std::string(
              "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc")}) {
        INFO(raw);
        TestClient c(server.port());
        REQUIRE(c.send(raw));
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 400);
        CHECK(c.closed_within(5s));
    }
    SECTION("a head above max_header_bytes gets 431") {
        TestClient c(server.port());
        REQUIRE(c.send(get_request("/hello/x", "X-Big: " + std::string(20000, 'a') + "\r\n")));
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 431);
        CHECK(error_of(*r)["code"] == "headers_too_large");
    }
}

TEST_CASE("Server times out slow heads (408) and idle keep-alive connections") {
    auto config = pylon::test::small_config();
    config.header_timeout = 300ms;
    config.idle_timeout = 300ms;
    TestServer server(demo_router(), config);

    TestClient slow(server.port());
    REQUIRE(slow.send("GET /hello/x HTTP/1.1\r\nHost: x\r\n"));  // never finished
    const auto t0 = std::chrono::steady_clock::now();
    auto r = slow.read_response();
    REQUIRE(r);
    CHECK(r->status == 408);
    CHECK(error_of(*r)["code"] == "timeout");
    CHECK(slow.closed_within(5s));
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);

    TestClient idle(server.port());
    REQUIRE(idle.send(get_request("/hello/x")));
    REQUIRE(idle.read_response());
    CHECK(idle.closed_within(5s));

    TestClient silent(server.port());  // connects and never sends
    CHECK(silent.closed_within(5s));
}

TEST_CASE("Server answers HEAD with the GET headers and no body") {
    TestServer server(demo_router());
    TestClient c(server.port());
    REQUIRE(c.send(get_request("/hello/abc")));
    auto get = c.read_response();
    REQUIRE(get);
    REQUIRE(c.send("HEAD /hello/abc HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto head = c.read_response(true);
    REQUIRE(head);
    CHECK(head->status == 200);
    CHECK(head->header("content-length") == std::to_string(get->body.size()));
    CHECK(head->header("content-type") == "application/json");
    // No body bytes were sent: the next response parses cleanly.
    REQUIRE(c.send(get_request("/hello/next")));
    auto next = c.read_response();
    REQUIRE(next);
    CHECK(Json::parse(next->body)["hello"] == "next");
}

TEST_CASE("Server stop lets an in-flight request finish and closes idle connections") {
    std::promise<void> entered;
    std::promise<void> release;
    auto released = release.get_future().share();
    auto router = demo_router();
    router->add("GET", "/slow", [&entered, released](Request&) {
        entered.set_value();
        released.wait();
        return Response::text(200, "finished");
    });
    TestServer server(router);

    TestClient idle(server.port());
    REQUIRE(idle.send(get_request("/hello/x")));
    REQUIRE(idle.read_response());

    TestClient busy(server.port());
    REQUIRE(busy.send(get_request("/slow")));
    entered.get_future().wait();

    std::atomic<bool> stop_returned{false};
    std::thread stopper([&] {
        server.server->stop();
        stop_returned = true;
    });
    CHECK(idle.closed_within(5s));  // the idle keep-alive connection goes at once
    CHECK_FALSE(stop_returned);     // while the slow request is still running
    release.set_value();
    auto r = busy.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "finished");
    CHECK(r->header("connection") == "close");
    stopper.join();
    CHECK(stop_returned);
    CHECK_THROWS(TestClient(server.port()));  // no longer listening
    server.server->wait();                    // returns: stopped
}

TEST_CASE("Server serves many clients in parallel") {
    TestServer server(demo_router());
    constexpr int kClients = 16;
    constexpr int kRequests = 25;
    std::atomic<int> good{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kClients; ++t) {
        threads.emplace_back([&, t] {
            TestClient c(server.port());
            for (int i = 0; i < kRequests; ++i) {
                const auto name = std::to_string(t) + "-" + std::to_string(i);
                if (!c.send(get_request("/hello/" + name))) return;
                auto r = c.read_response();
                if (r && r->status == 200 && Json::parse(r->body)["hello"] == name) ++good;
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(good == kClients * kRequests);
    server.server->stop();  // metrics of the last responses are recorded by then
    CHECK(
        server.metrics.value("pylon_http_requests_total",
                             {{"method", "GET"}, {"route", "/hello/{name}"}, {"status", "200"}}) ==
        kClients * kRequests);
}

TEST_CASE("Server records Prometheus metrics, labelled by route pattern") {
    auto router = demo_router();
    TestServer* self = nullptr;
    router->add("GET", "/metrics", [&self](Request&) {
        return Response::text(200, self->metrics.render(), pylon::registry::Metrics::kContentType);
    });
    TestServer server(router);
    self = &server;
    TestClient c(server.port());
    REQUIRE(c.send(get_request("/hello/a") + get_request("/hello/b") + get_request("/nope")));
    for (int i = 0; i < 3; ++i) REQUIRE(c.read_response());
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"));
    REQUIRE(c.read_response());
    REQUIRE(c.send(get_request("/metrics")));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
    const auto& text = r->body;
    CHECK(text.find("# TYPE pylon_http_requests_total counter\n") != std::string::npos);
    CHECK(text.find("pylon_http_requests_total{method=\"GET\",route=\"/hello/{name}\","
                    "status=\"200\"} 2\n") != std::string::npos);
    CHECK(
        text.find("pylon_http_requests_total{method=\"GET\",route=\"none\",status=\"404\"} 1\n") !=
        std::string::npos);
    CHECK(text.find("pylon_http_request_duration_seconds_count{route=\"/hello/{name}\"} 2\n") !=
          std::string::npos);
    CHECK(text.find("pylon_http_connections_active 1\n") != std::string::npos);
    CHECK(server.metrics.value("pylon_http_received_bytes_total") == 5);
}

TEST_CASE("Server start reports an address it cannot bind") {
    TestServer first(demo_router());
    auto config = pylon::test::small_config();
    config.port = first.port();
    auto second = pylon::registry::http::Server::create(config, demo_router());
    REQUIRE(second.ok());
    auto started = (*second)->start();
    REQUIRE_FALSE(started.ok());
    CHECK(started.error().code() == pylon::registry::http::Errc::listen_failed);
    CHECK(started.error().message().find("127.0.0.1:" + std::to_string(first.port())) !=
          std::string::npos);
}

TEST_CASE("Server deferred routes answer later from any thread, without holding a worker") {
    using pylon::registry::http::Responder;
    // Parked responders, answered by the test; more of them than the 4 worker threads.
    std::mutex mutex;
    std::map<int, Responder> parked;  // by the request's number
    std::atomic<bool> stop_hook{false};
    auto router = std::make_shared<Router>();
    router->add_deferred("GET", "/wait/{n}", [&](Request& r, Responder responder) {
        if (r.param("n") == "now") {
            responder.send(Response::text(200, "at once"));
            return;
        }
        if (r.param("n") == "forgotten") return;  // dropped without an answer: 500
        std::lock_guard lock(mutex);
        parked.emplace(std::stoi(r.param("n")), std::move(responder));
    });
    router->add("GET", "/plain", [](Request&) { return Response::text(200, "plain"); });
    pylon::registry::http::Hooks hooks;
    hooks.on_stop = [&] {
        stop_hook = true;
        std::lock_guard lock(mutex);
        for (auto& [n, p] : parked) p.send(Response::text(200, "stopping"));
        parked.clear();
    };
    auto server = std::make_unique<TestServer>(router, pylon::test::small_config(), hooks);

    constexpr int kWaiting = 12;
    std::vector<std::unique_ptr<TestClient>> clients;
    for (int i = 0; i < kWaiting; ++i) {
        clients.push_back(std::make_unique<TestClient>(server->port()));
        REQUIRE(clients.back()->send(get_request("/wait/" + std::to_string(i))));
    }
    for (int i = 0; i < 100; ++i) {
        {
            std::lock_guard lock(mutex);
            if (parked.size() == kWaiting) break;
        }
        std::this_thread::sleep_for(10ms);
    }
    {
        std::lock_guard lock(mutex);
        REQUIRE(parked.size() == kWaiting);
    }
    // Every worker is free: other requests are answered while twelve wait.
    TestClient other(server->port());
    REQUIRE(other.send(get_request("/plain")));
    auto plain = other.read_response();
    REQUIRE(plain);
    CHECK(plain->body == "plain");
    REQUIRE(other.send(get_request("/wait/now")));
    auto now = other.read_response();
    REQUIRE(now);
    CHECK(now->body == "at once");
    REQUIRE(other.send(get_request("/wait/forgotten")));
    auto forgotten = other.read_response();
    REQUIRE(forgotten);
    CHECK(forgotten->status == 500);

    // Answered from this thread (directly) and through a worker; a second send is ignored.
    {
        std::lock_guard lock(mutex);
        parked.at(0).send(Response::text(200, "direct"));
        parked.at(0).send(Response::text(200, "twice"));
        parked.at(1).send_from_worker([] { return Response::text(200, "from a worker"); });
        CHECK(parked.at(1).sent());
        parked.erase(0);
        parked.erase(1);
    }
    auto first = clients[0]->read_response();
    REQUIRE(first);
    CHECK(first->body == "direct");
    auto second = clients[1]->read_response();
    REQUIRE(second);
    CHECK(second->body == "from a worker");
    // The connection carries the next request after a deferred answer.
    REQUIRE(clients[0]->send(get_request("/plain")));
    auto next = clients[0]->read_response();
    REQUIRE(next);
    CHECK(next->body == "plain");

    // Stopping calls on_stop first, which answers the ten still parked: the stop does not wait
    // out its 10 s grace period.
    const auto t0 = std::chrono::steady_clock::now();
    server->server->stop();
    CHECK(stop_hook);
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
    for (int i = 2; i < kWaiting; ++i) {
        auto r = clients[static_cast<std::size_t>(i)]->read_response();
        REQUIRE(r);
        CHECK(r->body == "stopping");
    }
}
