// Memory-pressure (PSI) control of the KV cache budget.
//
// A PressureSource reports memory-pressure events; three real ones exist:
//   - a PSI trigger ("some|full <stall_us> <window_us>" written to /proc/pressure/memory or to
//     the process's own cgroup's memory.pressure, then poll() for POLLPRI; unprivileged triggers
//     need a window that is a multiple of 2 s);
//   - systemd's memory pressure protocol ($MEMORY_PRESSURE_WATCH names a PSI file, a FIFO or an
//     AF_UNIX socket, $MEMORY_PRESSURE_WRITE the base64 of what to write to it first; "/dev/null"
//     means pressure handling is off);
//   - polling of a PSI file's avg10 where triggers are refused (EPERM, EINVAL, ENOENT, ...).
// open_pressure_source() picks one and logs the choice. Tests inject their own source.
//
// Policy (pure logic, in the spirit of Android's lmkd and systemd-oomd; see
// docs/ARCHITECTURE.md "PSI controller"): each `some` event shrinks the budget by some_factor,
// each `full` event by full_factor, at most once per min_interval (a `full` event may follow a
// `some` shrink after half of it), never below min_budget; after calm_period without events the
// budget grows by grow_step of the maximum per period, up to max_budget.
//
// Controller: a thread that owns the source, runs the policy and calls on_budget(new_budget)
// whenever the budget changes (a server sets Context::set_kv_budget and wakes its worker, which
// calls Context::apply_kv_budget between evals). write_metrics() appends Prometheus text.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "pylon/common/result.h"

namespace pylon::runtime {
class Context;
}

namespace pylon::runtime::psi {

enum class Level { some, full };
std::string_view level_name(Level level) noexcept;

// One PSI trigger: a stall threshold within a window, both in microseconds.
struct Trigger {
    Level level = Level::some;
    std::uint64_t stall_us = 150000;
    std::uint64_t window_us = 2000000;
    // "some 150000 2000000"
    std::string text() const;
};

// Parses "some|full <stall_us> <window_us>" (what systemd base64-encodes in
// $MEMORY_PRESSURE_WRITE; at most 128 bytes, a trailing NUL or newline allowed). The kernel's
// limits are checked: window 500 ms .. 10 s, 0 < stall <= window. Errc::parse_error otherwise.
Result<Trigger> parse_trigger(std::string_view text);

// One line of a PSI file: "some avg10=0.12 avg60=0.00 avg300=0.00 total=12345".
struct PressureLine {
    double avg10 = 0, avg60 = 0, avg300 = 0;
    std::uint64_t total_us = 0;
};
struct PressureFile {
    PressureLine some;
    std::optional<PressureLine> full;  // absent in older kernels' cpu.pressure
};
// Parses the contents of a PSI file (at most 4 KiB). Errc::parse_error naming the problem.
Result<PressureFile> parse_pressure_file(std::string_view text);

// Strict base64 (RFC 4648, padding required, no whitespace), at most 4 KiB of input.
Result<std::string> base64_decode(std::string_view text);

// The memory.pressure of the process's own cgroup, from the contents of /proc/self/cgroup
// (the "0::<path>" line of the v2 hierarchy) and the cgroup2 mount (/sys/fs/cgroup, or
// /sys/fs/cgroup/unified on hybrid systems such as this project's build machines). Errc::not_found
// when there is no v2 line or no such file; parse_error for a malformed or hostile path.
Result<std::string> own_cgroup_pressure_path(std::string_view proc_self_cgroup,
                                             const std::string& cgroup2_root);
// The cgroup2 mount point: "/sys/fs/cgroup/unified" when that is a cgroup2 mount, else
// "/sys/fs/cgroup" when it is; Errc::not_found otherwise.
Result<std::string> cgroup2_root();

class PressureSource {
public:
    virtual ~PressureSource() = default;
    // Waits up to `timeout` for pressure, or until `cancel_fd` (an eventfd, -1 for none) becomes
    // readable. Returns the level seen (full when both fired), nullopt on timeout or cancel; an
    // Error when the source broke (e.g. its cgroup was removed).
    virtual Result<std::optional<Level>> wait(std::chrono::milliseconds timeout, int cancel_fd) = 0;
    // "trigger", "systemd", "poll" or a test's own.
    virtual std::string_view kind() const noexcept = 0;
    // For logs: what is watched and how.
    virtual std::string describe() const = 0;
};

struct SourceOptions {
    // Triggers; the `full` one is optional (nullopt: some only).
    Trigger some{Level::some, 150000, 2000000};
    std::optional<Trigger> full = Trigger{Level::full, 100000, 2000000};
    // The PSI file; empty: $MEMORY_PRESSURE_WATCH when set (and use_systemd_env), else the own
    // cgroup's memory.pressure, else /proc/pressure/memory.
    std::string path;
    bool use_systemd_env = true;
    bool allow_poll_fallback = true;
    std::chrono::milliseconds poll_interval{1000};  // the fallback's period, 100 ms .. 60 s
    // Environment lookup (tests replace it); default getenv.
    std::function<std::optional<std::string>(const char*)> getenv;
};

// A PSI trigger source on `path` (Error with the errno of the write when the kernel refuses).
Result<std::unique_ptr<PressureSource>> open_trigger_source(const std::string& path,
                                                            const Trigger& some,
                                                            const std::optional<Trigger>& full);
// The fallback: reads `path` every `interval` and reports `full` when full avg10 >= the full
// trigger's stall/window percentage, `some` when some avg10 >= the some trigger's.
Result<std::unique_ptr<PressureSource>> open_poll_source(const std::string& path,
                                                         const Trigger& some,
                                                         const std::optional<Trigger>& full,
                                                         std::chrono::milliseconds interval);
// Picks a source as SourceOptions says and logs the choice. Errc::unsupported when systemd
// turned pressure handling off (MEMORY_PRESSURE_WATCH=/dev/null); not_found when no PSI file
// exists (kernel without CONFIG_PSI or psi=0).
Result<std::unique_ptr<PressureSource>> open_pressure_source(const SourceOptions& options);

// --- policy ------------------------------------------------------------------------------------

struct PolicyConfig {
    std::size_t max_budget = 0;  // the configured budget (bytes); > 0
    std::size_t min_budget = 0;  // the floor (e.g. Context::kv_min_bytes() or sinks + a window)
    double some_factor = 0.75;   // budget *= this per `some` event (-25%)
    double full_factor = 0.50;   // budget *= this per `full` event (-50%)
    std::chrono::milliseconds min_interval{1000};  // between two shrinks
    std::chrono::milliseconds calm_period{10000};  // without events before each growth step
    double grow_step = 0.10;  // growth per calm period, as a fraction of max_budget
};
// Errc::invalid_argument naming the field: max 0, min > max, factors outside (0, 1), grow step
// outside (0, 1], intervals < 0 or calm period < 100 ms.
Result<void> validate(const PolicyConfig& config);

struct PolicyCounters {
    std::uint64_t events_some = 0, events_full = 0;
    std::uint64_t shrinks = 0, grows = 0;
    std::uint64_t rate_limited = 0;  // events that changed nothing (too soon, or at the floor)
};

// The budget as a function of events and time; no threads, no clock of its own.
class Policy {
public:
    using Clock = std::chrono::steady_clock;
    // The budget starts at max_budget. The config must be valid (see validate()).
    Policy(const PolicyConfig& config, Clock::time_point now);
    // A pressure event: the new budget when it changed.
    std::optional<std::size_t> on_event(Level level, Clock::time_point now);
    // Time passing: the new budget when a calm period ended and it grew.
    std::optional<std::size_t> on_tick(Clock::time_point now);
    // When on_tick() has something to do next (the end of the current calm period).
    Clock::time_point next_tick() const noexcept;
    std::size_t budget() const noexcept { return budget_; }
    const PolicyConfig& config() const noexcept { return config_; }
    const PolicyCounters& counters() const noexcept { return counters_; }

private:
    PolicyConfig config_;
    std::size_t budget_;
    std::optional<Clock::time_point> last_shrink_;
    std::optional<Level> last_shrink_level_;
    Clock::time_point last_event_or_growth_;
    PolicyCounters counters_;
};

// --- controller --------------------------------------------------------------------------------

struct ControllerOptions {
    PolicyConfig policy;
    // Called on the controller thread with each new budget.
    std::function<void(std::size_t new_budget)> on_budget;
    // Optional: a Context whose KV counters write_metrics() includes (read from any thread).
    const Context* context = nullptr;
    // Called on the controller thread when a pressure event arrives, before the policy runs
    // (benchmarks time the path from here).
    std::function<void(Level)> on_event;
};

class Controller {
public:
    // Starts the thread. Errc::invalid_argument for an invalid policy or no on_budget.
    static Result<std::unique_ptr<Controller>> start(std::unique_ptr<PressureSource> source,
                                                     ControllerOptions options);
    ~Controller();  // stops and joins the thread
    Controller(const Controller&) = delete;
    Controller& operator=(const Controller&) = delete;

