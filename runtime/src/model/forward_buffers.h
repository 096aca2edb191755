// Scratch memory of a Context, sized once for n_batch tokens, and the KV cache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

#include "model/attention.h"
#include "pylon/runtime/context.h"
#include "pylon/runtime/kernels.h"

namespace pylon::runtime {

// Zeroed anonymous memory from mmap (lazily backed by the kernel).
class PageBuffer {
public:
    explicit PageBuffer(std::size_t bytes);
    ~PageBuffer();
    PageBuffer(const PageBuffer&) = delete;
    PageBuffer& operator=(const PageBuffer&) = delete;
    template <typename T>
    T* as() const noexcept {
        return static_cast<T*>(data_);
    }
    std::size_t size() const noexcept { return size_; }

private:
    void* data_ = nullptr;
    std::size_t size_ = 0;
};

// Activation formats the kernels consume; Q8_0 and Q4_0 weights share one.
enum class ActClass { f32 = 0, f16 = 1, q8 = 2 };
inline ActClass act_class(GgmlType t) noexcept {
    switch (t) {
        case GgmlType::F32:
            return ActClass::f32;
        case GgmlType::F16:
            return ActClass::f16;
        default:
            return ActClass::q8;
    }
}

// 64-byte aligned float/byte vectors.
template <typename T>
struct AlignedVec {
    explicit AlignedVec(std::size_t n)
        : p(static_cast<T*>(::operator new[](n * sizeof(T) + 64, std::align_val_t{64}))) {}
    ~AlignedVec() { ::operator delete[](p, std::align_val_t{64}); }
    AlignedVec(const AlignedVec&) = delete;
    AlignedVec& operator=(const AlignedVec&) = delete;
    T* p;
};

struct Context::Buffers {
    Buffers(const Model& m, std::uint32_t n_ctx, std::uint32_t n_batch, int n_threads)
        : v_stride(v_stride_for(n_ctx)),
          v_stride_max(v_stride),
          kv_cap(n_ctx),
          kv_layer_elems(v_stride * m.hparams().kv_dim()),
          x(elems(n_batch, m.hparams().n_embd)),
          q(elems(n_batch, m.hparams().n_embd)),
          k(elems(n_batch, m.hparams().kv_dim())),
          v(elems(n_batch, m.hparams().kv_dim())),
          attn(elems(n_batch, m.hparams().n_embd)),
          tmp(elems(n_batch, m.hparams().n_embd)),
          gate(elems(n_batch, m.hparams().n_ff)),
          up(elems(n_batch, m.hparams().n_ff)),
          scores(slots(n_threads) * scores_stride()),
          qf(slots(n_threads) * qf_stride(m)),
          q16(slots(n_threads) * (m.hparams().head_dim + 32)),
          p16(slots(n_threads) * v_stride) {
        const auto& hp = m.hparams();
        const std::size_t kmax = std::max(hp.n_embd, hp.n_ff);
        for (int c = 0; c < 3; ++c) {
            const GgmlType rep = c == 0 ? GgmlType::F32 : c == 1 ? GgmlType::F16 : GgmlType::Q8_0;
            act_stride[c] = kernels::act_row_bytes(rep, kmax);
            act[c] = std::make_unique<AlignedVec<std::byte>>(act_stride[c] * n_batch);
        }
        logits.resize(static_cast<std::size_t>(n_batch) * hp.n_vocab);
        for (std::uint32_t l = 0; l < hp.n_layer; ++l) {
            k_cache.push_back(std::make_unique<PageBuffer>(kv_layer_elems * 2));
            v_cache.push_back(std::make_unique<PageBuffer>(kv_layer_elems * 2));
        }
    }
    // Attention scratch (see model/attention.h), detail::kGroupMax slots per thread (one per
    // job of a group): scores for the padded KV length, the rounded query as floats. (Sized
    // for v_stride_max; offsets computed with a smaller v_stride stay inside.)
    static std::size_t slots(int n_threads) noexcept {
        return static_cast<std::size_t>(n_threads) * runtime::detail::kGroupMax;
    }
    std::size_t scores_stride() const noexcept { return v_stride + 32; }
    static std::size_t qf_stride(const Model& m) noexcept { return m.hparams().head_dim + 32; }
    static std::size_t elems(std::uint32_t a, std::uint32_t b) {
        return static_cast<std::size_t>(a) * b;
    }

    // The V row stride for a capacity: rounded up to 32 positions so that P·V dots can run over
    // zero-padded probabilities, plus 32 more where that is a multiple of 512 (1 KiB): rows a
    // power-of-two distance apart share cache sets, and a head's 64 or 128 V rows, read
    // together, would evict one another (n_ctx 2048 made every row 4 KiB apart).
    static std::size_t v_stride_for(std::size_t cap) noexcept {
        const std::size_t r = (cap + 31) / 32 * 32;
        return r % 512 == 0 ? r + 32 : r;
    }

    // K: [position][kv_dim] halves. V: transposed, [kv_dim][v_stride] halves, v_stride =
    // v_stride_for(n_ctx). Under a KV
    // budget (src/model/kv_cache.cpp) the layout holds kv_cap <= n_ctx positions and v_stride is
    // v_stride_for(kv_cap): the rows sit closer together and the mapping's tail is released.
    std::size_t v_stride;
    std::size_t v_stride_max;  // for n_ctx: the mapping size and the scratch
    std::uint32_t kv_cap;      // positions the current layout holds
    std::size_t kv_layer_elems;
    AlignedVec<float> x, q, k, v, attn, tmp, gate, up, scores, qf;
    AlignedVec<std::uint16_t> q16, p16;
    std::size_t act_stride[3] = {};
    std::unique_ptr<AlignedVec<std::byte>> act[3];
    std::vector<float> logits;      // last forward pass: one row per token that wanted logits
    std::vector<float> logits_out;  // what eval() returns
    std::vector<std::unique_ptr<PageBuffer>> k_cache, v_cache;  // per layer, halves
};

}  // namespace pylon::runtime
