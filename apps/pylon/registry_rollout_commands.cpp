// Rollouts (admin): pylon rollout create|list|status|pause|resume|abort, pylon rollback,
// pylon license accept.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <thread>

#include "commands.h"
#include "registry_client.h"
#include "registry_format.h"

namespace pylon::cli {
namespace {

struct CreateOptions {
    RegistryOptions reg;
    std::string release, fleet, waves = "10%,50%,100%", window;
    std::vector<std::string> selector;
    double success = 1.0, failure = 0.0;
    int soak = 0;
    bool no_rollback = false, paused = false;
};

std::string release_text(const nlohmann::json& r) {
    if (!r.is_object()) return "-";
    return field(r, "namespace") + "/" + field(r, "model") + "@" + field(r, "version");
}

std::string bar(std::int64_t done, std::int64_t failed, std::int64_t total, int width = 30) {
    if (total <= 0) return "[" + std::string(static_cast<std::size_t>(width), ' ') + "]";
    const auto ok = static_cast<int>(done * width / total);
    const auto bad = static_cast<int>(failed * width / total);
    std::string s = "[";
    s += std::string(static_cast<std::size_t>(ok), '#');
    s += std::string(static_cast<std::size_t>(std::min(bad, width - ok)), '!');
    s += std::string(static_cast<std::size_t>(std::max(0, width - ok - bad)), '.');
    return s + "]";
}

bool terminal(const std::string& state) {
    return state == "completed" || state == "aborted" || state == "rolled_back";
}

void print_status(const nlohmann::json& r) {
    const auto devices = r.value("devices", std::int64_t{0});
    const auto succeeded = r.value("succeeded", std::int64_t{0});
    const auto failed = r.value("failed", std::int64_t{0});
    std::printf("rollout %s: %s to fleet %s — %s\n", field(r, "id").c_str(),
                release_text(r["release"]).c_str(), field(r, "fleet").c_str(),
                field(r, "state").c_str());
    if (!field(r, "reason").empty()) std::printf("  reason: %s\n", field(r, "reason").c_str());
    std::printf("  %s %lld/%lld succeeded, %lld failed, %lld incompatible\n",
                bar(succeeded, failed, devices).c_str(), static_cast<long long>(succeeded),
                static_cast<long long>(devices), static_cast<long long>(failed),
                static_cast<long long>(r.value("incompatible", std::int64_t{0})));
    std::printf("  %-5s %-10s %8s %8s %8s %9s %7s %11s  %s\n", "WAVE", "STATE", "DEVICES",
                "PENDING", "ASSIGNED", "SUCCEEDED", "FAILED", "ROLLED_BACK", "PROGRESS");
    for (const auto& w : r.value("waves", nlohmann::json::array())) {
        const auto n = w.value("devices", std::int64_t{0});
        std::printf(
            "  %-5lld %-10s %8lld %8lld %8lld %9lld %7lld %11lld  %s\n",
            static_cast<long long>(w.value("position", 0)), field(w, "state").c_str(),
            static_cast<long long>(n), static_cast<long long>(w.value("pending", 0)),
            static_cast<long long>(w.value("assigned", 0)),
            static_cast<long long>(w.value("succeeded", 0)),
            static_cast<long long>(w.value("failed", 0)),
            static_cast<long long>(w.value("rolled_back", 0)),
            bar(w.value("succeeded", std::int64_t{0}), w.value("failed", std::int64_t{0}), n, 20)
                .c_str());
    }
}

nlohmann::json parse_waves(const CreateOptions& o) {
    nlohmann::json waves = nlohmann::json::array();
    std::size_t start = 0;
    while (start <= o.waves.size()) {
        auto comma = o.waves.find(',', start);
        if (comma == std::string::npos) comma = o.waves.size();
        const std::string item = o.waves.substr(start, comma - start);
        start = comma + 1;
        if (item.empty()) throw UsageError("--waves: an empty wave");
        nlohmann::json w = {{"success_threshold", o.success},
                            {"failure_threshold", o.failure},
                            {"soak_seconds", o.soak}};
        try {
            std::size_t used = 0;
            const int n = std::stoi(item, &used);
            if (used == item.size() - 1 && item.back() == '%') {
                w["percent"] = n;
            } else if (used == item.size()) {
                w["count"] = n;
            } else {
                throw std::invalid_argument(item);
            }
        } catch (const std::exception&) {
            throw UsageError("--waves: each wave is N% or a device count: " + item);
        }
        waves.push_back(w);
        if (comma == o.waves.size()) break;
    }
    return waves;
}

}  // namespace

void add_rollout_commands(CLI::App& app) {
    auto* rollout = app.add_subcommand("rollout", "Roll releases out to fleets in waves (admin)");
    rollout->require_subcommand(1);

    auto c = std::make_shared<CreateOptions>();
    auto* create = rollout->add_subcommand(
        "create",
        "Start a rollout: the first wave is the canary; each wave advances at its "
        "success threshold (after the soak) and aborts past its failure threshold");
    create->add_option("release", c->release, "NS/MODEL@VERSION (published)")->required();
    create->add_option("--fleet", c->fleet, "Fleet")->required();
    create->add_option("--selector", c->selector, "Only devices labelled KEY=VALUE (repeatable)");
    create->add_option("--waves", c->waves,
                       "Comma-separated waves, each N% of the devices or a count; the last takes "
                       "the rest (default 10%,50%,100%)");
    create
        ->add_option("--success-threshold", c->success,
                     "Share of a wave's devices that must succeed to advance (default 1)")
        ->check(CLI::Range(0.0, 1.0));
    create
        ->add_option("--failure-threshold", c->failure,
                     "Abort when more than this share of a wave fails (default 0: any failure)")
        ->check(CLI::Range(0.0, 1.0));
    create->add_option("--soak", c->soak, "Seconds to wait after a wave succeeds")
        ->check(CLI::Range(0, 30 * 86400));
    create->add_option("--window", c->window, "Start waves only within HH:MM-HH:MM (UTC)");
    create->add_flag("--no-auto-rollback", c->no_rollback,
                     "On abort, leave devices on the new release");
    create->add_flag("--paused", c->paused, "Create it pending; `pylon rollout resume` starts it");
    c->reg.add_to(create);
    create->callback([c] {
        const ModelRef ref = parse_model_ref(c->release, true);
        nlohmann::json selector = nlohmann::json::object();
        for (const auto& s : c->selector) {
            const auto eq = s.find('=');
            if (eq == std::string::npos || eq == 0) {
                throw UsageError("--selector is KEY=VALUE: " + s);
            }
            selector[s.substr(0, eq)] = s.substr(eq + 1);
        }
        nlohmann::json body = {{"model", ref.ns + "/" + ref.model},
                               {"version", ref.version},
                               {"fleet", c->fleet},
                               {"selector", selector},
                               {"waves", parse_waves(*c)},
                               {"auto_rollback", !c->no_rollback},
                               {"start", !c->paused}};
        if (!c->window.empty()) body["maintenance_window"] = c->window;
        RegistryClient client(c->reg.resolve());
        const auto r = client.call(net::Method::post, "/v1/rollouts", body);
        std::cout << "created rollout " << field(r, "id") << " (" << field(r, "state")
                  << "): " << r.value("devices", 0) << " devices in " << r["waves"].size()
                  << " waves, " << r.value("incompatible", 0) << " incompatible\n";
    });

    auto l = std::make_shared<std::tuple<RegistryOptions, std::string, std::string>>();
    auto* list = rollout->add_subcommand("list", "List rollouts, newest first");
    list->add_option("--fleet", std::get<1>(*l), "Only this fleet");
    list->add_option("--state", std::get<2>(*l), "Only this state (or \"active\")");
    std::get<0>(*l).add_to(list);
    list->callback([l] {
        RegistryClient client(std::get<0>(*l).resolve());
        std::string q = "/v1/rollouts?limit=100";
        if (!std::get<1>(*l).empty()) q += "&fleet=" + url_encode(std::get<1>(*l));
        if (!std::get<2>(*l).empty()) q += "&state=" + url_encode(std::get<2>(*l));
        std::printf("%-6s %-16s %-30s %-12s %8s %9s %7s %s\n", "ID", "FLEET", "RELEASE", "STATE",
                    "DEVICES", "SUCCEEDED", "FAILED", "CREATED");
        for (const auto& r :
             client.call(net::Method::get, q).value("items", nlohmann::json::array())) {
            std::printf("%-6s %-16s %-30s %-12s %8lld %9lld %7lld %s\n", field(r, "id").c_str(),
                        field(r, "fleet").c_str(), release_text(r["release"]).c_str(),
                        field(r, "state").c_str(), static_cast<long long>(r.value("devices", 0)),
                        static_cast<long long>(r.value("succeeded", 0)),
                        static_cast<long long>(r.value("failed", 0)),
                        field(r, "created_at").c_str());
        }
    });

    struct StatusOptions {
        RegistryOptions reg;
        std::string id;
        bool watch = false, json = false;
        double interval = 1.0;
    };
    auto st = std::make_shared<StatusOptions>();
    auto* status = rollout->add_subcommand("status", "A rollout's state and per-wave counts");
    status->add_option("id", st->id, "Rollout id")->required();
    status->add_flag("--watch", st->watch, "Refresh until the rollout ends");
    status->add_option("--interval", st->interval, "Seconds between refreshes (--watch)")
        ->check(CLI::Range(0.1, 3600.0));
    status->add_flag("--json", st->json, "Print the rollout as JSON");
    st->reg.add_to(status);
    status->callback([st] {
        RegistryClient client(st->reg.resolve());
        const bool tty = ::isatty(STDOUT_FILENO) != 0;
        while (true) {
            const auto r = client.call(net::Method::get, "/v1/rollouts/" + url_encode(st->id));
            if (st->json) {
                std::cout << r.dump(2) << "\n";
            } else {
                if (st->watch && tty) std::printf("\033[H\033[2J");
                print_status(r);
            }
            std::fflush(stdout);
            if (!st->watch || terminal(field(r, "state"))) break;
            std::this_thread::sleep_for(
                std::chrono::milliseconds(static_cast<int>(st->interval * 1000)));
        }
    });

    for (const std::string action : {"pause", "resume", "abort"}) {
        struct ActionOptions {
            RegistryOptions reg;
            std::string id, reason;
            bool no_rollback = false;
        };
        auto a = std::make_shared<ActionOptions>();
        auto* cmd = rollout->add_subcommand(
            action, action == "pause"    ? "Stop starting new waves"
                    : action == "resume" ? "Start a pending rollout or continue a paused one"
                                         : "End a rollout; devices it assigned go back to their "
                                           "previous release unless --no-rollback");
        cmd->add_option("id", a->id, "Rollout id")->required();
        if (action != "resume") cmd->add_option("--reason", a->reason, "Why (recorded)");
        if (action == "abort") {
            cmd->add_flag("--no-rollback", a->no_rollback, "Leave devices where they are");
        }
        a->reg.add_to(cmd);
        cmd->callback([a, action] {
            RegistryClient client(a->reg.resolve());
            nlohmann::json body = nlohmann::json::object();
            if (!a->reason.empty()) body["reason"] = a->reason;
            if (action == "abort" && a->no_rollback) body["rollback"] = false;
            const auto r = client.call(net::Method::post,
                                       "/v1/rollouts/" + url_encode(a->id) + "/" + action, body);
            std::cout << "rollout " << field(r, "id") << " is " << field(r, "state") << "\n";
        });
    }

    auto rb = std::make_shared<std::tuple<RegistryOptions, std::string, std::string>>();
    auto* rollback = app.add_subcommand(
        "rollback",
        "Roll a fleet back: its latest rollout is ended and undone (or, with --to, "
        "every device of it goes to that version)");
    rollback->add_option("--fleet", std::get<1>(*rb), "Fleet")->required();
    rollback->add_option("--to", std::get<2>(*rb), "VERSION of the same model");
    std::get<0>(*rb).add_to(rollback);
    rollback->callback([rb] {
        RegistryClient client(std::get<0>(*rb).resolve());
        nlohmann::json body = nlohmann::json::object();
        if (!std::get<2>(*rb).empty()) body["to"] = std::get<2>(*rb);
        const auto r = client.call(
            net::Method::post, "/v1/fleets/" + url_encode(std::get<1>(*rb)) + "/rollback", body);
        std::cout << "fleet " << std::get<1>(*rb) << " rolled back"
                  << (std::get<2>(*rb).empty() ? "" : " to " + std::get<2>(*rb)) << ": "
                  << r.value("devices", 0) << " devices reassigned (rollout " << field(r, "rollout")
                  << ")\n";
    });

    auto* license = app.add_subcommand("license", "Licence acceptances (admin)");
    license->require_subcommand(1);
    auto la = std::make_shared<std::pair<RegistryOptions, std::string>>();
    auto* accept = license->add_subcommand(
        "accept", "Accept a release's licence for this organisation (recorded: who, when, which)");
    accept->add_option("release", la->second, "NS/MODEL@VERSION")->required();
    la->first.add_to(accept);
    accept->callback([la] {
        const ModelRef ref = parse_model_ref(la->second, true);
        RegistryClient client(la->first.resolve());
        const auto a = client.call(
            net::Method::post, "/v1/license-acceptances",
            nlohmann::json{{"model", ref.ns + "/" + ref.model}, {"version", ref.version}});
        std::cout << "accepted the licence of " << la->second << " ("
                  << (field(a, "spdx").empty() ? "no SPDX expression" : field(a, "spdx"))
                  << ", terms sha256:" << field(a, "license_sha256").substr(0, 16) << "…) as "
                  << field(a, "accepted_by") << " at " << field(a, "accepted_at") << "\n";
    });
}

}  // namespace pylon::cli
