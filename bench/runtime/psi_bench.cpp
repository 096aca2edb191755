// psi_bench: time from a memory-pressure event to the RSS drop, over many repetitions.
//
// The pressure source is systemd's FIFO protocol (MEMORY_PRESSURE_WATCH naming a FIFO), so events
// come on demand instead of once per 2 s PSI window; everything after the kernel's trigger is the
// production path: the controller thread wakes from poll(), runs the policy (-25% per `some`
// event), calls back; the owner thread (this one, like a server worker) sets the budget, runs
// apply_kv_budget() (evicts: keeps 4 sinks + the recent window, re-rotates keys, re-strides V,
// MADV_DONTNEED) and reads /proc/self/statm. Per repetition: t0 just before the FIFO write,
// t1 when statm shows the lower RSS. Between repetitions the budget recovers (calm period 50 ms,
// grow step 100%) and the cache is refilled to --fill positions.
//
//   psi_bench [--model M.gguf] [--reps 100] [--fill 512] [--ctx 2048] [--threads 1]
//
// Without --model it writes the acceptance test's synthetic shape (32 layers x kv_dim 256, 32 KiB
// of KV per position) to a temporary file. Reports p50/p90/p99/max in ms and MiB released.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "pylon/common/log.h"
#include "pylon/runtime/context.h"
#include "pylon/runtime/model.h"
#include "pylon/runtime/psi.h"
#include "pylon/runtime/synth.h"

using namespace pylon::runtime;
using Clock = std::chrono::steady_clock;

