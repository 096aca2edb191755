#include "pylon/runtime/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PYLON_CPU_RELAX() _mm_pause()
#else
#define PYLON_CPU_RELAX() std::this_thread::yield()
#endif

namespace pylon::runtime {
namespace {

// How long an idle worker spins for the next job before sleeping on the futex.
constexpr auto kSpinBeforeSleep = std::chrono::microseconds(2000);
// Spins between clock reads / yields inside a barrier.
constexpr int kSpinBatch = 256;

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_(std::clamp(n_threads, 1, 512)) {
    workers_.reserve(static_cast<std::size_t>(n_ - 1));
    for (int i = 1; i < n_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
    stop_.store(true, std::memory_order_release);
    wake_all();
    for (auto& w : workers_) w.join();
}

void ThreadPool::run_impl(Trampoline t, void* fn) {
    if (n_ == 1) {
        t(fn, 0, 1);
        return;
    }
    park_.store(false, std::memory_order_relaxed);
    job_ = t;
    job_arg_ = fn;
    running_.store(n_ - 1, std::memory_order_relaxed);
    wake_all();  // publishes job_ / job_arg_
    t(fn, 0, n_);
    int spins = 0;
    while (running_.load(std::memory_order_acquire) != 0) {
        PYLON_CPU_RELAX();
        if (++spins % kSpinBatch == 0) std::this_thread::yield();
    }
}

void ThreadPool::wake_all() {
    {
        std::lock_guard lock(sleep_mu_);
        job_gen_.fetch_add(1, std::memory_order_acq_rel);
    }
    sleep_cv_.notify_all();
}

void ThreadPool::worker_loop(int ith) {
    // The generation at construction (not whatever it is when this thread gets to run: a job
    // or the destructor may already have bumped it, and that wake-up must not be missed).
    std::uint32_t seen = 0;
    for (;;) {
        // Spin for a while, then sleep until job_gen_ changes.
        const auto deadline = std::chrono::steady_clock::now() + kSpinBeforeSleep;
        std::uint32_t gen = job_gen_.load(std::memory_order_acquire);
        int spins = 0;
        while (gen == seen) {
            PYLON_CPU_RELAX();
            if (++spins % kSpinBatch == 0 && (park_.load(std::memory_order_relaxed) ||
                                              std::chrono::steady_clock::now() > deadline)) {
                // Sleep under the mutex: wake_all() bumps the generation under it too, so
                // no wake-up is lost (libstdc++ 12's atomic::wait can lose one).
                std::unique_lock lock(sleep_mu_);
                sleep_cv_.wait(lock,
                               [&] { return job_gen_.load(std::memory_order_acquire) != seen; });
            }
            gen = job_gen_.load(std::memory_order_acquire);
        }
        seen = gen;
        if (stop_.load(std::memory_order_acquire)) return;
        job_(job_arg_, ith, n_);
        running_.fetch_sub(1, std::memory_order_acq_rel);
    }
}

void ThreadPool::barrier() noexcept {
    if (n_ == 1) return;
    const std::uint32_t gen = barrier_gen_.load(std::memory_order_acquire);
    if (barrier_count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
        barrier_count_.store(0, std::memory_order_relaxed);
        barrier_gen_.fetch_add(1, std::memory_order_acq_rel);
        return;
    }
    int spins = 0;
    while (barrier_gen_.load(std::memory_order_acquire) == gen) {
        PYLON_CPU_RELAX();
        // On an oversubscribed machine the thread we wait for may need our core.
        if (++spins % (kSpinBatch * 16) == 0) std::this_thread::yield();
    }
}

}  // namespace pylon::runtime
