// Speculative decoding: greedy output equals plain decoding token for token (draft model and
// prompt lookup, on the golden prompts and 100 generated prompts, for stories260K in every weight
// type), the sampled acceptance rule keeps the target's distribution (chi-square tests, with a
// control showing the test rejects a wrong rule), and the loop's limits and errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/speculative.h"
#include "pylon/runtime/context.h"
#include "pylon/runtime/generate.h"
#include "pylon/runtime/model.h"
#include "pylon/runtime/synth.h"
#include "pylon/runtime/tokenizer.h"

using namespace pylon::runtime;

namespace {

std::string model_path(const std::string& quant) {
    return std::string(PYLON_TEST_DATA) + "/runtime/stories260K-" + quant + ".gguf";
}

struct Loaded {
    std::shared_ptr<const Model> model;
    Tokenizer tok;
};

Loaded load(const std::string& quant) {
    auto m = Model::load(model_path(quant));
    REQUIRE(m);
    auto t = Tokenizer::from_gguf((*m)->gguf());
    REQUIRE(t);
    return {*m, std::move(*t)};
}

std::unique_ptr<Context> make_ctx(std::shared_ptr<const Model> m, std::uint32_t n_ctx = 256,
                                  int threads = 1) {
    ContextParams cp;
    cp.n_ctx = n_ctx;
    cp.n_threads = threads;
    auto c = Context::create(std::move(m), cp);
    REQUIRE(c);
    return std::move(*c);
}

std::vector<std::vector<std::int32_t>> golden_prompts() {
    std::ifstream in(std::string(PYLON_TEST_DATA) + "/runtime/golden/stories260K-f32.json");
    REQUIRE(in.good());
    const auto j = nlohmann::json::parse(in);
    std::vector<std::vector<std::int32_t>> out;
    for (const auto& c : j.at("cases")) {
        out.push_back(c.at("prompt_token_ids").get<std::vector<std::int32_t>>());
    }
    REQUIRE(out.size() >= 4);
    return out;
}

// 100 prompts: BOS then 1..40 random ids; every third repeats a random phrase so that lookup
// drafting has something to find.
std::vector<std::vector<std::int32_t>> generated_prompts(std::int32_t n_vocab, std::int32_t bos) {
    Rng rng(2026);
    std::vector<std::vector<std::int32_t>> out;
    for (int i = 0; i < 100; ++i) {
        std::vector<std::int32_t> p{bos};
        const int len = 1 + static_cast<int>(rng.next() % 40);
        if (i % 3 == 0) {
            std::vector<std::int32_t> phrase;
            for (int j = 0; j < 1 + len % 6; ++j) {
                phrase.push_back(3 + static_cast<std::int32_t>(rng.next() % (n_vocab - 3)));
            }
            while (static_cast<int>(p.size()) < len + 1)
                p.insert(p.end(), phrase.begin(), phrase.end());
        } else {
            for (int j = 0; j < len; ++j) {
                p.push_back(3 + static_cast<std::int32_t>(rng.next() % (n_vocab - 3)));
            }
        }
        out.push_back(std::move(p));
    }
    return out;
}

GenerateOptions greedy(int n) {
    GenerateOptions o;
    o.n_predict = n;
    o.sampling.temperature = 0.0f;
    o.stop_at_eos = false;
    return o;
}

std::vector<std::int32_t> run(Context& ctx, const Tokenizer& tok,
                              const std::vector<std::int32_t>& prompt, const GenerateOptions& o,
                              SpeculativeStats* stats = nullptr) {
    auto r = generate(ctx, tok, prompt, o);
    REQUIRE(r);
    if (stats != nullptr) {
        stats->cycles += r->speculative.cycles;
        stats->drafted += r->speculative.drafted;
        stats->accepted += r->speculative.accepted;
    }
    return r->generated_ids;
}

}  // namespace

