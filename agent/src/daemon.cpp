// The device daemon (daemon.h).
#include "pylon/agent/daemon.h"

#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <condition_variable>
#include <csignal>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "pylon/agent/enroll.h"
#include "pylon/agent/journal.h"
#include "pylon/agent/updater.h"
#include "pylon/common/config.h"
#include "pylon/common/file_io.h"
#include "pylon/common/log.h"
#include "pylon/common/sd_notify.h"
#include "pylon/runtime_server/server.h"
#include "pylon/signing/tuf/metadata.h"

namespace pylon::agent {

namespace fs = std::filesystem;

namespace {

// serving.json: what the API serves now (written after each take-over, so it never runs ahead
// of the API the way the journal's active slot does for a moment): the slot, its target, since
// when. `pylon-agent status` shows it.
void record_serving(const fs::path& state_dir, const std::string& model_file) {
    nlohmann::json j = {
        {"file", model_file},
        {"since", signing::tuf::format_time(std::chrono::time_point_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now()))}};
    std::error_code ec;
    const auto rel =
        fs::path(model_file).lexically_relative(fs::canonical(state_dir / "slots", ec));
    if (!ec && !rel.empty() && *rel.begin() != "..") {
        const std::string slot = rel.begin()->string();
        j["slot"] = slot;
        if (auto t = Slots(state_dir).installed(slot); t && *t) j["target"] = (*t)->path;
    }
    if (auto w = write_file_atomic(state_dir / "serving.json", j.dump() + "\n", 0600); !w) {
        log::warn("pylon-agent: recording what is served: {}", w.error().what());
    }
}

std::atomic<bool> g_stop{false};
std::mutex g_mu;
std::condition_variable g_cv;

}  // namespace

const std::set<std::string, std::less<>>& agent_config_keys() {
    static const std::set<std::string, std::less<>> keys = {"state_dir",
                                                            "update.poll_interval_s",
                                                            "update.long_poll_s",
                                                            "update.bandwidth_bytes_per_s",
                                                            "update.health_timeout_ms",
                                                            "update.max_activation_attempts",
                                                            "update.ca_file",
                                                            "device.region",
                                                            "device.commercial_use",
                                                            "device.accelerators",
                                                            "serve.host",
                                                            "serve.port",
                                                            "serve.threads",
                                                            "serve.model_id"};
    return keys;
}

