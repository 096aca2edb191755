// The PSI controller's policy: the KV budget as a function of pressure events and calm time
// (pure logic; see psi.h for the rules and docs/ARCHITECTURE.md for the thresholds' reasons).
#include <algorithm>
#include <cmath>

#include "pylon/common/error.h"
#include "pylon/runtime/psi.h"

namespace pylon::runtime::psi {

Result<void> validate(const PolicyConfig& c) {
    auto bad = [](const char* what) { return Error(Errc::invalid_argument, what); };
    if (c.max_budget == 0) return bad("policy: max_budget must be > 0");
    if (c.min_budget > c.max_budget) return bad("policy: min_budget exceeds max_budget");
    if (!(c.some_factor > 0 && c.some_factor < 1))
        return bad("policy: some_factor must be in (0, 1)");
    if (!(c.full_factor > 0 && c.full_factor < 1))
        return bad("policy: full_factor must be in (0, 1)");
    if (!(c.grow_step > 0 && c.grow_step <= 1)) return bad("policy: grow_step must be in (0, 1]");
    if (c.min_interval.count() < 0) return bad("policy: min_interval must be >= 0");
    if (c.calm_period < std::chrono::milliseconds(100)) {
        return bad("policy: calm_period must be at least 100 ms");
    }
    return {};
}

Policy::Policy(const PolicyConfig& config, Clock::time_point now)
    : config_(config), budget_(config.max_budget), last_event_or_growth_(now) {}

std::optional<std::size_t> Policy::on_event(Level level, Clock::time_point now) {
    (level == Level::full ? counters_.events_full : counters_.events_some) += 1;
    last_event_or_growth_ = now;  // pressure restarts the calm period
    if (last_shrink_) {
        const auto since = now - *last_shrink_;
        // A `full` event after a `some` shrink may act after half the interval: things got worse.
        const bool escalation = level == Level::full && last_shrink_level_ == Level::some &&
                                since >= config_.min_interval / 2;
        if (since < config_.min_interval && !escalation) {
            ++counters_.rate_limited;
            return std::nullopt;
        }
    }
    const double factor = level == Level::full ? config_.full_factor : config_.some_factor;
    const auto scaled = static_cast<std::size_t>(std::floor(static_cast<double>(budget_) * factor));
    const std::size_t next = std::max(config_.min_budget, scaled);
    if (next >= budget_) {
        ++counters_.rate_limited;  // at the floor
        return std::nullopt;
    }
    budget_ = next;
    last_shrink_ = now;
    last_shrink_level_ = level;
    ++counters_.shrinks;
    return budget_;
}

std::optional<std::size_t> Policy::on_tick(Clock::time_point now) {
    if (budget_ >= config_.max_budget || now < next_tick()) return std::nullopt;
    const auto step = std::max<std::size_t>(
        1, static_cast<std::size_t>(static_cast<double>(config_.max_budget) * config_.grow_step));
    budget_ = config_.max_budget - budget_ <= step ? config_.max_budget : budget_ + step;
    last_event_or_growth_ = now;
    ++counters_.grows;
    return budget_;
}

Policy::Clock::time_point Policy::next_tick() const noexcept {
    return last_event_or_growth_ + config_.calm_period;
}

}  // namespace pylon::runtime::psi
