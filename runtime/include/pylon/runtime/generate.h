// Text generation over a Context: tokenize, evaluate the prompt in batches, then sample and
// decode until n_predict tokens, EOS, a full context, or the caller stops it — plainly (one
// token per forward pass) or speculatively (see SpeculativeParams).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pylon/common/result.h"
#include "pylon/runtime/context.h"
#include "pylon/runtime/sampling.h"
#include "pylon/runtime/tokenizer.h"

namespace pylon::runtime {

// Speculative decoding: a cheap drafter proposes tokens, the target model checks them all in one
// batched pass. Greedy output equals plain decoding token for token (verification runs in the
// Context's batch-invariant mode); with temperature > 0 the rejection rule of Leviathan et al.
// keeps the target's distribution. Drafting adapts: it stops early when the draft model is unsure,
// shortens drafts when they are rejected, lengthens them when accepted, and falls back to plain
// decoding while speculation measures slower than plain decoding.
struct SpeculativeParams {
    Context* draft = nullptr;  // a draft model sharing the target's vocabulary (null: none)
    bool lookup = false;       // prompt-lookup (n-gram) drafting from the tokens so far
    int n_draft_max = 16;      // longest draft
    int n_draft_start = 4;     // first draft length (adaptive from there)
    // A draft stops where its confidence (the draft model's probability of the token) makes it
    // not worth verifying, as learned from the acceptance of earlier drafts of that confidence;
    // p_min is a fixed floor below which it always stops (0: none).
    float p_min = 0.0f;
    int ngram_min = 2;         // lookup: shortest suffix to match
    int ngram_max = 4;         // lookup: longest suffix to match (tried first)
    bool adaptive = true;      // false: always draft n_draft_max (benchmarks of the worst case)

    bool enabled() const noexcept { return draft != nullptr || lookup; }
};

struct SpeculativeStats {
    std::uint64_t cycles = 0;    // target verification passes
    std::uint64_t drafted = 0;   // tokens proposed
    std::uint64_t accepted = 0;  // proposed tokens the target kept
    std::uint64_t plain_steps = 0;  // tokens decoded plainly while speculation was backed off

    double acceptance_rate() const noexcept {
        return drafted ? static_cast<double>(accepted) / static_cast<double>(drafted) : 0.0;
    }
    // Tokens gained per verification pass: accepted drafts plus the target's own token.
    double mean_accepted_length() const noexcept {
        return cycles ? static_cast<double>(accepted + cycles) / static_cast<double>(cycles) : 0.0;
    }
};

struct GenerateOptions {
    int n_predict = 128;
    SamplingParams sampling;
    bool stop_at_eos = true;
    // When the context is full: false ends generation (stop_reason "context"); true shifts it
    // (Context::shift: keeps the attention sinks and the most recent half) and goes on. A KV
    // budget below n_ctx (memory pressure, Context::set_kv_budget) always shifts.
    bool context_shift = false;
    SpeculativeParams speculative;
};

struct GenerateResult {
    std::vector<std::int32_t> prompt_ids;
    std::vector<std::int32_t> generated_ids;
    std::string text;
    std::string stop_reason;  // "limit", "eos", "context" or "stopped" (on_token said stop)
    double prompt_seconds = 0;
    double decode_seconds = 0;
    std::size_t decoded_tokens = 0;  // tokens generated after the first (decode speed's numerator)
    SpeculativeStats speculative;

    double prompt_tok_s() const noexcept {
        return prompt_seconds > 0 ? static_cast<double>(prompt_ids.size()) / prompt_seconds : 0;
    }
    double decode_tok_s() const noexcept {
        return decode_seconds > 0 ? static_cast<double>(decoded_tokens) / decode_seconds : 0;
    }
};

// Called for every generated token with the text that became valid UTF-8 with it (possibly
// empty); returning false stops generation after this token (stop_reason "stopped"). At the end,
// text held back for an incomplete UTF-8 sequence comes once more with id -1 (return ignored).
using OnToken = std::function<bool(std::int32_t id, std::string_view text)>;

// Starts from an empty context (ctx, and the draft context if any, are reset).
Result<GenerateResult> generate(Context& ctx, const Tokenizer& tok,
                                std::span<const std::int32_t> prompt_ids,
                                const GenerateOptions& options, const OnToken& on_token = {});
// Tokenizes `prompt` (with BOS when the model asks for it) and generates from it.
Result<GenerateResult> generate(Context& ctx, const Tokenizer& tok, std::string_view prompt,
                                const GenerateOptions& options, const OnToken& on_token = {});

}  // namespace pylon::runtime
