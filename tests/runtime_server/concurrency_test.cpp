// One worker, a FIFO queue: requests are served in arrival order, a full queue is refused, a
// client that disconnects (streaming, waiting for a JSON answer, or still queued) has its
// generation cancelled and frees the worker at once, and stop() answers queued requests.
//
// stories260K decodes thousands of tokens per second, so these servers sleep a few
// milliseconds per generated token (ServeConfig::test_token_delay) to make a generation last
// long enough to observe.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "server_fixture.h"

using nlohmann::json;
using pylon::test::HttpReply;
using pylon::test::HttpTestClient;
using pylon::test::TestServer;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

pylon::runtime_server::ServeConfig slow_config(std::size_t max_queue = 16) {
    auto c = pylon::test::test_config();
    c.test_token_delay = 5ms;
    c.max_queue = max_queue;
    return c;
}

std::string completion(int max_tokens, bool stream = false) {
    return json{{"prompt", "Once upon a time"},
                {"max_tokens", max_tokens},
                {"temperature", 0},
                {"stream", stream}}
        .dump();
}

// Polls /metrics until `series` has `value` (10 s at most).
bool wait_metric(const TestServer& t, const std::string& series, double value) {
    const auto until = Clock::now() + 10s;
    while (Clock::now() < until) {
        if (t.metric(series) == value) return true;
        std::this_thread::sleep_for(5ms);
    }
    return false;
}

// Sends a long streamed request and waits until the worker has started it.
std::unique_ptr<HttpTestClient> start_long_stream(const TestServer& t, int max_tokens) {
    auto c = std::make_unique<HttpTestClient>(t.port());
    REQUIRE(c->send_request("POST", "/v1/completions", completion(max_tokens, true)));
    auto head = c->read_head();
    REQUIRE(head.has_value());
    REQUIRE(head->status == 200);
    REQUIRE(c->read_chunk().has_value());  // the first token's chunk
    return c;
}

}  // namespace

TEST_CASE("concurrency: queued requests are served first in, first out", "[runtime_server]") {
    TestServer t(slow_config());
    auto busy = start_long_stream(t, 100);  // ~0.5 s of work ahead of the others

    // Enqueue B, C, D, each only after the previous one is known to be waiting.
    constexpr int kWaiting = 3;
    std::vector<std::unique_ptr<HttpTestClient>> clients;
    for (int i = 0; i < kWaiting; ++i) {
        clients.push_back(std::make_unique<HttpTestClient>(t.port()));
        REQUIRE(clients.back()->send_request("POST", "/v1/completions", completion(10)));
        REQUIRE(wait_metric(t, "pylon_serve_queue_depth", i + 1));
    }
    CHECK(t.metric("pylon_serve_active_requests") == 1);

    std::mutex mu;
    std::vector<int> order;
    std::vector<std::thread> readers;
    for (int i = 0; i < kWaiting; ++i) {
        readers.emplace_back([&, i] {
            auto head = clients[static_cast<std::size_t>(i)]->read_head();
            if (head && head->status == 200) {
                std::lock_guard lock(mu);
                order.push_back(i);
            }
        });
    }
    auto rest = busy->read_body(HttpReply{200, {{"transfer-encoding", "chunked"}}, {}});
    REQUIRE(rest.has_value());
    CHECK(rest->find("data: [DONE]") != std::string::npos);
    for (auto& th : readers) th.join();
    CHECK(order == std::vector<int>{0, 1, 2});
    CHECK(wait_metric(t, "pylon_serve_queue_depth", 0));
}

TEST_CASE("concurrency: a full queue is refused with 503 queue_full", "[runtime_server]") {
    TestServer t(slow_config(1));
    auto busy = start_long_stream(t, 100);
    HttpTestClient waiting(t.port());
    REQUIRE(waiting.send_request("POST", "/v1/completions", completion(2)));
    REQUIRE(wait_metric(t, "pylon_serve_queue_depth", 1));

    const HttpReply r = t.call("POST", "/v1/completions", completion(2));
    CHECK(r.status == 503);
    CHECK(r.headers.at("retry-after") == "1");
    const json e = json::parse(r.body)["error"];
    CHECK(e["code"] == "queue_full");
    CHECK(e["type"] == "server_error");

    auto ok = waiting.read_head();  // the queued one is still served
    REQUIRE(ok.has_value());
    CHECK(ok->status == 200);
}