TEST_CASE("speculative greedy output equals plain decoding, draft model and lookup",
          "[speculative]") {
    // The Q4_0 file drafts for the others; Q8_0 drafts for Q4_0 (a model never drafts for itself).
    const Loaded q4 = load("q4_0");
    const Loaded q8 = load("q8_0");
    for (const char* quant : {"f32", "f16", "q8_0", "q4_0"}) {
        CAPTURE(quant);
        const Loaded target = load(quant);
        const Loaded& draft = std::string(quant) == "q4_0" ? q8 : q4;
        auto ctx = make_ctx(target.model);
        auto dctx = make_ctx(draft.model);
        auto prompts = golden_prompts();
        const auto gen =
            generated_prompts(static_cast<std::int32_t>(target.tok.n_vocab()), target.tok.bos_id());
        prompts.insert(prompts.end(), gen.begin(), gen.end());
        REQUIRE(prompts.size() >= 104);
        SpeculativeStats draft_stats, lookup_stats;
        for (std::size_t i = 0; i < prompts.size(); ++i) {
            CAPTURE(i);
            const int n = i < 4 ? 64 : 40;
            const auto plain = run(*ctx, target.tok, prompts[i], greedy(n));
            REQUIRE(plain.size() == static_cast<std::size_t>(n));
            // Adaptive and fixed-length drafting (the latter verifies long drafts every step).
            for (const bool adaptive : {true, false}) {
                CAPTURE(adaptive);
                GenerateOptions o = greedy(n);
                o.speculative.draft = dctx.get();
                o.speculative.adaptive = adaptive;
                o.speculative.n_draft_max = adaptive ? 16 : 5;
                o.speculative.n_draft_start = std::min(4, o.speculative.n_draft_max);
                REQUIRE(run(*ctx, target.tok, prompts[i], o, &draft_stats) == plain);
                GenerateOptions l = greedy(n);
                l.speculative.lookup = true;
                l.speculative.adaptive = adaptive;
                l.speculative.ngram_min = 1;
                REQUIRE(run(*ctx, target.tok, prompts[i], l, &lookup_stats) == plain);
            }
        }
        // The equality is not vacuous: drafts were verified, most accepted, some rejected.
        CHECK(draft_stats.drafted > 1000);
        CHECK(draft_stats.accepted > draft_stats.drafted / 2);
        CHECK(draft_stats.accepted < draft_stats.drafted);
        CHECK(lookup_stats.drafted > 500);
        CHECK(lookup_stats.accepted > 0);
        CHECK(lookup_stats.accepted < lookup_stats.drafted);
    }
}

TEST_CASE("speculative decoding with 2 threads equals plain decoding", "[speculative]") {
    const Loaded target = load("q8_0");
    const Loaded draft = load("q4_0");
    auto ctx = make_ctx(target.model, 256, 2);
    auto dctx = make_ctx(draft.model, 256, 2);
    for (const auto& p : golden_prompts()) {
        const auto plain = run(*ctx, target.tok, p, greedy(64));
        GenerateOptions o = greedy(64);
        o.speculative.draft = dctx.get();
        o.speculative.adaptive = false;
        o.speculative.n_draft_max = 8;
        o.speculative.n_draft_start = 4;
        REQUIRE(run(*ctx, target.tok, p, o) == plain);
    }
}

