// pylon run, pylon tokenize, pylon bench: the inference runtime from the command line.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "cli_support.h"
#include "commands.h"
#include "pylon/runtime/context.h"
#include "pylon/runtime/generate.h"
#include "pylon/runtime/model.h"
#include "pylon/runtime/tokenizer.h"
#include "registry_client.h"

namespace pylon::cli {
namespace {

using runtime::Context;
using runtime::ContextParams;
using runtime::Model;
using runtime::Tokenizer;

std::shared_ptr<const Model> load_model(const std::string& path) {
    return unwrap(Model::load(path));
}

Tokenizer load_tokenizer(const Model& m) {
    return unwrap(Tokenizer::from_gguf(m.gguf()), "reading the model's tokenizer");
}

std::vector<int> parse_int_list(const std::string& s, const char* what) {
    std::vector<int> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, ',')) {
        try {
            std::size_t used = 0;
            const int v = std::stoi(item, &used);
            if (used != item.size() || v < 0) throw std::invalid_argument(item);
            out.push_back(v);
        } catch (const std::exception&) {
            throw UsageError(std::string(what) + ": '" + item + "' is not a non-negative number");
        }
    }
    if (out.empty()) throw UsageError(std::string(what) + " is empty");
    return out;
}

struct RunOptions {
    std::string model, prompt;
    int n_predict = 128, threads = 0, ctx = 0;
    float temp = 0.8f, top_p = 0.95f, min_p = 0.05f, repeat_penalty = 1.0f;
    int top_k = 40;
    std::uint64_t seed = 0;
    bool json = false;
    std::string prompt_file, draft;
    bool lookup = false, no_adaptive = false, ignore_eos = false;
    int draft_max = 16;
    float p_min = 0.0f;
    int ngram_min = pylon::runtime::SpeculativeParams{}.ngram_min;
    int ngram_max = pylon::runtime::SpeculativeParams{}.ngram_max;
};

int default_threads() {
    const unsigned hc = std::thread::hardware_concurrency();
    return static_cast<int>(std::clamp(hc, 1u, 64u));
}

std::string read_prompt_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UsageError("cannot read the prompt file " + path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.size() > (16u << 20)) throw UsageError("the prompt file is larger than 16 MiB");
    return text;
}

