// /v1/completions and /v1/chat/completions against a real server on a loopback port: OpenAI's
// response and chunk shapes, greedy text equal to llama.cpp's golden continuation, streamed text
// equal to the non-streamed text, stop sequences, usage.
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "server_fixture.h"

using nlohmann::json;
using pylon::test::HttpReply;
using pylon::test::HttpTestClient;
using pylon::test::sse_data;
using pylon::test::TestServer;

namespace {

json golden_case(std::size_t i) {
    std::ifstream in(std::string(PYLON_TEST_DATA) + "/runtime/golden/stories260K-q8_0.json");
    REQUIRE(in.good());
    return json::parse(in)["cases"].at(i);
}

struct Streamed {
    std::vector<json> chunks;                 // every data: payload but [DONE]
    bool done = false;                        // the last payload was [DONE]
    std::string text;                         // the text of all choice chunks
    std::vector<std::string> finish_reasons;  // non-null ones, in order
};

Streamed parse_stream(const HttpReply& r, bool chat) {
    REQUIRE(r.status == 200);
    REQUIRE(r.headers.at("content-type") == "text/event-stream");
    Streamed s;
    const auto events = sse_data(r.body);
    REQUIRE(!events.empty());
    s.done = events.back() == "[DONE]";
    for (std::size_t i = 0; i + 1 < events.size(); ++i) {
        json j = json::parse(events[i]);
        CHECK(j["object"] == (chat ? "chat.completion.chunk" : "text_completion"));
        for (const auto& c : j["choices"]) {
            CHECK(c["index"] == 0);
            if (chat) {
                if (c["delta"].contains("content"))
                    s.text += c["delta"]["content"].get<std::string>();
            } else {
                s.text += c["text"].get<std::string>();
            }
            if (!c["finish_reason"].is_null()) s.finish_reasons.push_back(c["finish_reason"]);
        }
        s.chunks.push_back(std::move(j));
    }
    return s;
}

}  // namespace

TEST_CASE("completions: greedy text equals llama.cpp's, with OpenAI's response shape",
          "[runtime_server]") {
    TestServer t;
    const json g = golden_case(0);
    const HttpReply r = t.post("/v1/completions", {{"model", "stories260K-q8_0"},
                                                   {"prompt", g["prompt"]},
                                                   {"max_tokens", 64},
                                                   {"temperature", 0}});
    REQUIRE(r.status == 200);
    CHECK(r.headers.at("content-type") == "application/json");
    const json j = json::parse(r.body);
    CHECK(j["object"] == "text_completion");
    CHECK(j["id"].get<std::string>().rfind("cmpl-", 0) == 0);
    CHECK(j["model"] == "stories260K-q8_0");
    CHECK(j["created"].is_number_integer());
    REQUIRE(j["choices"].size() == 1);
    CHECK(j["choices"][0]["index"] == 0);
    CHECK(j["choices"][0]["text"] == g["generated_text"]);
    CHECK(j["choices"][0]["finish_reason"] == "length");
    CHECK(j["choices"][0]["logprobs"].is_null());
    const auto n_prompt = g["prompt_token_ids"].size();
    CHECK(j["usage"]["prompt_tokens"] == n_prompt);
    CHECK(j["usage"]["completion_tokens"] == 64);
    CHECK(j["usage"]["total_tokens"] == n_prompt + 64);

    SECTION("the prompt as token ids gives the same text") {
        const HttpReply r2 =
            t.post("/v1/completions",
                   {{"prompt", g["prompt_token_ids"]}, {"max_tokens", 64}, {"temperature", 0}});
        REQUIRE(r2.status == 200);
        CHECK(json::parse(r2.body)["choices"][0]["text"] == g["generated_text"]);
    }
    SECTION("without max_tokens, 16 tokens (OpenAI's default)") {
        const HttpReply r2 =
            t.post("/v1/completions", {{"prompt", g["prompt"]}, {"temperature", 0}});
        REQUIRE(r2.status == 200);
        CHECK(json::parse(r2.body)["usage"]["completion_tokens"] == 16);
    }
}

TEST_CASE("completions: the streamed text equals the non-streamed text, ending with [DONE]",
          "[runtime_server]") {
    TestServer t;
    const json req = {{"prompt", "Once upon a time"}, {"max_tokens", 48}, {"temperature", 0}};
    const HttpReply plain = t.post("/v1/completions", req);
    REQUIRE(plain.status == 200);
    const json pj = json::parse(plain.body);

    json sreq = req;
    sreq["stream"] = true;
    sreq["stream_options"] = {{"include_usage", true}};
    const HttpReply r = t.post("/v1/completions", sreq);
    CHECK(r.headers.at("transfer-encoding") == "chunked");
    CHECK(r.headers.at("cache-control") == "no-cache");
    const Streamed s = parse_stream(r, false);
    CHECK(s.done);
    CHECK(s.text == pj["choices"][0]["text"]);
    CHECK(s.finish_reasons == std::vector<std::string>{"length"});
    REQUIRE(s.chunks.size() >= 3);
    // The usage chunk comes last, with no choices; every chunk has the same id.
    const json& last = s.chunks.back();
    CHECK(last["choices"].empty());
    CHECK(last["usage"] == pj["usage"]);
    for (const auto& c : s.chunks) CHECK(c["id"] == s.chunks.front()["id"]);
    // Chunks came one token at a time, not as one piece.
    CHECK(s.chunks.size() > 10);
}