namespace {

// Joint distribution of the first two emitted tokens when positions have fixed target
// distributions p0, p1, ... and drafts come from fixed draft distributions q0, q1, ...
// `rule` is the verifier under test.
template <typename Rule>
std::map<std::pair<int, int>, int> simulate(const std::vector<std::vector<TokenProb>>& p,
                                            const std::vector<std::vector<TokenProb>>& q, int k,
                                            int trials, Rule rule) {
    Rng rng(99);
    std::map<std::pair<int, int>, int> counts;
    auto draw = [&](const std::vector<TokenProb>& d) {
        double u = rng.uniform(), cum = 0;
        for (const auto& t : d) {
            cum += t.p;
            if (u < cum) return t.id;
        }
        return d.back().id;
    };
    for (int t = 0; t < trials; ++t) {
        std::vector<std::int32_t> out;
        while (out.size() < 2) {
            const std::size_t pos = out.size();
            std::vector<std::int32_t> drafts;
            std::vector<std::vector<TokenProb>> qs, ps;
            for (int i = 0; i < k; ++i) {
                qs.push_back(q[pos + i]);
                drafts.push_back(draw(q[pos + i]));
            }
            for (int i = 0; i <= k; ++i) ps.push_back(p[pos + i]);
            const detail::Verdict v = rule(ps, qs, drafts, rng);
            for (int i = 0; i < v.accepted; ++i) out.push_back(drafts[i]);
            out.push_back(v.next);
        }
        ++counts[{out[0], out[1]}];
    }
    return counts;
}

double chi_square(const std::map<std::pair<int, int>, int>& counts,
                  const std::vector<TokenProb>& p0, const std::vector<TokenProb>& p1, int trials) {
    double chi = 0;
    for (const auto& a : p0) {
        for (const auto& b : p1) {
            const double expected = a.p * b.p * trials;
            const auto it = counts.find({a.id, b.id});
            const double seen = it == counts.end() ? 0 : it->second;
            chi += (seen - expected) * (seen - expected) / expected;
        }
    }
    return chi;
}

}  // namespace

TEST_CASE("sampled verification keeps the target distribution (chi-square)", "[speculative]") {
    // Four tokens; target and draft disagree a lot, and per position.
    const std::vector<std::vector<TokenProb>> p = {{{0, 0.5}, {1, 0.3}, {2, 0.15}, {3, 0.05}},
                                                   {{0, 0.1}, {1, 0.2}, {2, 0.3}, {3, 0.4}},
                                                   {{0, 0.25}, {1, 0.25}, {2, 0.25}, {3, 0.25}},
                                                   {{0, 0.7}, {1, 0.1}, {2, 0.1}, {3, 0.1}},
                                                   {{0, 0.4}, {1, 0.4}, {2, 0.1}, {3, 0.1}}};
    const std::vector<std::vector<TokenProb>> q = {{{0, 0.1}, {1, 0.1}, {2, 0.1}, {3, 0.7}},
                                                   {{0, 0.6}, {1, 0.2}, {2, 0.1}, {3, 0.1}},
                                                   {{0, 0.9}, {1, 0.05}, {2, 0.05}},
                                                   {{0, 0.25}, {1, 0.25}, {2, 0.25}, {3, 0.25}},
                                                   {{2, 1.0}}};
    const int trials = 200000;
    // 15 degrees of freedom: P(chi2 > 37.70) = 0.001.
    const double critical = 37.70;
    for (const int k : {1, 2, 3}) {
        CAPTURE(k);
        const auto counts = simulate(p, q, k, trials, [](auto ps, auto qs, auto d, Rng& rng) {
            return detail::verify_sampled(ps, qs, d, rng);
        });
        CHECK(chi_square(counts, p[0], p[1], trials) < critical);
        // Lookup-style drafts (point masses, empty q) too.
        const auto lookup = simulate(p, q, k, trials, [](auto ps, auto qs, auto d, Rng& rng) {
            std::vector<std::vector<TokenProb>> point(qs.size());
            return detail::verify_sampled(ps, point, d, rng);
        });
        CHECK(chi_square(lookup, p[0], p[1], trials) < critical);
    }
    // Control: accepting every draft yields the draft's distribution, which the test rejects.
    const auto wrong = simulate(p, q, 2, trials, [](auto, auto, auto d, Rng&) {
        return detail::Verdict{static_cast<int>(d.size()) - 1, d.back()};
    });
    CHECK(chi_square(wrong, p[0], p[1], trials) > 1000);
    // And resampling from p instead of the residual on rejection is biased as well.
    const auto no_residual = simulate(p, q, 1, trials, [](auto ps, auto qs, auto d, Rng& rng) {
        detail::Verdict v = detail::verify_sampled(ps, qs, d, rng);
        if (v.accepted == 0) {
            double u = rng.uniform(), cum = 0;
            for (const auto& t : ps[0]) {
                cum += t.p;
                if (u < cum) {
                    v.next = t.id;
                    break;
                }
            }
        }
        return v;
    });
    CHECK(chi_square(no_residual, p[0], p[1], trials) > critical);
}

