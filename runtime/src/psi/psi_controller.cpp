// The PSI controller thread (source -> policy -> on_budget callback) and its Prometheus metrics.
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "pylon/common/error.h"
#include "pylon/common/log.h"
#include "pylon/runtime/context.h"
#include "pylon/runtime/psi.h"

namespace pylon::runtime::psi {
namespace {

using std::chrono::milliseconds;

std::string mib(std::size_t bytes) {
    return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

void metric(std::string& out, const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

Controller::Controller(std::unique_ptr<PressureSource> source, ControllerOptions options)
    : source_(std::move(source)),
      options_(std::move(options)),
      policy_(options_.policy, Policy::Clock::now()) {}

Result<std::unique_ptr<Controller>> Controller::start(std::unique_ptr<PressureSource> source,
                                                      ControllerOptions options) {
    if (!source) return Error(Errc::invalid_argument, "psi controller: no pressure source");
    if (!options.on_budget) return Error(Errc::invalid_argument, "psi controller: no on_budget");
    PYLON_TRY(validate(options.policy));
    std::unique_ptr<Controller> c(new Controller(std::move(source), std::move(options)));
    c->cancel_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->cancel_fd_ < 0) return Error::from_errno(errno, "eventfd");
    log::info(
        "psi: controller on {}; KV budget {} (floor {}), -{:.0f}% per some event, -{:.0f}% "
        "per full event, at most one shrink per {} ms, +{:.0f}% after each {} ms calm",
        c->source_->describe(), mib(c->options_.policy.max_budget),
        mib(c->options_.policy.min_budget), 100 * (1 - c->options_.policy.some_factor),
        100 * (1 - c->options_.policy.full_factor), c->options_.policy.min_interval.count(),
        100 * c->options_.policy.grow_step, c->options_.policy.calm_period.count());
    c->thread_ = std::thread([p = c.get()] { p->run(); });
    return c;
}

Controller::~Controller() {
    stop();
    if (cancel_fd_ >= 0) ::close(cancel_fd_);
}

void Controller::stop() noexcept {
    stopping_.store(true);
    if (cancel_fd_ >= 0) {
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = ::write(cancel_fd_, &one, sizeof one);
    }
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::size_t Controller::budget() const {
    std::lock_guard lock(mu_);
    return policy_.budget();
}

PolicyCounters Controller::counters() const {
    std::lock_guard lock(mu_);
    return policy_.counters();
}

void Controller::run() {
    while (!stopping_.load()) {
        milliseconds timeout(1000);
        {
            std::lock_guard lock(mu_);
            if (policy_.budget() < policy_.config().max_budget) {
                const auto left = std::chrono::duration_cast<milliseconds>(policy_.next_tick() -
                                                                           Policy::Clock::now());
                timeout = std::clamp(left + milliseconds(1), milliseconds(1), milliseconds(1000));
            }
        }
        auto r = source_->wait(timeout, cancel_fd_);
        if (stopping_.load()) break;
        if (!r) {
            log::error("psi: {}; pressure control stops, the KV budget stays at {}",
                       r.error().what(), mib(budget()));
            running_.store(false);
            return;
        }
        const auto now = Policy::Clock::now();
        std::optional<std::size_t> next;
        std::size_t before = 0;
        if (*r) {
            if (options_.on_event) options_.on_event(**r);
            std::lock_guard lock(mu_);
            before = policy_.budget();
            next = policy_.on_event(**r, now);
        } else {
            std::lock_guard lock(mu_);
            before = policy_.budget();
            next = policy_.on_tick(now);
        }
        if (*r && !next) {
            log::debug("psi: {} pressure; KV budget stays at {} (rate limited or at the floor)",
                       level_name(**r), mib(before));
        }
        if (!next) continue;
        if (*r) {
            log::info("psi: {} memory pressure: KV budget {} -> {}", level_name(**r), mib(before),
                      mib(*next));
        } else {
            log::info("psi: calm for {} ms: KV budget {} -> {}",
                      options_.policy.calm_period.count(), mib(before), mib(*next));
        }
        options_.on_budget(*next);
    }
}

void Controller::write_metrics(std::string& out) const {
    PolicyCounters c;
    std::size_t budget = 0;
    {
        std::lock_guard lock(mu_);
        c = policy_.counters();
        budget = policy_.budget();
    }
    metric(out, "pylon_psi_events_total", "counter", "Memory pressure events seen, by PSI level.");
    out += fmt::format("pylon_psi_events_total{{level=\"some\"}} {}\n", c.events_some);
    out += fmt::format("pylon_psi_events_total{{level=\"full\"}} {}\n", c.events_full);
    metric(out, "pylon_psi_events_ignored_total", "counter",
           "Pressure events that changed nothing (rate limit or budget floor).");
    out += fmt::format("pylon_psi_events_ignored_total {}\n", c.rate_limited);
    metric(out, "pylon_kv_budget_changes_total", "counter",
           "KV budget changes made by the PSI controller, by direction.");
    out += fmt::format("pylon_kv_budget_changes_total{{direction=\"shrink\"}} {}\n", c.shrinks);
    out += fmt::format("pylon_kv_budget_changes_total{{direction=\"grow\"}} {}\n", c.grows);
    metric(out, "pylon_kv_budget_bytes", "gauge", "Current KV cache budget.");
    out += fmt::format("pylon_kv_budget_bytes {}\n", budget);
    metric(out, "pylon_kv_budget_max_bytes", "gauge", "Configured KV cache budget.");
    out += fmt::format("pylon_kv_budget_max_bytes {}\n", options_.policy.max_budget);
    metric(out, "pylon_kv_budget_min_bytes", "gauge", "Floor of the KV cache budget.");
    out += fmt::format("pylon_kv_budget_min_bytes {}\n", options_.policy.min_budget);
    metric(out, "pylon_psi_controller_up", "gauge",
           "1 while the pressure source works (0 after it failed), by source kind.");
    out += fmt::format("pylon_psi_controller_up{{source=\"{}\"}} {}\n", source_->kind(),
                       running_.load() ? 1 : 0);
    if (options_.context != nullptr) write_kv_metrics(*options_.context, out);
}

void write_kv_metrics(const Context& ctx, std::string& out) {
    const KvStats s = ctx.kv_stats();
    metric(out, "pylon_kv_evictions_total", "counter", "KV cache eviction passes.");
    out += fmt::format("pylon_kv_evictions_total {}\n", s.evictions);
    metric(out, "pylon_kv_tokens_evicted_total", "counter",
           "Positions evicted from the KV cache (attention sinks + recent window kept).");
    out += fmt::format("pylon_kv_tokens_evicted_total {}\n", s.tokens_evicted);
    metric(out, "pylon_kv_bytes_released_total", "counter",
           "Resident KV cache bytes returned to the kernel.");
    out += fmt::format("pylon_kv_bytes_released_total {}\n", s.bytes_released);
    metric(out, "pylon_kv_resident_bytes", "gauge", "KV cache bytes resident in RAM.");
    out += fmt::format("pylon_kv_resident_bytes {}\n", ctx.kv_resident_bytes());
    metric(out, "pylon_kv_capacity_positions", "gauge", "Positions the KV budget allows.");
    out += fmt::format("pylon_kv_capacity_positions {}\n", ctx.kv_capacity());
}

Result<std::unique_ptr<Controller>> start_kv_controller(Context& ctx, const KvControlOptions& o) {
    const std::size_t bpp = ctx.kv_bytes_per_position();
    std::size_t max = o.max_budget;
    if (max == 0) {
        max = ctx.kv_budget() != Context::kKvUnlimited
                  ? ctx.kv_budget()
                  : static_cast<std::size_t>(ctx.n_ctx()) * bpp;
    }
    const std::uint32_t floor_pos =
        std::min(ctx.n_ctx(), std::max(o.min_positions, ctx.kv_min_capacity()));
    ControllerOptions co;
    co.policy.max_budget = max;
    co.policy.min_budget = std::min(max, static_cast<std::size_t>(floor_pos) * bpp);
    co.context = &ctx;
    co.on_budget = [&ctx, wake = o.wake](std::size_t b) {
        ctx.set_kv_budget(b);
        if (wake) wake();
    };
    auto source = open_pressure_source(o.source);
    if (!source) return std::move(source).error().with_context("KV pressure control");
    ctx.set_kv_budget(max);
    return Controller::start(std::move(*source), std::move(co));
}

}  // namespace pylon::runtime::psi
