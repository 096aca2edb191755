// pylon-agent — the device daemon. This first cut has the local parts: `probe` prints the
// hardware probe (the vocabulary of build targets), `status` the update journal and slots of a
// state directory. Enrolment and the update loop arrive with the rest of the agent issue.
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "pylon/agent/hardware.h"
#include "pylon/agent/journal.h"

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

int cmd_status(const std::string& state_dir, bool json) {
    using namespace pylon::agent;
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
    if (json) {
        std::printf("%s\n", out.dump(2).c_str());
        return 0;
    }
    std::printf("state:        %s\n", std::string(to_string(journal->state)).c_str());
    std::printf("active slot:  %s\n", *active ? (*active)->c_str() : "(none)");
    for (const char* s : {"a", "b"}) {
        const Json& t = out["slots"][s];
        std::printf("slot %s:       %s\n", s,
                    t.is_null() ? "(empty)" : t["path"].get<std::string>().c_str());
    }
    if (journal->target) std::printf("update:       %s\n", journal->target->path.c_str());
    if (!journal->error.empty()) std::printf("last error:   %s\n", journal->error.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app("pylon-agent: the Pylon device agent");
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
    CLI11_PARSE(app, argc, argv);
    if (*probe) return cmd_probe(accelerators);
    return cmd_status(state_dir, json);
}