namespace {

std::size_t rss_bytes() {
    std::ifstream f("/proc/self/statm");
    std::size_t size = 0, resident = 0;
    f >> size >> resident;
    return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

double pct(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
    std::string model_path;
    int reps = 100, threads = 1;
    std::uint32_t fill = 512, n_ctx = 2048;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--model")
            model_path = v;
        else if (k == "--reps")
            reps = std::max(1, std::stoi(v));
        else if (k == "--fill")
            fill = static_cast<std::uint32_t>(std::stoul(v));
        else if (k == "--ctx")
            n_ctx = static_cast<std::uint32_t>(std::stoul(v));
        else if (k == "--threads")
            threads = std::stoi(v);
        else {
            std::fprintf(stderr, "unknown option %s\n", k.c_str());
            return 2;
        }
    }
    (void)pylon::init_logging({"warn", pylon::LogFormat::text, "psi_bench"});
    const auto tmp =
        std::filesystem::temp_directory_path() / ("pylon-psi-bench-" + std::to_string(::getpid()));
    std::filesystem::create_directories(tmp);
    struct Cleanup {
        std::filesystem::path p;
        ~Cleanup() { std::filesystem::remove_all(p); }
    } cleanup{tmp};
    if (model_path.empty()) {
        SynthOptions o;
        o.shape =
            parse_synth_shape("dim=256,ffn=32,layers=32,heads=2,kv_heads=2,vocab=260,ctx=2048")
                .value();
        o.type = GgmlType::F16;
        model_path = (tmp / "wide.gguf").string();
        if (auto r = write_synth_model(o, model_path); !r) {
            std::fprintf(stderr, "%s\n", r.error().what().c_str());
            return 1;
        }
    }
    auto model = Model::load(model_path);
    if (!model) {
        std::fprintf(stderr, "%s\n", model.error().what().c_str());
        return 1;
    }
    ContextParams cp;
    cp.n_ctx = n_ctx;
    cp.n_threads = threads;
    auto ctx_r = Context::create(*model, cp);
    if (!ctx_r) {
        std::fprintf(stderr, "%s\n", ctx_r.error().what().c_str());
        return 1;
    }
    Context& ctx = **ctx_r;
    fill = std::min(fill, n_ctx);
    const std::size_t max_budget = static_cast<std::size_t>(fill) * ctx.kv_bytes_per_position();
    ctx.set_kv_budget(max_budget);
    (void)ctx.apply_kv_budget();

    const std::string fifo = (tmp / "pressure.fifo").string();
    if (::mkfifo(fifo.c_str(), 0600) != 0) {
        std::perror("mkfifo");
        return 1;
    }
    psi::SourceOptions so;
    so.getenv = [&](const char* name) -> std::optional<std::string> {
        if (std::string(name) == "MEMORY_PRESSURE_WATCH") return fifo;
        return std::nullopt;
    };
    auto source = psi::open_pressure_source(so);
    if (!source) {
        std::fprintf(stderr, "%s\n", source.error().what().c_str());
        return 1;
    }
    std::mutex mu;
    std::condition_variable cv;
    std::optional<std::size_t> pending;
    Clock::time_point woke{};
    psi::ControllerOptions co;
    co.policy.max_budget = max_budget;
    co.policy.min_budget = ctx.kv_min_bytes();
    co.policy.min_interval = std::chrono::milliseconds(0);
    co.policy.calm_period = std::chrono::milliseconds(100);
    co.policy.grow_step = 1.0;
    co.on_event = [&](psi::Level) {
        std::lock_guard lock(mu);
        woke = Clock::now();
    };
    co.on_budget = [&](std::size_t b) {
        std::lock_guard lock(mu);
        pending = b;
        cv.notify_all();
    };
    auto controller = psi::Controller::start(std::move(*source), co);
    if (!controller) {
        std::fprintf(stderr, "%s\n", controller.error().what().c_str());
        return 1;
    }
    const int wfd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (wfd < 0) {
        std::perror("open fifo");
        return 1;
    }
    auto wait_budget = [&](auto pred) {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return pending && pred(*pending); });
        const std::size_t b = *pending;
        pending.reset();
        return b;
    };

    std::vector<double> total_ms, inproc_ms, apply_ms, released_mib;
    int no_drop = 0;
    std::uint32_t evicted = 0;
    std::int32_t next_id = 1;
    const auto n_vocab = static_cast<std::int32_t>((*model)->hparams().n_vocab);
    for (int rep = 0; rep < reps; ++rep) {
        // Refill to `fill` positions under the full budget.
        if (ctx.n_past() < fill) {
            std::vector<std::int32_t> ids;
            while (ctx.n_past() + ids.size() < fill) ids.push_back(next_id++ % n_vocab);
            if (auto r = ctx.eval(ids); !r) {
                std::fprintf(stderr, "refill: %s\n", r.error().what().c_str());
                return 1;
            }
        }
        const std::size_t rss0 = rss_bytes();
        const auto t0 = Clock::now();
        if (::write(wfd, "x", 1) != 1) {
            std::perror("write fifo");
            return 1;
        }
        const std::size_t budget = wait_budget([&](std::size_t b) { return b < max_budget; });
        ctx.set_kv_budget(budget);
        const auto a0 = Clock::now();
        evicted += ctx.apply_kv_budget();
        apply_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - a0).count());
        const std::size_t rss1 = rss_bytes();
        const auto t1 = Clock::now();
        Clock::time_point w;
        {
            std::lock_guard lock(mu);
            w = woke;
        }
        if (rss1 >= rss0) ++no_drop;
        total_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        inproc_ms.push_back(std::chrono::duration<double, std::milli>(t1 - w).count());
        released_mib.push_back(static_cast<double>(rss0 - std::min(rss0, rss1)) / 1048576.0);
        // Calm: the policy restores the full budget after 100 ms.
        ctx.set_kv_budget(wait_budget([&](std::size_t b) { return b == max_budget; }));
    }
    ::close(wfd);
    (*controller)->stop();
    std::printf(
        "psi_bench: %d reps, fill %u positions, %.1f MiB of KV at full budget, "
        "threads %d\n",
        reps, fill, static_cast<double>(max_budget) / 1048576.0, threads);
    std::printf("  event -> RSS drop (ms): p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n",
                pct(total_ms, 50), pct(total_ms, 90), pct(total_ms, 99), pct(total_ms, 100));
    std::printf("  controller wake -> RSS drop (ms): p50 %.3f  p99 %.3f\n", pct(inproc_ms, 50),
                pct(inproc_ms, 99));
    std::printf("  of which apply_kv_budget (ms): p50 %.3f  p99 %.3f\n", pct(apply_ms, 50),
                pct(apply_ms, 99));
    std::printf(
        "  RSS released per event (MiB): p50 %.2f  min %.2f; positions evicted %u; "
        "reps without an RSS drop: %d\n",
        pct(released_mib, 50), pct(released_mib, 0), evicted, no_drop);
    return no_drop == 0 ? 0 : 1;
}
