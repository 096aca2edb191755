// The PSI controller: parsers of untrusted input (trigger texts, PSI files, base64, cgroup
// paths), the policy against a fake clock, the controller thread against a fake source, the
// polling fallback against a PSI file we write, systemd's protocol (FIFO, /dev/null, bad base64)
// and a real trigger on /proc/pressure/memory.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "pylon/common/error.h"
#include "pylon/runtime/context.h"
#include "pylon/runtime/model.h"
#include "pylon/runtime/psi.h"
#include "temp_dir.h"

using namespace pylon::runtime::psi;
using namespace std::chrono_literals;
using pylon::Errc;

TEST_CASE("psi: trigger texts", "[psi]") {
    auto t = parse_trigger("some 150000 2000000");
    REQUIRE(t);
    CHECK(t->level == Level::some);
    CHECK(t->stall_us == 150000);
    CHECK(t->window_us == 2000000);
    CHECK(t->text() == "some 150000 2000000");
    CHECK(parse_trigger(std::string_view("full 100000 1000000\n\0", 21))->level == Level::full);
    for (const char* bad :
         {"", "some", "some 1", "some 1 2 3", "bogus 100 1000000", "some 0 1000000",
          "some 2000000 1000000", "some 1000 100000", "some 1000 20000000", "some -1 1000000",
          "some 1e5 1000000", "some  150000 2000000", "some 150000 2000000 ",
          "some 99999999999999999999999 1000000"}) {
        CAPTURE(bad);
        auto r = parse_trigger(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == Errc::parse_error);
    }
    CHECK_FALSE(parse_trigger(std::string(200, 's')));
}

TEST_CASE("psi: PSI file contents", "[psi]") {
    auto f = parse_pressure_file(
        "some avg10=1.25 avg60=0.50 avg300=0.00 total=3008202\n"
        "full avg10=0.00 avg60=0.10 avg300=0.00 total=2106904\n");
    REQUIRE(f);
    CHECK(f->some.avg10 == Approx(1.25));
    CHECK(f->some.total_us == 3008202);
    REQUIRE(f->full);
    CHECK(f->full->avg60 == Approx(0.10));
    CHECK(parse_pressure_file("some avg10=0.00 avg60=0.00 avg300=0.00 total=0")->full ==
          std::nullopt);
    for (const char* bad :
         {"", "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
          "some avg10=0.00 avg60=0.00 avg300=0.00\n", "some avg10=x avg60=0.00 avg300=0.00 total=0",
          "some avg10=101.00 avg60=0.00 avg300=0.00 total=0",
          "some avg10=0.00 avg60=0.00 avg300=0.00 total=-5",
          "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nsome avg10=0.00 avg60=0.00 "
          "avg300=0.00 total=0\n",
          "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nweird line\n"}) {
        CAPTURE(bad);
        auto r = parse_pressure_file(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == Errc::parse_error);
    }
    CHECK_FALSE(parse_pressure_file(std::string(5000, '\n')));
}

TEST_CASE("psi: base64 of systemd's MEMORY_PRESSURE_WRITE", "[psi]") {
    CHECK(base64_decode("c29tZSAxNTAwMDAgMjAwMDAwMA==").value() == "some 150000 2000000");
    CHECK(base64_decode("").value().empty());
    CHECK(base64_decode("YQ==").value() == "a");
    CHECK(base64_decode("YWI=").value() == "ab");
    CHECK(base64_decode("YWJj").value() == "abc");
    for (const char* bad : {"YQ=", "Y===", "YQ==YWJj", "YW=j", "YW J", "YWJ!", "=AAA"}) {
        CAPTURE(bad);
        auto r = base64_decode(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == Errc::parse_error);
    }
    CHECK_FALSE(base64_decode(std::string(8192, 'A')));
}

