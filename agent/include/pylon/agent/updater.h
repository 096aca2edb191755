// The agent's update loop (issue 7, "Update loop"): one cycle fetches and verifies the director
// document, confirms its target through the image repository (TUF), checks hardware and licence,
// downloads with resume and an optional bandwidth cap, verifies, stages into the inactive slot,
// activates after a health check — or rolls back, keeping the previous slot — and reports every
// step (downloading, verifying, staged, activating, healthy or rolled back, refusals) signed
// with the device key; a report that cannot be delivered does not stop the update. The journal
// (journal.h) is saved before every transition, so recover() after a restart resumes or rolls
// back whatever was in progress. Both hold the state directory's lock (one agent per directory)
// and first remove the temporary files of atomic writes a crash interrupted.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pylon/agent/journal.h"
#include "pylon/common/result.h"
#include "pylon/common/unique_fd.h"
#include "pylon/signing/tuf/metadata.h"

namespace pylon::agent {

class RegistryHttp;

// Whether a staged model is fit to serve. RuntimeHealthCheck loads it in the bundled runtime and
// decodes a short deterministic prompt within a time bound.
class HealthCheck {
public:
    virtual ~HealthCheck() = default;
    [[nodiscard]] virtual Result<void> check(const std::filesystem::path& model_file) = 0;
};

class RuntimeHealthCheck final : public HealthCheck {
public:
    explicit RuntimeHealthCheck(std::chrono::milliseconds bound = std::chrono::seconds(10),
                                int threads = 1)
        : bound_(bound), threads_(threads) {}
    [[nodiscard]] Result<void> check(const std::filesystem::path& model_file) override;

private:
    std::chrono::milliseconds bound_;
    int threads_;
};

struct UpdaterOptions {
    std::filesystem::path state_dir;
    std::string ca_file;
    std::uint64_t bandwidth_bytes_per_s = 0;  // 0: no cap
    std::uint64_t download_chunk = 8u << 20;  // bytes per ranged request (resume granularity)
    int max_activation_attempts = 2;
    std::string region;                  // ISO 3166 code of where the device stands ("": unknown)
    std::optional<bool> commercial_use;  // whether the device is used commercially
    std::vector<std::string> accelerators;  // declared ones (see hardware.h)
    // Long poll: once a cycle found nothing to do, the next one asks for the director document
    // with the version it holds and lets the registry wait up to this long for a change
    // (If-None-Match + "Prefer: wait=N"; 0: plain polls).
    std::chrono::seconds long_poll{0};
    std::function<signing::tuf::Time()> clock;  // empty: libc time
};

struct CycleOutcome {
    enum class Kind {
        nothing,      // no new target (or the active one again)
        installed,    // a new build is active
        refused,      // the director document or its target was refused (nothing changed)
        rolled_back,  // the update failed; the previous slot stays active
    };
    CycleOutcome() = default;
    CycleOutcome(Kind k, std::string m, std::vector<std::pair<std::string, double>> t = {})
        : kind(k), message(std::move(m)), timings(std::move(t)) {}

    Kind kind = Kind::nothing;
    std::string message;
    // Seconds per phase of this cycle, in order: "download", "verify_stage", "health",
    // "activate" (those that ran).
    std::vector<std::pair<std::string, double>> timings;
    // The director document was asked for as a long poll (the registry may have waited).
    bool long_polled = false;
};
std::string_view to_string(CycleOutcome::Kind k);

class Updater {
public:
    Updater(UpdaterOptions options, HealthCheck& health);
    ~Updater();
    // After a restart: finishes or rolls back an update the journal shows in progress.
    [[nodiscard]] Result<CycleOutcome> recover();
    // One cycle (recover() first when an update is in progress); its time and outcome are
    // recorded in last_check.json for `pylon-agent status`.
    [[nodiscard]] Result<CycleOutcome> run_once();
    // The active slot's model file, or nullopt before the first install.
    [[nodiscard]] Result<std::optional<std::filesystem::path>> active_model() const;
    // Shutting down (any thread): ends the registry call in flight (a long poll, a download:
    // the journal resumes it next time) and every later one. The updater is done afterwards.
    void stop();

private:
    struct Ctx;
    // The state directory's lock (agent.lock, flock): one agent per state directory.
    struct Lock {
        UniqueFd fd;
    };
    [[nodiscard]] Result<Lock> lock();
    [[nodiscard]] Result<CycleOutcome> recover_locked();
    [[nodiscard]] Result<CycleOutcome> cycle();  // run_once under the lock
    [[nodiscard]] Result<std::unique_ptr<Ctx>> open();
    [[nodiscard]] Result<CycleOutcome> install(Ctx& c, Journal& j);
    [[nodiscard]] Result<CycleOutcome> fail(Ctx& c, Journal& j, const std::string& why);
    [[nodiscard]] Result<void> download(Ctx& c, const TargetRef& t,
                                        const std::filesystem::path& part);
    [[nodiscard]] Result<void> report(Ctx& c, const Journal& j, const std::string& error);
    signing::tuf::Time now() const;

    UpdaterOptions o_;
    HealthCheck& health_;
    JournalStore journal_;
    Slots slots_;
    // The registry connection, kept between cycles (keep-alive; one TLS handshake).
    std::mutex http_mutex_;
    std::unique_ptr<RegistryHttp> http_;
    std::string http_url_;
    bool stopped_ = false;
    // The director version of the last cycle that found nothing to do (long poll from there).
    std::optional<std::int64_t> settled_;
    bool long_polled_ = false;  // this cycle asked for a long poll
};

}  // namespace pylon::agent
