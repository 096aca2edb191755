// Request parsing on its own: defaults, precedence, and mutated bodies that must give an answer
// (a request or a 400 error naming the problem), never a crash or an out-of-range value.
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "api_request.h"

using namespace pylon::runtime_server;

TEST_CASE("api request: defaults and precedence", "[runtime_server]") {
    CompletionRequest r;
    REQUIRE_FALSE(parse_completion_request(R"({"prompt":"hi"})", false, {}, r).has_value());
    CHECK(r.prompt == "hi");
    CHECK_FALSE(r.max_tokens.has_value());
    CHECK(r.temperature == 1.0);
    CHECK(r.top_p == 1.0);
    CHECK_FALSE(r.stream);
    CHECK_FALSE(r.seed.has_value());

    REQUIRE_FALSE(
        parse_completion_request(
            R"({"messages":[{"role":"developer","content":"d"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},{"role":"assistant","content":null}],
                          "max_tokens":5,"max_completion_tokens":7,"seed":-1,"stop":"x","stream":true,
                          "stream_options":{"include_usage":true}})",
            true, {}, r)
            .has_value());
    REQUIRE(r.messages.size() == 3);
    CHECK(r.messages[0].role == "system");
    CHECK(r.messages[1].content == "a\nb");
    CHECK(r.messages[2].content.empty());
    CHECK(r.max_tokens == 7);  // max_completion_tokens wins
    CHECK(r.seed == std::uint64_t(-1));
    CHECK(r.stop == std::vector<std::string>{"x"});
    CHECK(r.include_usage);
    // Only chat reads max_completion_tokens.
    REQUIRE_FALSE(
        parse_completion_request(R"({"prompt":"p","max_completion_tokens":7})", false, {}, r)
            .has_value());
    CHECK_FALSE(r.max_tokens.has_value());
}

TEST_CASE("api request: mutated bodies give a request or a 400, nothing else", "[runtime_server]") {
    const std::vector<std::string> seeds{
        R"({"model":"m","prompt":"Once upon a time","max_tokens":16,"temperature":0.5,"top_p":0.9,"seed":3,"stop":["a","b"],"stream":true})",
        R"({"prompt":[1,403,407],"n":1,"stream_options":{"include_usage":false}})",
        R"({"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"t"}]}],"max_completion_tokens":4})",
    };
    std::mt19937 rng(1234);
    const std::string alphabet = "{}[]\",:0123456789.-eEtrufalsn \\u\x80\xff";
    RequestLimits limits;
    int ok = 0, refused = 0;
    for (int i = 0; i < 3000; ++i) {
        std::string body = seeds[static_cast<std::size_t>(i) % seeds.size()];
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits && !body.empty(); ++e) {
            const std::size_t at = rng() % body.size();
            switch (rng() % 3) {
                case 0:
                    body[at] = alphabet[rng() % alphabet.size()];
                    break;
                case 1:
                    body.erase(at, 1 + rng() % 3);
                    break;
                default:
                    body.insert(at, 1, alphabet[rng() % alphabet.size()]);
            }
        }
        const bool chat = body.find("messages") != std::string::npos;
        CompletionRequest r;
        if (auto err = parse_completion_request(body, chat, limits, r)) {
            CHECK(err->status == 400);
            CHECK(!err->message.empty());
            ++refused;
        } else {
            CHECK((!r.max_tokens || *r.max_tokens >= 1));
            CHECK((r.temperature >= 0 && r.temperature <= 2));
            CHECK((r.top_p >= 0 && r.top_p <= 1));
            CHECK(r.stop.size() <= limits.max_stop);
            CHECK((chat ? !r.messages.empty() : true));
            ++ok;
        }
    }
    CHECK(ok > 0);
    CHECK(refused > 0);
}