TEST_CASE("psi: the own cgroup's memory.pressure from /proc/self/cgroup", "[psi]") {
    pylon::test::TempDir dir;
    dir.write("a/b/memory.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    dir.write("memory.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    const std::string root = dir.path().string();
    CHECK(own_cgroup_pressure_path("4:memory:/x\n0::/a/b\n", root).value() ==
          root + "/a/b/memory.pressure");
    CHECK(own_cgroup_pressure_path("0::/\n", root).value() == root + "/memory.pressure");
    CHECK(own_cgroup_pressure_path("4:memory:/x\n", root).error().code() == Errc::not_found);
    CHECK(own_cgroup_pressure_path("0::/a/c\n", root).error().code() == Errc::not_found);
    CHECK(own_cgroup_pressure_path("0::/a/../../etc\n", root).error().code() == Errc::parse_error);
    CHECK(own_cgroup_pressure_path("0::relative\n", root).error().code() == Errc::parse_error);
    CHECK(own_cgroup_pressure_path("0::/a/b (deleted)\n", root).error().code() ==
          Errc::parse_error);
}

TEST_CASE("psi policy: shrink under pressure, harder when full, recover when calm", "[psi]") {
    using Clock = Policy::Clock;
    PolicyConfig c;
    c.max_budget = 1000;
    c.min_budget = 200;
    REQUIRE(validate(c));
    const Clock::time_point t0{};
    Policy p(c, t0);
    CHECK(p.budget() == 1000);
    CHECK(p.on_event(Level::some, t0 + 1s) == std::optional<std::size_t>(750));
    CHECK(p.on_event(Level::some, t0 + 1500ms) == std::nullopt);  // rate limited
    CHECK(p.counters().rate_limited == 1);
    // A full event half an interval after a some shrink escalates at once.
    CHECK(p.on_event(Level::full, t0 + 1500ms) == std::optional<std::size_t>(375));
    CHECK(p.on_event(Level::full, t0 + 2000ms) == std::nullopt);  // full after full: 1 s apart
    CHECK(p.on_event(Level::some, t0 + 2600ms) == std::optional<std::size_t>(281));
    CHECK(p.on_event(Level::full, t0 + 4s) == std::optional<std::size_t>(200));  // the floor
    CHECK(p.on_event(Level::full, t0 + 6s) == std::nullopt);                     // stays there
    CHECK(p.budget() == 200);
    // Calm: nothing before calm_period since the last event, then +10% of max per period.
    CHECK(p.on_tick(t0 + 15s) == std::nullopt);
    CHECK(p.next_tick() == t0 + 16s);
    CHECK(p.on_tick(t0 + 16s) == std::optional<std::size_t>(300));
    CHECK(p.on_tick(t0 + 20s) == std::nullopt);
    CHECK(p.on_tick(t0 + 26s) == std::optional<std::size_t>(400));
    CHECK(p.on_event(Level::some, t0 + 27s) == std::optional<std::size_t>(300));
    CHECK(p.on_tick(t0 + 36s) == std::nullopt);  // the event restarted the calm period
    std::optional<std::size_t> b;
    for (int i = 0; i < 20; ++i) {
        if (auto n = p.on_tick(t0 + 37s + i * 10s)) b = n;
    }
    CHECK(b == std::optional<std::size_t>(1000));  // up to the maximum, never past it
    CHECK(p.on_tick(t0 + 1000s) == std::nullopt);
    const PolicyCounters& k = p.counters();
    CHECK(k.events_some == 4);
    CHECK(k.events_full == 4);
    CHECK(k.shrinks == 5);
    CHECK(k.grows == 9);

    PolicyConfig bad = c;
    bad.min_budget = 2000;
    CHECK(validate(bad).error().code() == Errc::invalid_argument);
    bad = c;
    bad.some_factor = 1.0;
    CHECK_FALSE(validate(bad));
    bad = c;
    bad.max_budget = 0;
    CHECK_FALSE(validate(bad));
    bad = c;
    bad.calm_period = 10ms;
    CHECK_FALSE(validate(bad));
}

namespace {

// Events pushed by the test, delivered by wait().
class FakeSource final : public PressureSource {
public:
    void push(Level l) {
        std::lock_guard lock(mu_);
        q_.push_back(l);
        cv_.notify_all();
    }
    void fail() {
        std::lock_guard lock(mu_);
        fail_ = true;
        cv_.notify_all();
    }
    pylon::Result<std::optional<Level>> wait(std::chrono::milliseconds timeout, int) override {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, std::min(timeout, std::chrono::milliseconds(50)),
                     [&] { return !q_.empty() || fail_; });
        if (fail_) return pylon::Error(Errc::io_error, "fake source broke");
        if (q_.empty()) return std::optional<Level>();
        const Level l = q_.front();
        q_.pop_front();
        return std::optional<Level>(l);
    }
    std::string_view kind() const noexcept override { return "fake"; }
    std::string describe() const override { return "fake source"; }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Level> q_;
    bool fail_ = false;
};

template <typename F>
bool eventually(F f, std::chrono::milliseconds limit = 5s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (f()) return true;
        std::this_thread::sleep_for(5ms);
    }
    return f();
}

}  // namespace

