#include "metrics.h"

#include <cstdio>

namespace pylon::runtime_server {

namespace {

void line(std::string& out, std::string_view name, std::string_view labels, double value) {
    char num[64];
    std::snprintf(num, sizeof num, "%.17g", value);
    out.append(name);
    if (!labels.empty()) {
        out += '{';
        out.append(labels);
        out += '}';
    }
    out += ' ';
    out += num;
    out += '\n';
}

void head(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out += "# HELP ";
    out.append(name);
    out += ' ';
    out.append(help);
    out += "\n# TYPE ";
    out.append(name);
    out += ' ';
    out.append(type);
    out += '\n';
}

}  // namespace

void Metrics::count_request(std::string_view route, int status) {
    std::lock_guard lock(mu_);
    ++requests_[{std::string(route), status}];
}

void Metrics::observe_first_token(double seconds) {
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < kTtftBuckets.size(); ++i) {
        if (seconds <= kTtftBuckets[i]) ++ttft_buckets_[i];
    }
    ++ttft_count_;
    ttft_sum_ += seconds;
}

void Metrics::observe_generation(const runtime::GenerateResult& r) {
    std::lock_guard lock(mu_);
    ++generations_;
    prompt_tokens_ += r.prompt_ids.size();
    generated_tokens_ += r.generated_ids.size();
    decode_tokens_ += r.decoded_tokens;
    decode_seconds_ += r.decode_seconds;
    prompt_seconds_ += r.prompt_seconds;
    if (r.decoded_tokens > 0) last_decode_tok_s_ = r.decode_tok_s();
    spec_.cycles += r.speculative.cycles;
    spec_.drafted += r.speculative.drafted;
    spec_.accepted += r.speculative.accepted;
    spec_.plain_steps += r.speculative.plain_steps;
}

void Metrics::render(std::string& out) const {
    std::lock_guard lock(mu_);
    head(out, "pylon_serve_model_loaded", "gauge", "1 when the model is loaded and serving.");
    line(out, "pylon_serve_model_loaded", "", loaded_.load() ? 1 : 0);

    head(out, "pylon_serve_requests_total", "counter",
         "HTTP requests answered, by route and status.");
    for (const auto& [key, n] : requests_) {
        line(out, "pylon_serve_requests_total",
             "route=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"",
             static_cast<double>(n));
    }
    head(out, "pylon_serve_requests_cancelled_total", "counter",
         "Generations stopped or skipped because the client disconnected.");
    line(out, "pylon_serve_requests_cancelled_total", "", static_cast<double>(cancelled_.load()));
    head(out, "pylon_serve_model_replacements_total", "counter",
         "Times a new model took over from the served one (Server::replace_model).");
    line(out, "pylon_serve_model_replacements_total", "", static_cast<double>(swaps_.load()));
    head(out, "pylon_serve_queue_depth", "gauge", "Completion requests waiting for the worker.");
    line(out, "pylon_serve_queue_depth", "", static_cast<double>(queue_depth_.load()));
    head(out, "pylon_serve_active_requests", "gauge", "Completion requests being generated now.");
    line(out, "pylon_serve_active_requests", "", static_cast<double>(active_.load()));

    head(out, "pylon_serve_generations_total", "counter", "Generations run to their end.");
    line(out, "pylon_serve_generations_total", "", static_cast<double>(generations_));
    head(out, "pylon_serve_prompt_tokens_total", "counter", "Prompt tokens evaluated.");
    line(out, "pylon_serve_prompt_tokens_total", "", static_cast<double>(prompt_tokens_));
    head(out, "pylon_serve_generated_tokens_total", "counter", "Tokens generated.");
    line(out, "pylon_serve_generated_tokens_total", "", static_cast<double>(generated_tokens_));
    head(out, "pylon_serve_prompt_seconds_total", "counter", "Time spent evaluating prompts.");
    line(out, "pylon_serve_prompt_seconds_total", "", prompt_seconds_);
    head(out, "pylon_serve_decode_tokens_total", "counter",
         "Tokens decoded after each generation's first (numerator of decode speed).");
    line(out, "pylon_serve_decode_tokens_total", "", static_cast<double>(decode_tokens_));
    head(out, "pylon_serve_decode_seconds_total", "counter", "Time spent decoding.");
    line(out, "pylon_serve_decode_seconds_total", "", decode_seconds_);
    head(out, "pylon_serve_decode_tokens_per_second", "gauge",
         "Decode speed of the last generation that decoded a token.");
    line(out, "pylon_serve_decode_tokens_per_second", "", last_decode_tok_s_);

    head(out, "pylon_serve_time_to_first_token_seconds", "histogram",
         "From the request's arrival (queueing included) to its first generated token.");
    for (std::size_t i = 0; i < kTtftBuckets.size(); ++i) {
        char le[32];
        std::snprintf(le, sizeof le, "le=\"%g\"", kTtftBuckets[i]);
        line(out, "pylon_serve_time_to_first_token_seconds_bucket", le,
             static_cast<double>(ttft_buckets_[i]));
    }
    line(out, "pylon_serve_time_to_first_token_seconds_bucket", "le=\"+Inf\"",
         static_cast<double>(ttft_count_));
    line(out, "pylon_serve_time_to_first_token_seconds_sum", "", ttft_sum_);
    line(out, "pylon_serve_time_to_first_token_seconds_count", "",
         static_cast<double>(ttft_count_));

    head(out, "pylon_serve_speculative_cycles_total", "counter",
         "Speculative verification passes.");
    line(out, "pylon_serve_speculative_cycles_total", "", static_cast<double>(spec_.cycles));
    head(out, "pylon_serve_speculative_drafted_tokens_total", "counter", "Draft tokens proposed.");
    line(out, "pylon_serve_speculative_drafted_tokens_total", "",
         static_cast<double>(spec_.drafted));
    head(out, "pylon_serve_speculative_accepted_tokens_total", "counter",
         "Draft tokens the target model kept.");
    line(out, "pylon_serve_speculative_accepted_tokens_total", "",
         static_cast<double>(spec_.accepted));
    head(out, "pylon_serve_speculative_acceptance_rate", "gauge",
         "Accepted / drafted tokens since start (0 without speculation).");
    line(out, "pylon_serve_speculative_acceptance_rate", "", spec_.acceptance_rate());
    head(out, "pylon_serve_speculative_mean_accepted_length", "gauge",
         "Tokens gained per verification pass since start (0 without speculation).");
    line(out, "pylon_serve_speculative_mean_accepted_length", "", spec_.mean_accepted_length());
}

}  // namespace pylon::runtime_server