TEST_CASE(
    "speculative sampling with a real draft model keeps the target's next-token "
    "distribution",
    "[speculative]") {
    const Loaded target = load("f32");
    const Loaded draft = load("q4_0");
    auto ctx = make_ctx(target.model, 64);
    auto dctx = make_ctx(draft.model, 64);
    const std::vector<std::int32_t> prompt = golden_prompts()[0];
    // The first token is sampled plainly; the second comes from the first verification (later
    // tokens only make room for drafts).
    GenerateOptions o;
    o.n_predict = 4;
    o.stop_at_eos = false;
    o.sampling.temperature = 1.0f;
    o.sampling.top_k = 0;
    o.sampling.top_p = 1.0f;
    o.sampling.min_p = 0.0f;
    o.speculative.draft = dctx.get();
    o.speculative.adaptive = false;
    o.speculative.n_draft_max = 3;
    o.speculative.n_draft_start = 3;
    const int runs = 4000;
    std::map<std::int32_t, std::map<std::int32_t, int>> seen;
    SpeculativeStats st;
    for (int i = 0; i < runs; ++i) {
        o.sampling.seed = static_cast<std::uint64_t>(i) + 1;
        auto r = generate(*ctx, target.tok, prompt, o);
        REQUIRE(r);
        REQUIRE(r->generated_ids.size() == 4);
        ++seen[r->generated_ids[0]][r->generated_ids[1]];
        st.drafted += r->speculative.drafted;
        st.accepted += r->speculative.accepted;
    }
    REQUIRE(st.drafted > 0);
    REQUIRE(st.accepted < st.drafted);  // rejections happened: the residual path ran
    // Condition on the most frequent first token; the exact target distribution of the second.
    auto top = std::max_element(seen.begin(), seen.end(), [](const auto& a, const auto& b) {
        int na = 0, nb = 0;
        for (auto& [_, c] : a.second) na += c;
        for (auto& [_, c] : b.second) nb += c;
        return na < nb;
    });
    int n = 0;
    for (auto& [_, c] : top->second) n += c;
    REQUIRE(n > 1000);
    std::vector<std::int32_t> seq = prompt;
    seq.push_back(top->first);
    ctx->reset();
    auto logits = ctx->eval(seq);
    REQUIRE(logits);
    Sampler s(o.sampling, static_cast<std::size_t>(target.tok.n_vocab()));
    std::vector<TokenProb> p;
    s.distribution(*logits, seq, p);
    // Bins with expected count >= 5, the rest pooled.
    double chi = 0, rest_expected = 0, rest_seen = 0;
    int bins = 0;
    for (const auto& t : p) {
        const double e = t.p * n;
        const double o_count = top->second.count(t.id) ? top->second.at(t.id) : 0;
        if (e >= 5) {
            chi += (o_count - e) * (o_count - e) / e;
            ++bins;
        } else {
            rest_expected += e;
            rest_seen += o_count;
        }
    }
    if (rest_expected > 0) {
        chi += (rest_seen - rest_expected) * (rest_seen - rest_expected) / rest_expected;
        ++bins;
    }
    REQUIRE(bins >= 3);
    // Critical value at P = 0.001 for df = bins - 1 (Wilson–Hilferty approximation).
    const double df = bins - 1;
    const double z = 3.09;
    const double critical = df * std::pow(1 - 2 / (9 * df) + z * std::sqrt(2 / (9 * df)), 3);
    CAPTURE(bins, chi, critical, n);
    CHECK(chi < critical);
}

