// pylon model synth: writes a random-weight llama GGUF of a given shape and type (benchmarks,
// tests, size and bandwidth experiments) with runtime::write_synth_model; pylon model
// synth-pair: a synthetic draft/target pair for speculative decoding (runtime::write_synth_pair).
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

struct PairArgs {
    std::string shape = "pairDraft";
    std::uint32_t extra_layers = runtime::SynthPairOptions{}.extra_layers;
    float divergence = runtime::SynthPairOptions::kDefaultDivergence;
    float logit_stddev = runtime::SynthPairOptions{}.logit_stddev;
    std::string type = "q8_0";
    std::string vocab_from;
    std::uint64_t seed = 0;
    float stddev = 0.02f;
    bool force = false;
    std::string target;
    std::string draft;
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

std::string mib(std::uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
    return buf;
}

void run_synth_pair(const PairArgs& a) {
    runtime::SynthPairOptions o;
    auto shape = runtime::parse_synth_shape(a.shape);
    if (!shape) throw UsageError("--shape: " + std::string(shape.error().what()));
    o.draft_shape = *shape;
    o.extra_layers = a.extra_layers;
    o.divergence = a.divergence;
    o.logit_stddev = a.logit_stddev;
    o.type = parse_type("--type", a.type);
    o.vocab_from = a.vocab_from;
    o.seed = a.seed;
    o.stddev = a.stddev;
    o.force = a.force;
    if (!a.force) {
        for (const std::string* path : {&a.target, &a.draft}) {
            if (std::filesystem::exists(*path)) {
                throw CommandError(*path + " already exists (use --force to overwrite)");
            }
        }
    }
    const auto r =
        unwrap(runtime::write_synth_pair(o, a.target, a.draft), "writing the synthetic pair");
    const auto line = [](const runtime::SynthReport& m) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "%.1fM params, ", static_cast<double>(m.n_params) / 1e6);
        return buf + mib(m.n_bytes);
    };
    char tail[160];
    std::snprintf(tail, sizeof tail,
                  "target/draft bytes %.2fx; divergence %g, logit stddev %g, seed %llu, %.2f s",
                  r.byte_ratio, static_cast<double>(o.divergence),
                  static_cast<double>(o.logit_stddev), static_cast<unsigned long long>(o.seed),
                  r.target.seconds + r.draft.seconds);
    std::cout << "wrote draft " << a.draft << ": " << runtime::format_synth_shape(o.draft_shape)
              << " " << runtime::type_name(o.type) << ", " << line(r.draft) << "\n"
              << "wrote target " << a.target << ": "
              << runtime::format_synth_shape(o.target_shape()) << " " << runtime::type_name(o.type)
              << ", " << line(r.target) << "\n"
              << tail << "\n";
}

void add_synth_pair(CLI::App& model) {
    auto args = std::make_shared<PairArgs>();
    auto* s = model.add_subcommand(
        "synth-pair",
        "Write a synthetic draft/target pair for speculative decoding (random weights)");
    s->add_option("--shape", args->shape,
                  "Shape of the draft (as for synth); the target adds --extra-layers to it")
        ->capture_default_str();
    s->add_option("--extra-layers", args->extra_layers, "Layers the target has beyond the draft")
        ->capture_default_str()
        ->check(CLI::Range(1u, 1023u));
    s->add_option("--divergence", args->divergence,
                  "Scale of the extra layers' attn_output and ffn_down, in [0, 100]: 0 makes "
                  "the target predict exactly what the draft does, larger values less so")
        ->capture_default_str()
        ->check(CLI::Range(0.0f, 100.0f));
    s->add_option("--logit-stddev", args->logit_stddev,
                  "Spread of the output head's logits (larger: more confident predictions)")
        ->capture_default_str()
        ->check(CLI::Range(1e-6f, 1000.0f));
    s->add_option("--type", args->type, "Type of the weight matrices: f32, f16, q8_0 or q4_0")
        ->capture_default_str();
    s->add_option("--vocab-from", args->vocab_from,
                  "Copy the tokenizer of this GGUF (its token count must equal the shape's vocab)")
        ->check(CLI::ExistingFile);
    s->add_option("--seed", args->seed, "Random seed (same options, same bytes)")
        ->capture_default_str();
    s->add_option("--stddev", args->stddev, "Standard deviation of the other weights")
        ->capture_default_str();
    s->add_flag("--force", args->force,
                "Overwrite existing files, and write pairs larger than 64 GiB");
    s->add_option("--target", args->target, "GGUF file to write the target to")->required();
    s->add_option("--draft", args->draft, "GGUF file to write the draft to")->required();
    s->footer(
        "SYNTHETIC: neither model is trained. The target is the draft (same embedding, output "
        "head and layers, bit for bit) plus extra random layers whose writes to the residual "
        "stream are scaled by --divergence, so the draft predicts the target's next token at a "
        "rate that falls as --divergence grows (docs/BENCHMARKS.md, \"Synthetic draft/target "
        "pair\"). The default shape is pairDraft with vocab 512: add --vocab-from "
        "tests/data/runtime/stories260K-f32.gguf for a real tokenizer.");
    s->callback([args] { run_synth_pair(*args); });
}

}  // namespace

void add_model_synth_command(CLI::App& app) {
    auto args = std::make_shared<SynthArgs>();
    auto* s = model_group(app)->add_subcommand(
        "synth", "Write a llama model with random weights (for benchmarks and tests)");
    s->add_option("--shape", args->shape,
                  "synth110M, stories260K, pairDraft, or dim=N,ffn=N,layers=N,heads=N[,kv_heads=N],"
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
    add_synth_pair(*model_group(app));
}

}  // namespace pylon::cli
