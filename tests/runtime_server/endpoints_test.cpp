// /health (503 while loading, 200 when ready), /v1/models, /metrics, and every refusal in
// OpenAI's error shape with its status code.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <nlohmann/json.hpp>
#include <string>

#include "server_fixture.h"

using nlohmann::json;
using pylon::test::HttpReply;
using pylon::test::HttpTestClient;
using pylon::test::TestServer;

namespace {

// Checks the OpenAI error shape and returns the error object.
json error_of(const HttpReply& r, int status) {
    CHECK(r.status == status);
    CHECK(r.headers.at("content-type") == "application/json");
    const json j = json::parse(r.body);
    REQUIRE(j.contains("error"));
    const json& e = j["error"];
    CHECK(e["message"].is_string());
    CHECK(!e["message"].get<std::string>().empty());
    CHECK(e["type"].is_string());
    CHECK(e.contains("param"));
    CHECK(e.contains("code"));
    return e;
}

}  // namespace

TEST_CASE("health: 503 loading until the model is loaded, then 200", "[runtime_server]") {
    std::promise<void> gate;
    auto released = gate.get_future().share();
    auto config = pylon::test::test_config();
    config.test_before_load = [released] { released.wait(); };
    TestServer t(config, false);

    HttpReply h = t.call("GET", "/health");
    CHECK(h.status == 503);
    CHECK(h.body == R"({"status":"loading"})");
    CHECK_FALSE(t.server->loaded());
    const json e = error_of(t.post("/v1/completions", {{"prompt", "x"}}), 503);
    CHECK(e["code"] == "model_loading");
    CHECK(e["type"] == "server_error");
    CHECK(t.metric("pylon_serve_model_loaded") == 0);

    gate.set_value();
    REQUIRE(t.server->wait_until_loaded().ok());
    h = t.call("GET", "/health");
    CHECK(h.status == 200);
    CHECK(h.body == R"({"status":"ok"})");
    CHECK(t.metric("pylon_serve_model_loaded") == 1);
}

TEST_CASE("health: a model that cannot be loaded is reported", "[runtime_server]") {
    auto config = pylon::test::test_config();
    config.model_path = std::string(PYLON_TEST_DATA) + "/runtime/no-such-model.gguf";
    TestServer t(config, false);
    CHECK_FALSE(t.server->wait_until_loaded().ok());
    const HttpReply h = t.call("GET", "/health");
    CHECK(h.status == 503);
    const json j = json::parse(h.body);
    CHECK(j["status"] == "error");
    CHECK(j["error"].get<std::string>().find("no-such-model.gguf") != std::string::npos);
}

TEST_CASE("models: the one model in OpenAI's list shape", "[runtime_server]") {
    auto config = pylon::test::test_config();
    config.model_id = "acme/stories";
    TestServer t(config);
    const HttpReply r = t.call("GET", "/v1/models");
    REQUIRE(r.status == 200);
    const json j = json::parse(r.body);
    CHECK(j["object"] == "list");
    REQUIRE(j["data"].size() == 1);
    CHECK(j["data"][0]["id"] == "acme/stories");
    CHECK(j["data"][0]["object"] == "model");
    CHECK(j["data"][0]["owned_by"] == "pylon");
    CHECK(j["data"][0]["created"].is_number_integer());

    const HttpReply one = t.call("GET", "/v1/models/acme/stories");
    CHECK(one.status == 200);
    CHECK(json::parse(one.body)["id"] == "acme/stories");
    CHECK(error_of(t.call("GET", "/v1/models/other"), 404)["code"] == "model_not_found");
    // Responses name the served model whatever the request said.
    const HttpReply c =
        t.post("/v1/completions", {{"model", "gpt-4"}, {"prompt", "Once"}, {"max_tokens", 2}});
    REQUIRE(c.status == 200);
    CHECK(json::parse(c.body)["model"] == "acme/stories");
}

