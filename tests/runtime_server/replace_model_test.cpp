// Server::replace_model: a new model takes over without the listener closing — a request running
// on the old model finishes on it, requests accepted afterwards run on the new one, a failed
// replacement leaves the old one serving, and a server started without a model says so until it
// gets one.
#include <catch2/catch.hpp>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "pylon/runtime/context.h"
#include "pylon/runtime/generate.h"
#include "pylon/runtime/model.h"
#include "pylon/runtime/tokenizer.h"
#include "server_fixture.h"

using json = nlohmann::json;
using pylon::test::HttpTestClient;
using pylon::test::TestServer;
using namespace std::chrono_literals;

namespace {

std::string model_file(const char* quant) {
    return std::string(PYLON_TEST_DATA) + "/runtime/stories260K-" + quant + ".gguf";
}

// What the runtime itself generates greedily from `file` (the server must give the same text).
std::string expected_text(const std::string& file, int n) {
    auto model = pylon::runtime::Model::load(file).value();
    auto tok = pylon::runtime::Tokenizer::from_gguf(model->gguf()).value();
    pylon::runtime::ContextParams cp;
    cp.n_threads = 1;
    auto ctx = pylon::runtime::Context::create(model, cp).value();
    pylon::runtime::GenerateOptions o;
    o.n_predict = n;
    o.sampling.temperature = 0;
    return pylon::runtime::generate(*ctx, tok, "Once upon a time", o).value().text;
}

std::string completion_text(const TestServer& t, int n) {
    const auto r = t.post("/v1/completions",
                          {{"prompt", "Once upon a time"}, {"max_tokens", n}, {"temperature", 0}});
    REQUIRE(r.status == 200);
    return json::parse(r.body)["choices"][0]["text"].get<std::string>();
}

}  // namespace

TEST_CASE("a replacement model takes over; a running request finishes on the old one",
          "[runtime_server]") {
    const std::string q8 = expected_text(model_file("q8_0"), 24);
    const std::string q4 = expected_text(model_file("q4_0"), 24);
    REQUIRE(q8 != q4);  // the two files answer differently, so the switch is visible
    auto config = pylon::test::test_config();
    config.test_token_delay = 5ms;
    TestServer t(config);
    CHECK(completion_text(t, 24) == q8);

    // A streamed request runs on Q8_0 while the replacement loads and takes over.
    HttpTestClient running(t.port());
    REQUIRE(running.send_request("POST", "/v1/completions",
                                 json{{"prompt", "Once upon a time"},
                                      {"max_tokens", 24},
                                      {"temperature", 0},
                                      {"stream", true}}
                                     .dump()));
    const auto head = running.read_head();
    REQUIRE(head.has_value());
    REQUIRE(head->status == 200);
    REQUIRE(t.server->replace_model(model_file("q4_0")));
    CHECK(t.server->model_path() == model_file("q4_0"));
    std::string streamed;
    while (auto chunk = running.read_chunk()) {
        for (std::size_t pos = 0; (pos = chunk->find("data: {", pos)) != std::string::npos;) {
            const auto end = chunk->find('\n', pos);
            streamed += json::parse(chunk->substr(pos + 6, end - pos - 6))["choices"][0]["text"]
                            .get<std::string>();
            pos = end;
        }
    }
    CHECK(streamed == q8);
    // From now on: Q4_0, same model id, the listener never closed.
    CHECK(completion_text(t, 24) == q4);
    CHECK(t.call("GET", "/health").status == 200);
    CHECK(t.metric("pylon_serve_model_replacements_total") == 1);

    // A replacement that does not load changes nothing.
    auto bad = t.server->replace_model(std::string(PYLON_TEST_DATA) + "/no-such-model.gguf");
    CHECK_FALSE(bad);
    CHECK(completion_text(t, 24) == q4);
    CHECK(t.server->model_path() == model_file("q4_0"));
}

TEST_CASE("a server started without a model answers 503 until it gets one", "[runtime_server]") {
    auto config = pylon::test::test_config();
    config.model_path.clear();
    CHECK_FALSE(pylon::runtime_server::Server::start(config));  // needs a model id then
    config.model_id = "device-model";
    TestServer t(config, false);
    const auto health = t.call("GET", "/health");
    CHECK(health.status == 503);
    CHECK(json::parse(health.body)["status"] == "no_model");
    CHECK(t.post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 2}}).status == 503);
    REQUIRE(t.server->replace_model(model_file("q8_0")));
    CHECK(t.call("GET", "/health").status == 200);
    CHECK(completion_text(t, 16) == expected_text(model_file("q8_0"), 16));
    CHECK(json::parse(t.call("GET", "/v1/models").body)["data"][0]["id"] == "device-model");
}
