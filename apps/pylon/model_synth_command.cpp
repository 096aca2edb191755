// pylon model synth: writes a random-weight llama GGUF of a given shape and type (benchmarks,
// tests, size and bandwidth experiments) with runtime::write_synth_model.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "cli_support.h"
#include "pylon/runtime/synth.h"
#include "registry_client.h"

namespace pylon::cli {
namespace {

struct SynthArgs {
    std::string shape;
    std::string type = "f32";
    std::string output_type;
    std::string embd_type;
    std::string vocab_from;
    std::uint64_t seed = 0;
    float stddev = 0.02f;
    bool force = false;
    std::string out;
};

runtime::GgmlType parse_type(const std::string& flag, const std::string& text) {
    const auto t = runtime::parse_type_name(text);
    using runtime::GgmlType;
    if (!t || (*t != GgmlType::F32 && *t != GgmlType::F16 && *t != GgmlType::Q8_0 &&
               *t != GgmlType::Q4_0)) {
        throw UsageError(flag + ": type '" + text + "' cannot be written (f32, f16, q8_0, q4_0)");
    }
    return *t;
}

CLI::App* model_group(CLI::App& app) {
    for (auto* sub : app.get_subcommands({})) {
        if (sub->get_name() == "model") return sub;
    }
    auto* m = app.add_subcommand("model", "Create and inspect model files");
    m->require_subcommand(1);
    return m;
}

void run_synth(const SynthArgs& a) {
    runtime::SynthOptions o;
    auto shape = runtime::parse_synth_shape(a.shape);
    if (!shape) throw UsageError(shape.error().what());
    o.shape = *shape;
    o.type = parse_type("--type", a.type);
    if (!a.output_type.empty()) o.output_type = parse_type("--output-type", a.output_type);
    if (!a.embd_type.empty()) o.embd_type = parse_type("--embd-type", a.embd_type);
    o.vocab_from = a.vocab_from;
    o.seed = a.seed;
    if (!(a.stddev > 0.0f && a.stddev <= 1000.0f)) {
        throw UsageError("--stddev must be in (0, 1000]");
    }
    o.stddev = a.stddev;
    o.force = a.force;
    if (!a.force && std::filesystem::exists(a.out)) {
        throw CommandError(a.out + " already exists (use --force to overwrite)");
    }
    const auto r = unwrap(runtime::write_synth_model(o, a.out), "writing " + a.out);
    char line[160];
    std::snprintf(line, sizeof line, "%.1fM params, %llu tensors, %.1f MiB, seed %llu, %.2f s",
                  static_cast<double>(r.n_params) / 1e6,
                  static_cast<unsigned long long>(r.n_tensors),
                  static_cast<double>(r.n_bytes) / (1024.0 * 1024.0),
                  static_cast<unsigned long long>(a.seed), r.seconds);
    std::cout << "wrote " << a.out << ": " << runtime::format_synth_shape(o.shape) << " "
              << runtime::type_name(o.type) << ", " << line << "\n";
}

}  // namespace

void add_model_synth_command(CLI::App& app) {
    auto args = std::make_shared<SynthArgs>();
    auto* s = model_group(app)->add_subcommand(
        "synth", "Write a llama model with random weights (for benchmarks and tests)");
    s->add_option("--shape", args->shape,
                  "synth110M, stories260K, or dim=N,ffn=N,layers=N,heads=N[,kv_heads=N],"
                  "vocab=N[,ctx=N][,tied] (a preset may be followed by overrides)")
        ->required();
    s->add_option("--type", args->type, "Type of the weight matrices: f32, f16, q8_0 or q4_0")
        ->capture_default_str();
    s->add_option("--output-type", args->output_type, "Type of output.weight (default: --type)");
    s->add_option("--embd-type", args->embd_type, "Type of token_embd.weight (default: --type)");
    s->add_option("--vocab-from", args->vocab_from,
                  "Copy the tokenizer of this GGUF (its token count must equal the shape's vocab)")
        ->check(CLI::ExistingFile);
    s->add_option("--seed", args->seed, "Random seed (same seed, same bytes)")
        ->capture_default_str();
    s->add_option("--stddev", args->stddev, "Standard deviation of the weights")
        ->capture_default_str();
    s->add_flag("--force", args->force,
                "Overwrite an existing file, and write models larger than 64 GiB");
    s->add_option("-o,--output", args->out, "GGUF file to write")->required();
    s->footer(
        "Weights are drawn from N(0, stddev^2), norms are 1. Matrices whose rows do not fill "
        "whole blocks of the type are stored as F16 (as llama-quantize does). Without "
        "--vocab-from a minimal byte-fallback vocabulary is generated (vocab >= 259).");
    s->callback([args] { run_synth(*args); });
}

}  // namespace pylon::cli