TEST_CASE("metrics: Prometheus text whose counters move with requests", "[runtime_server]") {
    TestServer t;
    std::atomic<bool> writer_ran{false};  // set on the server's I/O thread
    t.server->add_metrics_writer([&writer_ran](std::string& out) {
        writer_ran.store(true);
        out += "# TYPE pylon_test_extension gauge\npylon_test_extension 42\n";
    });
    const HttpReply m = t.call("GET", "/metrics");
    REQUIRE(m.status == 200);
    CHECK(m.headers.at("content-type").rfind("text/plain; version=0.0.4", 0) == 0);
    CHECK(writer_ran.load());
    CHECK(t.metric("pylon_test_extension") == 42);
    const std::string ok = R"(pylon_serve_requests_total{route="/v1/completions",status="200"})";
    const std::string bad = R"(pylon_serve_requests_total{route="/v1/completions",status="400"})";
    CHECK(t.metric(ok) == -1);  // no such request yet
    const double gen0 = t.metric("pylon_serve_generated_tokens_total");
    const double prompt0 = t.metric("pylon_serve_prompt_tokens_total");
    CHECK(gen0 == 0);

    REQUIRE(t.post("/v1/completions",
                   {{"prompt", "Once upon a time"}, {"max_tokens", 10}, {"temperature", 0}})
                .status == 200);
    REQUIRE(t.post("/v1/completions", {{"prompt", "Once"}, {"n", 3}}).status == 400);
    CHECK(t.metric(ok) == 1);
    CHECK(t.metric(bad) == 1);
    CHECK(t.metric("pylon_serve_generated_tokens_total") == gen0 + 10);
    CHECK(t.metric("pylon_serve_prompt_tokens_total") == prompt0 + 5);
    CHECK(t.metric("pylon_serve_generations_total") == 1);
    CHECK(t.metric("pylon_serve_time_to_first_token_seconds_count") == 1);
    CHECK(t.metric("pylon_serve_decode_tokens_total") == 9);
    CHECK(t.metric("pylon_serve_decode_tokens_per_second") > 0);
    CHECK(t.metric("pylon_serve_queue_depth") == 0);
    CHECK(t.metric("pylon_serve_active_requests") == 0);
    CHECK(t.metric("pylon_serve_requests_cancelled_total") == 0);
    // Plain decoding: the speculative series exist and stay at zero.
    CHECK(t.metric("pylon_serve_speculative_acceptance_rate") == 0);
    CHECK(t.metric("pylon_serve_speculative_mean_accepted_length") == 0);
    CHECK(t.metric("pylon_serve_speculative_drafted_tokens_total") == 0);
}

