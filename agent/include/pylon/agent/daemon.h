// `pylon-agent run`: the device daemon. It finishes or rolls back an update a restart
// interrupted, serves the active model through the runtime's OpenAI-compatible API on localhost,
// and runs update cycles (updater.h): with long_poll_s > 0, once a cycle found nothing to do the
// next one waits at the registry for a change of the director document (so an assignment
// reaches the device within a second or two, at one request per long_poll_s while idle), and a
// failed or refused cycle is retried after poll_interval_s; without long polls, a cycle every
// poll_interval_s. A newly installed model takes over
// the API only after its health check passed, without the listener closing
// (runtime_server::Server::replace_model).
//
// Configuration: TOML (default /etc/pylon-agent/agent.toml; missing: defaults), every key
// overridable by the environment (PYLON_AGENT_<KEY>, e.g. PYLON_AGENT_SERVE_PORT):
//
//   state_dir = "/var/lib/pylon-agent"
//   [update]  poll_interval_s = 60, long_poll_s = 25 (0 to 55; 0: plain polls),
//             bandwidth_bytes_per_s = 0, health_timeout_ms = 10000,
//             max_activation_attempts = 2, ca_file = ""
//   [device]  region = "" (ISO 3166), commercial_use = false, accelerators = []
//   [serve]   host = "127.0.0.1", port = 8080, threads = 0, model_id = "device-model"
//
// systemd: with $NOTIFY_SOCKET it sends READY=1 once serving, STATUS= lines after each cycle,
// WATCHDOG=1 at half of $WATCHDOG_USEC and STOPPING=1; $MEMORY_PRESSURE_WATCH /
// $MEMORY_PRESSURE_WRITE reach the runtime's PSI controller through the environment.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "pylon/common/result.h"

namespace pylon::agent {

struct AgentConfig {
    std::filesystem::path state_dir = "/var/lib/pylon-agent";
    std::chrono::seconds poll_interval{60};
    std::chrono::seconds long_poll{25};
    std::uint64_t bandwidth_bytes_per_s = 0;
    std::chrono::milliseconds health_timeout{10'000};
    int max_activation_attempts = 2;
    std::string ca_file;
    std::string region;
    bool commercial_use = false;
    std::vector<std::string> accelerators;
    std::string serve_host = "127.0.0.1";
    std::uint16_t serve_port = 8080;
    int serve_threads = 0;
    std::string model_id = "device-model";
};

// Reads the file when it exists (`required`: it must), then the environment. Unknown keys and
// values out of range are errors naming the key.
// Every key load_agent_config reads ("state_dir", "update.poll_interval_s", ...); a file with
// any other key is refused.
[[nodiscard]] const std::set<std::string, std::less<>>& agent_config_keys();
[[nodiscard]] Result<AgentConfig> load_agent_config(const std::filesystem::path& file,
                                                    bool required);

// Runs until SIGTERM or SIGINT; returns the process exit code (0 after a clean stop).
int run_daemon(const AgentConfig& config);

}  // namespace pylon::agent
