// Kernel microbenchmark, one thread: for every weight type and every instruction set this CPU
// supports, the matrix-vector products of a decode step (shapes of synth110M: 768x768,
// 2048x768, 768x2048, 32000x768) and a 512-token prefill product.
//
// Decode reports microseconds per call and GB/s of weights streamed, "cold" cycling through
// copies of the matrix that together exceed the last-level cache (as a whole model does) and
// "hot" repeating one matrix (cache resident). Prefill reports GOP/s (2 * rows * k * n / s).
// Times are the best of short batches (robust on a machine shared with other work).
// --batch N multiplies N tokens at once instead of one (speculative verification's small
// batches); GB/s stays weight bytes per second, so N tokens for the price of one keeps it.
// The cold copies live in a huge-page mapping, like the model's packed weights.
//
// usage: kernel_bench [--type F32|F16|Q8_0|Q4_0] [--isa portable|avx2|avx512] [--no-prefill]
//                     [--batch N] [--packed-only]
#include <sys/mman.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "pylon/runtime/kernels.h"
#include "pylon/runtime/quant.h"

namespace {

using namespace pylon::runtime;
namespace kn = pylon::runtime::kernels;
using Clock = std::chrono::steady_clock;

double thread_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Shape {
    std::size_t rows, k;
};

constexpr Shape kShapes[] = {{768, 768}, {2048, 768}, {768, 2048}, {32000, 768}};
constexpr std::size_t kColdBytes = std::size_t{256} << 20;
constexpr double kMinSeconds = 0.3;

// Seconds of this thread's CPU time per call: the fastest of many short batches within
// kMinSeconds, so that time the scheduler gives to other processes (a shared machine) does not
// count.
template <class Fn>
double time_per_call(Fn&& fn) {
    fn();  // warm up
    const double t0 = thread_seconds();
    fn();
    const double one = thread_seconds() - t0;
    const std::size_t batch = one >= 2e-3 ? 1 : static_cast<std::size_t>(2e-3 / (one + 1e-9)) + 1;
    double best = one;
    const auto start = Clock::now();
    do {
        const auto b0 = Clock::now();
        for (std::size_t i = 0; i < batch; ++i) fn();
        const double per =
            std::chrono::duration<double>(Clock::now() - b0).count() / static_cast<double>(batch);
        if (per < best) best = per;
    } while (std::chrono::duration<double>(Clock::now() - start).count() < kMinSeconds);
    return best;
}

std::vector<unsigned char> random_matrix(GgmlType type, std::size_t rows, std::size_t k,
                                         std::mt19937& rng) {
    const std::size_t stride = *row_bytes(type, k);
    std::vector<unsigned char> m(rows * stride);
    std::normal_distribution<float> dist(0.0f, 0.02f);
    std::vector<float> x(k);
    for (std::size_t r = 0; r < rows; ++r) {
        for (auto& v : x) v = dist(rng);
        quantize_row(type, x.data(), m.data() + r * stride, k);
    }
    return m;
}

// Page-aligned, huge-page-advised zeroed buffer (the model's packed weights get the same).
struct HugeBuffer {
    unsigned char* data = nullptr;
    std::size_t size = 0;
    explicit HugeBuffer(std::size_t n) : size(n) {
        void* p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            std::perror("mmap");
            std::exit(1);
        }
        ::madvise(p, n, MADV_HUGEPAGE);
        data = static_cast<unsigned char*>(p);
    }
    ~HugeBuffer() { ::munmap(data, size); }
    HugeBuffer(const HugeBuffer&) = delete;
    HugeBuffer& operator=(const HugeBuffer&) = delete;
};

}  // namespace