Result<AgentConfig> load_agent_config(const fs::path& file, bool required) {
    std::error_code ec;
    Config cfg = Config::empty("PYLON_AGENT_");
    if (fs::exists(file, ec)) {
        PYLON_TRY_ASSIGN(cfg, Config::load_file(file, "PYLON_AGENT_"));
    } else if (required) {
        return Error(Errc::not_found, "config file " + file.string() + " does not exist");
    }
    const auto& known = agent_config_keys();
    for (const auto& k : cfg.file_keys()) {
        if (!known.contains(k)) {
            return Error(Errc::invalid_argument, file.string() + ": unknown key " + k);
        }
    }
    AgentConfig c;
    auto range = [](std::string_view key, std::int64_t v, std::int64_t lo,
                    std::int64_t hi) -> Result<std::int64_t> {
        if (v < lo || v > hi) {
            return Error(Errc::invalid_argument, std::string(key) + " must be between " +
                                                     std::to_string(lo) + " and " +
                                                     std::to_string(hi));
        }
        return v;
    };
    PYLON_TRY_ASSIGN(std::string state, cfg.get_string("state_dir", c.state_dir.string()));
    c.state_dir = state;
    PYLON_TRY_ASSIGN(auto poll, cfg.get_int("update.poll_interval_s", 60));
    PYLON_TRY_ASSIGN(poll, range("update.poll_interval_s", poll, 1, 86400));
    c.poll_interval = std::chrono::seconds(poll);
    PYLON_TRY_ASSIGN(auto long_poll, cfg.get_int("update.long_poll_s", 25));
    PYLON_TRY_ASSIGN(long_poll, range("update.long_poll_s", long_poll, 0, 55));
    c.long_poll = std::chrono::seconds(long_poll);
    PYLON_TRY_ASSIGN(auto bw, cfg.get_int("update.bandwidth_bytes_per_s", 0));
    PYLON_TRY_ASSIGN(bw, range("update.bandwidth_bytes_per_s", bw, 0, std::int64_t{1} << 40));
    c.bandwidth_bytes_per_s = static_cast<std::uint64_t>(bw);
    PYLON_TRY_ASSIGN(auto health, cfg.get_int("update.health_timeout_ms", 10000));
    PYLON_TRY_ASSIGN(health, range("update.health_timeout_ms", health, 100, 600000));
    c.health_timeout = std::chrono::milliseconds(health);
    PYLON_TRY_ASSIGN(auto attempts, cfg.get_int("update.max_activation_attempts", 2));
    PYLON_TRY_ASSIGN(attempts, range("update.max_activation_attempts", attempts, 1, 10));
    c.max_activation_attempts = static_cast<int>(attempts);
    PYLON_TRY_ASSIGN(c.ca_file, cfg.get_string("update.ca_file", ""));
    PYLON_TRY_ASSIGN(c.region, cfg.get_string("device.region", ""));
    if (!c.region.empty() &&
        (c.region.size() != 2 || !std::isupper(c.region[0]) || !std::isupper(c.region[1]))) {
        return Error(Errc::invalid_argument, "device.region must be an ISO 3166 code such as DE");
    }
    PYLON_TRY_ASSIGN(c.commercial_use, cfg.get_bool("device.commercial_use", false));
    if (cfg.has("device.accelerators")) {
        PYLON_TRY_ASSIGN(c.accelerators, cfg.get_string_list("device.accelerators"));
    }
    PYLON_TRY_ASSIGN(c.serve_host, cfg.get_string("serve.host", "127.0.0.1"));
    PYLON_TRY_ASSIGN(auto port, cfg.get_int("serve.port", 8080));
    PYLON_TRY_ASSIGN(port, range("serve.port", port, 0, 65535));
    c.serve_port = static_cast<std::uint16_t>(port);
    PYLON_TRY_ASSIGN(auto threads, cfg.get_int("serve.threads", 0));
    PYLON_TRY_ASSIGN(threads, range("serve.threads", threads, 0, 512));
    c.serve_threads = static_cast<int>(threads);
    PYLON_TRY_ASSIGN(c.model_id, cfg.get_string("serve.model_id", "device-model"));
    if (c.model_id.empty()) return Error(Errc::invalid_argument, "serve.model_id is empty");
    return c;
}

