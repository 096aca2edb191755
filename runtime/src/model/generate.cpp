#include "pylon/runtime/generate.h"

#include <chrono>

#include "pylon/common/error.h"

namespace pylon::runtime {

Result<GenerateResult> generate(Context& ctx, const Tokenizer& tok, std::string_view prompt,
                                const GenerateOptions& options,
                                const std::function<void(std::string_view)>& on_text) {
    using Clock = std::chrono::steady_clock;
    if (options.n_predict < 0) return Error(Errc::invalid_argument, "n_predict must be >= 0");
    if (tok.n_vocab() != static_cast<std::int32_t>(ctx.model().hparams().n_vocab)) {
        return Error(Errc::invalid_argument, "the tokenizer's vocabulary (" +
                                                 std::to_string(tok.n_vocab()) +
                                                 ") does not match the model's");
    }
    GenerateResult r;
    r.prompt_ids = tok.encode(prompt);
    if (r.prompt_ids.empty()) {
        return Error(Errc::invalid_argument, "the prompt is empty and the model adds no BOS");
    }
    if (r.prompt_ids.size() >= ctx.n_ctx()) {
        return Error(Errc::limit_exceeded, "the prompt has " +
                                               std::to_string(r.prompt_ids.size()) +
                                               " tokens; the context holds " +
                                               std::to_string(ctx.n_ctx()));
    }
    ctx.reset();
    Sampler sampler(options.sampling, static_cast<std::size_t>(tok.n_vocab()));
    Detokenizer detok(tok);
    std::vector<std::int32_t> history = r.prompt_ids;

    const auto t0 = Clock::now();
    auto logits = ctx.eval(r.prompt_ids);
    if (!logits) return std::move(logits).error().with_context("evaluating the prompt");
    const auto t1 = Clock::now();
    r.prompt_seconds = std::chrono::duration<double>(t1 - t0).count();
    r.stop_reason = "limit";
    for (int i = 0; i < options.n_predict; ++i) {
        const std::int32_t next = sampler.sample(*logits, history);
        if (options.stop_at_eos && next == tok.eos_id()) {
            r.stop_reason = "eos";
            break;
        }
        r.generated_ids.push_back(next);
        history.push_back(next);
        const std::string piece = detok.push(next);
        r.text += piece;
        if (on_text && !piece.empty()) on_text(piece);
        if (i + 1 == options.n_predict) break;
        if (ctx.n_past() >= ctx.n_ctx()) {
            r.stop_reason = "context";
            break;
        }
        logits = ctx.eval(std::span<const std::int32_t>(&next, 1));
        if (!logits) return std::move(logits).error().with_context("decoding");
        ++r.decoded_tokens;
    }
    r.decode_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
    const std::string tail = detok.flush();
    r.text += tail;
    if (on_text && !tail.empty()) on_text(tail);
    return r;
}

}  // namespace pylon::runtime