int main(int argc, char** argv) {
    std::string only_type, only_isa;
    bool prefill = true;
    bool packed_only = false;
    std::size_t batch = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--type" && i + 1 < argc) {
            only_type = argv[++i];
        } else if (arg == "--isa" && i + 1 < argc) {
            only_isa = argv[++i];
        } else if (arg == "--no-prefill") {
            prefill = false;
        } else if (arg == "--packed-only") {
            packed_only = true;
        } else if (arg == "--batch" && i + 1 < argc) {
            batch = std::stoul(argv[++i]);
            if (batch < 1 || batch > 512) {
                std::fprintf(stderr, "--batch: 1 to 512\n");
                return 2;
            }
        } else {
            std::fprintf(stderr,
                         "usage: kernel_bench [--type T] [--isa portable|avx2|avx512] "
                         "[--no-prefill] [--batch N] [--packed-only]\n");
            return 2;
        }
    }
    std::mt19937 rng(1);
    std::printf("%-6s %-8s %-12s %10s %10s %10s %10s\n", "type", "isa", "shape", "cold_us",
                "cold_GB/s", "hot_us", "hot_GB/s");
    const GgmlType types[] = {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0};
    std::vector<std::string> prefill_lines;
    for (GgmlType type : types) {
        if (!only_type.empty() && parse_type_name(only_type) != type) continue;
        for (kn::Isa isa : {kn::Isa::portable, kn::Isa::avx2, kn::Isa::avx512}) {
            if (!kn::isa_supported(isa)) continue;
            if (!only_isa.empty() && kn::isa_name(isa) != only_isa) continue;
            const auto& kt = kn::kernels(isa);
            for (const Shape& s : kShapes) {
                const std::size_t stride = *row_bytes(type, s.k);
                const std::size_t bytes = stride * s.rows;
                const auto base = random_matrix(type, s.rows, s.k, rng);
                const std::size_t copies = kColdBytes / bytes + 1;
                HugeBuffer cold(copies * bytes);
                for (std::size_t c = 0; c < copies; ++c) {
                    std::memcpy(cold.data + c * bytes, base.data(), bytes);
                }
                std::vector<float> x(s.k * 512);
                std::normal_distribution<float> dist(0.0f, 1.0f);
                for (auto& v : x) v = dist(rng);
                const std::size_t as = kn::act_row_bytes(type, s.k);
                std::vector<unsigned char> act(as * 512);
                for (std::size_t t = 0; t < 512; ++t) {
                    kt.prepare_act(type, x.data() + t * s.k, s.k, act.data() + t * as);
                }
                std::vector<float> y(s.rows * 512);
                std::size_t next = 0;
                char shape[32];
                std::snprintf(shape, sizeof shape, "%zux%zu", s.rows, s.k);
                const bool has_packed =
                    kt.packed_bytes != nullptr && kt.packed_bytes(type, s.rows, s.k) != 0;
                if (!packed_only || !has_packed) {
                    const double cold_s = time_per_call([&] {
                        kt.gemm(type, cold.data + next * bytes, stride, s.k, s.rows, 0, s.rows,
                                act.data(), batch, y.data(), s.rows);
                        next = (next + 1) % copies;
                    });
                    const double hot_s = time_per_call([&] {
                        kt.gemm(type, base.data(), stride, s.k, s.rows, 0, s.rows, act.data(),
                                batch, y.data(), s.rows);
                    });
                    std::printf("%-6s %-8s %-12s %10.1f %10.2f %10.1f %10.2f\n",
                                std::string(type_name(type)).c_str(),
                                std::string(kn::isa_name(isa)).c_str(), shape, cold_s * 1e6,
                                static_cast<double>(bytes) / cold_s / 1e9, hot_s * 1e6,
                                static_cast<double>(bytes) / hot_s / 1e9);
                    std::fflush(stdout);
                }
                // The same product over weights repacked at load (where the path has a layout).
                const std::size_t pbytes =
                    kt.packed_bytes != nullptr ? kt.packed_bytes(type, s.rows, s.k) : 0;
                if (pbytes != 0) {
                    const std::size_t pcopies = kColdBytes / pbytes + 1;
                    HugeBuffer pk(pcopies * pbytes);
                    unsigned char* p0 = pk.data;
                    kt.pack(type, base.data(), stride, s.rows, s.k, p0);
                    for (std::size_t c = 1; c < pcopies; ++c) {
                        std::memcpy(p0 + c * pbytes, p0, pbytes);
                    }
                    std::size_t pnext = 0;
                    const double pcold = time_per_call([&] {
                        kt.gemm_packed(type, p0 + pnext * pbytes, s.k, s.rows, 0, s.rows,
                                       act.data(), batch, y.data(), s.rows);
                        pnext = (pnext + 1) % pcopies;
                    });
                    const double phot = time_per_call([&] {
                        kt.gemm_packed(type, p0, s.k, s.rows, 0, s.rows, act.data(), batch,
                                       y.data(), s.rows);
                    });
                    std::printf("%-6s %-8s %-12s %10.1f %10.2f %10.1f %10.2f\n",
                                std::string(type_name(type)).c_str(),
                                (std::string(kn::isa_name(isa)) + "+pk").c_str(), shape,
                                pcold * 1e6, static_cast<double>(bytes) / pcold / 1e9, phot * 1e6,
                                static_cast<double>(bytes) / phot / 1e9);
                    std::fflush(stdout);
                }
                // Prefill on the portable path is too slow for the vocabulary matrix.
                if (!prefill || (isa == kn::Isa::portable && s.rows > 4096)) continue;
                const std::size_t n = 512;
                const double pre_s = time_per_call([&] {
                    kt.gemm(type, base.data(), stride, s.k, s.rows, 0, s.rows, act.data(), n,
                            y.data(), s.rows);
                });
                char line[160];
                std::snprintf(line, sizeof line, "%-6s %-8s %-12s n=%zu %10.1f ms %8.1f GOP/s",
                              std::string(type_name(type)).c_str(),
                              std::string(kn::isa_name(isa)).c_str(), shape, n, pre_s * 1e3,
                              2.0 * static_cast<double>(s.rows * s.k * n) / pre_s / 1e9);
                prefill_lines.emplace_back(line);
            }
        }
    }
    if (!prefill_lines.empty()) std::printf("\nprefill\n");
    for (const auto& l : prefill_lines) std::printf("%s\n", l.c_str());
    return 0;
}
