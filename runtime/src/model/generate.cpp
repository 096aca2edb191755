#include "pylon/runtime/generate.h"

#include <algorithm>
#include <chrono>

#include "model/speculative.h"
#include "pylon/common/error.h"

namespace pylon::runtime {

bool detail::make_room(Context& ctx, std::size_t n, const GenerateOptions& options) {
    const std::uint32_t cap = ctx.kv_capacity();
    if (ctx.n_past() + n > cap && (options.context_shift || cap < ctx.n_ctx())) {
        // Keep the sinks and the most recent half of the rest — one eviction pass, done before
        // apply_kv_budget() so that a shrunk budget is not evicted to twice.
        const std::uint32_t sinks = std::min(ctx.kv_sinks(), cap);
        ctx.shift((cap - sinks) / 2);
    }
    ctx.apply_kv_budget();
    return ctx.n_past() + n <= ctx.kv_capacity();
}

Result<GenerateResult> generate(Context& ctx, const Tokenizer& tok, std::string_view prompt,
                                const GenerateOptions& options, const OnToken& on_token) {
    const std::vector<std::int32_t> ids = tok.encode(prompt);
    if (ids.empty()) {
        return Error(Errc::invalid_argument, "the prompt is empty and the model adds no BOS");
    }
    return generate(ctx, tok, ids, options, on_token);
}

Result<GenerateResult> generate(Context& ctx, const Tokenizer& tok,
                                std::span<const std::int32_t> prompt_ids,
                                const GenerateOptions& options, const OnToken& on_token) {
    using Clock = std::chrono::steady_clock;
    if (options.n_predict < 0) return Error(Errc::invalid_argument, "n_predict must be >= 0");
    if (tok.n_vocab() != static_cast<std::int32_t>(ctx.model().hparams().n_vocab)) {
        return Error(Errc::invalid_argument, "the tokenizer's vocabulary (" +
                                                 std::to_string(tok.n_vocab()) +
                                                 ") does not match the model's");
    }
    if (prompt_ids.empty()) return Error(Errc::invalid_argument, "the prompt has no tokens");
    if (prompt_ids.size() >= ctx.n_ctx()) {
        return Error(Errc::limit_exceeded, "the prompt has " + std::to_string(prompt_ids.size()) +
                                               " tokens; the context holds " +
                                               std::to_string(ctx.n_ctx()));
    }
    if (prompt_ids.size() >= ctx.kv_capacity()) {
        return Error(Errc::limit_exceeded,
                     "the prompt has " + std::to_string(prompt_ids.size()) +
                         " tokens; under memory pressure the context holds " +
                         std::to_string(ctx.kv_capacity()) + " now (KV budget)");
    }
    const SpeculativeParams& sp = options.speculative;
    if (sp.enabled()) {
        if (auto ok = detail::check_speculative(ctx, sp); !ok) return std::move(ok).error();
    }
    GenerateResult r;
    r.prompt_ids.assign(prompt_ids.begin(), prompt_ids.end());
    ctx.reset();
    if (sp.draft != nullptr) sp.draft->reset();
    Sampler sampler(options.sampling, static_cast<std::size_t>(tok.n_vocab()));
    Detokenizer detok(tok);

    const auto t0 = Clock::now();
    auto logits = ctx.eval(r.prompt_ids);
    if (!logits) return std::move(logits).error().with_context("evaluating the prompt");
    if (sp.draft != nullptr && r.prompt_ids.size() < sp.draft->kv_capacity()) {
        // The draft model reads the prompt now too (it would otherwise catch up in its first
        // draft); its logits are not needed.
        auto d = sp.draft->eval(r.prompt_ids);
        if (!d) return std::move(d).error().with_context("evaluating the prompt with the draft model");
    }
    const auto t1 = Clock::now();
    r.prompt_seconds = std::chrono::duration<double>(t1 - t0).count();

    // Emits one token; false when generation must end (r.stop_reason says why).
    detail::Emitter emit{r, detok, options, on_token, tok.eos_id()};
    if (options.n_predict == 0) {
        r.stop_reason = "limit";
    } else if (sp.enabled()) {
        auto ok = detail::speculative_loop(ctx, sampler, *logits, emit, options);
        if (!ok) return std::move(ok).error();
    } else {
        std::vector<std::int32_t> history = r.prompt_ids;
        std::span<const float> cur = *logits;
        for (;;) {
            const std::int32_t next = sampler.sample(cur, history);
            history.push_back(next);
            if (!emit(next)) break;
            if (!detail::make_room(ctx, 1, options)) {
                r.stop_reason = "context";
                break;
            }
            auto l = ctx.eval(std::span<const std::int32_t>(&next, 1));
            if (!l) return std::move(l).error().with_context("decoding");
            cur = *l;
        }
    }
    r.decode_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
    r.decoded_tokens = r.generated_ids.empty() ? 0 : r.generated_ids.size() - 1;
    emit.flush();
    return r;
}

}  // namespace pylon::runtime
