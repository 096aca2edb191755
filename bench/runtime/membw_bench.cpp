// STREAM-like memory bandwidth: the ceiling for decode, which streams every weight once per
// token. Arrays default to 256 MiB each (far past a 32 MiB L3), first touched by the threads
// that will use them.
//
// Kernels (64-bit elements, each thread works on one contiguous slice of every array):
//   read   s += a[i]          (integer sum: vectorizes without -ffast-math)   bytes = 1 × size
//   copy   c[i] = a[i]                                                        bytes = 2 × size
//   triad  a[i] = b[i] + q × c[i]   (double)                                  bytes = 3 × size
// Bytes count what the kernel names (STREAM's convention: write-allocate traffic is not
// counted). 1 GB = 1e9 bytes. Each (kernel, threads) pair runs --reps times after one warm-up;
// the report gives the best and the median, as wall-clock time over all threads (threads are
// started before the clock and released together).
//
//   membw_bench [-s MiB] [-t 1,2] [-r 5] [--json]
// --json prints one line per (kernel, threads):
//   {"kernel":"read","threads":1,"array_bytes":268435456,"reps":5,"best_gbps":..,"median_gbps":..}

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

enum class Kernel { read, copy, triad };

const char* kernel_name(Kernel k) {
    switch (k) {
        case Kernel::read: return "read";
        case Kernel::copy: return "copy";
        case Kernel::triad: return "triad";
    }
    return "?";
}

int bytes_per_element_pass(Kernel k) {
    switch (k) {
        case Kernel::read: return 1;
        case Kernel::copy: return 2;
        case Kernel::triad: return 3;
    }
    return 0;
}

struct Arrays {
    std::size_t n = 0;  // elements per array
    std::unique_ptr<std::uint64_t[]> a, b, c;
};

std::atomic<std::uint64_t> g_sink{0};

using U64x2 = std::uint64_t __attribute__((vector_size(16)));
using F64x2 = double __attribute__((vector_size(16)));

template <typename V>
V load(const std::uint64_t* p) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
}  // keeps the read kernel's sum alive

void run_slice(Kernel k, Arrays& arr, std::size_t begin, std::size_t end) {
    std::uint64_t* a = arr.a.get();
    std::uint64_t* b = arr.b.get();
    std::uint64_t* c = arr.c.get();
    switch (k) {
        case Kernel::read: {
            // Four 16-byte vector accumulators (GCC vector extension: SSE2/NEON, no -march).
            U64x2 s0{}, s1{}, s2{}, s3{};
            std::size_t i = begin;
            for (; i + 8 <= end; i += 8) {
                s0 += load<U64x2>(a + i);
                s1 += load<U64x2>(a + i + 2);
                s2 += load<U64x2>(a + i + 4);
                s3 += load<U64x2>(a + i + 6);
            }
            const U64x2 v = s0 + s1 + s2 + s3;
            std::uint64_t sum = v[0] + v[1];
            for (; i < end; ++i) sum += a[i];
            g_sink.fetch_add(sum, std::memory_order_relaxed);
            break;
        }
        case Kernel::copy:
            std::memcpy(c + begin, a + begin, (end - begin) * sizeof(std::uint64_t));
            break;
        case Kernel::triad: {
            // The arrays hold doubles for this kernel (bit patterns copied in and out).
            const F64x2 q = {3.0, 3.0};
            std::size_t i = begin;
            for (; i + 2 <= end; i += 2) {
                const F64x2 r = load<F64x2>(b + i) + q * load<F64x2>(c + i);
                std::memcpy(a + i, &r, sizeof r);
            }
            for (; i < end; ++i) {
                double x, y;
                std::memcpy(&x, b + i, sizeof x);
                std::memcpy(&y, c + i, sizeof y);
                const double r = x + 3.0 * y;
                std::memcpy(a + i, &r, sizeof r);
            }
            break;
        }
    }
}

