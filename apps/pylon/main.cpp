// pylon — command-line entry point. Wires subcommands; each lives in its *_commands.cpp.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli_support.h"
#include "commands.h"
#include "registry_client.h"

int main(int argc, char** argv) {
    CLI::App app{"Pylon: signed model registry and edge deployment orchestrator"};
    app.name("pylon");
    app.require_subcommand(1);
    app.set_version_flag("--version", "pylon " PYLON_VERSION);
    app.failure_message([](const CLI::App* a, const CLI::Error& e) {
        // "A subcommand is required" hides the real mistake when a word was not recognised.
        const auto extra = a->remaining(true);
        if (!extra.empty() && !extra.front().empty() && extra.front()[0] != '-') {
            return "pylon: error: unknown command '" + extra.front() + "' (see --help)\n";
        }
        return "pylon: error: " + std::string(e.what()) + " (see --help)\n";
    });

    pylon::cli::add_key_commands(app);
    pylon::cli::add_model_commands(app);
    pylon::cli::add_attest_commands(app);
    pylon::cli::add_tuf_repo_commands(app);
    pylon::cli::add_login_commands(app);
    pylon::cli::add_device_commands(app);
    pylon::cli::add_rollout_commands(app);
    pylon::cli::add_models_commands(app);
    pylon::cli::add_publish_commands(app);
    pylon::cli::add_pull_commands(app);
    pylon::cli::add_runtime_commands(app);
    pylon::cli::add_serve_command(app);
    pylon::cli::add_model_synth_command(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help and --version exit 0; any other usage error exits 2.
        return app.exit(e) == 0 ? 0 : 2;
    } catch (const pylon::cli::UsageError& e) {
        std::cerr << "pylon: error: " << e.what() << " (see --help)\n";
        return 2;
    } catch (const pylon::cli::CommandError& e) {
        std::cerr << "pylon: error: " << e.what() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "pylon: error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
