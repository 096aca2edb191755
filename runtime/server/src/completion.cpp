// /v1/completions and /v1/chat/completions: validation on the I/O thread, then a job on the
// inference worker that tokenizes, checks the context, generates, and answers — one JSON
// object, or server-sent events in OpenAI's chunk shapes:
//
//   data: {"id":"cmpl-…","object":"text_completion","created":…,"model":…,
//          "choices":[{"index":0,"text":"…","logprobs":null,"finish_reason":null}]}\n\n
//   data: {"id":"chatcmpl-…","object":"chat.completion.chunk",…,
//          "choices":[{"index":0,"delta":{"content":"…"},"logprobs":null,"finish_reason":null}]}\n\n
//   …  (the last choice chunk carries finish_reason "stop" or "length"; with
//       stream_options.include_usage one more chunk has "choices":[] and "usage")
//   data: [DONE]\n\n
#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "pylon/common/log.h"
#include "pylon/runtime/generate.h"
#include "server_impl.h"
#include "stop_strings.h"

namespace pylon::runtime_server {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::uint64_t random_u64() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return rng();
}

std::string random_id(const char* prefix) {
    char hex[33];
    std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(random_u64()),
                  static_cast<unsigned long long>(random_u64()));
    return std::string(prefix) + std::string(hex, 24);
}

ApiError server_error(std::string message, std::string code, int status = 500) {
    ApiError e;
    e.status = status;
    e.type = "server_error";
    e.message = std::move(message);
    e.code = std::move(code);
    return e;
}

// One completion request from arrival to answer.
struct Job {
    CompletionRequest req;
    std::shared_ptr<Exchange> ex;
    std::string_view route;
    std::string id;
    std::int64_t created = 0;
    Clock::time_point received;
    std::atomic<bool> client_gone{false};
};

class Runner {
public:
    Runner(Server::Impl& s, const LoadedModel& m, Job& job) : s_(s), m_(m), job_(job) {}
    void run();

private:
    json chunk_base() const {
        return {{"id", job_.id},
                {"object", job_.req.chat ? "chat.completion.chunk" : "text_completion"},
                {"created", job_.created},
                {"model", s_.model_id}};
    }
    // A choice chunk: text (or the chat role opening when `role`), finish reason or null.
    std::string sse_choice(std::string_view text, const char* finish, bool role = false) const {
        json choice = {{"index", 0}, {"logprobs", nullptr}};
        if (job_.req.chat) {
            json delta = json::object();
            if (role) {
                delta["role"] = "assistant";
                delta["content"] = "";
            } else if (!text.empty()) {
                delta["content"] = text;
            }
            choice["delta"] = std::move(delta);
        } else {
            choice["text"] = text;
        }
        choice["finish_reason"] = finish ? json(finish) : json(nullptr);
        json j = chunk_base();
        j["choices"] = json::array({std::move(choice)});
        return "data: " + dump(j) + "\n\n";
    }
    json usage(std::size_t prompt, std::size_t completion) const {
        return {{"prompt_tokens", prompt},
                {"completion_tokens", completion},
                {"total_tokens", prompt + completion}};
    }
    bool send(std::string data) {
        if (!job_.ex->write(std::move(data))) {
            job_.client_gone.store(true);
            return false;
        }
        return true;
    }
    // An error before anything was sent: a JSON error response.
    void fail(const ApiError& e) { s_.reply_error(*job_.ex, job_.route, e); }
    // An error in the middle of a stream: an error event, then the end of the stream.
    void fail_stream(const ApiError& e) {
        send("data: " + error_body(e) + "\n\n");
        send("data: [DONE]\n\n");
        job_.ex->end();
    }
    std::optional<std::vector<std::int32_t>> prompt_tokens();

    Server::Impl& s_;
    const LoadedModel& m_;
    Job& job_;
};

