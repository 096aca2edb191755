// One inference worker fed by a bounded first-in, first-out queue: requests run one at a time,
// in the order they were accepted, on the worker's thread (which owns the runtime Context).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace pylon::runtime_server {

class Scheduler {
public:
    struct Job {
        std::function<void()> run;     // on the worker thread
        std::function<void()> refuse;  // instead of run, when the scheduler is closed first
    };
    // Called whenever the queue depth or the busy state changes, under the scheduler's lock (so
    // calls arrive in order): it must be quick and must not call the scheduler.
    using Observer = std::function<void(std::size_t queued, bool busy)>;

    Scheduler(std::size_t max_queue, Observer observer);
    ~Scheduler();  // close(), then join()
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // False (and the job is dropped) when max_queue jobs are already waiting or it is closed.
    bool submit(Job job);
    // Stops accepting; jobs still waiting are refused (their `refuse` runs here).
    void close();
    // Waits until no job runs or waits, for at most `timeout`; true when idle.
    bool wait_idle(std::chrono::milliseconds timeout);
    // close(), let the running job finish, end the thread.
    void join();

private:
    void loop();
    void notify(std::size_t queued, bool busy);

    const std::size_t max_queue_;
    const Observer observer_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Job> queue_;
    bool busy_ = false;
    bool closed_ = false;
    std::thread thread_;
};

}  // namespace pylon::runtime_server
