// psi_probe: the child process of the PSI acceptance test (psi_cgroup_test.cpp). Run inside a
// memory-limited cgroup, it fills a KV cache, starts the PSI controller on its cgroup's pressure
// (or the system's), and reads a large file over and over so that the page cache thrashes
// within the limit. Every budget change is applied between evals like a server worker would;
// each is reported as one line of JSON on stdout with the RSS and resident KV bytes around it
// and the time from the pressure event to the RSS drop.
//
//   psi_probe --file BIG [--model M.gguf] [--pressure PATH] [--fill 512] [--ctx 2048]
//             [--seconds 30] [--threads 1] [--reps N]
//
// Without --model it writes the acceptance test's synthetic model next to BIG. Exits 0 after two
// shrinks of which one evicted positions (or at --seconds), 2 on bad usage or a model that cannot
// be loaded. With --reps N it is the trigger -> RSS drop benchmark instead (run_reps; driven by
// bench/runtime/run_psi_bench.sh).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
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

// Reads `path` from start to end until `stop`, after dropping its cached pages so that what it
// reads is charged to this cgroup.
void thrash(const std::string& path, const std::atomic<bool>& stop, std::atomic<std::uint64_t>& n) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        std::fprintf(stderr, "psi_probe: cannot open %s: %s\n", path.c_str(), std::strerror(errno));
        return;
    }
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    std::vector<char> buf(1 << 20);
    while (!stop.load()) {
        off_t off = 0;
        for (ssize_t r; !stop.load() && (r = ::pread(fd, buf.data(), buf.size(), off)) > 0;) {
            off += r;
            n += static_cast<std::uint64_t>(r);
        }
    }
    ::close(fd);
}

struct Args {
    std::string model, file, pressure;
    std::uint32_t fill = 512, ctx = 2048;
    int seconds = 30, threads = 1;
    int reps = 0;  // > 0: benchmark mode (see run_reps)
};

std::optional<Args> parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        try {
            if (k == "--model")
                a.model = v;
            else if (k == "--file")
                a.file = v;
            else if (k == "--pressure")
                a.pressure = v;
            else if (k == "--fill")
                a.fill = static_cast<std::uint32_t>(std::stoul(v));
            else if (k == "--ctx")
                a.ctx = static_cast<std::uint32_t>(std::stoul(v));
            else if (k == "--seconds")
                a.seconds = std::stoi(v);
            else if (k == "--threads")
                a.threads = std::stoi(v);
            else if (k == "--reps")
                a.reps = std::stoi(v);
            else
                return std::nullopt;
        } catch (const std::exception&) {
            return std::nullopt;
        }
    }
    if (argc % 2 != 1 || a.file.empty() || a.fill == 0 || a.fill > a.ctx || a.seconds < 1 ||
        a.seconds > 600 || a.reps < 0 || a.reps > 1000) {
        return std::nullopt;
    }
    return a;
}

std::vector<std::int32_t> fill_ids(std::uint32_t n, std::uint32_t n_vocab) {
    std::vector<std::int32_t> ids;
    for (std::uint32_t i = 0; i < n; ++i) {
        ids.push_back(static_cast<std::int32_t>((i * 7919u + 13u) % n_vocab));
    }
    return ids;
}

