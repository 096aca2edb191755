#include "scheduler.h"

#include "pylon/common/log.h"

namespace pylon::runtime_server {

Scheduler::Scheduler(std::size_t max_queue, Observer observer)
    : max_queue_(max_queue), observer_(std::move(observer)), thread_([this] { loop(); }) {}

Scheduler::~Scheduler() {
    join();
}

void Scheduler::notify(std::size_t queued, bool busy) {
    if (observer_) observer_(queued, busy);
}

bool Scheduler::submit(Job job) {
    {
        std::lock_guard lock(mu_);
        if (closed_ || queue_.size() >= max_queue_) return false;
        queue_.push_back(std::move(job));
        notify(queue_.size(), busy_);
    }
    cv_.notify_all();
    return true;
}

void Scheduler::close() {
    std::deque<Job> refused;
    {
        std::lock_guard lock(mu_);
        closed_ = true;
        refused.swap(queue_);
        notify(0, busy_);
    }
    cv_.notify_all();
    for (auto& job : refused) {
        if (job.refuse) job.refuse();
    }
}

bool Scheduler::wait_idle(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return !busy_ && queue_.empty(); });
}

void Scheduler::join() {
    close();
    if (thread_.joinable()) thread_.join();
}

void Scheduler::loop() {
    for (;;) {
        Job job;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [&] { return closed_ || !queue_.empty(); });
            if (queue_.empty()) return;  // closed and drained
            job = std::move(queue_.front());
            queue_.pop_front();
            busy_ = true;
            notify(queue_.size(), true);
        }
        try {
            job.run();
        } catch (const std::exception& e) {
            log::error("runtime server: a request failed: {}", e.what());
        }
        job = Job{};  // release what the job holds (its connection) before going idle
        {
            std::lock_guard lock(mu_);
            busy_ = false;
            notify(queue_.size(), false);
        }
        cv_.notify_all();
    }
}

}  // namespace pylon::runtime_server