std::optional<std::vector<std::int32_t>> Runner::prompt_tokens() {
    const auto& req = job_.req;
    const runtime::Tokenizer& tok = *m_.tok;
    std::vector<std::int32_t> ids;
    if (req.chat) {
        ids = encode_prompt(tok, render_chat(m_.format, req.messages));
    } else if (req.prompt_ids) {
        ids = *req.prompt_ids;
        for (std::int32_t id : ids) {
            if (id >= tok.n_vocab()) {
                fail(invalid("token id " + std::to_string(id) +
                                 " in 'prompt' is outside the "
                                 "vocabulary (" +
                                 std::to_string(tok.n_vocab()) + " tokens)",
                             "prompt", "invalid_value"));
                return std::nullopt;
            }
        }
    } else {
        ids = tok.encode(req.prompt);
    }
    if (ids.empty()) {
        fail(invalid("the prompt is empty", "prompt", "invalid_value"));
        return std::nullopt;
    }
    if (ids.size() >= m_.n_ctx) {
        fail(invalid("this model's maximum context length is " + std::to_string(m_.n_ctx) +
                         " tokens; the prompt has " + std::to_string(ids.size()) +
                         " (at least one more is needed for the completion)",
                     req.chat ? "messages" : "prompt", "context_length_exceeded"));
        return std::nullopt;
    }
    return ids;
}

void Runner::run() {
    const CompletionRequest& req = job_.req;
    auto ids = prompt_tokens();
    if (!ids) return;
    const std::size_t n_prompt = ids->size();
    const std::size_t room = m_.n_ctx - n_prompt;
    std::size_t n_predict;
    if (req.max_tokens) {
        n_predict = static_cast<std::size_t>(*req.max_tokens);
        if (n_predict > room) {
            return fail(invalid(
                "this model's maximum context length is " + std::to_string(m_.n_ctx) +
                    " tokens; you requested " + std::to_string(n_prompt + n_predict) + " (" +
                    std::to_string(n_prompt) + " in the prompt, " + std::to_string(n_predict) +
                    " for the completion)",
                req.chat ? "max_completion_tokens" : "max_tokens", "context_length_exceeded"));
        }
    } else {
        // OpenAI's defaults: 16 for completions, as much as fits for chat.
        n_predict =
            std::min<std::size_t>(req.chat ? static_cast<std::size_t>(m_.max_tokens) : 16, room);
        n_predict = std::min<std::size_t>(n_predict, static_cast<std::size_t>(m_.max_tokens));
    }

    runtime::GenerateOptions opt;
    opt.n_predict = static_cast<int>(n_predict);
    opt.sampling.temperature = static_cast<float>(req.temperature);
    opt.sampling.top_p = static_cast<float>(req.top_p);
    opt.sampling.top_k = 0;
    opt.sampling.min_p = 0.0f;
    opt.sampling.repeat_penalty = 1.0f;
    opt.sampling.seed = req.seed ? *req.seed : random_u64();
    opt.speculative.draft = m_.draft.get();
    opt.speculative.lookup = s_.config.lookup;

    std::vector<std::string> stops = req.stop;
    if (req.chat) stops.insert(stops.end(), m_.turn_end_strings.begin(), m_.turn_end_strings.end());
    StopMatcher matcher(std::move(stops));

    if (req.stream) {
        s_.metrics.count_request(job_.route, 200);
        job_.ex->begin_stream(200, "text/event-stream",
                              {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}});
        if (req.chat) send(sse_choice("", nullptr, true));
    }

    std::string text;  // non-streaming: the answer
    bool first = true;
    bool turn_ended = false;
    auto emit = [&](std::string_view piece) {
        if (piece.empty()) return;
        if (req.stream) {
            send(sse_choice(piece, nullptr));
        } else {
            text.append(piece);
        }
    };
    const auto delay = s_.config.test_token_delay;
    auto on_token = [&](std::int32_t id, std::string_view piece) {
        if (id >= 0 && first) {
            first = false;
            s_.metrics.observe_first_token(
                std::chrono::duration<double>(Clock::now() - job_.received).count());
        }
        if (id >= 0 && std::find(m_.turn_end_ids.begin(), m_.turn_end_ids.end(), id) !=
                           m_.turn_end_ids.end()) {
            turn_ended = true;
            return false;
        }
        emit(matcher.push(piece));
        if (delay.count() > 0 && id >= 0) std::this_thread::sleep_for(delay);
        if (matcher.stopped()) return false;
        return !job_.client_gone.load() && !s_.abort_all.load();
    };
    auto result = runtime::generate(*m_.ctx, *m_.tok, *ids, opt, on_token);
    if (!result) {
        const Error& err = result.error();
        log::error("runtime server: generation failed: {}", err.what());
        ApiError e = server_error("generation failed: " + err.what(), "generation_failed");
        if (err.code() == Errc::invalid_argument || err.code() == Errc::limit_exceeded) {
            e = invalid(err.what());
        }
        return req.stream ? fail_stream(e) : fail(e);
    }
    const runtime::GenerateResult& r = *result;
    s_.metrics.observe_generation(r);
    if (job_.client_gone.load()) {
        // Counted as cancelled when the disconnect cut the generation short; either way the
        // client gets nothing more.
        if (r.stop_reason == "stopped" && !matcher.stopped() && !turn_ended) {
            s_.metrics.count_cancelled();
            log::info("runtime server: {} cancelled after {} tokens (client disconnected)", job_.id,
                      r.generated_ids.size());
        }
        if (!req.stream) s_.metrics.count_request(job_.route, 499);
        return;
    }
    if (s_.abort_all.load() && r.stop_reason == "stopped" && !matcher.stopped() && !turn_ended) {
        const ApiError e = server_error("the server is shutting down", "shutting_down", 503);
        return req.stream ? fail_stream(e) : fail(e);
    }
    emit(matcher.flush());
    const bool stopped = matcher.stopped() || turn_ended || r.stop_reason == "eos";
    const char* finish = stopped ? "stop" : "length";
    const std::size_t n_gen = r.generated_ids.size();

    if (req.stream) {
        send(sse_choice("", finish));
        if (req.include_usage) {
            json j = chunk_base();
            j["choices"] = json::array();
            j["usage"] = usage(n_prompt, n_gen);
            send("data: " + dump(j) + "\n\n");
        }
        send("data: [DONE]\n\n");
        job_.ex->end();
        return;
    }
    json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish}};
    if (req.chat) {
        choice["message"] = {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
    } else {
        choice["text"] = text;
    }
    json j = {{"id", job_.id},
              {"object", req.chat ? "chat.completion" : "text_completion"},
              {"created", job_.created},
              {"model", s_.model_id},
              {"choices", json::array({std::move(choice)})},
              {"usage", usage(n_prompt, n_gen)}};
    s_.reply(*job_.ex, job_.route, 200, dump(j));
}

}  // namespace