TEST_CASE("psi controller: events reach the callback, metrics count them", "[psi]") {
    auto src = std::make_unique<FakeSource>();
    FakeSource* fake = src.get();
    std::mutex mu;
    std::vector<std::size_t> budgets;
    ControllerOptions o;
    o.policy.max_budget = 64 << 20;
    o.policy.min_budget = 8 << 20;
    o.policy.min_interval = 0ms;
    o.policy.calm_period = 300ms;
    o.policy.grow_step = 0.5;
    o.on_budget = [&](std::size_t b) {
        std::lock_guard lock(mu);
        budgets.push_back(b);
    };
    auto c = Controller::start(std::move(src), o).value();
    fake->push(Level::some);
    REQUIRE(eventually([&] {
        std::lock_guard lock(mu);
        return budgets.size() == 1;
    }));
    fake->push(Level::full);
    REQUIRE(eventually([&] {
        std::lock_guard lock(mu);
        return budgets.size() == 2;
    }));
    {
        std::lock_guard lock(mu);
        CHECK(budgets[0] == (48u << 20));
        CHECK(budgets[1] == (24u << 20));
    }
    std::string m;
    c->write_metrics(m);
    CHECK(m.find("pylon_psi_events_total{level=\"some\"} 1\n") != std::string::npos);
    CHECK(m.find("pylon_psi_events_total{level=\"full\"} 1\n") != std::string::npos);
    CHECK(m.find("pylon_kv_budget_changes_total{direction=\"shrink\"} 2\n") != std::string::npos);
    CHECK(m.find("# TYPE pylon_kv_budget_bytes gauge\n") != std::string::npos);
    CHECK(m.find("pylon_psi_controller_up{source=\"fake\"} 1\n") != std::string::npos);
    // Calm: grows back (+32 MiB per 300 ms) to the maximum.
    REQUIRE(eventually([&] { return c->budget() == (64u << 20); }));
    CHECK(c->counters().grows == 2);  // 24 -> 56 -> 64 MiB
    // A broken source stops the controller; the budget stays.
    fake->fail();
    REQUIRE(eventually([&] { return !c->running(); }));
    c->stop();
}

TEST_CASE("psi controller: invalid options are refused", "[psi]") {
    ControllerOptions o;
    o.policy.max_budget = 100;
    CHECK(Controller::start(std::make_unique<FakeSource>(), o).error().code() ==
          Errc::invalid_argument);  // no callback
    o.on_budget = [](std::size_t) {};
    o.policy.min_budget = 200;
    CHECK(Controller::start(std::make_unique<FakeSource>(), o).error().code() ==
          Errc::invalid_argument);
}

