#include "exchange_flow.h"

#include <algorithm>

namespace pylon::runtime_server {

ExchangeFlow::Reserve ExchangeFlow::reserve(std::size_t n) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, write_timeout_, [&] { return gone_ || pending_ <= max_pending_; })) {
        return Reserve::timed_out;
    }
    if (gone_) return Reserve::gone;
    pending_ += n;
    return Reserve::ok;
}

void ExchangeFlow::on_disconnect(std::function<void()> callback) {
    std::unique_lock lock(mu_);
    if (gone_) {
        lock.unlock();
        callback();
        return;
    }
    if (!complete_) callbacks_.push_back(std::move(callback));
}

bool ExchangeFlow::gone() const {
    std::lock_guard lock(mu_);
    return gone_;
}

void ExchangeFlow::written(std::size_t bytes) {
    {
        std::lock_guard lock(mu_);
        pending_ -= std::min(pending_, bytes);
    }
    cv_.notify_all();
}

void ExchangeFlow::mark_gone() {
    std::vector<std::function<void()>> run;
    {
        std::lock_guard lock(mu_);
        if (gone_) return;
        gone_ = true;
        if (!complete_) run.swap(callbacks_);
    }
    cv_.notify_all();
    for (auto& f : run) f();
}

void ExchangeFlow::mark_complete() {
    std::lock_guard lock(mu_);
    complete_ = true;
    callbacks_.clear();
}

}  // namespace pylon::runtime_server