double pct(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

// Benchmark mode: per repetition a fresh Context filled to --fill positions and a fresh trigger
// on the pressure file; the time from the trigger firing (the controller's poll() returning) to
// the RSS drop after apply_kv_budget(). The page cache keeps thrashing meanwhile.
int run_reps(const Args& a, const std::shared_ptr<const Model>& model) {
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> read_bytes{0};
    std::thread reader(thrash, a.file, std::cref(stop), std::ref(read_bytes));
    std::vector<double> ms;
    int no_drop = 0;
    for (int rep = 0; rep < a.reps; ++rep) {
        ContextParams cp;
        cp.n_ctx = a.ctx;
        cp.n_threads = a.threads;
        auto ctx = Context::create(model, cp);
        if (!ctx || !(*ctx)->eval(fill_ids(a.fill, model->hparams().n_vocab))) return 2;
        std::mutex mu;
        std::condition_variable cv;
        std::optional<std::size_t> pending;
        Clock::time_point fired{};
        psi::SourceOptions so;
        so.use_systemd_env = false;
        so.path = a.pressure;
        auto source = psi::open_pressure_source(so);
        if (!source) return 3;
        psi::ControllerOptions co;
        co.policy.max_budget = static_cast<std::size_t>(a.ctx) * (*ctx)->kv_bytes_per_position();
        co.policy.min_budget = (*ctx)->kv_min_bytes();
        co.on_event = [&](psi::Level) {
            std::lock_guard lock(mu);
            if (fired == Clock::time_point{}) fired = Clock::now();
        };
        co.on_budget = [&](std::size_t b) {
            std::lock_guard lock(mu);
            if (!pending) pending = b;
            cv.notify_all();
        };
        auto controller = psi::Controller::start(std::move(*source), co);
        if (!controller) return 3;
        std::unique_lock lock(mu);
        if (!cv.wait_for(lock, std::chrono::seconds(a.seconds),
                         [&] { return pending.has_value(); })) {
            std::fprintf(stderr, "psi_probe: no trigger within %d s\n", a.seconds);
            return 5;
        }
        const std::size_t budget = *pending;
        const auto at = fired;
        lock.unlock();
        const std::size_t rss0 = rss_bytes();
        (*ctx)->set_kv_budget(budget);
        (void)(*ctx)->apply_kv_budget();
        const std::size_t rss1 = rss_bytes();
        const double t = std::chrono::duration<double, std::milli>(Clock::now() - at).count();
        if (rss1 >= rss0) ++no_drop;
        ms.push_back(t);
        std::printf(
            "{\"event\":\"rep\",\"rep\":%d,\"latency_ms\":%.3f,\"rss_before\":%zu,"
            "\"rss_after\":%zu}\n",
            rep, t, rss0, rss1);
        std::fflush(stdout);
        (*controller)->stop();
    }
    stop = true;
    reader.join();
    std::printf(
        "{\"event\":\"bench\",\"reps\":%d,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
        "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"no_drop\":%d}\n",
        a.reps, pct(ms, 50), pct(ms, 90), pct(ms, 99), pct(ms, 100), no_drop);
    return no_drop == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const auto args = parse(argc, argv);
    if (!args) {
        std::fprintf(stderr,
                     "usage: psi_probe --file BIG [--model M.gguf] [--pressure PATH] [--fill N] "
                     "[--ctx N] [--seconds S] [--threads T] [--reps N]\n");
        return 2;
    }
    (void)pylon::init_logging(
        {args->reps > 0 ? "warn" : "info", pylon::LogFormat::text, "psi_probe"});
    std::string model_path = args->model;
    if (model_path.empty()) {  // the acceptance test's shape, next to the big file
        SynthOptions o;
        o.shape =
            parse_synth_shape("dim=256,ffn=32,layers=32,heads=2,kv_heads=2,vocab=260,ctx=2048")
                .value();
        o.type = GgmlType::F16;
        o.seed = 5;
        model_path = args->file + ".model.gguf";
        if (auto r = write_synth_model(o, model_path); !r) {
            std::fprintf(stderr, "psi_probe: %s\n", r.error().what().c_str());
            return 2;
        }
    }
    auto model = Model::load(model_path);
    if (!model) {
        std::fprintf(stderr, "psi_probe: %s\n", model.error().what().c_str());
        return 2;
    }
    if (args->reps > 0) return run_reps(*args, *model);
    ContextParams cp;
    cp.n_ctx = args->ctx;
    cp.n_threads = args->threads;
    auto ctx_r = Context::create(*model, cp);
    if (!ctx_r) {
        std::fprintf(stderr, "psi_probe: %s\n", ctx_r.error().what().c_str());
        return 2;
    }
    Context& ctx = **ctx_r;
    if (auto r = ctx.eval(fill_ids(args->fill, (*model)->hparams().n_vocab)); !r) {
        std::fprintf(stderr, "psi_probe: %s\n", r.error().what().c_str());
        return 2;
    }
    const std::size_t rss_start = rss_bytes();
    std::printf("{\"event\":\"filled\",\"n_past\":%u,\"rss\":%zu,\"kv_resident\":%zu}\n",
                ctx.n_past(), rss_start, ctx.kv_resident_bytes());
    std::fflush(stdout);

    // The controller's callback only records the budget and wakes this (the owner) thread,
    // which applies it between evals — as a server's worker does.
    std::mutex mu;
    std::condition_variable cv;
    std::optional<std::size_t> pending;
    Clock::time_point event_at{};
    std::string event_level;

    psi::SourceOptions so;
    so.use_systemd_env = false;
    so.path = args->pressure;
    auto source = psi::open_pressure_source(so);
    if (!source) {
        std::fprintf(stderr, "psi_probe: %s\n", source.error().what().c_str());
        return 3;
    }
    psi::ControllerOptions co;
    co.policy.max_budget = static_cast<std::size_t>(args->ctx) * ctx.kv_bytes_per_position();
    co.policy.min_budget = ctx.kv_min_bytes();
    co.policy.min_interval = std::chrono::milliseconds(500);
    co.policy.calm_period = std::chrono::seconds(60);  // no recovery during the probe
    co.context = &ctx;
    co.on_event = [&](psi::Level l) {
        std::lock_guard lock(mu);
        event_at = Clock::now();
        event_level = std::string(psi::level_name(l));
    };
    co.on_budget = [&](std::size_t b) {
        std::lock_guard lock(mu);
        pending = b;
        cv.notify_all();
    };
    const std::string source_kind((*source)->kind());
    const std::string source_desc = (*source)->describe();
    auto controller = psi::Controller::start(std::move(*source), co);
    if (!controller) {
        std::fprintf(stderr, "psi_probe: %s\n", controller.error().what().c_str());
        return 3;
    }

    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> read_bytes{0};
    // Two readers: on an otherwise idle machine one reader's clean page cache is reclaimed
    // without stalls often enough that no trigger fired in two minutes.
    std::thread reader(thrash, args->file, std::cref(stop), std::ref(read_bytes));
    std::thread reader2(thrash, args->file, std::cref(stop), std::ref(read_bytes));

    const auto deadline = Clock::now() + std::chrono::seconds(args->seconds);
    int shrinks = 0;
    std::uint32_t evicted_total = 0;
    while (Clock::now() < deadline && !(shrinks >= 2 && evicted_total > 0)) {
        std::unique_lock lock(mu);
        if (!cv.wait_until(lock, deadline, [&] { return pending.has_value(); })) break;
        const std::size_t budget = *pending;
        pending.reset();
        const auto at = event_at;
        const std::string level = event_level;
        lock.unlock();
        const std::size_t rss_before = rss_bytes(), kv_before = ctx.kv_resident_bytes();
        ctx.set_kv_budget(budget);
        const std::uint32_t evicted = ctx.apply_kv_budget();
        const std::size_t rss_after = rss_bytes();
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - at).count();
        ++shrinks;
        evicted_total += evicted;
        std::printf(
            "{\"event\":\"shrink\",\"level\":\"%s\",\"budget\":%zu,\"capacity\":%u,"
            "\"evicted\":%u,\"n_past\":%u,\"rss_before\":%zu,\"rss_after\":%zu,"
            "\"kv_before\":%zu,\"kv_after\":%zu,\"latency_ms\":%.3f}\n",
            level.c_str(), budget, ctx.kv_capacity(), evicted, ctx.n_past(), rss_before, rss_after,
            kv_before, ctx.kv_resident_bytes(), ms);
        std::fflush(stdout);
        // Generation goes on after eviction: make room and decode a few tokens.
        if (ctx.n_past() + 8 > ctx.kv_capacity()) ctx.shift(ctx.kv_capacity() / 2);
        for (int t = 0; t < 4; ++t) {
            const std::int32_t id = t + 1;
            if (auto r = ctx.eval(std::span<const std::int32_t>(&id, 1)); !r) {
                std::fprintf(stderr, "psi_probe: decode after eviction: %s\n",
                             r.error().what().c_str());
                return 4;
            }
        }
    }
    stop = true;
    reader.join();
    reader2.join();
    const psi::PolicyCounters c = (*controller)->counters();
    std::string metrics;
    (*controller)->write_metrics(metrics);
    (*controller)->stop();
    std::printf(
        "{\"event\":\"done\",\"source\":\"%s\",\"events_some\":%llu,\"events_full\":%llu,"
        "\"shrinks\":%d,\"evicted\":%u,\"rss_start\":%zu,\"rss_end\":%zu,"
        "\"kv_end\":%zu,\"read_mib\":%llu,\"metrics_bytes\":%zu}\n",
        source_kind.c_str(), static_cast<unsigned long long>(c.events_some),
        static_cast<unsigned long long>(c.events_full), shrinks, evicted_total, rss_start,
        rss_bytes(), ctx.kv_resident_bytes(),
        static_cast<unsigned long long>(read_bytes.load() >> 20), metrics.size());
    std::fprintf(stderr, "psi_probe: source: %s\n%s", source_desc.c_str(), metrics.c_str());
    return 0;
}
