// Internals of generate(): the token emitter shared by plain and speculative decoding, and the
// speculative decoding loop (speculative.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "pylon/runtime/generate.h"

namespace pylon::runtime::detail {

// Appends generated tokens to the result, streams their text, and says when to stop.
struct Emitter {
    GenerateResult& r;
    Detokenizer& detok;
    const GenerateOptions& options;
    const OnToken& on_token;
    std::int32_t eos;

    // Emits `id`; false when generation ends with it (limit, EOS — not emitted —, or the
    // callback asked to stop), with r.stop_reason set.
    bool operator()(std::int32_t id) {
        if (options.stop_at_eos && id == eos) {
            r.stop_reason = "eos";
            return false;
        }
        r.generated_ids.push_back(id);
        const std::string piece = detok.push(id);
        r.text += piece;
        if (on_token && !on_token(id, piece)) {
            r.stop_reason = "stopped";
            return false;
        }
        if (r.generated_ids.size() >= static_cast<std::size_t>(options.n_predict)) {
            r.stop_reason = "limit";
            return false;
        }
        return true;
    }
    void flush() {
        const std::string tail = detok.flush();
        r.text += tail;
        if (on_token && !tail.empty()) on_token(-1, tail);
    }
};

// Applies the KV budget (Context::apply_kv_budget) and makes room for n more tokens, shifting
// the context when allowed (GenerateOptions::context_shift, or a budget below n_ctx); false when
// there is no room (the caller ends with stop_reason "context").
bool make_room(Context& ctx, std::size_t n, const GenerateOptions& options);

// Prompt lookup: appends to `out` up to k tokens that followed the most recent earlier
// occurrence of the history's longest suffix (ngram_max down to ngram_min tokens), asking
// keep(i, n) before draft i, n being the length of the suffix matched. Where that occurrence ends
// near the end of the history the copy runs on into the drafts themselves, so a phrase repeating
// with a short period gives a full-length draft rather than only the tokens up to the end.
void lookup_drafts(std::span<const std::int32_t> h, int k, int ngram_min, int ngram_max,
                   std::vector<std::int32_t>& out, const std::function<bool(int, int)>& keep);

// One sampled verification: drafts[i] with draft distributions q[i] (empty: a point mass on the
// draft, as lookup drafts are) against the target's distributions p[i] after each prefix
// (p.size() == drafts.size() + 1). Returns how many drafts are accepted and the token that follows
// them: drawn from norm(max(0, p − q)) at the first rejection, else the bonus from p[k].
struct Verdict {
    int accepted;
    std::int32_t next;
};
Verdict verify_sampled(std::span<const std::vector<TokenProb>> p,
                       std::span<const std::vector<TokenProb>> q,
                       std::span<const std::int32_t> drafts, Rng& rng);

// The draft context must share the target's vocabulary and be free of the target's context.
Result<void> check_speculative(const Context& target, const SpeculativeParams& sp);

// Decodes speculatively from the prompt's logits until the emitter says stop or the context is
// full (stop_reason "context").
Result<void> speculative_loop(Context& ctx, Sampler& sampler, std::span<const float> logits,
                              Emitter& emit, const GenerateOptions& options);

}  // namespace pylon::runtime::detail
