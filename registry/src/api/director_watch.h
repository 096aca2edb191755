// DirectorWatch: devices whose director request waits for a change (long polls).
//
// A device asks for its director document with the version it holds (If-None-Match) and how
// long it is willing to wait (Prefer: wait=N). When nothing changed, its request parks here
// without a thread until notify() says the device's assignment changed (in this process, or in
// another replica through the catalog's change notifications), its deadline passes, or the
// registry stops. Generations close the race between reading the document and parking: a
// waiter that parks with an old generation wakes at once.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

namespace pylon::registry::api {

class DirectorWatch {
public:
    using Clock = std::chrono::steady_clock;
    // wake(true): the device's document may have changed; wake(false): deadline or shutdown.
    using Wake = std::function<void(bool changed)>;

    DirectorWatch();
    ~DirectorWatch();  // shutdown()
    DirectorWatch(const DirectorWatch&) = delete;
    DirectorWatch& operator=(const DirectorWatch&) = delete;

    // The device's change count: read it before reading the document, pass it to wait().
    std::uint64_t generation(std::int64_t device) const;
    // Calls `wake` exactly once, outside this object's lock: at once (on this thread) when the
    // generation moved past `seen` or after shutdown, else from notify(), the deadline (on the
    // timer thread) or shutdown().
    void wait(std::int64_t device, std::uint64_t seen, Clock::time_point deadline, Wake wake);
    // The device's desired release (or anything its document depends on) changed.
    void notify(std::int64_t device);
    // Anything may have changed (notifications were lost): every waiter wakes.
    void notify_all();
    // Wakes every waiter with false; later waits wake at once. Idempotent.
    void shutdown();
    // Requests parked now.
    std::size_t waiting() const;

private:
    struct Waiter {
        std::int64_t device;
        Clock::time_point deadline;
        Wake wake;
    };
    std::uint64_t generation_locked(std::int64_t device) const;
    void timer_loop();
    void erase_locked(std::uint64_t id);

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    bool stopping_ = false;
    std::uint64_t epoch_ = 0;  // notify_all() count, part of every generation
    std::unordered_map<std::int64_t, std::uint64_t> notified_;
    std::uint64_t next_id_ = 0;
    std::map<std::uint64_t, Waiter> waiters_;
    std::unordered_multimap<std::int64_t, std::uint64_t> by_device_;
    std::set<std::pair<Clock::time_point, std::uint64_t>> by_deadline_;
    std::thread timer_;
};

}  // namespace pylon::registry::api
