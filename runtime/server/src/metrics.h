// The server's Prometheus metrics (text exposition format 0.0.4), all names prefixed
// pylon_serve_. Thread-safe. Other components append their own series through MetricsWriter
// callbacks (Server::add_metrics_writer).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "pylon/runtime/generate.h"

namespace pylon::runtime_server {

class Metrics {
public:
    // `route` must be one of a fixed set (the server's routes, or "other").
    void count_request(std::string_view route, int status);
    void count_cancelled() { cancelled_.fetch_add(1, std::memory_order_relaxed); }
    void count_model_swap() { swaps_.fetch_add(1, std::memory_order_relaxed); }
    void set_queue_depth(std::size_t n) { queue_depth_.store(n, std::memory_order_relaxed); }
    void set_active(std::size_t n) { active_.store(n, std::memory_order_relaxed); }
    void set_loaded(bool loaded) { loaded_.store(loaded, std::memory_order_relaxed); }
    void observe_first_token(double seconds);
    // One finished generation (completed, stopped or cancelled).
    void observe_generation(const runtime::GenerateResult& r);

    // Appends every series to `out`.
    void render(std::string& out) const;

private:
    static constexpr std::array<double, 12> kTtftBuckets{0.005, 0.01, 0.025, 0.05, 0.1,  0.25,
                                                         0.5,   1.0,  2.5,   5.0,  10.0, 30.0};
    mutable std::mutex mu_;
    std::map<std::pair<std::string, int>, std::uint64_t> requests_;
    std::array<std::uint64_t, kTtftBuckets.size()> ttft_buckets_{};
    std::uint64_t ttft_count_ = 0;
    double ttft_sum_ = 0;
    std::uint64_t generations_ = 0;
    std::uint64_t prompt_tokens_ = 0;
    std::uint64_t generated_tokens_ = 0;
    std::uint64_t decode_tokens_ = 0;
    double decode_seconds_ = 0;
    double prompt_seconds_ = 0;
    double last_decode_tok_s_ = 0;
    runtime::SpeculativeStats spec_{};

    std::atomic<std::uint64_t> cancelled_{0};
    std::atomic<std::uint64_t> swaps_{0};
    std::atomic<std::size_t> queue_depth_{0};
    std::atomic<std::size_t> active_{0};
    std::atomic<bool> loaded_{false};
};

}  // namespace pylon::runtime_server
