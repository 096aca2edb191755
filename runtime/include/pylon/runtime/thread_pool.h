// A fixed set of threads that run one function together (SPMD, like ggml's graph compute): the
// caller is thread 0 and n-1 workers join it; inside the function, barrier() separates steps
// that depend on each other's results.
//
// Workers spin briefly between jobs (token-by-token decoding hands out a job every few hundred
// microseconds, and a futex wake-up costs tens of them), then sleep until the next job.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <cstdint>
#include <thread>
#include <vector>

namespace pylon::runtime {

class ThreadPool {
public:
    // n_threads >= 1 (clamped); the caller's thread counts as one.
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const noexcept { return n_; }

    // Calls fn(ith, nth) on every thread (ith = 0 on the caller) and returns when all have
    // returned. Not reentrant; one run at a time.
    template <typename F>
    void run(F&& fn) {
        run_impl(&invoke<std::remove_reference_t<F>>, &fn);
    }

    // Lets idle workers sleep now instead of spinning for the next job (another pool is about
    // to use the cores: a speculative draft model's, or the target's after drafting). Undone by
    // the next run().
    void park() noexcept { park_.store(true, std::memory_order_release); }

    // Waits until all size() threads of the current run() have called barrier(). Only valid
    // inside run(), called by every thread the same number of times.
    void barrier() noexcept;

    // Splits [0, total) into nth nearly equal contiguous parts; returns part ith.
    static std::pair<std::size_t, std::size_t> split(std::size_t total, int ith, int nth) noexcept {
        const std::size_t per = total / static_cast<std::size_t>(nth);
        const std::size_t extra = total % static_cast<std::size_t>(nth);
        const auto i = static_cast<std::size_t>(ith);
        const std::size_t begin = i * per + (i < extra ? i : extra);
        return {begin, begin + per + (i < extra ? 1 : 0)};
    }

private:
    using Trampoline = void (*)(void*, int, int);
    template <typename F>
    static void invoke(void* f, int ith, int nth) {
        (*static_cast<F*>(f))(ith, nth);
    }
    void run_impl(Trampoline t, void* fn);
    void worker_loop(int ith);
    void wake_all();

    int n_;
    std::vector<std::thread> workers_;
    Trampoline job_ = nullptr;
    void* job_arg_ = nullptr;
    alignas(64) std::atomic<std::uint32_t> job_gen_{0};   // bumped to start a job
    alignas(64) std::atomic<int> running_{0};             // workers still inside the job
    alignas(64) std::atomic<int> barrier_count_{0};
    alignas(64) std::atomic<std::uint32_t> barrier_gen_{0};
    std::atomic<bool> stop_{false};
    std::atomic<bool> park_{false};
    std::mutex sleep_mu_;
    std::condition_variable sleep_cv_;
};

}  // namespace pylon::runtime
