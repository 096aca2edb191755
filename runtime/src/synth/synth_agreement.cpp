// measure_greedy_agreement: how often a draft predicts what its target decodes greedily, for
// the synthetic pair's tests and its calibration (bench/runtime/synth_pair_bench.cpp).
#include <algorithm>
#include <cmath>
#include <vector>

#include "pylon/common/error.h"
#include "pylon/runtime/context.h"
#include "pylon/runtime/model.h"
#include "pylon/runtime/sampling.h"
#include "pylon/runtime/synth.h"

namespace pylon::runtime {
namespace {

// Softmax at temperature 1, in double.
void softmax(std::span<const float> logits, std::vector<double>& out) {
    const float max = *std::max_element(logits.begin(), logits.end());
    out.resize(logits.size());
    double sum = 0;
    for (std::size_t i = 0; i < logits.size(); ++i) {
        out[i] = std::exp(static_cast<double>(logits[i]) - max);
        sum += out[i];
    }
    for (double& v : out) v /= sum;
}

}  // namespace

Result<PairAgreement> measure_greedy_agreement(std::shared_ptr<const Model> target,
                                               std::shared_ptr<const Model> draft,
                                               std::span<const std::vector<std::int32_t>> prompts,
                                               std::uint32_t n_predict, int n_threads) {
    const std::uint32_t n_vocab = target->hparams().n_vocab;
    if (draft->hparams().n_vocab != n_vocab) {
        return Error(Errc::invalid_argument, "the draft has " +
                                                 std::to_string(draft->hparams().n_vocab) +
                                                 " tokens, the target " + std::to_string(n_vocab));
    }
    std::size_t longest = 0;
    for (const auto& p : prompts) {
        if (p.empty()) return Error(Errc::invalid_argument, "an empty prompt");
        longest = std::max(longest, p.size());
    }
    const std::uint64_t n_ctx = longest + n_predict;
    if (n_ctx > std::min(target->hparams().n_ctx_train, draft->hparams().n_ctx_train)) {
        return Error(Errc::invalid_argument, "prompt + n_predict = " + std::to_string(n_ctx) +
                                                 " tokens exceed a model's context");
    }
    ContextParams params;
    params.n_ctx = static_cast<std::uint32_t>(n_ctx);
    params.n_threads = n_threads;
    PYLON_TRY_ASSIGN(auto tctx, Context::create(std::move(target), params));
    PYLON_TRY_ASSIGN(auto dctx, Context::create(std::move(draft), params));

    PairAgreement a;
    std::vector<double> p, q;
    double sum_accept = 0, sum_conf = 0;
    for (const auto& prompt : prompts) {
        tctx->reset();
        dctx->reset();
        PYLON_TRY_ASSIGN(auto tl, tctx->eval_each(prompt));
        PYLON_TRY_ASSIGN(auto dl, dctx->eval_each(prompt));
        tl = tl.last(n_vocab);
        dl = dl.last(n_vocab);
        for (std::uint32_t step = 0; step < n_predict; ++step) {
            const std::int32_t t = argmax(tl);
            const std::int32_t d = argmax(dl);
            ++a.n_steps;
            if (t == d) ++a.n_agree;
            softmax(tl, p);
            softmax(dl, q);
            double overlap = 0;
            for (std::size_t i = 0; i < p.size(); ++i) overlap += std::min(p[i], q[i]);
            sum_accept += overlap;
            sum_conf += q[static_cast<std::size_t>(d)];
            if (step + 1 == n_predict) break;
            const std::int32_t next[1] = {t};
            PYLON_TRY_ASSIGN(tl, tctx->eval(next));
            PYLON_TRY_ASSIGN(dl, dctx->eval(next));
        }
    }
    if (a.n_steps > 0) {
        a.mean_sampling_acceptance = sum_accept / static_cast<double>(a.n_steps);
        a.mean_draft_confidence = sum_conf / static_cast<double>(a.n_steps);
    }
    return a;
}

}  // namespace pylon::runtime