TEST_CASE("completions: stop sequences end the text before them, streamed or not",
          "[runtime_server]") {
    TestServer t;
    const json g = golden_case(0);
    const std::string full = g["generated_text"];  // ", there was a little girl named Lily. ..."
    const auto cut = full.find("girl");
    REQUIRE(cut != std::string::npos);
    for (const json& stop : {json("girl"), json::array({"zzz", "girl", "park"})}) {
        const json req = {
            {"prompt", g["prompt"]}, {"max_tokens", 64}, {"temperature", 0}, {"stop", stop}};
        const HttpReply r = t.post("/v1/completions", req);
        REQUIRE(r.status == 200);
        const json j = json::parse(r.body);
        CHECK(j["choices"][0]["text"] == full.substr(0, cut));
        CHECK(j["choices"][0]["finish_reason"] == "stop");
        CHECK(j["usage"]["completion_tokens"].get<int>() < 64);

        json sreq = req;
        sreq["stream"] = true;
        const Streamed s = parse_stream(t.post("/v1/completions", sreq), false);
        CHECK(s.done);
        CHECK(s.text == full.substr(0, cut));
        CHECK(s.finish_reasons == std::vector<std::string>{"stop"});
    }
}

TEST_CASE("completions: sampling with a seed repeats; different seeds differ", "[runtime_server]") {
    TestServer t;
    auto text = [&](std::uint64_t seed) {
        const HttpReply r = t.post("/v1/completions", {{"prompt", "Once upon a time"},
                                                       {"max_tokens", 40},
                                                       {"temperature", 1.0},
                                                       {"top_p", 0.95},
                                                       {"seed", seed}});
        REQUIRE(r.status == 200);
        return json::parse(r.body)["choices"][0]["text"].get<std::string>();
    };
    const std::string a = text(7);
    CHECK(text(7) == a);
    CHECK((text(8) != a || text(9) != a));
}

TEST_CASE("chat: plain layout, OpenAI's shapes, streamed text equals the answer",
          "[runtime_server]") {
    TestServer t;
    const json req = {
        {"model", "anything"},
        {"messages", json::array({{{"role", "system"}, {"content", "You tell stories."}},
                                  {{"role", "user"}, {"content", "Tell me about Lily."}}})},
        {"max_tokens", 40},
        {"temperature", 0}};
    const HttpReply r = t.post("/v1/chat/completions", req);
    REQUIRE(r.status == 200);
    const json j = json::parse(r.body);
    CHECK(j["object"] == "chat.completion");
    CHECK(j["id"].get<std::string>().rfind("chatcmpl-", 0) == 0);
    CHECK(j["model"] == "stories260K-q8_0");
    REQUIRE(j["choices"].size() == 1);
    const json& msg = j["choices"][0]["message"];
    CHECK(msg["role"] == "assistant");
    const std::string answer = msg["content"];
    CHECK(answer.find("\nUser:") == std::string::npos);
    const std::string finish = j["choices"][0]["finish_reason"];
    CHECK((finish == "stop" || finish == "length"));
    CHECK(j["usage"]["prompt_tokens"].get<int>() > 10);
    CHECK(j["usage"]["total_tokens"] ==
          j["usage"]["prompt_tokens"].get<int>() + j["usage"]["completion_tokens"].get<int>());

    json sreq = req;
    sreq["stream"] = true;
    const Streamed s = parse_stream(t.post("/v1/chat/completions", sreq), true);
    CHECK(s.done);
    CHECK(s.text == answer);
    CHECK(s.finish_reasons == std::vector<std::string>{finish});
    REQUIRE(!s.chunks.empty());
    // The first chunk opens the assistant's message.
    CHECK(s.chunks.front()["choices"][0]["delta"]["role"] == "assistant");

    SECTION("max_completion_tokens is honoured, and content given as text parts") {
        json r2 = req;
        r2["max_completion_tokens"] = 3;
        r2["messages"][1]["content"] = json::array({{{"type", "text"}, {"text", "Tell me"}}});
        const HttpReply rr = t.post("/v1/chat/completions", r2);
        REQUIRE(rr.status == 200);
        CHECK(json::parse(rr.body)["usage"]["completion_tokens"].get<int>() <= 3);
    }
}