void cmd_run(RunOptions o) {
    if (!o.prompt_file.empty()) o.prompt = read_prompt_file(o.prompt_file);
    if (!o.draft.empty() && o.lookup) throw UsageError("--draft and --lookup exclude each other");
    auto model = load_model(o.model);
    const Tokenizer tok = load_tokenizer(*model);
    ContextParams cp;
    cp.n_threads = o.threads > 0 ? o.threads : default_threads();
    cp.n_ctx = static_cast<std::uint32_t>(o.ctx);
    auto ctx = unwrap(Context::create(model, cp));
    std::unique_ptr<Context> draft_ctx;
    if (!o.draft.empty()) {
        auto draft_model = load_model(o.draft);
        ContextParams dp = cp;
        dp.n_ctx = ctx->n_ctx();
        draft_ctx = unwrap(Context::create(draft_model, dp), "creating the draft model's context");
    }
    runtime::GenerateOptions g;
    g.speculative.draft = draft_ctx.get();
    g.speculative.lookup = o.lookup;
    g.speculative.n_draft_max = o.draft_max;
    g.speculative.n_draft_start = std::min(g.speculative.n_draft_start, o.draft_max);
    g.speculative.p_min = o.p_min;
    g.speculative.adaptive = !o.no_adaptive;
    g.speculative.ngram_min = o.ngram_min;
    g.speculative.ngram_max = o.ngram_max;
    g.stop_at_eos = !o.ignore_eos;
    g.n_predict = o.n_predict;
    g.sampling.temperature = o.temp;
    g.sampling.top_k = o.top_k;
    g.sampling.top_p = o.top_p;
    g.sampling.min_p = o.min_p;
    g.sampling.repeat_penalty = o.repeat_penalty;
    g.sampling.seed = o.seed;
    runtime::OnToken stream;
    if (!o.json) {
        stream = [](std::int32_t, std::string_view piece) {
            std::cout << piece << std::flush;
            return true;
        };
    }
    const auto r = unwrap(runtime::generate(*ctx, tok, o.prompt, g, stream));
    if (o.json) {
        nlohmann::json j;
        j["prompt_token_ids"] = r.prompt_ids;
        j["generated_token_ids"] = r.generated_ids;
        j["text"] = r.text;
        j["stop_reason"] = r.stop_reason;
        j["prompt_tok_s"] = r.prompt_tok_s();
        j["decode_tok_s"] = r.decode_tok_s();
        if (g.speculative.enabled()) {
            const auto& s = r.speculative;
            j["speculative"] = {{"mode", draft_ctx ? "draft" : "lookup"},
                                {"cycles", s.cycles},
                                {"drafted", s.drafted},
                                {"accepted", s.accepted},
                                {"plain_steps", s.plain_steps},
                                {"acceptance_rate", s.acceptance_rate()},
                                {"mean_accepted_length", s.mean_accepted_length()}};
        }
        std::cout << j.dump() << "\n";
    } else {
        std::cout << std::endl;  // flushed before the timing line on stderr
    }
    std::string spec;
    if (g.speculative.enabled()) {
        const auto& s = r.speculative;
        char buf[200];
        std::snprintf(buf, sizeof buf,
                      " | %s: acceptance %.1f%% (%llu/%llu), mean accepted length %.2f, %llu "
                      "plain steps",
                      draft_ctx ? "draft" : "lookup", 100.0 * s.acceptance_rate(),
                      static_cast<unsigned long long>(s.accepted),
                      static_cast<unsigned long long>(s.drafted), s.mean_accepted_length(),
                      static_cast<unsigned long long>(s.plain_steps));
        spec = buf;
    }
    std::fprintf(stderr,
                 "pylon run: prompt %zu tokens %.1f tok/s | decode %zu tokens %.1f tok/s%s | "
                 "%d threads, %s\n",
                 r.prompt_ids.size(), r.prompt_tok_s(), r.decoded_tokens, r.decode_tok_s(),
                 spec.c_str(), ctx->n_threads(),
                 std::string(runtime::kernels::isa_name(ctx->isa())).c_str());
}

void cmd_tokenize(const std::string& model_path, const std::string& text, bool no_bos) {
    // Only the vocabulary is needed: a vocab-only GGUF works too.
    auto file = unwrap(runtime::gguf::File::open(model_path));
    const Tokenizer tok = unwrap(Tokenizer::from_gguf(*file), "reading the tokenizer");
    const auto ids = tok.encode(text, !no_bos && tok.bos_id() >= 0);
    std::string line;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        line += (i ? " " : "") + std::to_string(ids[i]);
    }
    std::cout << line << "\n";
}

struct BenchOptions {
    std::string model, threads = "", prompt = "512", gen = "128";
    int reps = 5;
    bool json = false;
};

struct Stat {
    double mean = 0, stddev = 0;
};
Stat stats(const std::vector<double>& v) {
    Stat s;
    if (v.empty()) return s;
    for (double x : v) s.mean += x;
    s.mean /= static_cast<double>(v.size());
    for (double x : v) s.stddev += (x - s.mean) * (x - s.mean);
    s.stddev = v.size() > 1 ? std::sqrt(s.stddev / static_cast<double>(v.size() - 1)) : 0;
    return s;
}

