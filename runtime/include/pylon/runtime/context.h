// One inference session over a shared Model: the KV cache, scratch buffers and a thread pool.
//
// The KV cache holds keys and values in IEEE half precision (as llama.cpp does by default),
// laid out per layer as [position][kv head][head_dim]. eval() appends tokens at the current
// position; truncate() forgets positions from a point on (speculative decoding rolls back
// rejected draft tokens this way). A Context is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "pylon/common/result.h"
#include "pylon/runtime/kernels.h"
#include "pylon/runtime/model.h"
#include "pylon/runtime/thread_pool.h"

namespace pylon::runtime {

struct ContextParams {
    std::uint32_t n_ctx = 0;      // KV cache positions; 0 = the model's training context
    std::uint32_t n_batch = 512;  // tokens per forward pass when evaluating a long prompt
    int n_threads = 1;
    std::optional<kernels::Isa> isa;  // default: the best the CPU supports
};

class Context {
public:
    static Result<std::unique_ptr<Context>> create(std::shared_ptr<const Model> model,
                                                   ContextParams params);
    ~Context();

    // Runs the model over `tokens` at positions n_past() .. n_past()+size-1 and returns the
    // logits (n_vocab floats per token): of the last token only, or of every token when
    // all_logits. The span stays valid until the next eval/truncate. Errors: a token outside
    // the vocabulary, or a context that would overflow (nothing is evaluated then).
    Result<std::span<const float>> eval(std::span<const std::int32_t> tokens,
                                        bool all_logits = false);
    // As eval(tokens, true), batch-invariant: every token's logits (and K/V) have exactly the
    // bits that evaluating the tokens one at a time would give, while the weights are still
    // streamed once for the batch where the kernels allow (quantized weights; F32/F16 weights
    // are multiplied token by token). Speculative decoding verifies drafts with it so that
    // greedy output equals plain decoding.
    Result<std::span<const float>> eval_each(std::span<const std::int32_t> tokens);

    std::uint32_t n_past() const noexcept { return n_past_; }
    std::uint32_t n_ctx() const noexcept { return n_ctx_; }
    // Forgets positions >= n (no-op when n >= n_past()).
    void truncate(std::uint32_t n) noexcept;
    void reset() noexcept { truncate(0); }

    const Model& model() const noexcept { return *model_; }
    int n_threads() const noexcept { return pool_.size(); }
    kernels::Isa isa() const noexcept { return kernels_->isa; }
    std::size_t kv_cache_bytes() const noexcept;

    struct Buffers;  // scratch memory and KV cache; defined privately (src/model/)

private:
    Context(std::shared_ptr<const Model> model, const ContextParams& params,
            const kernels::Kernels& k);
    Result<std::span<const float>> eval_impl(std::span<const std::int32_t> tokens, bool all_logits,
                                             bool invariant);
    void forward(std::span<const std::int32_t> tokens, bool all_logits, bool invariant);

    std::shared_ptr<const Model> model_;
    const kernels::Kernels* kernels_;
    ThreadPool pool_;
    std::uint32_t n_ctx_ = 0;
    std::uint32_t n_batch_ = 0;
    std::uint32_t n_past_ = 0;
    std::unique_ptr<Buffers> buf_;
};

}  // namespace pylon::runtime
