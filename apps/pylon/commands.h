// Registration of the pylon CLI's command groups.
#pragma once

#include <CLI/CLI.hpp>

namespace pylon::cli {

void add_key_commands(CLI::App& app);       // key generate, key public
void add_model_commands(CLI::App& app);     // sign model, verify model
void add_attest_commands(CLI::App& app);    // attest provenance, verify attestation
void add_tuf_repo_commands(CLI::App& app);  // tuf-repo init, add-target, delegate, rotate, ...
void add_login_commands(CLI::App& app);     // login, token create/list/revoke, namespace
void add_rollout_commands(CLI::App& app);   // rollout …, rollback, license accept
void add_device_commands(CLI::App& app);    // fleet create/list/enrollment-token, devices list/show/assign
void add_models_commands(CLI::App& app);    // models list, show, create
void add_publish_commands(CLI::App& app);   // publish
void add_pull_commands(CLI::App& app);      // pull
void add_runtime_commands(CLI::App& app);   // run, tokenize, bench
void add_serve_command(CLI::App& app);      // serve (OpenAI-compatible HTTP API)
void add_model_synth_command(CLI::App& app);  // model synth

// `verify` is shared by model_commands and attest_commands: the first caller creates it.
CLI::App* verify_group(CLI::App& app);

}  // namespace pylon::cli
