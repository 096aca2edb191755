// The server's response framing (http_wire.h) and an exchange's flow control and disconnect
// state (exchange_flow.h): unit tests of their logic, no sockets.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "exchange_flow.h"
#include "http_wire.h"

using namespace pylon::runtime_server;
using namespace std::chrono_literals;

TEST_CASE("wire: response heads, with a length or chunked", "[runtime_server]") {
    CHECK(wire::response_head(200, "application/json", 17, false, {}, false) ==
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n"
          "Connection: keep-alive\r\n\r\n");
    CHECK(wire::response_head(503, "text/event-stream", std::nullopt, true,
                              {{"Retry-After", "1"}, {"X-Id", "a"}}, true) ==
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/event-stream\r\n"
          "Transfer-Encoding: chunked\r\nRetry-After: 1\r\nX-Id: a\r\nConnection: close\r\n\r\n");
    // HTTP/1.0 streaming: neither a length nor chunked (the body ends with the connection).
    CHECK(wire::response_head(200, "text/plain", std::nullopt, false, {}, true) ==
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n");
    // CR and LF never reach the head: no field can be injected.
    CHECK(wire::response_head(200, "text/plain\r\nX-Evil: 1", 0, false,
                              {{"X-A\n", "b\r\nSet-Cookie: c"}}, false) ==
          "HTTP/1.1 200 OK\r\nContent-Type: text/plainX-Evil: 1\r\nContent-Length: 0\r\n"
          "X-A: bSet-Cookie: c\r\nConnection: keep-alive\r\n\r\n");
}

TEST_CASE("wire: chunks and lower case", "[runtime_server]") {
    CHECK(wire::chunk_frame("hello") == "5\r\nhello\r\n");
    CHECK(wire::chunk_frame(std::string(300, 'x')) == "12c\r\n" + std::string(300, 'x') + "\r\n");
    CHECK(wire::kLastChunk == "0\r\n\r\n");
    CHECK(wire::lower("Content-TYPE 100-Continue") == "content-type 100-continue");
}

TEST_CASE("exchange flow: reserve waits for written bytes, then times out", "[runtime_server]") {
    ExchangeFlow flow(10, 2000ms);
    CHECK(flow.reserve(8) == ExchangeFlow::Reserve::ok);  // pending 8 <= 10 before
    CHECK(flow.reserve(8) == ExchangeFlow::Reserve::ok);  // pending 16 now
    std::atomic<bool> released{false};
    std::thread writer([&] {
        std::this_thread::sleep_for(100ms);
        released = true;
        flow.written(12);  // pending 4
    });
    CHECK(flow.reserve(1) == ExchangeFlow::Reserve::ok);  // waited for the write
    CHECK(released);
    writer.join();

    ExchangeFlow slow(0, 50ms);
    CHECK(slow.reserve(1) == ExchangeFlow::Reserve::ok);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(slow.reserve(1) == ExchangeFlow::Reserve::timed_out);
    CHECK(std::chrono::steady_clock::now() - t0 >= 50ms);
}

TEST_CASE("exchange flow: the client leaving", "[runtime_server]") {
    ExchangeFlow flow(0, 5000ms);
    int calls = 0;
    flow.on_disconnect([&] { ++calls; });
    flow.on_disconnect([&] { ++calls; });
    CHECK_FALSE(flow.gone());
    CHECK(flow.reserve(1) == ExchangeFlow::Reserve::ok);
    std::thread leaver([&] {
        std::this_thread::sleep_for(50ms);
        flow.mark_gone();
    });
    CHECK(flow.reserve(1) == ExchangeFlow::Reserve::gone);  // woken, not timed out
    leaver.join();
    CHECK(flow.gone());
    CHECK(calls == 2);
    flow.mark_gone();  // once only
    CHECK(calls == 2);
    flow.on_disconnect([&] { ++calls; });  // already gone: at once
    CHECK(calls == 3);

    // A complete response: callbacks are dropped, a later leave runs none.
    ExchangeFlow done(0, 5000ms);
    int late = 0;
    done.on_disconnect([&] { ++late; });
    done.mark_complete();
    done.mark_gone();
    CHECK(late == 0);
}
