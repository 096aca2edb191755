#include "api_request.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace pylon::runtime_server {

using nlohmann::json;

ApiError invalid(std::string message, std::string param, std::string code) {
    ApiError e;
    e.message = std::move(message);
    e.param = std::move(param);
    e.code = std::move(code);
    return e;
}

std::string error_body(const ApiError& error) {
    json e = {{"message", error.message}, {"type", error.type}};
    e["param"] = error.param.empty() ? json(nullptr) : json(error.param);
    e["code"] = error.code.empty() ? json(nullptr) : json(error.code);
    return json{{"error", e}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

std::optional<json> parse_body(std::string_view body, int max_depth, ApiError& err) {
    bool too_deep = false;
    auto cb = [&](int depth, json::parse_event_t, json&) {
        if (depth > max_depth) too_deep = true;
        return !too_deep;
    };
    try {
        json j = json::parse(body.begin(), body.end(), cb);
        if (too_deep) {
            err = invalid("the JSON body is nested deeper than " + std::to_string(max_depth) +
                          " levels");
            return std::nullopt;
        }
        if (!j.is_object()) {
            err = invalid("the request body must be a JSON object");
            return std::nullopt;
        }
        return j;
    } catch (const json::exception& e) {
        if (too_deep) {
            err = invalid("the JSON body is nested deeper than " + std::to_string(max_depth) +
                          " levels");
            return std::nullopt;
        }
        // nlohmann echoes the input after "last read:"; keep only the position.
        std::string what = e.what();
        if (auto cut = what.find("; last read:"); cut != std::string::npos) what.resize(cut);
        if (what.rfind("[json.exception.", 0) == 0) what.erase(0, what.find(']') + 2);
        err = invalid("the request body is not valid JSON: " + what);
        return std::nullopt;
    }
}

bool present(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && !it->is_null();
}

// Reads the optional fields shared by both endpoints.
std::optional<ApiError> parse_common(const json& j, const RequestLimits& limits,
                                     CompletionRequest& out) {
    if (present(j, "model")) {
        if (!j["model"].is_string()) return invalid("'model' must be a string", "model");
        out.model = j["model"].get<std::string>();
    }
    auto read_max = [&](const char* key) -> std::optional<ApiError> {
        if (!present(j, key)) return std::nullopt;
        const json& v = j[key];
        if (!v.is_number_integer()) {
            return invalid(std::string("'") + key + "' must be an integer", key);
        }
        const auto n = v.get<std::int64_t>();
        if (n < 1 || n > std::numeric_limits<int>::max()) {
            return invalid(std::string("'") + key + "' must be at least 1", key, "invalid_value");
        }
        out.max_tokens = static_cast<int>(n);
        return std::nullopt;
    };
    if (auto e = read_max("max_tokens")) return e;
    if (out.chat) {
        if (auto e = read_max("max_completion_tokens")) return e;
    }
    auto read_number = [&](const char* key, double lo, double hi,
                           double& dst) -> std::optional<ApiError> {
        if (!present(j, key)) return std::nullopt;
        const json& v = j[key];
        if (!v.is_number()) return invalid(std::string("'") + key + "' must be a number", key);
        const double d = v.get<double>();
        if (!std::isfinite(d) || d < lo || d > hi) {
            return invalid(std::string("'") + key + "' must be between " + json(lo).dump() +
                               " and " + json(hi).dump(),
                           key, "invalid_value");
        }
        dst = d;
        return std::nullopt;
    };
    if (auto e = read_number("temperature", 0.0, 2.0, out.temperature)) return e;
    if (auto e = read_number("top_p", 0.0, 1.0, out.top_p)) return e;
    if (present(j, "seed")) {
        const json& v = j["seed"];
        if (v.is_number_unsigned()) {
            out.seed = v.get<std::uint64_t>();
        } else if (v.is_number_integer()) {
            out.seed = static_cast<std::uint64_t>(v.get<std::int64_t>());
        } else {
            return invalid("'seed' must be an integer", "seed");
        }
    }
    if (present(j, "n")) {
        const json& v = j["n"];
        if (!v.is_number_integer()) return invalid("'n' must be an integer", "n");
        if (v.get<std::int64_t>() != 1) {
            return invalid("only n = 1 is supported (one choice per request)", "n",
                           "unsupported_value");
        }
    }
    if (present(j, "stream")) {
        if (!j["stream"].is_boolean()) return invalid("'stream' must be a boolean", "stream");
        out.stream = j["stream"].get<bool>();
    }
    if (present(j, "stream_options")) {
        const json& so = j["stream_options"];
        if (!so.is_object()) return invalid("'stream_options' must be an object", "stream_options");
        if (present(so, "include_usage")) {
            if (!so["include_usage"].is_boolean()) {
                return invalid("'stream_options.include_usage' must be a boolean",
                               "stream_options.include_usage");
            }
            out.include_usage = so["include_usage"].get<bool>();
        }
    }
    if (present(j, "stop")) {
        const json& s = j["stop"];
        if (s.is_string()) {
            out.stop.push_back(s.get<std::string>());
        } else if (s.is_array()) {
            for (const auto& item : s) {
                if (!item.is_string()) return invalid("'stop' must be strings", "stop");
                out.stop.push_back(item.get<std::string>());
            }
        } else {
            return invalid("'stop' must be a string or an array of strings", "stop");
        }
        if (out.stop.size() > limits.max_stop) {
            return invalid(
                "at most " + std::to_string(limits.max_stop) + " stop sequences are supported",
                "stop", "invalid_value");
        }
        for (const auto& s2 : out.stop) {
            if (s2.empty() || s2.size() > limits.max_stop_bytes) {
                return invalid("each stop sequence must be 1 to " +
                                   std::to_string(limits.max_stop_bytes) + " bytes",
                               "stop", "invalid_value");
            }
        }
    }
    // Asked-for features we do not implement: refused rather than ignored.
    auto unsupported = [](const char* key) {
        return invalid(std::string("'") + key + "' is not supported by this server", key,
                       "unsupported_parameter");
    };
    for (const char* key : {"presence_penalty", "frequency_penalty"}) {
        if (present(j, key) && (!j[key].is_number() || j[key].get<double>() != 0.0)) {
            return unsupported(key);
        }
    }
    if (present(j, "logit_bias") && !(j["logit_bias"].is_object() && j["logit_bias"].empty())) {
        return unsupported("logit_bias");
    }
    return std::nullopt;
}

std::optional<ApiError> parse_prompt(const json& j, const RequestLimits& limits,
                                     CompletionRequest& out) {
    if (!j.contains("prompt"))
        return invalid("'prompt' is required", "prompt", "missing_required_parameter");
    const json& p = j["prompt"];
    auto ids_from = [&](const json& arr) -> std::optional<ApiError> {
        if (arr.size() > limits.max_prompt_ids) {
            return invalid("the prompt has too many tokens", "prompt", "context_length_exceeded");
        }
        std::vector<std::int32_t> ids;
        ids.reserve(arr.size());
        for (const auto& v : arr) {
            if (!v.is_number_integer() || v.get<std::int64_t>() < 0 ||
                v.get<std::int64_t>() > std::numeric_limits<std::int32_t>::max()) {
                return invalid("token ids in 'prompt' must be non-negative integers", "prompt");
            }
            ids.push_back(static_cast<std::int32_t>(v.get<std::int64_t>()));
        }
        out.prompt_ids = std::move(ids);
        return std::nullopt;
    };
    if (p.is_string()) {
        out.prompt = p.get<std::string>();
        return std::nullopt;
    }
    if (p.is_array() && !p.empty() && p[0].is_number()) return ids_from(p);
    if (p.is_array() && p.size() == 1) {
        if (p[0].is_string()) {
            out.prompt = p[0].get<std::string>();
            return std::nullopt;
        }
        if (p[0].is_array()) return ids_from(p[0]);
    }
    if (p.is_array() && p.size() > 1) {
        return invalid("only one prompt per request is supported", "prompt", "unsupported_value");
    }
    return invalid(
        "'prompt' must be a string, an array of token ids, or an array holding one of "
        "those",
        "prompt");
}

std::optional<ApiError> parse_messages(const json& j, const RequestLimits& limits,
                                       CompletionRequest& out) {
    if (!j.contains("messages")) {
        return invalid("'messages' is required", "messages", "missing_required_parameter");
    }
    const json& msgs = j["messages"];
    if (!msgs.is_array() || msgs.empty()) {
        return invalid("'messages' must be a non-empty array", "messages");
    }
    if (msgs.size() > limits.max_messages) {
        return invalid("at most " + std::to_string(limits.max_messages) + " messages are accepted",
                       "messages");
    }
    for (std::size_t i = 0; i < msgs.size(); ++i) {
        const std::string where = "messages[" + std::to_string(i) + "]";
        const json& m = msgs[i];
        if (!m.is_object()) return invalid(where + " must be an object", where);
        if (!m.contains("role") || !m["role"].is_string()) {
            return invalid(where + ".role must be a string", where + ".role");
        }
        ChatMessage msg;
        msg.role = m["role"].get<std::string>();
        if (msg.role == "developer") msg.role = "system";
        if (msg.role != "system" && msg.role != "user" && msg.role != "assistant") {
            return invalid(where + ".role '" + msg.role.substr(0, 32) +
                               "' is not supported (system, developer, user, assistant)",
                           where + ".role", "unsupported_value");
        }
        if (present(m, "tool_calls") || present(m, "function_call")) {
            return invalid("tool calls are not supported", where, "unsupported_parameter");
        }
        const json* c = m.contains("content") ? &m["content"] : nullptr;
        if (c == nullptr || c->is_null()) {
            if (msg.role != "assistant") {
                return invalid(where + ".content is required", where + ".content");
            }
        } else if (c->is_string()) {
            msg.content = c->get<std::string>();
        } else if (c->is_array()) {
            // Text parts are joined with newlines; other part types are refused.
            bool first = true;
            for (const auto& part : *c) {
                if (!part.is_object() || !part.contains("type") || part["type"] != "text" ||
                    !part.contains("text") || !part["text"].is_string()) {
                    return invalid(where + ".content: only text parts are supported",
                                   where + ".content", "unsupported_value");
                }
                if (!first) msg.content += "\n";
                msg.content += part["text"].get<std::string>();
                first = false;
            }
        } else {
            return invalid(where + ".content must be a string or an array of text parts",
                           where + ".content");
        }
        out.messages.push_back(std::move(msg));
    }
    return std::nullopt;
}

}  // namespace

std::optional<ApiError> parse_completion_request(std::string_view body, bool chat,
                                                 const RequestLimits& limits,
                                                 CompletionRequest& out) {
    out = CompletionRequest{};
    out.chat = chat;
    ApiError err;
    auto parsed = parse_body(body, limits.max_json_depth, err);
    if (!parsed) return err;
    const json& j = *parsed;
    if (auto e = parse_common(j, limits, out)) return e;
    auto unsupported = [](const char* key) {
        return invalid(std::string("'") + key + "' is not supported by this server", key,
                       "unsupported_parameter");
    };
    if (chat) {
        if (present(j, "logprobs") && j["logprobs"] != false) return unsupported("logprobs");
        if (present(j, "top_logprobs")) return unsupported("top_logprobs");
        if (present(j, "tools") && !(j["tools"].is_array() && j["tools"].empty())) {
            return unsupported("tools");
        }
        if (present(j, "functions")) return unsupported("functions");
        if (present(j, "response_format")) {
            const json& rf = j["response_format"];
            if (!rf.is_object() || rf.value("type", json()) != "text") {
                return unsupported("response_format");
            }
        }
        return parse_messages(j, limits, out);
    }
    if (present(j, "echo") && j["echo"] != false) return unsupported("echo");
    if (present(j, "logprobs")) return unsupported("logprobs");
    if (present(j, "best_of") && j["best_of"] != 1) return unsupported("best_of");
    if (present(j, "suffix") && j["suffix"] != "") return unsupported("suffix");
    return parse_prompt(j, limits, out);
}

}  // namespace pylon::runtime_server