TEST_CASE("completions: connections are kept alive between requests", "[runtime_server]") {
    TestServer t;
    HttpTestClient c(t.port());
    for (int i = 0; i < 3; ++i) {
        auto r = c.request("POST", "/v1/completions",
                           R"({"prompt":"Once","max_tokens":4,"temperature":0})");
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->headers.at("connection") == "keep-alive");
    }
    auto h = c.request("GET", "/health");
    REQUIRE(h.has_value());
    CHECK(h->status == 200);
    // Two requests sent back to back (pipelined) are answered in order.
    REQUIRE(c.send_request("GET", "/v1/models"));
    REQUIRE(c.send_request("GET", "/health"));
    auto a = c.read_head();
    REQUIRE(a.has_value());
    auto ab = c.read_body(*a);
    REQUIRE(ab.has_value());
    CHECK(json::parse(*ab)["object"] == "list");
    auto b = c.read_head();
    REQUIRE(b.has_value());
    auto bb = c.read_body(*b);
    REQUIRE(bb.has_value());
    CHECK(*bb == R"({"status":"ok"})");
}

TEST_CASE("speculative: --lookup and --draft give the plain greedy text, streamed or not",
          "[runtime_server]") {
    const json g = golden_case(0);
    const json req = {{"prompt", g["prompt"]}, {"max_tokens", 64}, {"temperature", 0}};
    auto check = [&](const pylon::runtime_server::ServeConfig& config) {
        TestServer t(config);
        const HttpReply r = t.post("/v1/completions", req);
        REQUIRE(r.status == 200);
        CHECK(json::parse(r.body)["choices"][0]["text"] == g["generated_text"]);
        json sreq = req;
        sreq["stream"] = true;
        const Streamed s = parse_stream(t.post("/v1/completions", sreq), false);
        CHECK(s.done);
        CHECK(s.text == g["generated_text"]);
        // The series exist; how much is drafted is the adaptive drafter's choice.
        CHECK(t.metric("pylon_serve_speculative_drafted_tokens_total") >= 0);
        CHECK(t.metric("pylon_serve_speculative_accepted_tokens_total") <=
              t.metric("pylon_serve_speculative_drafted_tokens_total"));
    };
    SECTION("prompt lookup") {
        auto config = pylon::test::test_config();
        config.lookup = true;
        check(config);
    }
    SECTION("a draft model (stories260K Q4_0 for Q8_0)") {
        auto config = pylon::test::test_config();
        config.draft_path = std::string(PYLON_TEST_DATA) + "/runtime/stories260K-q4_0.gguf";
        check(config);
    }
    SECTION("--draft and --lookup together are refused") {
        auto config = pylon::test::test_config();
        config.lookup = true;
        config.draft_path = std::string(PYLON_TEST_DATA) + "/runtime/stories260K-q4_0.gguf";
        CHECK_FALSE(pylon::runtime_server::Server::start(config).ok());
    }
}

TEST_CASE("completions: an HTTP/1.0 client gets the stream unframed, ended by the close",
          "[runtime_server]") {
    TestServer t;
    HttpTestClient c(t.port());
    const std::string body = R"({"prompt":"Once","max_tokens":8,"temperature":0,"stream":true})";
    REQUIRE(c.send_raw("POST /v1/completions HTTP/1.0\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body));
    auto head = c.read_head();
    REQUIRE(head.has_value());
    CHECK(head->status == 200);
    CHECK(head->headers.count("transfer-encoding") == 0);
    CHECK(head->headers.at("connection") == "close");
    std::string rest;
    while (auto more = c.read_available()) rest += *more;
    const auto events = sse_data(rest);
    REQUIRE(!events.empty());
    CHECK(events.back() == "[DONE]");
}

TEST_CASE("chat: an unrecognised template falls back to the plain layout, a named one is used",
          "[runtime_server]") {
    const json req = {{"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})},
                      {"max_tokens", 12},
                      {"temperature", 0}};
    auto answer = [&](const std::string& tmpl) {
        auto config = pylon::test::test_config();
        config.chat_template = tmpl;
        TestServer t(config);
        const HttpReply r = t.post("/v1/chat/completions", req);
        REQUIRE(r.status == 200);
        return json::parse(r.body);
    };
    const json plain = answer("");  // stories260K has no template: plain
    const json unknown = answer("{% for m in messages %}{{ m.content }}{% endfor %}");
    CHECK(unknown["choices"][0]["message"]["content"] == plain["choices"][0]["message"]["content"]);
    CHECK(unknown["usage"] == plain["usage"]);
    // "User: Hi\nAssistant:" vs "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n" (the
    // markers are plain text in this vocabulary): more prompt tokens.
    const json chatml = answer("chatml");
    CHECK(chatml["usage"]["prompt_tokens"].get<int>() > plain["usage"]["prompt_tokens"].get<int>());
}