TEST_CASE("errors: bad requests get OpenAI's error shape and a 4xx status", "[runtime_server]") {
    auto config = pylon::test::test_config();
    config.max_tokens = 100;
    config.max_body_bytes = 64 << 10;
    TestServer t(config);
    auto completion = [&](const json& body) { return t.post("/v1/completions", body); };

    SECTION("malformed JSON") {
        const json e = error_of(t.call("POST", "/v1/completions", "{\"prompt\": "), 400);
        CHECK(e["type"] == "invalid_request_error");
        CHECK(e["message"].get<std::string>().find("not valid JSON") != std::string::npos);
        error_of(t.call("POST", "/v1/completions", "[1,2]"), 400);
        error_of(t.call("POST", "/v1/completions", std::string(100, '[')), 400);
    }
    SECTION("n other than 1") {
        const json e = error_of(completion({{"prompt", "x"}, {"n", 2}}), 400);
        CHECK(e["param"] == "n");
        CHECK(e["code"] == "unsupported_value");
    }
    SECTION("max_tokens above the server's cap, or below 1") {
        const json e = error_of(completion({{"prompt", "x"}, {"max_tokens", 101}}), 400);
        CHECK(e["param"] == "max_tokens");
        CHECK(e["message"].get<std::string>().find("at most 100") != std::string::npos);
        CHECK(error_of(completion({{"prompt", "x"}, {"max_tokens", 0}}), 400)["param"] ==
              "max_tokens");
        CHECK(error_of(completion({{"prompt", "x"}, {"max_tokens", "5"}}), 400)["param"] ==
              "max_tokens");
    }
    SECTION("a prompt longer than the context") {
        std::string long_prompt;
        for (int i = 0; i < 700; ++i) long_prompt += "Lily ";
        const json e = error_of(completion({{"prompt", long_prompt}}), 400);
        CHECK(e["code"] == "context_length_exceeded");
        CHECK(e["param"] == "prompt");
        CHECK(e["message"].get<std::string>().find("512") != std::string::npos);
    }
    SECTION("prompt plus max_tokens beyond the context") {
        const std::vector<int> prompt(450, 403);  // 450 tokens of a 512-token context
        const json e = error_of(completion({{"prompt", prompt}, {"max_tokens", 100}}), 400);
        CHECK(e["message"].get<std::string>().find("450 in the prompt") != std::string::npos);
        CHECK(e["code"] == "context_length_exceeded");
        CHECK(e["param"] == "max_tokens");
    }
    SECTION("fields out of range or of the wrong type") {
        CHECK(error_of(completion({{"prompt", "x"}, {"temperature", 3}}), 400)["param"] ==
              "temperature");
        CHECK(error_of(completion({{"prompt", "x"}, {"top_p", -0.1}}), 400)["param"] == "top_p");
        CHECK(error_of(completion({{"prompt", "x"}, {"stream", "yes"}}), 400)["param"] == "stream");
        CHECK(error_of(
                  completion({{"prompt", "x"}, {"stop", json::array({"a", "b", "c", "d", "e"})}}),
                  400)["param"] == "stop");
        CHECK(error_of(completion({{"prompt", 5}}), 400)["param"] == "prompt");
        CHECK(error_of(completion({{"prompt", json::array({"a", "b"})}}), 400)["param"] ==
              "prompt");
        CHECK(error_of(completion({{"prompt", json::array({1, 100000})}}), 400)["param"] ==
              "prompt");
        CHECK(error_of(completion({{"max_tokens", 3}}), 400)["code"] ==
              "missing_required_parameter");
    }
    SECTION("features this server does not implement are refused, unknown fields ignored") {
        CHECK(error_of(completion({{"prompt", "x"}, {"logprobs", 2}}), 400)["code"] ==
              "unsupported_parameter");
        CHECK(error_of(completion({{"prompt", "x"}, {"echo", true}}), 400)["param"] == "echo");
        CHECK(error_of(completion({{"prompt", "x"}, {"presence_penalty", 0.5}}), 400)["param"] ==
              "presence_penalty");
        CHECK(completion({{"prompt", "x"},
                          {"max_tokens", 1},
                          {"user", "u1"},
                          {"frequency_penalty", 0},
                          {"some_future_field", {{"a", 1}}}})
                  .status == 200);
    }
    SECTION("chat messages") {
        auto chat = [&](const json& body) { return t.post("/v1/chat/completions", body); };
        CHECK(error_of(chat({{"messages", json::array()}}), 400)["param"] == "messages");
        CHECK(error_of(chat({{"prompt", "x"}}), 400)["param"] == "messages");
        CHECK(error_of(chat({{"messages", json::array({{{"role", "tool"}, {"content", "x"}}})}}),
                       400)["param"] == "messages[0].role");
        CHECK(error_of(chat({{"messages", json::array({{{"role", "user"}}})}}), 400)["param"] ==
              "messages[0].content");
        const json image = {
            {"role", "user"},
            {"content", json::array({{{"type", "image_url"}, {"image_url", "x"}}})}};
        CHECK(error_of(chat({{"messages", json::array({image})}}), 400)["code"] ==
              "unsupported_value");
        CHECK(error_of(chat({{"messages", json::array({{{"role", "user"}, {"content", "x"}}})},
                             {"tools", json::array({{{"type", "function"}}})}}),
                       400)["param"] == "tools");
        CHECK(error_of(chat({{"messages", json::array({{{"role", "user"}, {"content", "x"}}})},
                             {"max_completion_tokens", 1000}}),
                       400)["param"] == "max_completion_tokens");
    }
    SECTION("unknown route, wrong method") {
        const json e = error_of(t.call("GET", "/v1/engines"), 404);
        CHECK(e["code"] == "unknown_url");
        const HttpReply r = t.call("GET", "/v1/completions");
        CHECK(error_of(r, 405)["code"] == "method_not_allowed");
        CHECK(r.headers.at("allow") == "POST");
        CHECK(t.call("DELETE", "/health").status == 405);
        CHECK(t.call("POST", "/v1/models", "{}").status == 405);
    }
    SECTION("a body larger than the limit: 413, connection closed") {
        HttpTestClient c(t.port());
        const std::string big(100 << 10, 'x');
        REQUIRE(c.send_request("POST", "/v1/completions", big));
        auto head = c.read_head();
        REQUIRE(head.has_value());
        auto body = c.read_body(*head);
        REQUIRE(body.has_value());
        head->body = *body;
        CHECK(error_of(*head, 413)["code"] == "request_too_large");
        CHECK(head->headers.at("connection") == "close");
        CHECK(c.closed_by_peer(3000));
    }
    SECTION("a malformed request line: 400, connection closed") {
        HttpTestClient c(t.port());
        REQUIRE(c.send_raw("NOT HTTP AT ALL\r\n\r\n"));
        auto head = c.read_head();
        REQUIRE(head.has_value());
        CHECK(head->status == 400);
        CHECK(c.closed_by_peer(3000));
    }
    SECTION("a request head larger than the limit: 431") {
        HttpTestClient c(t.port());
        const std::string extra = "X-Filler: " + std::string(20 << 10, 'a') + "\r\n";
        REQUIRE(c.send_request("GET", "/health", {}, extra));
        auto head = c.read_head();
        REQUIRE(head.has_value());
        CHECK(head->status == 431);
    }
}