int run_daemon(const AgentConfig& c) {
    // The handler only sets a lock-free atomic flag (anything more is not async-signal-safe);
    // the main loop waits at most 200 ms at a time, sees it, and wakes the watchdog thread.
    std::signal(SIGTERM, [](int) { g_stop.store(true); });
    std::signal(SIGINT, [](int) { g_stop.store(true); });
    std::signal(SIGPIPE, SIG_IGN);

    auto id = IdentityStore(c.state_dir).load();
    if (!id || !*id) {
        log::error("pylon-agent: {}",
                   id ? "this device is not enrolled (pylon-agent enroll)" : id.error().what());
        return 1;
    }
    UpdaterOptions uo;
    uo.state_dir = c.state_dir;
    uo.ca_file = c.ca_file;
    uo.bandwidth_bytes_per_s = c.bandwidth_bytes_per_s;
    uo.max_activation_attempts = c.max_activation_attempts;
    uo.region = c.region;
    uo.commercial_use = c.commercial_use;
    uo.accelerators = c.accelerators;
    uo.long_poll = c.long_poll;
    RuntimeHealthCheck health(c.health_timeout, 1);
    Updater updater(uo, health);
    if (auto r = updater.recover(); !r) {
        log::error("pylon-agent: recovering the interrupted update: {}", r.error().what());
    } else if (r->kind != CycleOutcome::Kind::nothing) {
        log::info("pylon-agent: after restart: {}: {}", to_string(r->kind), r->message);
    }

    runtime_server::ServeConfig sc;
    sc.host = c.serve_host;
    sc.port = c.serve_port;
    sc.threads = c.serve_threads;
    sc.model_id = c.model_id;
    if (auto active = updater.active_model(); active && *active)
        sc.model_path = (*active)->string();
    auto server = runtime_server::Server::start(sc);
    if (!server) {
        log::error("pylon-agent: cannot serve: {}", server.error().what());
        return 1;
    }
    log::info("pylon-agent: {}/{} (device {}), serving on http://{}:{} ({})", (*id)->fleet,
              (*id)->name, (*id)->device_id, c.serve_host, (*server)->port(),
              sc.model_path.empty() ? "no model yet" : sc.model_path);
    if (sc.model_path.empty()) {
        std::error_code ec;
        fs::remove(c.state_dir / "serving.json", ec);
    } else {
        record_serving(c.state_dir, fs::canonical(sc.model_path).string());
    }
    sd_notify("READY=1\nSTATUS=serving " +
              (sc.model_path.empty() ? std::string("no model yet") : sc.model_path));

    // The watchdog wants a ping at least every WATCHDOG_USEC; pings go at half that.
    std::chrono::milliseconds ping{0};
    if (const char* w = std::getenv("WATCHDOG_USEC"))
        ping = std::chrono::milliseconds(std::atoll(w) / 2000);
    std::thread watchdog;
    if (ping.count() > 0) {
        watchdog = std::thread([ping] {
            while (!g_stop.load()) {
                sd_notify("WATCHDOG=1");
                std::unique_lock lock(g_mu);
                g_cv.wait_for(lock, ping, [] { return g_stop.load(); });
            }
        });
    }

    // A stop must not wait for a long poll (or a download) to end: this thread sees the flag
    // and cancels the registry call in flight (an interrupted download resumes next start).
    std::thread stopper([&updater] {
        std::unique_lock lock(g_mu);
        while (!g_stop.load()) g_cv.wait_for(lock, std::chrono::milliseconds(200));
        lock.unlock();
        updater.stop();
    });

    while (!g_stop.load()) {
        const auto started = std::chrono::steady_clock::now();
        auto r = updater.run_once();
        if (g_stop.load()) break;
        if (!r) {
            log::warn("pylon-agent: update cycle: {}", r.error().what());
            sd_notify("STATUS=last cycle failed: " + r.error().message().substr(0, 200));
        } else {
            if (r->kind != CycleOutcome::Kind::nothing) {
                log::info("pylon-agent: {}: {}", to_string(r->kind), r->message);
            }
            if (r->kind == CycleOutcome::Kind::installed) {
                const auto active = updater.active_model();
                if (active && *active) {
                    // The new model is healthy and committed: it takes over the API.
                    const auto t0 = std::chrono::steady_clock::now();
                    const auto file = fs::canonical((*active)->string()).string();
                    if (auto s = (*server)->replace_model(file); !s) {
                        log::error("pylon-agent: serving the new model: {}", s.error().what());
                    } else {
                        record_serving(c.state_dir, file);
                        log::info("pylon-agent: the new model took over the API in {:.1f} ms",
                                  std::chrono::duration<double, std::milli>(
                                      std::chrono::steady_clock::now() - t0)
                                      .count());
                    }
                }
            }
            sd_notify("STATUS=" + std::string(to_string(r->kind)) + ": " +
                      r->message.substr(0, 200));
        }
        // A cycle's transient allocations (metadata, a download's buffers) are returned to the
        // system before the agent waits: an idle agent should hold no more than it needs.
        ::malloc_trim(0);
        // With long polls the cycle itself was the wait: go again soon, unless it failed, was
        // refused, or a long poll came back at once with nothing new (a registry that does not
        // wait: no spin).
        auto next = c.poll_interval;
        if (c.long_poll.count() > 0 && r && r->kind != CycleOutcome::Kind::refused &&
            !(r->long_polled && r->kind == CycleOutcome::Kind::nothing &&
              std::chrono::steady_clock::now() - started < c.long_poll / 2)) {
            next = std::chrono::seconds(1);
        }
        std::unique_lock lock(g_mu);
        const auto until = started + std::max<std::chrono::steady_clock::duration>(
                                         next, std::chrono::steady_clock::now() - started +
                                                   std::chrono::seconds(1));
        while (!g_stop.load() && std::chrono::steady_clock::now() < until) {
            g_cv.wait_for(lock, std::chrono::milliseconds(200));
        }
    }
    sd_notify("STOPPING=1");
    log::info("pylon-agent: stopping");
    (*server)->stop();
    g_cv.notify_all();
    stopper.join();
    if (watchdog.joinable()) watchdog.join();
    return 0;
}

}  // namespace pylon::agent
