// `pylon serve`: an OpenAI-compatible HTTP API over one model on this machine.
//
// Endpoints: POST /v1/completions, POST /v1/chat/completions (JSON or, with "stream": true,
// server-sent events ending with `data: [DONE]`), GET /v1/models, GET /v1/models/{id},
// GET /health, GET /metrics. docs/API.md describes the wire format, limits and errors.
//
// Contract:
// - start() returns once the listener is up; the model loads on a background thread. Until it
//   has loaded, /health answers 503 {"status":"loading"} and completion requests 503.
// - One runtime Context serves every request: completion requests wait in a first-in,
//   first-out queue of at most max_queue requests (more: 503 with code "queue_full") and run
//   one at a time on a single worker thread.
// - A client that disconnects (noticed while its request waits, while it is generated, or when
//   a streamed write fails) has its generation cancelled; the worker moves on to the next.
// - stop() (also run by the destructor) refuses new work, answers queued requests 503, lets
//   the running request finish for up to shutdown_grace, cancels it after that, and closes
//   every connection.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "pylon/common/result.h"

namespace pylon::runtime_server {

// Appends Prometheus text-format series (with their # HELP / # TYPE lines) to `out`. Called on
// an HTTP thread for each scrape of /metrics; must be thread-safe and quick.
using MetricsWriter = std::function<void(std::string& out)>;

struct ServeConfig {
    // The model to load at start; empty: none yet (/health answers 503 {"status":"no_model"}
    // until replace_model(); model_id is then required).
    std::string model_path;
    std::string draft_path;  // speculative decoding with this draft model (same vocabulary)
    bool lookup = false;     // speculative decoding by prompt lookup (n-grams)
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;  // 0: any free port (Server::port() tells which)
    int threads = 0;            // 0: one per CPU core (at most 64)
    std::uint32_t n_ctx = 0;    // 0: the model's training context
    std::string model_id;       // the model's name in the API; default: file name without .gguf
    // A chat layout name ("chatml", "llama3", ...) or template text used instead of the GGUF's
    // tokenizer.chat_template.
    std::string chat_template;
    // The KV cache under memory pressure (pylon/runtime/psi.h): the budget in bytes that the PSI
    // controller shrinks from and recovers to (0: the whole context), and whether it runs.
    std::size_t kv_budget = 0;
    bool psi = true;

    std::size_t max_queue = 16;  // completion requests waiting (not counting the running one)
    int max_tokens = 0;          // cap on a request's max_tokens; 0: the context size
    std::size_t max_body_bytes = 1u << 20;  // request bodies
    std::size_t max_connections = 256;
    std::chrono::milliseconds request_timeout{30'000};  // a body after its head
    std::chrono::milliseconds idle_timeout{60'000};     // waiting for a request head
    std::chrono::milliseconds write_timeout{30'000};    // a client not reading its response
    std::chrono::milliseconds shutdown_grace{10'000};

    // Tests only: the worker sleeps this long after each generated token, so that tests can
    // observe queueing and cancellation with a tiny model. Never set by the CLI.
    std::chrono::microseconds test_token_delay{0};
    // Tests only: run by the loader thread before it loads the model (to observe "loading").
    std::function<void()> test_before_load;
};

class Server {
public:
    // Listens on host:port and starts loading the model. Errors: the address cannot be used
    // (Errc::io_error / invalid_argument) or the configuration is invalid.
    [[nodiscard]] static Result<std::unique_ptr<Server>> start(ServeConfig config);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    std::uint16_t port() const noexcept;
    // Blocks until the model has loaded (ok) or failed to load (the load error).
    [[nodiscard]] Result<void> wait_until_loaded();
    bool loaded() const noexcept;
    // The name requests and responses use for the model.
    const std::string& model_id() const noexcept;
    // Loads `model_path` on the calling thread — the served model keeps answering meanwhile —
    // and then serves it under the same model id: requests accepted from then on run on it, a
    // running one finishes on the model it started with. The listener never closes. Errors:
    // the load's (the served model stays).
    [[nodiscard]] Result<void> replace_model(const std::string& model_path);
    // The file of the model served now ("" before one is).
    std::string model_path() const;
    // Adds series to /metrics (e.g. the KV-cache / PSI controller's). Thread-safe.
    void add_metrics_writer(MetricsWriter writer);
    // See the file comment. Idempotent.
    void stop();

    struct Impl;

private:
    explicit Server(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace pylon::runtime_server
