// Server::Impl: the state shared by the HTTP handlers (server.cpp), the completion requests
// (completion.cpp) and the model loader.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "api_request.h"
#include "http_server.h"
#include "metrics.h"
#include "pylon/runtime/context.h"
#include "pylon/runtime/model.h"
#include "pylon/runtime/psi.h"
#include "pylon/runtime/tokenizer.h"
#include "pylon/runtime_server/chat_template.h"
#include "pylon/runtime_server/server.h"
#include "scheduler.h"

namespace pylon::runtime_server {

// Route labels of pylon_serve_requests_total (a fixed set: no label from client input).
inline constexpr std::string_view kRouteCompletions = "/v1/completions";
inline constexpr std::string_view kRouteChat = "/v1/chat/completions";
inline constexpr std::string_view kRouteModels = "/v1/models";
inline constexpr std::string_view kRouteHealth = "/health";
inline constexpr std::string_view kRouteMetrics = "/metrics";
inline constexpr std::string_view kRouteOther = "other";

// Everything loaded in the background; immutable once published, except the Contexts, which
// only the worker thread touches.
struct LoadedModel {
    std::shared_ptr<const runtime::Model> model;
    std::optional<runtime::Tokenizer> tok;
    std::unique_ptr<runtime::Context> ctx;
    std::shared_ptr<const runtime::Model> draft_model;
    std::unique_ptr<runtime::Context> draft;
    std::unique_ptr<runtime::psi::Controller> psi;  // declared after ctx: stops before it goes
    ChatFormat format = ChatFormat::plain;
    std::vector<std::int32_t> turn_end_ids;     // tokens that end an assistant turn (chat)
    std::vector<std::string> turn_end_strings;  // texts that end it (chat)
    std::uint32_t n_ctx = 0;
    int max_tokens = 0;  // cap on a request's max_tokens
};

struct Server::Impl {
    explicit Impl(ServeConfig c) : config(std::move(c)) {}

    // Loads `path` (and the configured draft) into a new LoadedModel; nothing is published.
    Result<std::unique_ptr<LoadedModel>> load_model(const std::string& path);
    // The background start-up load: load_model(config.model_path), then publish.
    void load();
    // Makes `lm` the served model: requests accepted from now on run on it, a running one
    // finishes on the model it started with (each holds its own reference).
    void publish(std::unique_ptr<LoadedModel> lm);
    void handle(HttpRequest request, std::shared_ptr<Exchange> exchange);
    void reply(Exchange& ex, std::string_view route, int status, std::string body,
               HeaderList headers = {}, std::string content_type = "application/json");
    void reply_error(Exchange& ex, std::string_view route, const ApiError& error,
                     HeaderList headers = {});
    HttpResponse transport_error(int status, std::string_view message);
    std::shared_ptr<const LoadedModel> ready_model() const {
        std::lock_guard lock(model_mu);
        return model;
    }

    // completion.cpp
    void handle_completion(HttpRequest request, std::shared_ptr<Exchange> exchange, bool chat);

    const ServeConfig config;
    RequestLimits limits;
    std::string model_id;
    std::int64_t created = 0;
    Metrics metrics;
    std::unique_ptr<Scheduler> scheduler;
    std::unique_ptr<HttpServer> http;

    std::mutex load_mu;
    std::condition_variable load_cv;
    mutable std::mutex model_mu;
    std::shared_ptr<const LoadedModel> model;  // the served model (null before the first load)
    std::string model_path;                    // its file (under model_mu)
    std::optional<Error> load_error;
    std::atomic<bool> ready{false};
    std::thread loader;

    std::atomic<bool> shutting_down{false};
    std::atomic<bool> abort_all{false};  // the shutdown grace is over: cancel the running request
    std::mutex writers_mu;
    std::vector<MetricsWriter> writers;
    std::once_flag stop_once;
};

}  // namespace pylon::runtime_server