TEST_CASE("psi: polling fallback fires on stall time growth", "[psi]") {
    pylon::test::TempDir dir;
    const auto file = dir.write("memory.pressure",
                                "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000\n"
                                "full avg10=0.00 avg60=0.00 avg300=0.00 total=1000\n");
    auto src = open_poll_source(file.string(), Trigger{Level::some, 150000, 2000000},
                                Trigger{Level::full, 100000, 2000000}, 100ms)
                   .value();
    CHECK(src->kind() == "poll");
    CHECK(src->wait(300ms, -1).value() == std::nullopt);  // no stall growth
    auto rewrite = [&](const char* text) {
        std::ofstream f(file, std::ios::trunc);  // same inode: the source keeps its fd
        f << text;
    };
    // 50 ms of `some` stall within ~100 ms: far above 7.5%.
    rewrite(
        "some avg10=3.00 avg60=0.00 avg300=0.00 total=51000\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=1000\n");
    CHECK(src->wait(300ms, -1).value() == std::optional<Level>(Level::some));
    rewrite(
        "some avg10=9.00 avg60=0.00 avg300=0.00 total=151000\n"
        "full avg10=5.00 avg60=0.00 avg300=0.00 total=101000\n");
    CHECK(src->wait(300ms, -1).value() == std::optional<Level>(Level::full));
    rewrite("garbage\n");
    auto broken = src->wait(300ms, -1);
    REQUIRE_FALSE(broken);
    CHECK(broken.error().code() == Errc::parse_error);
    CHECK(open_poll_source(file.string(), Trigger{}, std::nullopt, 10ms).error().code() ==
          Errc::invalid_argument);
}

TEST_CASE("psi: systemd's MEMORY_PRESSURE_WATCH protocol", "[psi]") {
    pylon::test::TempDir dir;
    std::map<std::string, std::string> env;
    SourceOptions o;
    o.getenv = [&](const char* name) -> std::optional<std::string> {
        auto it = env.find(name);
        if (it == env.end()) return std::nullopt;
        return it->second;
    };
    env["MEMORY_PRESSURE_WATCH"] = "/dev/null";
    CHECK(open_pressure_source(o).error().code() == Errc::unsupported);
    env["MEMORY_PRESSURE_WATCH"] = "relative/path";
    CHECK(open_pressure_source(o).error().code() == Errc::invalid_argument);

    const std::string fifo = (dir / "pressure.fifo").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    env["MEMORY_PRESSURE_WATCH"] = fifo;
    env["MEMORY_PRESSURE_WRITE"] = "not base64!";
    CHECK(open_pressure_source(o).error().code() == Errc::parse_error);
    env["MEMORY_PRESSURE_WRITE"] = "c29tZSAxNTAwMDAgMjAwMDAwMA==";
    auto src = open_pressure_source(o).value();
    CHECK(src->kind() == "systemd");
    CHECK(src->wait(50ms, -1).value() == std::nullopt);
    {
        const int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
        REQUIRE(w >= 0);
        REQUIRE(::write(w, "x", 1) == 1);
        ::close(w);
    }
    CHECK(src->wait(1000ms, -1).value() == std::optional<Level>(Level::some));
    CHECK(src->wait(50ms, -1).value() == std::nullopt);  // consumed, and no HUP without writers
}

TEST_CASE("psi: a real trigger on /proc/pressure/memory", "[psi]") {
    if (::access("/proc/pressure/memory", R_OK) != 0) {
        WARN("skipped: /proc/pressure/memory does not exist (kernel without PSI)");
        return;
    }
    auto src = open_trigger_source("/proc/pressure/memory", Trigger{Level::some, 150000, 2000000},
                                   std::nullopt);
    if (!src) {
        // Unprivileged and refused: the fallback must then work on the same file.
        WARN("trigger refused: " << src.error().what());
        auto poll = open_poll_source("/proc/pressure/memory", Trigger{}, std::nullopt, 100ms);
        REQUIRE(poll);
        REQUIRE(poll.value()->wait(200ms, -1));
        return;
    }
    CHECK(src.value()->kind() == "trigger");
    // No claim about pressure on a shared machine: the wait must just work.
    REQUIRE(src.value()->wait(100ms, -1));
    SourceOptions o;
    o.use_systemd_env = false;
    auto picked = open_pressure_source(o);
    REQUIRE(picked);
    CHECK((picked.value()->kind() == "trigger" || picked.value()->kind() == "poll"));
}

