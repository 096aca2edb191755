// Calibrates the synthetic draft/target pair (runtime::write_synth_pair): for each type and
// divergence, writes the pair under --dir, then measures along the target's greedy
// continuations of random prompts (BOS + random ids past the control tokens) how often the
// draft's argmax equals the target's (greedy speculative acceptance), the mean sampling
// acceptance sum(min(p, q)) and the draft's mean confidence at temperature 1.
//
// One line per (type, divergence): sizes, byte ratio, agreement and those means. The files are
// removed afterwards unless --keep. Decoding is not timed here: this measures agreement only.
//
// usage: synth_pair_bench --vocab-from stories260K-f32.gguf [--shape pairDraft]
//        [--extra-layers 18] [--types q8_0,q4_0] [--divergence 0.05,0.1,0.2] [--prompts 4]
//        [--tokens 128] [--prompt-len 8] [--threads 2] [--dir /tmp] [--keep]
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "pylon/runtime/model.h"
#include "pylon/runtime/synth.h"

namespace {

using namespace pylon::runtime;

std::vector<std::string> split(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream ss(text);
    for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
    return out;
}

std::vector<std::vector<std::int32_t>> random_prompts(int n, int len, std::int32_t n_vocab) {
    std::mt19937_64 rng(20240601);
    std::uniform_int_distribution<std::int32_t> id(3, n_vocab - 1);
    std::vector<std::vector<std::int32_t>> prompts(static_cast<std::size_t>(n));
    for (auto& p : prompts) {
        p.push_back(1);
        for (int i = 1; i < len; ++i) p.push_back(id(rng));
    }
    return prompts;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app("Greedy agreement of the synthetic draft/target pair per type and divergence");
    std::string shape_text = "pairDraft";
    std::uint32_t extra_layers = SynthPairOptions{}.extra_layers;
    float logit_stddev = SynthPairOptions{}.logit_stddev;
    std::string types = "q8_0,q4_0";
    std::string divergences = "0.05,0.1,0.2";
    std::string vocab_from;
    std::string dir = "/tmp";
    int n_prompts = 4;
    int n_tokens = 128;
    int prompt_len = 8;
    int threads = 2;
    std::uint64_t seed = 0;
    bool keep = false;
    app.add_option("--shape", shape_text, "Draft shape")->capture_default_str();
    app.add_option("--extra-layers", extra_layers)->capture_default_str();
    app.add_option("--logit-stddev", logit_stddev)->capture_default_str();
    app.add_option("--types", types, "Comma-separated")->capture_default_str();
    app.add_option("--divergence", divergences, "Comma-separated")->capture_default_str();
    app.add_option("--vocab-from", vocab_from)->check(CLI::ExistingFile);
    app.add_option("--dir", dir, "Where the pairs are written")->check(CLI::ExistingDirectory);
    app.add_option("--prompts", n_prompts)->check(CLI::Range(1, 1000));
    app.add_option("--tokens", n_tokens, "Greedy tokens per prompt")->check(CLI::Range(1, 4096));
    app.add_option("--prompt-len", prompt_len)->check(CLI::Range(1, 1024));
    app.add_option("--threads", threads)->check(CLI::Range(1, 256));
    app.add_option("--seed", seed);
    app.add_flag("--keep", keep, "Keep the written pairs");
    CLI11_PARSE(app, argc, argv);

    auto shape = parse_synth_shape(shape_text);
    if (!shape) {
        std::fprintf(stderr, "--shape: %s\n", shape.error().what().c_str());
        return 2;
    }
    std::printf("%-5s %10s %10s %10s %7s %10s %10s %10s\n", "type", "divergence", "target_MiB",
                "draft_MiB", "ratio", "agreement", "sample_acc", "draft_conf");
    for (const std::string& type_text : split(types)) {
        const auto type = parse_type_name(type_text);
        if (!type) {
            std::fprintf(stderr, "--types: unknown type '%s'\n", type_text.c_str());
            return 2;
        }
        for (const std::string& div_text : split(divergences)) {
            SynthPairOptions o;
            o.draft_shape = *shape;
            o.extra_layers = extra_layers;
            char* end = nullptr;
            o.divergence = std::strtof(div_text.c_str(), &end);
            if (div_text.empty() || *end != '\0') {
                std::fprintf(stderr, "--divergence: '%s' is not a number\n", div_text.c_str());
                return 2;
            }
            o.logit_stddev = logit_stddev;
            o.type = *type;
            o.seed = seed;
            o.vocab_from = vocab_from;
            const std::string base = dir + "/synth-pair-" + type_text + "-" + div_text;
            const std::string tp = base + "-target.gguf";
            const std::string dp = base + "-draft.gguf";
            auto report = write_synth_pair(o, tp, dp);
            if (!report) {
                std::fprintf(stderr, "writing the pair: %s\n", report.error().what().c_str());
                return 1;
            }
            auto target = Model::load(tp);
            auto draft = Model::load(dp);
            if (!target || !draft) {
                std::fprintf(stderr, "loading the pair failed\n");
                return 1;
            }
            const auto prompts =
                random_prompts(n_prompts, prompt_len, static_cast<std::int32_t>(shape->n_vocab));
            auto a = measure_greedy_agreement(*target, *draft, prompts,
                                              static_cast<std::uint32_t>(n_tokens), threads);
            if (!a) {
                std::fprintf(stderr, "measuring: %s\n", a.error().what().c_str());
                return 1;
            }
            std::printf(
                "%-5s %10s %10.1f %10.1f %7.2f %10.3f %10.3f %10.3f\n", type_text.c_str(),
                div_text.c_str(), static_cast<double>(report->target.n_bytes) / (1024.0 * 1024.0),
                static_cast<double>(report->draft.n_bytes) / (1024.0 * 1024.0), report->byte_ratio,
                a->rate(), a->mean_sampling_acceptance, a->mean_draft_confidence);
            std::fflush(stdout);
            if (!keep) {
                std::filesystem::remove(tp);
                std::filesystem::remove(dp);
            }
        }
    }
    return 0;
}