// Runs `fn(thread_index)` on `threads` threads `reps + 1` times; returns the seconds of each
// rep after the first (warm-up). Threads persist across reps; a barrier starts and ends each.
template <typename Fn>
std::vector<double> time_reps(int threads, int reps, Fn fn) {
    std::vector<double> seconds;
    std::barrier sync(threads + 1);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            for (int r = 0; r <= reps; ++r) {
                sync.arrive_and_wait();
                fn(t);
                sync.arrive_and_wait();
            }
        });
    }
    for (int r = 0; r <= reps; ++r) {
        const auto start = std::chrono::steady_clock::now();
        sync.arrive_and_wait();
        sync.arrive_and_wait();
        const std::chrono::duration<double> d = std::chrono::steady_clock::now() - start;
        if (r > 0) seconds.push_back(d.count());
    }
    for (auto& th : pool) th.join();
    return seconds;
}

std::pair<std::size_t, std::size_t> slice(std::size_t n, int threads, int t) {
    const auto tn = static_cast<std::size_t>(threads);
    const std::size_t per = (n + tn - 1) / tn;
    const std::size_t begin = std::min(n, per * static_cast<std::size_t>(t));
    return {begin, std::min(n, begin + per)};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app("STREAM-like memory bandwidth: read-only sum, copy, triad");
    std::size_t size_mib = 256;
    std::vector<int> thread_counts = {1, 2};
    int reps = 5;
    bool json = false;
    app.add_option("-s,--size-mib", size_mib, "MiB per array (three arrays)")
        ->check(CLI::Range(1, 65536));
    app.add_option("-t,--threads", thread_counts, "thread counts, comma-separated")
        ->delimiter(',')
        ->check(CLI::Range(1, 1024));
    app.add_option("-r,--reps", reps, "timed repetitions per (kernel, threads)")
        ->check(CLI::Range(1, 1000));
    app.add_flag("--json", json, "one JSON object per line");
    CLI11_PARSE(app, argc, argv);

    Arrays arr;
    arr.n = size_mib * (std::size_t{1} << 20) / sizeof(std::uint64_t);
    arr.a.reset(new std::uint64_t[arr.n]);  // uninitialized: first touch below
    arr.b.reset(new std::uint64_t[arr.n]);
    arr.c.reset(new std::uint64_t[arr.n]);
    const int max_threads = *std::max_element(thread_counts.begin(), thread_counts.end());
    time_reps(max_threads, 0, [&](int t) {
        const auto [begin, end] = slice(arr.n, max_threads, t);
        for (std::size_t i = begin; i < end; ++i) {
            const double one = 1.0, two = 2.0;
            std::memcpy(&arr.a[i], &one, sizeof one);
            std::memcpy(&arr.b[i], &two, sizeof two);
            arr.c[i] = 0;
        }
    });

    const std::size_t array_bytes = arr.n * sizeof(std::uint64_t);
    if (!json) {
        std::printf("array %zu MiB x 3, %d reps (+1 warm-up); GB/s = 1e9 bytes/s\n", size_mib,
                    reps);
        std::printf("%-6s %7s %10s %10s\n", "kernel", "threads", "best", "median");
    }
    for (const Kernel k : {Kernel::read, Kernel::copy, Kernel::triad}) {
        for (const int threads : thread_counts) {
            auto secs = time_reps(threads, reps, [&](int t) {
                const auto [begin, end] = slice(arr.n, threads, t);
                run_slice(k, arr, begin, end);
            });
            std::sort(secs.begin(), secs.end());
            const double bytes = static_cast<double>(array_bytes) * bytes_per_element_pass(k);
            const double best = bytes / secs.front() / 1e9;
            const std::size_t m = secs.size();
            const double median_s = m % 2 ? secs[m / 2] : (secs[m / 2 - 1] + secs[m / 2]) / 2;
            const double median = bytes / median_s / 1e9;
            if (json) {
                std::printf("{\"kernel\":\"%s\",\"threads\":%d,\"array_bytes\":%zu,\"reps\":%d,"
                            "\"best_gbps\":%.3f,\"median_gbps\":%.3f}\n",
                            kernel_name(k), threads, array_bytes, reps, best, median);
            } else {
                std::printf("%-6s %7d %10.2f %10.2f\n", kernel_name(k), threads, best, median);
            }
            std::fflush(stdout);
        }
    }
    // Never true in practice; makes the read kernel's result observable.
    if (g_sink.load() == 42) std::printf("#\n");
    return 0;
}