TEST_CASE("psi: start_kv_controller drives a Context's budget", "[psi][kv]") {
    auto model =
        pylon::runtime::Model::load(std::string(PYLON_TEST_DATA) + "/runtime/stories260K-f16.gguf")
            .value();
    pylon::runtime::ContextParams cp;
    cp.n_ctx = 512;
    auto ctx = pylon::runtime::Context::create(model, cp).value();
    pylon::test::TempDir dir;
    const std::string fifo = (dir / "pressure.fifo").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    KvControlOptions o;
    o.min_positions = 128;
    o.source.getenv = [&](const char* name) -> std::optional<std::string> {
        if (std::string(name) == "MEMORY_PRESSURE_WATCH") return fifo;
        return std::nullopt;
    };
    std::atomic<int> woken{0};
    o.wake = [&] { ++woken; };
    auto c = start_kv_controller(*ctx, o).value();
    const std::size_t full = 512 * ctx->kv_bytes_per_position();
    CHECK(ctx->kv_budget() == full);
    const int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    REQUIRE(w >= 0);
    REQUIRE(::write(w, "x", 1) == 1);
    REQUIRE(eventually([&] { return woken.load() == 1; }));
    CHECK(ctx->kv_budget() == full * 3 / 4);
    CHECK(ctx->kv_capacity() == 384);
    std::string m;
    c->write_metrics(m);
    CHECK(m.find("pylon_kv_capacity_positions 384\n") != std::string::npos);
    CHECK(m.find("pylon_psi_controller_up{source=\"systemd\"} 1\n") != std::string::npos);
    ::close(w);
    c->stop();

    KvControlOptions off;
    off.source.getenv = [](const char* name) -> std::optional<std::string> {
        if (std::string(name) == "MEMORY_PRESSURE_WATCH") return std::string("/dev/null");
        return std::nullopt;
    };
    CHECK(start_kv_controller(*ctx, off).error().code() == Errc::unsupported);
}

TEST_CASE("psi: systemd's protocol over an AF_UNIX socket", "[psi]") {
    pylon::test::TempDir dir;
    const std::string path = (dir / "pressure.sock").string();
    const int srv = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(srv >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof addr.sun_path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    REQUIRE(::bind(srv, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(srv, 1) == 0);
    SourceOptions o;
    o.getenv = [&](const char* name) -> std::optional<std::string> {
        if (std::string(name) == "MEMORY_PRESSURE_WATCH") return path;
        if (std::string(name) == "MEMORY_PRESSURE_WRITE") {
            return std::string("c29tZSAxNTAwMDAgMjAwMDAwMA==");
        }
        return std::nullopt;
    };
    auto src = open_pressure_source(o).value();  // connects and writes the payload
    CHECK(src->kind() == "systemd");
    const int peer = ::accept4(srv, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(peer >= 0);
    char buf[64] = {};
    const ssize_t n = ::read(peer, buf, sizeof buf);
    CHECK(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0) == "some 150000 2000000");
    CHECK(src->wait(50ms, -1).value() == std::nullopt);
    REQUIRE(::write(peer, "!", 1) == 1);
    CHECK(src->wait(1000ms, -1).value() == std::optional<Level>(Level::some));
    ::close(peer);  // the service manager went away: the source reports it
    auto gone = src->wait(1000ms, -1);
    REQUIRE_FALSE(gone);
    CHECK(gone.error().code() == Errc::io_error);
    ::close(srv);
}