void Server::Impl::handle_completion(HttpRequest request, std::shared_ptr<Exchange> ex, bool chat) {
    const std::string_view route = chat ? kRouteChat : kRouteCompletions;
    if (shutting_down.load()) {
        return reply_error(*ex, route,
                           server_error("the server is shutting down", "shutting_down", 503));
    }
    const std::shared_ptr<const LoadedModel> m = ready_model();
    if (m == nullptr) {
        return reply_error(*ex, route,
                           server_error("the model is still loading; retry shortly (see /health)",
                                        "model_loading", 503),
                           {{"Retry-After", "1"}});
    }
    auto job = std::make_shared<Job>();
    if (auto err = parse_completion_request(request.body, chat, limits, job->req)) {
        return reply_error(*ex, route, *err);
    }
    if (job->req.max_tokens && *job->req.max_tokens > m->max_tokens) {
        return reply_error(
            *ex, route,
            invalid("max_tokens is " + std::to_string(*job->req.max_tokens) +
                        "; this server allows at most " + std::to_string(m->max_tokens),
                    chat ? "max_completion_tokens" : "max_tokens", "invalid_value"));
    }
    job->ex = ex;
    job->route = route;
    job->id = random_id(chat ? "chatcmpl-" : "cmpl-");
    job->created = static_cast<std::int64_t>(std::time(nullptr));
    job->received = Clock::now();
    std::weak_ptr<Job> weak = job;
    ex->on_disconnect([weak] {
        if (auto j = weak.lock()) j->client_gone.store(true);
    });
    Scheduler::Job work;
    work.run = [this, job] {
        // The model served now; a replacement published meanwhile waits for the next request.
        const std::shared_ptr<const LoadedModel> lm = ready_model();
        if (job->client_gone.load()) {
            metrics.count_cancelled();
            metrics.count_request(job->route, 499);
            return;
        }
        Runner(*this, *lm, *job).run();
    };
    work.refuse = [this, job] {
        reply_error(*job->ex, job->route,
                    server_error("the server is shutting down", "shutting_down", 503));
    };
    if (!scheduler->submit(std::move(work))) {
        if (shutting_down.load()) {
            return reply_error(*ex, route,
                               server_error("the server is shutting down", "shutting_down", 503));
        }
        return reply_error(*ex, route,
                           server_error("too many requests are waiting (" +
                                            std::to_string(config.max_queue) + "); retry shortly",
                                        "queue_full", 503),
                           {{"Retry-After", "1"}});
    }
}

}  // namespace pylon::runtime_server
