// OpenAI request bodies of /v1/completions and /v1/chat/completions: parsing and validation.
//
// Fields we implement are checked for type and range; fields we do not implement are refused
// when they ask for something other than the default (n > 1, echo, logprobs, best_of > 1,
// suffix, logit_bias, presence/frequency penalties, tools, a non-text response_format), so a
// client never silently gets less than it asked for; unknown fields are ignored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pylon/runtime_server/chat_template.h"

namespace pylon::runtime_server {

// An error answered in OpenAI's shape: {"error":{"message","type","param","code"}}.
struct ApiError {
    int status = 400;
    std::string message;
    std::string type = "invalid_request_error";
    std::string param;  // "" → null
    std::string code;   // "" → null
};

ApiError invalid(std::string message, std::string param = {}, std::string code = {});
// The JSON body of an error.
std::string error_body(const ApiError& error);

struct RequestLimits {
    std::size_t max_stop = 4;          // stop sequences
    std::size_t max_stop_bytes = 256;  // per stop sequence
    std::size_t max_messages = 4096;   // chat messages
    std::size_t max_prompt_ids = 1u << 20;
    int max_json_depth = 32;
};

struct CompletionRequest {
    bool chat = false;
    std::string model;
    // /v1/completions: a text prompt, or token ids given as such.
    std::string prompt;
    std::optional<std::vector<std::int32_t>> prompt_ids;
    // /v1/chat/completions ("developer" is read as "system").
    std::vector<ChatMessage> messages;

    std::optional<int> max_tokens;  // max_completion_tokens for chat takes precedence
    double temperature = 1.0;
    double top_p = 1.0;
    std::optional<std::uint64_t> seed;
    std::vector<std::string> stop;
    bool stream = false;
    bool include_usage = false;  // stream_options.include_usage
};

// Parses a request body. On failure returns the error to answer (400).
std::optional<ApiError> parse_completion_request(std::string_view body, bool chat,
                                                 const RequestLimits& limits,
                                                 CompletionRequest& out);

}  // namespace pylon::runtime_server
