// Context::eval_each: a batch evaluated batch-invariantly gives every token exactly the logits
// that evaluating the tokens one at a time gives — on every kernel path, thread count and weight
// type (the stories260K files, and synthetic Q4_0/Q8_0 models whose rows take the repacked and
// the tinyBLAS-sized paths). Speculative decoding's greedy equality rests on this.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "pylon/runtime/context.h"
#include "pylon/runtime/kernels.h"
#include "pylon/runtime/model.h"
#include "pylon/runtime/synth.h"

using namespace pylon::runtime;

namespace {

std::vector<kernels::Isa> supported_isas() {
    std::vector<kernels::Isa> out;
    for (auto isa : {kernels::Isa::portable, kernels::Isa::avx2, kernels::Isa::avx512}) {
        if (kernels::isa_supported(isa)) out.push_back(isa);
    }
    return out;
}

std::shared_ptr<const Model> synth_model(GgmlType type, const std::string& name) {
    const std::string path =
        (std::filesystem::temp_directory_path() / ("pylon_eval_each_" + name + ".gguf")).string();
    SynthOptions o;
    o.shape = parse_synth_shape("dim=128,ffn=352,layers=2,heads=4,kv_heads=2,vocab=300,ctx=256")
                  .value();
    o.type = type;
    o.seed = 7;
    REQUIRE(write_synth_model(o, path));
    auto m = Model::load(path);
    REQUIRE(m);
    std::filesystem::remove(path);
    return *m;
}

// Prompt in one batch, then a 7-token batch evaluated with eval_each vs the same 7 tokens one at
// a time in a second context: logits must match bit for bit.
void check_model(const std::shared_ptr<const Model>& model) {
    const auto n_vocab = model->hparams().n_vocab;
    std::vector<std::int32_t> prompt, more;
    for (int i = 0; i < 19; ++i) prompt.push_back((i * 37 + 1) % static_cast<int>(n_vocab));
    for (int i = 0; i < 7; ++i) more.push_back((i * 101 + 5) % static_cast<int>(n_vocab));
    for (const auto isa : supported_isas()) {
        for (const int threads : {1, 2}) {
            CAPTURE(kernels::isa_name(isa), threads);
            ContextParams cp;
            cp.n_ctx = 128;
            cp.n_threads = threads;
            cp.isa = isa;
            auto batched = Context::create(model, cp).value();
            auto single = Context::create(model, cp).value();
            REQUIRE(batched->eval(prompt));
            REQUIRE(single->eval(prompt));
            auto all = batched->eval_each(more);
            REQUIRE(all);
            REQUIRE(all->size() == more.size() * n_vocab);
            const std::vector<float> got(all->begin(), all->end());
            for (std::size_t t = 0; t < more.size(); ++t) {
                auto one = single->eval(std::span<const std::int32_t>(&more[t], 1));
                REQUIRE(one);
                CAPTURE(t);
                REQUIRE(std::memcmp(one->data(), got.data() + t * n_vocab,
                                    n_vocab * sizeof(float)) == 0);
            }
            REQUIRE(batched->n_past() == single->n_past());
            // The K/V written by the batch are the single ones too: one more token agrees.
            const std::int32_t next = 3;
            auto a = batched->eval(std::span<const std::int32_t>(&next, 1));
            REQUIRE(a);
            const std::vector<float> av(a->begin(), a->end());
            auto b = single->eval(std::span<const std::int32_t>(&next, 1));
            REQUIRE(b);
            REQUIRE(std::memcmp(av.data(), b->data(), n_vocab * sizeof(float)) == 0);
        }
    }
}

}  // namespace

TEST_CASE("eval_each: stories260K logits equal token-by-token, bit for bit", "[eval_each]") {
    for (const char* q : {"f32", "f16", "q8_0", "q4_0"}) {
        CAPTURE(q);
        auto m = Model::load(std::string(PYLON_TEST_DATA) + "/runtime/stories260K-" + q + ".gguf");
        REQUIRE(m);
        check_model(*m);
    }
}

TEST_CASE("eval_each: synthetic models on the repacked and tinyBLAS paths", "[eval_each]") {
    for (const auto type : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0}) {
        CAPTURE(type_name(type));
        check_model(synth_model(type, std::string(type_name(type))));
    }
}

TEST_CASE("eval_each: a plain batch differs from token-by-token for F32 (the reason for it)",
          "[eval_each]") {
    // Guards the test above against passing vacuously: without the invariant mode a batch's
    // F32 logits are not bit-identical to one-at-a-time evaluation.
    auto m = synth_model(GgmlType::F32, "plain");
    std::vector<std::int32_t> toks;
    for (int i = 0; i < 16; ++i) toks.push_back(i * 7 + 2);
    ContextParams cp;
    cp.n_ctx = 64;
    auto batched = Context::create(m, cp).value();
    auto single = Context::create(m, cp).value();
    auto all = batched->eval(toks, true);
    REQUIRE(all);
    const std::vector<float> got(all->begin(), all->end());
    const auto n_vocab = m->hparams().n_vocab;
    bool any_diff = false;
    for (std::size_t t = 0; t < toks.size(); ++t) {
        auto one = single->eval(std::span<const std::int32_t>(&toks[t], 1));
        REQUIRE(one);
        any_diff |= std::memcmp(one->data(), got.data() + t * n_vocab, n_vocab * 4) != 0;
    }
    REQUIRE(any_diff);
}