    void stop() noexcept;
    std::size_t budget() const;
    PolicyCounters counters() const;
    // False once the source broke (the error is logged; the budget stays where it was).
    bool running() const noexcept { return running_.load(); }
    std::string_view source_kind() const noexcept { return source_->kind(); }

    // Appends Prometheus text-format metrics: pylon_psi_events_total{level}, pylon_kv_budget_*,
    // pylon_psi_budget_changes_total{direction}, and with a Context pylon_kv_evictions_total,
    // pylon_kv_tokens_evicted_total, pylon_kv_bytes_released_total, pylon_kv_resident_bytes,
    // pylon_kv_capacity_positions.
    void write_metrics(std::string& out) const;

private:
    Controller(std::unique_ptr<PressureSource> source, ControllerOptions options);
    void run();

    std::unique_ptr<PressureSource> source_;
    ControllerOptions options_;
    mutable std::mutex mu_;
    Policy policy_;
    int cancel_fd_ = -1;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> running_{true};
    std::thread thread_;
};

// Prometheus text for a Context's KV counters alone (for users without a Controller).
void write_kv_metrics(const Context& context, std::string& out);

// --- one call for a server -----------------------------------------------------------------------

struct KvControlOptions {
    // The budget pressure shrinks from and recovers to; 0: the Context's budget when set, else
    // the bytes of its n_ctx positions.
    std::size_t max_budget = 0;
    // The floor in positions (at least Context::kv_min_capacity()).
    std::uint32_t min_positions = 256;
    SourceOptions source;
    // Called (on the controller thread) after each budget change has been set on the Context,
    // e.g. to wake an idle worker; the Context applies it at the owner's next
    // apply_kv_budget() (generate() calls it before every token).
    std::function<void()> wake;
};

// A Controller for `context`: opens the pressure source (open_pressure_source), policy
// defaults with the budget limits above, on_budget = context.set_kv_budget, metrics including
// the Context's KV counters. `context` must outlive the Controller. Errors as
// open_pressure_source (Errc::unsupported: turned off by systemd; not_found: no PSI) — callers
// log them and serve on without pressure control.
Result<std::unique_ptr<Controller>> start_kv_controller(Context& context,
                                                        const KvControlOptions& options);

}  // namespace pylon::runtime::psi
