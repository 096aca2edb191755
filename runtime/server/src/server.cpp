// Server: start-up and shutdown, the background model load, routing, and the small endpoints
// (/health, /v1/models, /metrics). Completion requests are in completion.cpp.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "pylon/common/error.h"
#include "pylon/common/log.h"
#include "server_impl.h"

namespace pylon::runtime_server {

using nlohmann::json;

namespace {

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

int default_threads() {
    const unsigned hc = std::thread::hardware_concurrency();
    return static_cast<int>(std::clamp(hc, 1u, 64u));
}

json model_object(const Server::Impl& s) {
    return {{"id", s.model_id}, {"object", "model"}, {"created", s.created}, {"owned_by", "pylon"}};
}

}  // namespace

void Server::Impl::reply(Exchange& ex, std::string_view route, int status, std::string body,
                         HeaderList headers, std::string content_type) {
    metrics.count_request(route, status);
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    r.headers = std::move(headers);
    r.content_type = std::move(content_type);
    ex.respond(std::move(r));
}

void Server::Impl::reply_error(Exchange& ex, std::string_view route, const ApiError& error,
                               HeaderList headers) {
    reply(ex, route, error.status, error_body(error), std::move(headers));
}

HttpResponse Server::Impl::transport_error(int status, std::string_view message) {
    ApiError e;
    e.status = status;
    e.message = std::string(message);
    switch (status) {
        case 413:
            e.code = "request_too_large";
            break;
        case 431:
            e.code = "request_header_too_large";
            break;
        case 503:
            e.type = "server_error";
            e.code = "too_many_connections";
            break;
        case 500:
            e.type = "server_error";
            break;
        default:
            e.code = "bad_request";
    }
    metrics.count_request(kRouteOther, status);
    HttpResponse r;
    r.status = status;
    r.body = error_body(e);
    return r;
}

void Server::Impl::handle(HttpRequest req, std::shared_ptr<Exchange> ex) {
    const std::string& p = req.path;
    const bool get = req.method == "GET";
    auto wrong_method = [&](std::string_view route, const char* allow) {
        ApiError e = invalid("method " + req.method.substr(0, 16) + " is not allowed on " +
                                 std::string(route) + " (use " + allow + ")",
                             "", "method_not_allowed");
        e.status = 405;
        reply_error(*ex, route, e, {{"Allow", allow}});
    };
    if (p == "/v1/completions" || p == "/v1/chat/completions") {
        const bool chat = p == "/v1/chat/completions";
        if (req.method != "POST")
            return wrong_method(chat ? kRouteChat : kRouteCompletions, "POST");
        return handle_completion(std::move(req), std::move(ex), chat);
    }
    if (p == "/health") {
        if (!get) return wrong_method(kRouteHealth, "GET");
        if (ready_model() != nullptr) {
            return reply(*ex, kRouteHealth, 200, R"({"status":"ok"})");
        }
        std::lock_guard lock(load_mu);
        if (load_error) {
            return reply(*ex, kRouteHealth, 503,
                         dump({{"status", "error"}, {"error", load_error->what()}}));
        }
        if (config.model_path.empty()) {
            return reply(*ex, kRouteHealth, 503, R"({"status":"no_model"})");
        }
        return reply(*ex, kRouteHealth, 503, R"({"status":"loading"})");
    }
    if (p == "/v1/models" || p.starts_with("/v1/models/")) {
        if (!get) return wrong_method(kRouteModels, "GET");
        if (p == "/v1/models") {
            return reply(*ex, kRouteModels, 200,
                         dump({{"object", "list"}, {"data", json::array({model_object(*this)})}}));
        }
        if (p.substr(std::string_view("/v1/models/").size()) == model_id) {
            return reply(*ex, kRouteModels, 200, dump(model_object(*this)));
        }
        ApiError e = invalid("the model '" + p.substr(11, 128) + "' does not exist", "model",
                             "model_not_found");
        e.status = 404;
        return reply_error(*ex, kRouteModels, e);
    }
    if (p == "/metrics") {
        if (!get) return wrong_method(kRouteMetrics, "GET");
        // Counted before rendering, so a scrape sees itself.
        metrics.count_request(kRouteMetrics, 200);
        std::string out;
        metrics.render(out);
        {
            std::lock_guard lock(writers_mu);
            for (const auto& w : writers) {
                try {
                    w(out);
                } catch (const std::exception& e) {
                    log::warn("runtime server: a metrics writer failed: {}", e.what());
                }
            }
        }
        // The served model's KV cache under memory pressure (pylon_psi_* / pylon_kv_*).
        if (const auto m = ready_model(); m && m->psi) m->psi->write_metrics(out);
        HttpResponse r;
        r.body = std::move(out);
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        return ex->respond(std::move(r));
    }
    ApiError e =
        invalid("unknown request URL: " + req.method.substr(0, 16) + " " + p.substr(0, 256), "",
                "unknown_url");
    e.status = 404;
    reply_error(*ex, kRouteOther, e);
}

Result<std::unique_ptr<LoadedModel>> Server::Impl::load_model(const std::string& path) {
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    auto fail = [](Error e) -> Result<std::unique_ptr<LoadedModel>> { return e; };
    auto lm = std::make_unique<LoadedModel>();
    auto loaded = runtime::Model::load(path);
    if (!loaded) return fail(std::move(loaded).error().with_context("loading " + path));
    lm->model = std::move(*loaded);
    auto tok = runtime::Tokenizer::from_gguf(lm->model->gguf());
    if (!tok) return fail(std::move(tok).error().with_context("reading the model's tokenizer"));
    lm->tok.emplace(std::move(*tok));
    runtime::ContextParams cp;
    cp.n_ctx = config.n_ctx;
    cp.n_threads = config.threads > 0 ? config.threads : default_threads();
    auto ctx = runtime::Context::create(lm->model, cp);
    if (!ctx) return fail(std::move(ctx).error().with_context("creating the context"));
    lm->ctx = std::move(*ctx);
    lm->n_ctx = lm->ctx->n_ctx();
    if (!config.draft_path.empty()) {
        auto dm = runtime::Model::load(config.draft_path);
        if (!dm) return fail(std::move(dm).error().with_context("loading " + config.draft_path));
        lm->draft_model = std::move(*dm);
        if (lm->draft_model->hparams().n_vocab != lm->model->hparams().n_vocab) {
            return fail(Error(Errc::invalid_argument,
                              "the draft model's vocabulary (" +
                                  std::to_string(lm->draft_model->hparams().n_vocab) +
                                  " tokens) differs from the model's (" +
                                  std::to_string(lm->model->hparams().n_vocab) + ")"));
        }
        runtime::ContextParams dp = cp;
        dp.n_ctx = lm->n_ctx;
        auto dctx = runtime::Context::create(lm->draft_model, dp);
        if (!dctx) return fail(std::move(dctx).error().with_context("creating the draft context"));
        lm->draft = std::move(*dctx);
    }
    // Memory pressure shrinks the KV budget (generate() applies it before each token).
    if (config.kv_budget > 0) lm->ctx->set_kv_budget(config.kv_budget);
    if (config.psi) {
        runtime::psi::KvControlOptions ko;
        ko.max_budget = config.kv_budget;
        if (auto c = runtime::psi::start_kv_controller(*lm->ctx, ko)) {
            lm->psi = std::move(*c);
        } else {
            log::warn("runtime server: the KV cache is not under memory-pressure control: {}",
                      c.error().what());
        }
    }

    // The chat layout: --chat-template, else the GGUF's template, else plain.
    std::string tmpl = config.chat_template;
    if (tmpl.empty()) {
        if (auto t = lm->model->gguf().get_string("tokenizer.chat_template"))
            tmpl = std::string(*t);
    }
    if (!tmpl.empty()) {
        if (auto f = detect_chat_format(tmpl)) {
            lm->format = *f;
        } else {
            log::warn(
                "runtime server: the chat template is not one we recognise; chat requests "
                "use the plain User:/Assistant: layout");
        }
    }
    const TurnEnd end = turn_end(lm->format);
    const runtime::Tokenizer& t = *lm->tok;
    auto special = [&t](std::int32_t id) {
        return t.type(id) == runtime::TokenType::control ||
               t.type(id) == runtime::TokenType::user_defined;
    };
    for (const auto& marker : end.markers) {
        if (auto id = t.find(marker); id && special(*id)) lm->turn_end_ids.push_back(*id);
    }
    if (auto eot = lm->model->gguf().get_uint("tokenizer.ggml.eot_token_id");
        eot && *eot < static_cast<std::uint64_t>(t.n_vocab())) {
        lm->turn_end_ids.push_back(static_cast<std::int32_t>(*eot));
    }
    lm->turn_end_strings = end.strings;
    lm->max_tokens = config.max_tokens > 0
                         ? static_cast<int>(std::min<std::uint32_t>(
                               static_cast<std::uint32_t>(config.max_tokens), lm->n_ctx))
                         : static_cast<int>(lm->n_ctx);

    log::info(
        "runtime server: serving {} as '{}' ({:.1f} s to load; context {}, {} threads, {}, "
        "chat layout {}{})",
        path, model_id, std::chrono::duration<double>(Clock::now() - t0).count(), lm->n_ctx,
        lm->ctx->n_threads(), runtime::kernels::isa_name(lm->ctx->isa()),
        chat_format_name(lm->format),
        lm->draft ? ", draft " + config.draft_path : (config.lookup ? ", lookup" : ""));
    return lm;
}

void Server::Impl::publish(std::unique_ptr<LoadedModel> lm) {
    std::shared_ptr<const LoadedModel> old;
    {
        std::lock_guard lock(model_mu);
        old = std::move(model);
        model = std::move(lm);
    }
    {
        std::lock_guard lock(load_mu);
        load_error.reset();
        ready.store(true, std::memory_order_release);
    }
    metrics.set_loaded(true);
    load_cv.notify_all();
    // `old` goes here unless a running request still holds it (it goes when that one ends).
}

void Server::Impl::load() {
    if (config.test_before_load) config.test_before_load();
    auto lm = load_model(config.model_path);
    if (!lm) {
        log::error("runtime server: cannot serve {}: {}", config.model_path, lm.error().what());
        {
            std::lock_guard lock(load_mu);
            load_error = std::move(lm).error();
        }
        load_cv.notify_all();
        return;
    }
    {
        std::lock_guard lock(model_mu);
        model_path = config.model_path;
    }
    publish(std::move(*lm));
}

Result<std::unique_ptr<Server>> Server::start(ServeConfig config) {
    if (config.max_queue == 0) return Error(Errc::invalid_argument, "max_queue must be at least 1");
    if (config.max_tokens < 0) return Error(Errc::invalid_argument, "max_tokens must be >= 0");
    if (!config.draft_path.empty() && config.lookup) {
        return Error(Errc::invalid_argument, "--draft and --lookup exclude each other");
    }
    auto impl = std::make_unique<Impl>(std::move(config));
    Impl* s = impl.get();
    const ServeConfig& c = s->config;
    s->model_id = c.model_id;
    if (s->model_id.empty() && c.model_path.empty()) {
        return Error(Errc::invalid_argument, "a server started without a model needs a model id");
    }
    if (s->model_id.empty()) {
        s->model_id = std::filesystem::path(c.model_path).filename().string();
        if (s->model_id.ends_with(".gguf")) s->model_id.resize(s->model_id.size() - 5);
    }
    s->created = static_cast<std::int64_t>(std::time(nullptr));
    s->scheduler = std::make_unique<Scheduler>(c.max_queue, [s](std::size_t queued, bool busy) {
        s->metrics.set_queue_depth(queued);
        s->metrics.set_active(busy ? 1 : 0);
    });

    HttpServerConfig hc;
    hc.host = c.host;
    hc.port = c.port;
    hc.max_body_bytes = c.max_body_bytes;
    hc.max_connections = c.max_connections;
    hc.request_timeout = c.request_timeout;
    hc.idle_timeout = c.idle_timeout;
    hc.write_timeout = c.write_timeout;
    auto http = HttpServer::start(
        hc,
        [s](HttpRequest r, std::shared_ptr<Exchange> ex) {
            s->handle(std::move(r), std::move(ex));
        },
        [s](int status, std::string_view message) { return s->transport_error(status, message); });
    if (!http) return std::move(http).error();
    s->http = std::move(*http);
    log::info("runtime server: listening on http://{}:{}", c.host, s->http->port());
    if (!c.model_path.empty()) s->loader = std::thread([s] { s->load(); });
    return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Result<void> Server::replace_model(const std::string& model_path) {
    if (impl_->shutting_down.load()) {
        return Error(Errc::invalid_argument, "the server is shutting down");
    }
    PYLON_TRY_ASSIGN(auto lm, impl_->load_model(model_path));
    {
        std::lock_guard lock(impl_->model_mu);
        impl_->model_path = model_path;
    }
    impl_->publish(std::move(lm));
    impl_->metrics.count_model_swap();
    return {};
}

std::string Server::model_path() const {
    std::lock_guard lock(impl_->model_mu);
    return impl_->model_path;
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
    stop();
}

std::uint16_t Server::port() const noexcept {
    return impl_->http->port();
}

Result<void> Server::wait_until_loaded() {
    if (impl_->config.model_path.empty() && !impl_->ready.load()) {
        return Error(Errc::invalid_argument, "the server was started without a model");
    }
    std::unique_lock lock(impl_->load_mu);
    impl_->load_cv.wait(lock, [&] { return impl_->ready.load() || impl_->load_error; });
    if (impl_->load_error) return *impl_->load_error;
    return {};
}

bool Server::loaded() const noexcept {
    return impl_->ready.load();
}

const std::string& Server::model_id() const noexcept {
    return impl_->model_id;
}

void Server::add_metrics_writer(MetricsWriter writer) {
    std::lock_guard lock(impl_->writers_mu);
    impl_->writers.push_back(std::move(writer));
}

void Server::stop() {
    Impl& s = *impl_;
    std::call_once(s.stop_once, [&s] {
        s.shutting_down.store(true);
        s.scheduler->close();  // queued requests are answered 503
        if (!s.scheduler->wait_idle(s.config.shutdown_grace)) {
            log::warn("runtime server: cancelling the running request (shutdown grace is over)");
            s.abort_all.store(true);
        }
        s.scheduler->join();
        s.http->stop(std::chrono::milliseconds(1000));
        if (s.loader.joinable()) s.loader.join();
        log::info("runtime server: stopped");
    });
}

}  // namespace pylon::runtime_server
