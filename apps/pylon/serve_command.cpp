// pylon serve: the OpenAI-compatible HTTP API over a GGUF model on this machine
// (pylon::runtime_server). Runs until SIGINT or SIGTERM, then stops gracefully.
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "cli_support.h"
#include "commands.h"
#include "pylon/common/log.h"
#include "pylon/runtime_server/server.h"

namespace pylon::cli {
namespace {

struct ServeOptions {
    runtime_server::ServeConfig config;
    int port = 8080;
    int max_tokens = 0;
    std::size_t max_queue = 16;
    std::size_t max_body = 1u << 20;
    int ctx = 0;
    std::string log_level = "info";
    std::string log_format = "text";
};

void cmd_serve(ServeOptions o) {
    LogOptions lo;
    lo.level = o.log_level;
    lo.format = o.log_format == "json" ? LogFormat::json : LogFormat::text;
    lo.name = "pylon-serve";
    unwrap(init_logging(lo));
    auto& c = o.config;
    c.port = static_cast<std::uint16_t>(o.port);
    c.n_ctx = static_cast<std::uint32_t>(o.ctx);
    c.max_tokens = o.max_tokens;
    c.max_queue = o.max_queue;
    c.max_body_bytes = o.max_body;

    // SIGINT/SIGTERM are taken by sigwait below: block them before any thread starts so that
    // every thread inherits the mask. SIGUSR1 is how the loader reports a failed load.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);

    auto server = unwrap(runtime_server::Server::start(c));
    std::fprintf(stderr, "pylon serve: listening on http://%s:%u (model '%s' loading)\n",
                 c.host.c_str(), static_cast<unsigned>(server->port()), server->model_id().c_str());
    const pthread_t main_thread = pthread_self();
    Result<void> load_result;
    std::thread waiter([&] {
        load_result = server->wait_until_loaded();
        if (!load_result) pthread_kill(main_thread, SIGUSR1);
    });
    int sig = 0;
    sigwait(&set, &sig);
    if (sig != SIGUSR1) log::info("pylon serve: signal {}, stopping", sig);
    server->stop();  // also ends a load in progress's wait
    waiter.join();
    if (!load_result) unwrap(std::move(load_result), "loading the model");
}

}  // namespace

void add_serve_command(CLI::App& app) {
    auto o = std::make_shared<ServeOptions>();
    auto* cmd =
        app.add_subcommand("serve", "Serve a GGUF model over an OpenAI-compatible HTTP API");
    cmd->add_option("-m,--model", o->config.model_path, "GGUF model file")->required();
    auto* draft = cmd->add_option("--draft", o->config.draft_path,
                                  "Speculative decoding with this draft model (same vocabulary)");
    cmd->add_flag("--lookup", o->config.lookup,
                  "Speculative decoding by prompt lookup (n-grams of the text so far)")
        ->excludes(draft);
    cmd->add_option("--host", o->config.host, "IP address to listen on (default 127.0.0.1)");
    cmd->add_option("--port", o->port, "TCP port (default 8080; 0: any free port)")
        ->check(CLI::Range(0, 65535));
    cmd->add_option("-t,--threads", o->config.threads, "Threads (default: all cores)")
        ->check(CLI::Range(0, 512));
    cmd->add_option("-c,--ctx", o->ctx, "Context length in tokens (default: the model's)")
        ->check(CLI::Range(0, 1 << 22));
    cmd->add_option("--alias", o->config.model_id,
                    "The model's name in the API (default: the file name without .gguf)");
    cmd->add_option("--chat-template", o->config.chat_template,
                    "Chat layout name (chatml, llama2, llama3, ...) or template text, instead of "
                    "the model's");
    cmd->add_option("--kv-budget", o->config.kv_budget,
                    "KV cache budget in bytes that memory pressure shrinks from (default: the "
                    "whole context)");
    cmd->add_flag("!--no-psi", o->config.psi,
                  "Do not shrink the KV cache under memory pressure (PSI)");
    cmd->add_option("--max-queue", o->max_queue, "Completion requests that may wait (default 16)")
        ->check(CLI::Range(1, 4096));
    cmd->add_option("--max-tokens", o->max_tokens,
                    "Largest max_tokens a request may ask for (default: the context length)")
        ->check(CLI::Range(0, 1 << 22));
    cmd->add_option("--max-body", o->max_body, "Largest request body in bytes (default 1 MiB)")
        ->check(CLI::Range(1024, 64 << 20));
    cmd->add_option("--log-level", o->log_level, "trace, debug, info, warn, error")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
    cmd->add_option("--log-format", o->log_format, "text or json")
        ->check(CLI::IsMember({"text", "json"}));
    cmd->callback([o] { cmd_serve(*o); });
}

}  // namespace pylon::cli