TEST_CASE("speculative decoding stops at the limit, the callback and a full context",
          "[speculative]") {
    const Loaded target = load("q8_0");
    const Loaded draft = load("q4_0");
    auto dctx = make_ctx(draft.model, 48);
    const auto prompt = golden_prompts()[1];
    for (const bool lookup : {false, true}) {
        CAPTURE(lookup);
        auto ctx = make_ctx(target.model, 48);
        GenerateOptions o = greedy(17);
        o.speculative.lookup = lookup;
        o.speculative.draft = lookup ? nullptr : dctx.get();
        o.speculative.ngram_min = 1;
        auto r = generate(*ctx, target.tok, prompt, o);
        REQUIRE(r);
        CHECK(r->generated_ids.size() == 17);
        CHECK(r->stop_reason == "limit");
        // The callback stops it after the 5th token.
        int calls = 0;
        auto s = generate(*ctx, target.tok, prompt, greedy(40),
                          [&](std::int32_t id, std::string_view) { return id < 0 || ++calls < 5; });
        REQUIRE(s);
        o.n_predict = 40;
        calls = 0;
        auto t = generate(*ctx, target.tok, prompt, o,
                          [&](std::int32_t id, std::string_view) { return id < 0 || ++calls < 5; });
        REQUIRE(t);
        CHECK(t->generated_ids.size() == 5);
        CHECK(t->stop_reason == "stopped");
        // A 48-position context: generation ends with "context", as plain decoding does.
        o.n_predict = 1000;
        auto full = generate(*ctx, target.tok, prompt, o);
        REQUIRE(full);
        auto plain = generate(*ctx, target.tok, prompt, greedy(1000));
        REQUIRE(plain);
        CHECK(full->stop_reason == "context");
        CHECK(full->generated_ids == plain->generated_ids);
    }
}

TEST_CASE("speculative decoding refuses a draft with another vocabulary and bad settings",
          "[speculative]") {
    const Loaded target = load("q8_0");
    const std::string path =
        (std::filesystem::temp_directory_path() / "pylon_spec_vocab300.gguf").string();
    SynthOptions so;
    so.shape = parse_synth_shape("stories260K,vocab=300").value();
    REQUIRE(write_synth_model(so, path));
    auto other = Model::load(path);
    REQUIRE(other);
    std::filesystem::remove(path);
    auto ctx = make_ctx(target.model);
    auto dctx = make_ctx(*other);
    GenerateOptions o = greedy(4);
    o.speculative.draft = dctx.get();
    auto r = generate(*ctx, target.tok, golden_prompts()[0], o);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message(), Catch::Contains("vocabulary"));
    o.speculative.draft = ctx.get();
    r = generate(*ctx, target.tok, golden_prompts()[0], o);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message(), Catch::Contains("target's own"));
    o.speculative.draft = nullptr;
    o.speculative.lookup = true;
    o.speculative.n_draft_max = 0;
    r = generate(*ctx, target.tok, golden_prompts()[0], o);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message(), Catch::Contains("longest draft"));
}