TEST_CASE("http: 100-continue, timeouts and the connection limit", "[runtime_server]") {
    auto config = pylon::test::test_config();
    config.request_timeout = std::chrono::milliseconds(300);
    config.idle_timeout = std::chrono::milliseconds(500);
    config.max_connections = 3;
    TestServer t(config);

    SECTION("Expect: 100-continue is answered before the body is read") {
        HttpTestClient c(t.port());
        const std::string body = R"({"prompt":"Once","max_tokens":2})";
        REQUIRE(c.send_raw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\nExpect: 100-continue\r\n\r\n"));
        auto cont = c.read_head();
        REQUIRE(cont.has_value());
        CHECK(cont->status == 100);
        REQUIRE(c.send_raw(body));
        auto head = c.read_head();
        REQUIRE(head.has_value());
        CHECK(head->status == 200);
    }
    SECTION("a request that stalls half-way is dropped after request_timeout") {
        HttpTestClient c(t.port());
        REQUIRE(
            c.send_raw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                       "\r\n{\"prompt\":"));
        CHECK(c.closed_by_peer(3000));
    }
    SECTION("an idle keep-alive connection is closed after idle_timeout") {
        HttpTestClient c(t.port());
        auto r = c.request("GET", "/health");
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(c.closed_by_peer(3000));
    }
    SECTION("connections beyond the limit get 503 too_many_connections") {
        HttpTestClient a(t.port()), b(t.port()), c(t.port());
        REQUIRE(a.request("GET", "/health").has_value());  // all three are accepted and open
        REQUIRE(b.request("GET", "/health").has_value());
        REQUIRE(c.request("GET", "/health").has_value());
        HttpTestClient d(t.port());
        auto head = d.read_head();
        REQUIRE(head.has_value());
        CHECK(head->status == 503);
        auto body = d.read_body(*head);
        REQUIRE(body.has_value());
        CHECK(json::parse(*body)["error"]["code"] == "too_many_connections");
    }
}
