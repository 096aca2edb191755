// One inference session over a shared Model: the KV cache, scratch buffers and a thread pool.
//
// The KV cache holds keys and values in IEEE half precision (as llama.cpp does by default),
// laid out per layer as [position][kv head][head_dim]. eval() appends tokens at the current
// position; truncate() forgets positions from a point on (speculative decoding rolls back
// rejected draft tokens this way). A Context is used by one thread at a time (its owner), except
// for the calls marked "any thread".
//
// KV budget (see docs/ARCHITECTURE.md "KV cache"): the cache is sized in blocks of positions
// (kv_block(): a multiple of 32 positions whose K rows fill whole pages). A byte budget limits the
// positions in use (kv_capacity()). When the budget shrinks below what is in use,
// apply_kv_budget() evicts by the attention-sinks + recent-window policy: the first kv_sinks
// positions and the most recent ones stay, the recent ones move down and their keys are
// re-rotated (RoPE) to their new positions, the transposed V rows are re-strided to the smaller
// capacity, and the pages past it are returned to the kernel (MADV_DONTNEED), so RSS falls.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
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
    // KV cache budget in bytes (see Context::set_kv_budget); the default (SIZE_MAX) is no limit.
    std::size_t kv_budget = std::numeric_limits<std::size_t>::max();
    std::uint32_t kv_sinks = 4;  // positions eviction always keeps (attention sinks), <= 1024
};

// Counters of the KV budget's actions since the Context was created.
struct KvStats {
    std::uint64_t evictions = 0;       // eviction passes that removed positions
    std::uint64_t tokens_evicted = 0;  // positions removed by them
    std::uint64_t shrinks = 0;         // layout changes to a smaller capacity
    std::uint64_t grows = 0;           // layout changes to a larger capacity
    std::uint64_t bytes_released = 0;  // resident KV bytes returned to the kernel
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

    // --- KV budget -------------------------------------------------------------------------
    static constexpr std::size_t kKvUnlimited = std::numeric_limits<std::size_t>::max();

    // Any thread. Sets the KV cache budget in bytes; it takes effect at the owner's next
    // apply_kv_budget() (eval() already refuses tokens past the new capacity). A budget below
    // kv_min_bytes() is clamped up to it (capacity never falls below kv_min_capacity()),
    // kKvUnlimited means n_ctx positions.
    void set_kv_budget(std::size_t bytes) noexcept;
    // Any thread. The budget as last set.
    std::size_t kv_budget() const noexcept { return kv_budget_.load(std::memory_order_relaxed); }
    // Any thread. Positions the budget allows: floor(budget / kv_bytes_per_position()) rounded
    // down to whole blocks, at least kv_min_capacity(), at most n_ctx().
    std::uint32_t kv_capacity() const noexcept;
    // K and V bytes of one position over all layers (2 * 2 bytes * n_layer * kv_dim).
    std::size_t kv_bytes_per_position() const noexcept;
    // Positions per block: a multiple of 32 whose K rows are whole pages.
    std::uint32_t kv_block() const noexcept { return kv_block_; }
    // The smallest capacity a budget can give: one block (kv_sinks + 16 rounded up to blocks),
    // or n_ctx if smaller; kv_min_bytes() is its size in bytes.
    std::uint32_t kv_min_capacity() const noexcept;
    std::size_t kv_min_bytes() const noexcept {
        return kv_min_capacity() * kv_bytes_per_position();
    }
    std::uint32_t kv_sinks() const noexcept { return n_sinks_; }
    // Any thread. Bytes of the KV cache's mappings now resident in RAM (mincore).
    std::size_t kv_resident_bytes() const noexcept;
    // Any thread. Counters (each read atomically; the set is not a snapshot).
    KvStats kv_stats() const noexcept;

    // Owner thread, between evals. Brings the layout to kv_capacity(): when n_past() exceeds it,
    // keeps the kv_sinks() first positions and the most recent ones so that n_past() ==
    // kv_capacity() (RoPE re-positioned), re-strides V and returns the pages past the capacity to
    // the kernel; when the capacity grew, re-strides V to the larger capacity. Returns the
    // positions evicted. Callers that want room for new tokens call shift() afterwards.
    std::uint32_t apply_kv_budget();
    // Owner thread, between evals ("context shift"): keeps the kv_sinks() first positions and the
    // n_keep_recent most recent ones, moved down to follow the sinks with their keys re-rotated;
    // returns the positions evicted (0 when n_past() <= kv_sinks() + n_keep_recent).
    std::uint32_t shift(std::uint32_t n_keep_recent);
    // Diagnostics: layer `layer`'s cached key and value halves at `pos` (< n_past()), kv_dim
    // each (V gathered from its transposed rows). Errc::invalid_argument for a bad layer,
    // position or span size.
    Result<void> read_kv(std::uint32_t layer, std::uint32_t pos, std::span<std::uint16_t> k,
                         std::span<std::uint16_t> v) const;

    const Model& model() const noexcept { return *model_; }
    int n_threads() const noexcept { return pool_.size(); }
    // Lets this context's idle worker threads sleep now rather than spin for the next eval:
    // call it when another context (a draft model) is about to run on the same cores.
    void park_threads() noexcept { pool_.park(); }
    kernels::Isa isa() const noexcept { return kernels_->isa; }
    std::size_t kv_cache_bytes() const noexcept;

    struct Buffers;  // scratch memory and KV cache; defined privately (src/model/)

private:
    Context(std::shared_ptr<const Model> model, const ContextParams& params,
            const kernels::Kernels& k);
    Result<std::span<const float>> eval_impl(std::span<const std::int32_t> tokens, bool all_logits,
                                             bool invariant);
    void forward(std::span<const std::int32_t> tokens, bool all_logits, bool invariant);
    void init_kv(const ContextParams& params);  // block size, sinks, initial budget
    // Makes room for n more tokens within kv_capacity() (growing the layout when the budget
    // rose); Errc::limit_exceeded past n_ctx or the capacity.
    Result<void> reserve_kv(std::size_t n);
    // Moves the kept positions (the sinks and the `keep_recent` last) into a layout for
    // `new_cap` positions and releases the pages past it; returns the positions evicted.
    std::uint32_t relayout(std::uint32_t new_cap, std::uint32_t keep_recent);
    std::uint32_t capacity_for(std::size_t budget) const noexcept;

    std::shared_ptr<const Model> model_;
    const kernels::Kernels* kernels_;
    ThreadPool pool_;
    std::uint32_t n_ctx_ = 0;
    std::uint32_t n_batch_ = 0;
    std::uint32_t n_past_ = 0;
    std::unique_ptr<Buffers> buf_;

    std::atomic<std::size_t> kv_budget_{kKvUnlimited};
    std::uint32_t kv_block_ = 32;
    std::uint32_t n_sinks_ = 4;
    struct KvCounters {
        std::atomic<std::uint64_t> evictions{0}, tokens_evicted{0}, shrinks{0}, grows{0},
            bytes_released{0};
    } kv_counters_;
};

}  // namespace pylon::runtime
