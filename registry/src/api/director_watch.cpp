#include "api/director_watch.h"

#include <vector>

namespace pylon::registry::api {

DirectorWatch::DirectorWatch() : timer_([this] { timer_loop(); }) {}

DirectorWatch::~DirectorWatch() {
    shutdown();
    timer_.join();
}

std::uint64_t DirectorWatch::generation_locked(std::int64_t device) const {
    const auto it = notified_.find(device);
    return epoch_ + (it == notified_.end() ? 0 : it->second);
}

std::uint64_t DirectorWatch::generation(std::int64_t device) const {
    std::lock_guard lock(mutex_);
    return generation_locked(device);
}

void DirectorWatch::wait(std::int64_t device, std::uint64_t seen, Clock::time_point deadline,
                         Wake wake) {
    bool now_changed = false;
    {
        std::lock_guard lock(mutex_);
        if (!stopping_ && generation_locked(device) == seen && deadline > Clock::now()) {
            const std::uint64_t id = next_id_++;
            waiters_.emplace(id, Waiter{device, deadline, std::move(wake)});
            by_device_.emplace(device, id);
            const bool earliest = by_deadline_.empty() || deadline < by_deadline_.begin()->first;
            by_deadline_.emplace(deadline, id);
            if (earliest) changed_.notify_all();
            return;
        }
        now_changed = generation_locked(device) != seen;
    }
    wake(now_changed);
}

void DirectorWatch::erase_locked(std::uint64_t id) {
    const auto it = waiters_.find(id);
    if (it == waiters_.end()) return;
    by_deadline_.erase({it->second.deadline, id});
    auto [first, last] = by_device_.equal_range(it->second.device);
    for (auto d = first; d != last; ++d) {
        if (d->second == id) {
            by_device_.erase(d);
            break;
        }
    }
    waiters_.erase(it);
}

void DirectorWatch::notify(std::int64_t device) {
    std::vector<Wake> woken;
    {
        std::lock_guard lock(mutex_);
        ++notified_[device];
        auto [first, last] = by_device_.equal_range(device);
        std::vector<std::uint64_t> ids;
        for (auto d = first; d != last; ++d) ids.push_back(d->second);
        for (const auto id : ids) {
            woken.push_back(std::move(waiters_.at(id).wake));
            erase_locked(id);
        }
    }
    for (auto& w : woken) w(true);
}

void DirectorWatch::notify_all() {
    std::vector<Wake> woken;
    {
        std::lock_guard lock(mutex_);
        ++epoch_;
        for (auto& [id, w] : waiters_) woken.push_back(std::move(w.wake));
        waiters_.clear();
        by_device_.clear();
        by_deadline_.clear();
    }
    for (auto& w : woken) w(true);
}

void DirectorWatch::shutdown() {
    std::vector<Wake> woken;
    {
        std::lock_guard lock(mutex_);
        if (stopping_ && waiters_.empty()) return;
        stopping_ = true;
        for (auto& [id, w] : waiters_) woken.push_back(std::move(w.wake));
        waiters_.clear();
        by_device_.clear();
        by_deadline_.clear();
        changed_.notify_all();
    }
    for (auto& w : woken) w(false);
}

std::size_t DirectorWatch::waiting() const {
    std::lock_guard lock(mutex_);
    return waiters_.size();
}

void DirectorWatch::timer_loop() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        if (by_deadline_.empty()) {
            changed_.wait(lock);
            continue;
        }
        const auto next = by_deadline_.begin()->first;
        if (Clock::now() < next) {
            changed_.wait_until(lock, next);
            continue;
        }
        std::vector<Wake> woken;
        const auto now = Clock::now();
        while (!by_deadline_.empty() && by_deadline_.begin()->first <= now) {
            const auto id = by_deadline_.begin()->second;
            woken.push_back(std::move(waiters_.at(id).wake));
            erase_locked(id);
        }
        lock.unlock();
        for (auto& w : woken) w(false);
        lock.lock();
    }
}

}  // namespace pylon::registry::api