TEST_CASE("speculative greedy output equals plain decoding on the synthetic pair",
          "[speculative]") {
    // A small pair (write_synth_pair: the target is the draft plus extra layers) with the
    // stories260K tokenizer, Q8_0 and Q4_0, at a divergence where drafts are often but not
    // always right.
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / "pylon_spec_pair_test";
    std::filesystem::create_directories(dir);
    const Loaded vocab = load("f32");
    for (const auto type : {GgmlType::Q8_0, GgmlType::Q4_0}) {
        CAPTURE(type_name(type));
        SynthPairOptions po;
        po.draft_shape =
            parse_synth_shape("dim=128,ffn=384,layers=1,heads=4,kv_heads=2,vocab=512,ctx=256")
                .value();
        po.extra_layers = 3;
        po.divergence = 0.05f;
        po.type = type;
        po.seed = 5;
        po.vocab_from = model_path("f32");
        const std::string tp = (dir / "target.gguf").string(), dp = (dir / "draft.gguf").string();
        REQUIRE(write_synth_pair(po, tp, dp));
        auto target = Model::load(tp);
        auto draft = Model::load(dp);
        REQUIRE(target);
        REQUIRE(draft);
        auto tok = Tokenizer::from_gguf((*target)->gguf());
        REQUIRE(tok);
        auto ctx = make_ctx(*target);
        auto dctx = make_ctx(*draft);
        auto prompts = golden_prompts();
        const auto gen = generated_prompts(512, vocab.tok.bos_id());
        prompts.insert(prompts.end(), gen.begin(), gen.end());
        SpeculativeStats st, lst;
        for (std::size_t i = 0; i < prompts.size(); ++i) {
            CAPTURE(i);
            const auto plain = run(*ctx, *tok, prompts[i], greedy(40));
            for (const bool adaptive : {true, false}) {
                GenerateOptions o = greedy(40);
                o.speculative.draft = dctx.get();
                o.speculative.adaptive = adaptive;
                o.speculative.n_draft_max = adaptive ? 16 : 6;
                REQUIRE(run(*ctx, *tok, prompts[i], o, &st) == plain);
                GenerateOptions l = greedy(40);
                l.speculative.lookup = true;
                l.speculative.adaptive = adaptive;
                REQUIRE(run(*ctx, *tok, prompts[i], l, &lst) == plain);
            }
        }
        CHECK(st.accepted > st.drafted / 4);
        CHECK(st.accepted < st.drafted);
        CHECK(lst.drafted > 0);
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("speculative greedy output equals plain decoding across context shifts",
          "[speculative]") {
    // A 64-position context and 200 tokens: both target and draft shift several times (sinks +
    // the recent half); the target shifts at the same points in both runs, so the tokens agree.
    const Loaded target = load("q8_0");
    const Loaded draft = load("q4_0");
    auto ctx = make_ctx(target.model, 64);
    auto dctx = make_ctx(draft.model, 64);
    for (const auto& p : golden_prompts()) {
        GenerateOptions o = greedy(200);
        o.context_shift = true;
        const auto plain = run(*ctx, target.tok, p, o);
        REQUIRE(plain.size() == 200);
        REQUIRE(ctx->kv_stats().evictions > 0);
        for (const bool lookup : {false, true}) {
            GenerateOptions s = o;
            s.speculative.draft = lookup ? nullptr : dctx.get();
            s.speculative.lookup = lookup;
            s.speculative.adaptive = false;
            s.speculative.n_draft_max = 5;
            SpeculativeStats st;
            REQUIRE(run(*ctx, target.tok, p, s, &st) == plain);
            CHECK(st.accepted > 0);
        }
    }
}

TEST_CASE("a draft model that never agrees is turned off and catches up on a bounded window",
          "[speculative]") {
    // A random model with stories260K's vocabulary drafts for stories260K: its drafts are
    // rejected, so the tuner decodes plainly with ever rarer one-token probes. Before each probe
    // the draft sees only the most recent tokens of the run it skipped, so its cache holds far
    // fewer positions than the history (without that window it would evaluate every token).
    const Loaded target = load("f32");
    const std::filesystem::path path =
        std::filesystem::temp_directory_path() / "pylon_spec_random_draft.gguf";
    SynthOptions so;
    so.shape =
        parse_synth_shape("dim=64,ffn=160,layers=1,heads=4,kv_heads=4,vocab=512,ctx=512").value();
    so.vocab_from = model_path("f32");
    so.seed = 11;
    REQUIRE(write_synth_model(so, path.string()));
    auto draft = Model::load(path.string());
    REQUIRE(draft);
    std::filesystem::remove(path);
    auto ctx = make_ctx(target.model, 512);
    auto dctx = make_ctx(*draft, 512);
    const auto prompt = golden_prompts().front();
    const int n = 400;
    const auto plain = run(*ctx, target.tok, prompt, greedy(n));
    GenerateOptions o = greedy(n);
    o.speculative.draft = dctx.get();
    auto r = generate(*ctx, target.tok, prompt, o);
    REQUIRE(r);
    REQUIRE(r->generated_ids == plain);
    const SpeculativeStats& st = r->speculative;
    CHECK(st.accepted * 4 < st.drafted);
    CHECK(st.plain_steps > 300);
    // Probes double their interval up to 256 plain steps: the runs before the last probes are
    // 32, 64 and 128 tokens long, and the draft evaluated at most 16 of each.
    const std::size_t history = prompt.size() + plain.size();
    CHECK(dctx->n_past() + 150 < history);
}
