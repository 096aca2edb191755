// pylon-agent — the device daemon. So far: `probe` prints the hardware probe (the vocabulary of
// build targets), `enroll` enrols the device with a registry, `check` fetches and verifies its
// director document, `status` shows the identity, update journal and slots. The update loop
// arrives with the rest of the agent issue.
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "pylon/agent/daemon.h"
#include "pylon/agent/director_client.h"
#include "pylon/agent/enroll.h"
#include "pylon/agent/hardware.h"
#include "pylon/agent/journal.h"
#include "pylon/agent/updater.h"
#include "pylon/common/config.h"
#include "pylon/common/file_io.h"
#include "pylon/signing/tuf/updater.h"

namespace {

int fail(const pylon::Error& e) {
    std::fprintf(stderr, "pylon-agent: error: %s\n", e.message().c_str());
    return 1;
}

int cmd_probe(const std::vector<std::string>& accelerators) {
    auto hw = pylon::agent::probe_hardware(accelerators);
    if (!hw) return fail(hw.error());
    std::printf("%s\n", hw->to_json().dump(2).c_str());
    return 0;
}

struct EnrollArgs {
    std::string registry, token_file, name, ca_file, tuf_root, director_key;
    std::vector<std::string> accelerators;
};

int cmd_enroll(const std::string& state_dir, const EnrollArgs& a) {
    using namespace pylon::agent;
    auto token = pylon::read_file(a.token_file, 4096);
    if (!token) return fail(token.error());
    std::string t = *token;
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
    EnrollOptions o;
    o.registry = a.registry;
    o.token = pylon::Secret(std::move(t));
    o.name = a.name;
    o.ca_file = a.ca_file;
    o.tuf_root_file = a.tuf_root;
    o.director_key_file = a.director_key;
    o.accelerators = a.accelerators;
    auto id = enroll(state_dir, o);
    if (!id) return fail(id.error());
    std::printf("enrolled as %s/%s (device %lld) with %s; identity in %s\n", id->fleet.c_str(),
                id->name.c_str(), static_cast<long long>(id->device_id), id->registry.c_str(),
                IdentityStore(state_dir).dir().c_str());
    return 0;
}

int cmd_check(const std::string& state_dir, const std::string& ca_file) {
    using namespace pylon::agent;
    auto journal = JournalStore(state_dir).load();
    if (!journal) return fail(journal.error());
    auto doc = fetch_director(state_dir, journal->director_version, pylon::signing::tuf::libc_now(),
                              ca_file);
    if (!doc) return fail(doc.error());
    std::printf("director document version %lld, valid until %s\n",
                static_cast<long long>(doc->version),
                pylon::signing::tuf::format_time(doc->expires).c_str());
    if (!doc->target_path) {
        std::printf("install: nothing (%s)\n", doc->note.c_str());
        return 0;
    }
    std::printf("install: %s (%llu bytes, sha256 %s)\n", doc->target_path->c_str(),
                static_cast<unsigned long long>(doc->target.length),
                doc->target.hashes.count("sha256") ? doc->target.hashes.at("sha256").c_str() : "-");
    return 0;
}

struct UpdateArgs {
    std::string ca_file, region;
    std::uint64_t bandwidth = 0;
    int health_ms = 10000;
    std::vector<std::string> accelerators;
};

int cmd_update_once(const std::string& state_dir, const UpdateArgs& a) {
    using namespace pylon::agent;
    UpdaterOptions o;
    o.state_dir = state_dir;
    o.ca_file = a.ca_file;
    o.region = a.region;
    o.bandwidth_bytes_per_s = a.bandwidth;
    o.accelerators = a.accelerators;
    RuntimeHealthCheck health(std::chrono::milliseconds(a.health_ms));
    Updater updater(o, health);
    auto r = updater.run_once();
    if (!r) return fail(r.error());
    std::printf("%s: %s\n", std::string(to_string(r->kind)).c_str(), r->message.c_str());
    if (!r->timings.empty()) {
        std::string t = "timings:";
        for (const auto& [phase, seconds] : r->timings) {
            t += " " + phase + "=" + std::to_string(seconds);
        }
        std::fprintf(stderr, "%s\n", t.c_str());
    }
    return r->kind == CycleOutcome::Kind::installed || r->kind == CycleOutcome::Kind::nothing ? 0
                                                                                              : 3;
}

// After load_agent_config accepted it: which keys the file and environment leave at defaults.
int cmd_check_config(const std::string& file) {
    auto cfg = std::filesystem::exists(file)
                   ? pylon::Config::load_file(file, "PYLON_AGENT_")
                   : pylon::Result<pylon::Config>(pylon::Config::empty("PYLON_AGENT_"));
    if (!cfg) return fail(cfg.error());
    std::string defaults;
    for (const auto& key : pylon::agent::agent_config_keys()) {
        if (!cfg->has(key)) defaults += (defaults.empty() ? "" : ", ") + key;
    }
    std::printf("pylon-agent: configuration OK\nat their defaults: %s\n",
                defaults.empty() ? "(none)" : defaults.c_str());
    return 0;
}

int cmd_status(const std::string& state_dir, bool json) {
    using namespace pylon::agent;
    auto identity = IdentityStore(state_dir).load();
    if (!identity) return fail(identity.error());
    auto journal = JournalStore(state_dir).load();
    if (!journal) return fail(journal.error());
    Slots slots(state_dir);
    auto active = slots.active();
    if (!active) return fail(active.error());
    Json out = {{"state", to_string(journal->state)},
                {"active_slot", *active ? Json(**active) : Json()},
                {"director_version", journal->director_version},
                {"last_error", journal->error}};
    for (const char* s : {"a", "b"}) {
        auto t = slots.installed(s);
        if (!t) return fail(t.error());
        out["slots"][s] = *t ? (*t)->to_json() : Json();
    }
    if (journal->target) out["update_target"] = journal->target->path;
    // Informational files the daemon writes: absent or unreadable ones are left out.
    auto info = [&](const char* file) -> std::optional<Json> {
        auto text = pylon::read_file(std::filesystem::path(state_dir) / file, 64 * 1024);
        if (!text) return std::nullopt;
        Json j = Json::parse(*text, nullptr, false);
        return j.is_object() ? std::optional<Json>(std::move(j)) : std::nullopt;
    };
    const auto last_check = info("last_check.json");
    if (last_check) out["last_check"] = *last_check;
    const auto serving = info("serving.json");
    if (serving) out["serving"] = *serving;
    if (*identity) {
        out["identity"] = {{"registry", (*identity)->registry},
                           {"device_id", (*identity)->device_id},
                           {"fleet", (*identity)->fleet},
                           {"name", (*identity)->name}};
    }
    if (json) {
        std::printf("%s\n", out.dump(2).c_str());
        return 0;
    }
    if (*identity) {
        std::printf("device:       %s/%s (id %lld) at %s\n", (*identity)->fleet.c_str(),
                    (*identity)->name.c_str(), static_cast<long long>((*identity)->device_id),
                    (*identity)->registry.c_str());
    } else {
        std::printf("device:       not enrolled\n");
    }
    std::printf("state:        %s\n", std::string(to_string(journal->state)).c_str());
    std::printf("active slot:  %s\n", *active ? (*active)->c_str() : "(none)");
    for (const char* s : {"a", "b"}) {
        const Json& t = out["slots"][s];
        std::printf("slot %s:       %s\n", s,
                    t.is_null() ? "(empty)" : t["path"].get<std::string>().c_str());
    }
    if (journal->target) std::printf("update:       %s\n", journal->target->path.c_str());
    if (serving) {
        std::printf("serving:      %s (slot %s, since %s)\n",
                    serving->value("target", serving->value("file", "")).c_str(),
                    serving->value("slot", "?").c_str(), serving->value("since", "").c_str());
    }
    if (last_check) {
        std::printf("last check:   %s, %s: %s\n", last_check->value("at", "").c_str(),
                    last_check->value("outcome", "").c_str(),
                    last_check->value("message", "").c_str());
    }
    if (!journal->error.empty()) std::printf("last error:   %s\n", journal->error.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app("pylon-agent: the Pylon device agent");
    app.set_version_flag("--version", "pylon-agent " PYLON_VERSION);
    app.require_subcommand(1);
    std::vector<std::string> accelerators;
    auto* probe =
        app.add_subcommand("probe", "Print this device's hardware, as build targets name it");
    probe->add_option("--accelerator", accelerators,
                      "An accelerator the probe cannot see (e.g. cuda-sm87); repeatable");
    std::string state_dir = "/var/lib/pylon-agent";
    bool json = false;
    auto* status = app.add_subcommand("status", "Show the update state and the slots");
    status->add_option("--state-dir", state_dir, "The agent's state directory")
        ->capture_default_str();
    status->add_flag("--json", json, "As JSON");
    EnrollArgs ea;
    auto* enroll = app.add_subcommand("enroll", "Enrol this device with a registry");
    enroll->add_option("--registry", ea.registry, "Registry URL")->required();
    enroll->add_option("--token-file", ea.token_file, "File holding the fleet's enrolment token")
        ->required()
        ->check(CLI::ExistingFile);
    enroll->add_option("--name", ea.name, "Device name (default: the host name)");
    enroll->add_option("--ca-file", ea.ca_file, "PEM CA certificates to trust for HTTPS")
        ->check(CLI::ExistingFile);
    enroll
        ->add_option("--tuf-root", ea.tuf_root,
                     "Trust this root.json (obtained out of band) instead of the registry's")
        ->check(CLI::ExistingFile);
    enroll
        ->add_option("--director-key", ea.director_key,
                     "The registry's director public key (PEM, obtained out of band) to require")
        ->check(CLI::ExistingFile);
    enroll->add_option("--accelerator", ea.accelerators,
                       "An accelerator the probe cannot see (e.g. cuda-sm87); repeatable");
    enroll->add_option("--state-dir", state_dir, "The agent's state directory")
        ->capture_default_str();
    std::string ca_file;
    auto* check = app.add_subcommand(
        "check", "Fetch and verify this device's director document; print what it names");
    check->add_option("--state-dir", state_dir, "The agent's state directory")
        ->capture_default_str();
    check->add_option("--ca-file", ca_file, "PEM CA certificates to trust for HTTPS")
        ->check(CLI::ExistingFile);
    std::string config_file = "/etc/pylon-agent/agent.toml";
    bool config_given = false;
    auto* run = app.add_subcommand(
        "run", "The daemon: serve the active model on localhost and apply updates");
    run->add_option("--config", config_file, "TOML configuration (PYLON_AGENT_* overrides)")
        ->capture_default_str()
        ->each([&](const std::string&) { config_given = true; });
    bool check_config = false;
    run->add_flag("--check-config", check_config,
                  "Check the configuration (file and PYLON_AGENT_* variables), say which keys are "
                  "at their defaults, and exit");
    UpdateArgs ua;
    auto* once = app.add_subcommand(
        "update-once", "One update cycle: director, TUF, download, verify, stage, activate");
    once->add_option("--state-dir", state_dir, "The agent's state directory")
        ->capture_default_str();
    once->add_option("--ca-file", ua.ca_file, "PEM CA certificates to trust for HTTPS")
        ->check(CLI::ExistingFile);
    once->add_option("--region", ua.region, "ISO 3166 code of where the device stands");
    once->add_option("--bandwidth", ua.bandwidth, "Download cap in bytes per second (0: none)");
    once->add_option("--health-timeout-ms", ua.health_ms, "Health check time bound")
        ->check(CLI::Range(100, 600000));
    once->add_option("--accelerator", ua.accelerators, "A declared accelerator; repeatable");
    CLI11_PARSE(app, argc, argv);
    if (*once) return cmd_update_once(state_dir, ua);
    if (*run) {
        auto cfg = pylon::agent::load_agent_config(config_file, config_given);
        if (!cfg) return fail(cfg.error());
        if (check_config) return cmd_check_config(config_file);
        return pylon::agent::run_daemon(*cfg);
    }
    if (*probe) return cmd_probe(accelerators);
    if (*enroll) return cmd_enroll(state_dir, ea);
    if (*check) return cmd_check(state_dir, ca_file);
    return cmd_status(state_dir, json);
}