TEST_CASE("concurrency: a streaming client that disconnects cancels its generation",
          "[runtime_server]") {
    TestServer t(slow_config());
    auto dropped = start_long_stream(t, 400);  // would take ~2 s
    const auto t0 = Clock::now();
    dropped->close();

    // The next request is served at once, not after the abandoned one's 400 tokens.
    const HttpReply r = t.call("POST", "/v1/completions", completion(3));
    const auto waited = Clock::now() - t0;
    CHECK(r.status == 200);
    CHECK(waited < 1s);
    CHECK(wait_metric(t, "pylon_serve_requests_cancelled_total", 1));
    CHECK(t.metric("pylon_serve_generated_tokens_total") < 100);
}

TEST_CASE("concurrency: a client waiting for a JSON answer that disconnects cancels it",
          "[runtime_server]") {
    TestServer t(slow_config());
    {
        HttpTestClient c(t.port());
        REQUIRE(c.send_request("POST", "/v1/completions", completion(400)));
        REQUIRE(wait_metric(t, "pylon_serve_active_requests", 1));
        std::this_thread::sleep_for(50ms);
    }  // closed while generating
    const auto t0 = Clock::now();
    REQUIRE(wait_metric(t, "pylon_serve_requests_cancelled_total", 1));
    CHECK(Clock::now() - t0 < 1s);
    CHECK(t.metric(R"(pylon_serve_requests_total{route="/v1/completions",status="499"})") == 1);
    CHECK(t.post("/v1/completions", {{"prompt", "Once"}, {"max_tokens", 2}}).status == 200);
}

TEST_CASE("concurrency: a queued request whose client left is skipped", "[runtime_server]") {
    TestServer t(slow_config());
    auto busy = start_long_stream(t, 60);
    {
        HttpTestClient c(t.port());
        REQUIRE(c.send_request("POST", "/v1/completions", completion(200)));
        REQUIRE(wait_metric(t, "pylon_serve_queue_depth", 1));
    }  // gone while queued
    auto rest = busy->read_body(HttpReply{200, {{"transfer-encoding", "chunked"}}, {}});
    REQUIRE(rest.has_value());
    REQUIRE(wait_metric(t, "pylon_serve_requests_cancelled_total", 1));
    REQUIRE(wait_metric(t, "pylon_serve_active_requests", 0));
    // Only the first request generated anything.
    CHECK(t.metric("pylon_serve_generations_total") == 1);
}

TEST_CASE("concurrency: stop() answers queued requests 503 and finishes the running one",
          "[runtime_server]") {
    TestServer t(slow_config());
    auto busy = start_long_stream(t, 60);
    HttpTestClient waiting(t.port());
    REQUIRE(waiting.send_request("POST", "/v1/completions", completion(2)));
    REQUIRE(wait_metric(t, "pylon_serve_queue_depth", 1));

    std::thread stopper([&] { t.server->stop(); });
    auto refused = waiting.read_head();
    REQUIRE(refused.has_value());
    CHECK(refused->status == 503);
    auto body = waiting.read_body(*refused);
    REQUIRE(body.has_value());
    CHECK(json::parse(*body)["error"]["code"] == "shutting_down");
    // The running stream is completed, not cut.
    auto rest = busy->read_body(HttpReply{200, {{"transfer-encoding", "chunked"}}, {}});
    REQUIRE(rest.has_value());
    CHECK(rest->find("data: [DONE]") != std::string::npos);
    stopper.join();
    HttpTestClient after(t.port());
    CHECK_FALSE(after.connected());
}