// As llama-bench: pp = one batch of n random tokens (BOS first) into an empty cache; tg = n
// tokens decoded one at a time from an empty cache; one warm-up run, then r timed repetitions.
double time_once(Context& ctx, int n, bool prompt, std::mt19937& rng, std::int32_t bos) {
    using Clock = std::chrono::steady_clock;
    const auto nv = static_cast<std::int32_t>(ctx.model().hparams().n_vocab);
    std::uniform_int_distribution<std::int32_t> pick(0, nv - 1);
    ctx.reset();
    const auto t0 = Clock::now();
    if (prompt) {
        std::vector<std::int32_t> toks(static_cast<std::size_t>(n));
        for (auto& t : toks) t = pick(rng);
        if (bos >= 0) toks[0] = bos;
        (void)unwrap(ctx.eval(toks));
    } else {
        std::int32_t t = bos >= 0 ? bos : pick(rng);
        for (int i = 0; i < n; ++i) {
            (void)unwrap(ctx.eval(std::span<const std::int32_t>(&t, 1)));
            t = pick(rng);
        }
    }
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

void cmd_bench(const BenchOptions& o) {
    auto model = load_model(o.model);
    const auto thread_list = parse_int_list(
        o.threads.empty() ? std::to_string(default_threads()) : o.threads, "--threads");
    const auto pp_list = parse_int_list(o.prompt, "-p");
    const auto tg_list = parse_int_list(o.gen, "-n");
    if (o.reps < 1) throw UsageError("-r must be at least 1");
    const auto& hp = model->hparams();
    std::int32_t bos = -1;
    if (auto b = model->gguf().get_uint("tokenizer.ggml.bos_token_id"); b && *b < hp.n_vocab) {
        bos = static_cast<std::int32_t>(*b);
    }
    const std::string name = o.model.substr(o.model.find_last_of('/') + 1);
    const double size_mib = static_cast<double>(model->gguf().bytes().size()) / (1 << 20);
    if (!o.json) {
        std::printf("| model | size | params | threads | isa | test | t/s |\n");
        std::printf("| --- | ---: | ---: | ---: | --- | --- | ---: |\n");
    }
    std::mt19937 rng(1234);
    for (int threads : thread_list) {
        if (threads < 1) throw UsageError("thread counts must be at least 1");
        const std::size_t n = std::max(pp_list.size(), tg_list.size());
        for (std::size_t c = 0; c < n; ++c) {
            const int pp = pp_list[std::min(c, pp_list.size() - 1)];
            const int tg = tg_list[std::min(c, tg_list.size() - 1)];
            ContextParams cp;
            cp.n_threads = threads;
            cp.n_ctx = static_cast<std::uint32_t>(std::max({pp, tg, 1}) + 1);
            cp.n_batch = static_cast<std::uint32_t>(std::max(pp, 1));
            auto ctx = unwrap(Context::create(model, cp));
            auto measure = [&](int count, bool prompt) {
                std::vector<double> tps;
                if (count == 0) return Stat{};
                (void)time_once(*ctx, count, prompt, rng, bos);  // warm-up
                for (int r = 0; r < o.reps; ++r) {
                    tps.push_back(count / time_once(*ctx, count, prompt, rng, bos));
                }
                return stats(tps);
            };
            const Stat pps = measure(pp, true);
            const Stat tgs = measure(tg, false);
            const std::string isa(runtime::kernels::isa_name(ctx->isa()));
            if (o.json) {
                nlohmann::json j;
                j["model"] = name;
                j["model_type"] = model->type_summary();
                j["size_bytes"] = model->gguf().bytes().size();
                j["n_params"] = model->n_params();
                j["weight_bytes_per_token"] = model->weight_bytes_per_token();
                j["threads"] = threads;
                j["isa"] = isa;
                j["n_prompt"] = pp;
                j["n_gen"] = tg;
                j["reps"] = o.reps;
                j["pp_tok_s"] = pps.mean;
                j["pp_stddev"] = pps.stddev;
                j["tg_tok_s"] = tgs.mean;
                j["tg_stddev"] = tgs.stddev;
                std::cout << j.dump() << std::endl;
            } else {
                auto row = [&](const std::string& test, const Stat& s) {
                    std::printf("| %s | %.2f MiB | %.2f M | %d | %s | %s | %.2f ± %.2f |\n",
                                name.c_str(), size_mib, model->n_params() / 1e6, threads,
                                isa.c_str(), test.c_str(), s.mean, s.stddev);
                };
                if (pp > 0) row("pp" + std::to_string(pp), pps);
                if (tg > 0) row("tg" + std::to_string(tg), tgs);
                std::fflush(stdout);
            }
        }
    }
}

}  // namespace

void add_runtime_commands(CLI::App& app) {
    auto run_opts = std::make_shared<RunOptions>();
    auto* run = app.add_subcommand("run", "Generate text with a GGUF model on this machine");
    run->add_option("-m,--model", run_opts->model, "GGUF model file")->required();
    auto* prompt_opt = run->add_option("-p,--prompt", run_opts->prompt, "Prompt text");
    auto* file_opt =
        run->add_option("-f,--file", run_opts->prompt_file, "Read the prompt from a file");
    prompt_opt->excludes(file_opt);
    run->add_option("--draft", run_opts->draft,
                    "Speculative decoding with this draft model (same vocabulary)");
    run->add_flag("--lookup", run_opts->lookup,
                  "Speculative decoding with prompt-lookup (n-gram) drafts");
    run->add_option("--draft-max", run_opts->draft_max, "Longest draft")->check(CLI::Range(1, 64));
    run->add_option(
           "--p-min", run_opts->p_min,
           "Always stop a draft below this draft-model probability (besides the learned stop)")
        ->check(CLI::Range(0.0f, 1.0f));
    run->add_option("--ngram-min", run_opts->ngram_min,
                    "Lookup: shortest history suffix to look up")
        ->check(CLI::Range(1, 32));
    run->add_option("--ngram-max", run_opts->ngram_max,
                    "Lookup: longest history suffix to look up (tried first)")
        ->check(CLI::Range(1, 32));
    run->add_flag("--no-adaptive", run_opts->no_adaptive,
                  "Always draft --draft-max tokens (no adaptive length, no fallback)");
    run->add_flag("--ignore-eos", run_opts->ignore_eos, "Keep generating past EOS");
    run->add_option("-n,--n-predict", run_opts->n_predict, "Tokens to generate")
        ->check(CLI::Range(0, 1 << 20));
    run->add_option("-t,--threads", run_opts->threads, "Threads (default: all cores)")
        ->check(CLI::Range(0, 512));
    run->add_option("-c,--ctx", run_opts->ctx, "Context length (default: the model's)")
        ->check(CLI::Range(0, 1 << 22));
    run->add_option("--temp", run_opts->temp, "Temperature (0: greedy)")
        ->check(CLI::Range(0.0f, 100.0f));
    run->add_option("--top-k", run_opts->top_k, "Top-k (0: off)")->check(CLI::Range(0, 1 << 21));
    run->add_option("--top-p", run_opts->top_p, "Top-p (1: off)")->check(CLI::Range(0.0f, 1.0f));
    run->add_option("--min-p", run_opts->min_p, "Min-p (0: off)")->check(CLI::Range(0.0f, 1.0f));
    run->add_option("--repeat-penalty", run_opts->repeat_penalty, "Repetition penalty (1: off)")
        ->check(CLI::Range(0.0f, 10.0f));
    run->add_option("--seed", run_opts->seed, "Sampling seed");
    run->add_flag("--json", run_opts->json, "Print prompt/generated ids and text as JSON");
    run->callback([run_opts, prompt_opt, file_opt] {
        if (prompt_opt->count() == 0 && file_opt->count() == 0) {
            throw UsageError("a prompt is needed: -p TEXT or -f FILE");
        }
        cmd_run(*run_opts);
    });

    auto model_path = std::make_shared<std::string>();
    auto text = std::make_shared<std::string>();
    auto no_bos = std::make_shared<bool>(false);
    auto* tokenize = app.add_subcommand("tokenize", "Print the token ids of a text");
    tokenize->add_option("-m,--model", *model_path, "GGUF model or vocabulary file")->required();
    tokenize->add_option("text", *text, "Text to tokenize")->required();
    tokenize->add_flag("--no-bos", *no_bos, "Do not add the BOS token");
    tokenize->callback([model_path, text, no_bos] { cmd_tokenize(*model_path, *text, *no_bos); });

    auto bench_opts = std::make_shared<BenchOptions>();
    auto* bench = app.add_subcommand("bench", "Measure prompt (pp) and decode (tg) speed");
    bench->add_option("-m,--model", bench_opts->model, "GGUF model file")->required();
    bench->add_option("-t,--threads", bench_opts->threads, "Thread counts, e.g. 1,2");
    bench->add_option("-p,--n-prompt", bench_opts->prompt, "Prompt lengths, e.g. 512");
    bench->add_option("-n,--n-gen", bench_opts->gen, "Generated lengths, e.g. 128");
    bench->add_option("-r,--repetitions", bench_opts->reps, "Timed repetitions");
    bench->add_flag("--json", bench_opts->json, "One JSON line per configuration");
    bench->callback([bench_opts] { cmd_bench(*bench_opts); });
}

}  // namespace pylon::cli
