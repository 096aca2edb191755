// The llama forward pass, run by every thread of the Context's pool together (SPMD): each step
// takes its share of rows (matrix products) or tokens (norms, RoPE, attention), and barriers
// separate steps that read what another thread wrote. The arithmetic follows llama.cpp's CPU
// graph so results agree to rounding: RMSNorm with a double sum, RoPE (adjacent pairs, angle
// advanced by repeated multiplication), half-precision K/V cache with queries rounded to half for
// Q·K and probabilities rounded to half for P·V, softmax with a double sum, SiLU-gated FFN.
#include <algorithm>
#include <cmath>

#include "model/attention.h"
#include "model/forward_buffers.h"
#include "pylon/runtime/quant.h"

namespace pylon::runtime {
namespace {

// Work below this many weight bytes per step is not worth splitting across threads.
constexpr std::uint64_t kMinBytesPerThread = 16 * 1024;
// A whole token below this many weight bytes runs on one thread (barriers would dominate).
constexpr std::uint64_t kSingleThreadModelBytes = 2u << 20;

struct MatJob {
    const Weight* w;
    const std::byte* act;  // prepared activation rows
    float* y;
    std::size_t ldy;
};

void rms_norm(const float* x, const float* w, float* out, std::size_t n, float eps) {
    double sum = 0.0;
    for (std::size_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
    const float mean = static_cast<float>(sum / static_cast<double>(n));
    const float scale = 1.0f / std::sqrt(mean + eps);
    for (std::size_t i = 0; i < n; ++i) out[i] = (x[i] * scale) * w[i];
}

class Forward {
public:
    Forward(const Model& m, const kernels::Kernels& k, Context::Buffers& b, ThreadPool& pool,
            std::uint32_t pos0, std::uint32_t n_ctx, std::span<const std::int32_t> tokens,
            bool all_logits, bool invariant)
        : m_(m),
          hp_(m.hparams()),
          k_(k),
          b_(b),
          pool_(pool),
          pos0_(pos0),
          n_ctx_(n_ctx),
          tokens_(tokens),
          n_(tokens.size()),
          all_logits_(all_logits),
          invariant_(invariant),
          attend_(detail::attend_for(k.isa)),
          attend_group_(detail::attend_group_for(k.isa)),
          swiglu_(detail::swiglu_for(k.isa)) {}

    void run(int ith, int nth) {
        embed(ith, nth);
        sync(nth);
        for (std::uint32_t l = 0; l < hp_.n_layer; ++l) layer(l, ith, nth);
        output(ith, nth);
    }

private:
    void sync(int nth) {
        if (nth > 1) pool_.barrier();
    }

    std::byte* act(ActClass c) { return b_.act[static_cast<int>(c)]->p; }

    void embed(int ith, int nth) {
        const Weight& e = m_.token_embd();
        const auto [t0, t1] = ThreadPool::split(n_, ith, nth);
        for (std::size_t t = t0; t < t1; ++t) {
            const std::byte* row = e.data + static_cast<std::size_t>(tokens_[t]) * e.row_stride;
            dequantize_row(e.type, row, b_.x.p + t * hp_.n_embd, hp_.n_embd);
        }
    }

    // out-of-place norm of the residual rows into `dst`, then the activation formats that the
    // consuming weights need.
    void norm_and_prepare(const float* src, const float* w, std::size_t k, float* scratch,
                          std::initializer_list<const Weight*> consumers, std::size_t rows, int ith,
                          int nth) {
        const auto [t0, t1] = ThreadPool::split(rows, ith, nth);
        for (std::size_t t = t0; t < t1; ++t) {
            const float* row = src + t * k;
            float* normed = scratch + t * k;
            if (w != nullptr) {
                rms_norm(row, w, normed, k, hp_.rms_eps);
            } else {
                normed = const_cast<float*>(row);
            }
            prepare(normed, k, t, consumers);
        }
    }

    void prepare(const float* row, std::size_t k, std::size_t t,
                 std::initializer_list<const Weight*> consumers) {
        bool done[3] = {false, false, false};
        for (const Weight* w : consumers) {
            const auto c = static_cast<int>(act_class(w->type));
            if (done[c]) continue;
            done[c] = true;
            const std::size_t stride = kernels::act_row_bytes(w->type, k);
            k_.prepare_act(w->type, row, k, act(act_class(w->type)) + t * stride);
        }
    }

    // Splits the concatenated rows of `jobs` across the threads; each thread multiplies its
    // rows by all n activation rows.
    void matmul(std::initializer_list<MatJob> jobs, std::size_t n_tokens, int ith, int nth) {
        std::uint64_t total_rows = 0, total_bytes = 0;
        for (const MatJob& j : jobs) {
            total_rows += j.w->rows;
            total_bytes += j.w->bytes();
        }
        int workers = nth;
        if (total_bytes * n_tokens < kMinBytesPerThread * static_cast<std::uint64_t>(nth)) {
            workers = 1;
        }
        if (ith >= workers) return;
        auto [r0, r1] = ThreadPool::split(total_rows, ith, workers);
        // Round the boundaries to 16 rows so SIMD row tiles stay whole.
        auto round = [&](std::uint64_t r) { return std::min(total_rows, (r + 8) / 16 * 16); };
        if (workers > 1) {
            r0 = ith == 0 ? 0 : round(r0);
            r1 = ith == workers - 1 ? total_rows : round(r1);
        }
        std::uint64_t base = 0;
        for (const MatJob& j : jobs) {
            const std::uint64_t lo = std::max<std::uint64_t>(r0, base);
            const std::uint64_t hi = std::min<std::uint64_t>(r1, base + j.w->rows);
            if (lo < hi) {
                const Weight& w = *j.w;
                if (invariant_ && n_tokens > 1 && act_class(w.type) != ActClass::q8) {
                    // F32/F16 products are summed in another order for batches (tinyBLAS's):
                    // gemm_lone gives every token the bits of a lone token.
                    k_.gemm_lone(w.type, w.data, w.row_stride, w.cols, w.rows, lo - base, hi - base,
                                 j.act, n_tokens, j.y, j.ldy);
                } else if (w.packed == nullptr || w.packed_isa != k_.isa ||
                           !k_.gemm_packed(w.type, w.packed, w.cols, w.rows, lo - base, hi - base,
                                           j.act, n_tokens, j.y, j.ldy)) {
                    // Quantized products are summed alike for any number of tokens.
                    k_.gemm(w.type, w.data, w.row_stride, w.cols, w.rows, lo - base, hi - base,
                            j.act, n_tokens, j.y, j.ldy);
                }
            }
            base += j.w->rows;
        }
    }

    std::size_t out_rows() const { return all_logits_ ? n_ : 1; }

    const std::byte* act_for(const Weight& w) { return act(act_class(w.type)); }

    void layer(std::uint32_t il, int ith, int nth) {
        const LayerWeights& L = m_.layers()[il];
        const std::size_t d = hp_.n_embd, kvd = hp_.kv_dim();
        // Attention block: norm -> Q, K, V.
        norm_and_prepare(b_.x.p, L.attn_norm.data(), d, b_.attn.p, {&L.wq, &L.wk, &L.wv}, n_, ith,
                         nth);
        sync(nth);
        matmul({{&L.wq, act_for(L.wq), b_.q.p, d},
                {&L.wk, act_for(L.wk), b_.k.p, kvd},
                {&L.wv, act_for(L.wv), b_.v.p, kvd}},
               n_, ith, nth);
        sync(nth);
        rope_and_store(il, ith, nth);
        sync(nth);
        attention(il, ith, nth);
        sync(nth);
        norm_and_prepare(b_.attn.p, nullptr, d, nullptr, {&L.wo}, n_, ith, nth);
        sync(nth);
        matmul({{&L.wo, act_for(L.wo), b_.tmp.p, d}}, n_, ith, nth);
        sync(nth);
        // Like llama.cpp, the last layer's FFN runs only for the tokens whose logits are wanted
        // (which changes F32/F16 rounding there: a lone token uses ggml_vec_dot's order).
        const std::size_t rows = il + 1 == hp_.n_layer ? out_rows() : n_;
        if (rows != n_) {
            if (ith == 0) {
                std::copy_n(b_.x.p + (n_ - 1) * d, d, b_.x.p);
                std::copy_n(b_.tmp.p + (n_ - 1) * d, d, b_.tmp.p);
            }
            sync(nth);
        }
        // Residual, then the FFN block.
        {
            const auto [t0, t1] = ThreadPool::split(rows, ith, nth);
            for (std::size_t i = t0 * d; i < t1 * d; ++i) b_.x.p[i] += b_.tmp.p[i];
        }
        norm_and_prepare(b_.x.p, L.ffn_norm.data(), d, b_.attn.p, {&L.w_gate, &L.w_up}, rows, ith,
                         nth);
        sync(nth);
        matmul({{&L.w_gate, act_for(L.w_gate), b_.gate.p, hp_.n_ff},
                {&L.w_up, act_for(L.w_up), b_.up.p, hp_.n_ff}},
               rows, ith, nth);
        sync(nth);
        {
            const std::size_t ff = hp_.n_ff;
            const auto [t0, t1] = ThreadPool::split(rows, ith, nth);
            for (std::size_t t = t0; t < t1; ++t) {
                float* g = b_.gate.p + t * ff;
                const float* u = b_.up.p + t * ff;
                swiglu_(g, u, ff);
                prepare(g, ff, t, {&L.w_down});
            }
        }
        sync(nth);
        matmul({{&L.w_down, act_for(L.w_down), b_.tmp.p, d}}, rows, ith, nth);
        sync(nth);
        {
            const auto [t0, t1] = ThreadPool::split(rows, ith, nth);
            for (std::size_t i = t0 * d; i < t1 * d; ++i) b_.x.p[i] += b_.tmp.p[i];
        }
        // The next step (next layer's norm or the output norm) reads only this thread's rows.
    }

    void rope_and_store(std::uint32_t il, int ith, int nth) {
        const std::size_t d = hp_.n_embd, kvd = hp_.kv_dim(), hd = hp_.head_dim;
        const float theta_scale =
            std::pow(hp_.rope_freq_base, -2.0f / static_cast<float>(hp_.n_rot));
        std::uint16_t* kc = b_.k_cache[il]->as<std::uint16_t>();
        std::uint16_t* vc = b_.v_cache[il]->as<std::uint16_t>();
        const auto [t0, t1] = ThreadPool::split(n_, ith, nth);
        float cs[2 * 512];
        for (std::size_t t = t0; t < t1; ++t) {
            const std::size_t pos = pos0_ + t;
            float theta = static_cast<float>(pos);
            for (std::uint32_t i0 = 0; i0 < hp_.n_rot; i0 += 2) {
                cs[i0] = std::cos(theta);
                cs[i0 + 1] = std::sin(theta);
                theta *= theta_scale;
            }
            auto rotate = [&](float* head) {
                for (std::uint32_t i0 = 0; i0 < hp_.n_rot; i0 += 2) {
                    const float x0 = head[i0], x1 = head[i0 + 1];
                    head[i0] = std::fma(x0, cs[i0], -(x1 * cs[i0 + 1]));
                    head[i0 + 1] = std::fma(x0, cs[i0 + 1], x1 * cs[i0]);
                }
            };
            for (std::uint32_t h = 0; h < hp_.n_head; ++h) rotate(b_.q.p + t * d + h * hd);
            for (std::uint32_t h = 0; h < hp_.n_head_kv; ++h) rotate(b_.k.p + t * kvd + h * hd);
            k_.f32_to_f16(b_.k.p + t * kvd, kc + pos * kvd, kvd);
            // V goes in transposed: convert the row with the kernel, then scatter.
            std::uint16_t* vh =
                b_.q16.p + static_cast<std::size_t>(ith) * detail::kGroupMax * (hd + 32);
            const float* vrow = b_.v.p + t * kvd;
            for (std::size_t e0 = 0; e0 < kvd; e0 += hd) {
                k_.f32_to_f16(vrow + e0, vh, hd);
                for (std::size_t e = 0; e < hd; ++e) vc[(e0 + e) * b_.v_stride + pos] = vh[e];
            }
        }
    }

    void attention(std::uint32_t il, int ith, int nth) {
        const std::size_t d = hp_.n_embd, kvd = hp_.kv_dim(), hd = hp_.head_dim;
        const std::uint32_t group = hp_.n_head / hp_.n_head_kv;
        const std::uint16_t* kc = b_.k_cache[il]->as<std::uint16_t>();
        const std::uint16_t* vc = b_.v_cache[il]->as<std::uint16_t>();
        const auto me = static_cast<std::size_t>(ith);
        detail::HeadScratch scratch[detail::kGroupMax];
        for (std::size_t g = 0; g < detail::kGroupMax; ++g) {
            const std::size_t slot = me * detail::kGroupMax + g;
            scratch[g] = {b_.scores.p + slot * b_.scores_stride(),
                          b_.qf.p + slot * Context::Buffers::qf_stride(m_),
                          b_.q16.p + slot * (hd + 32), b_.p16.p + slot * b_.v_stride};
        }
        detail::HeadJob job{};
        job.k_stride = kvd;
        job.v_stride = b_.v_stride;
        job.hd = hd;
        job.scale = 1.0f / std::sqrt(static_cast<float>(hd));
        job.batched = n_ > 1 && !invariant_;
        auto fill = [&](std::size_t t, std::size_t h) {
            job.q = b_.q.p + t * d + h * hd;
            job.k = kc + h / group * hd;
            job.v = vc + h / group * hd * b_.v_stride;
            job.n_kv = pos0_ + t + 1;
            job.out = b_.attn.p + t * d + h * hd;
        };
        // KV heads this thread has read in this pass (bit per head; prefetch the others).
        std::uint64_t seen = 0;
        auto first_read = [&](std::size_t kvh) {
            const std::uint64_t bit = kvh < 64 ? std::uint64_t{1} << kvh : 0;
            const bool first = bit == 0 || (seen & bit) == 0;
            seen |= bit;
            return first;
        };
        const std::size_t tb = std::max<std::size_t>(1, detail::kGroupMax / group);
        const std::size_t blocks = (n_ + tb - 1) / tb;
        const std::size_t units = blocks * hp_.n_head_kv;
        // Groups only where there are enough of them to keep every thread busy.
        if (job.batched || group > detail::kGroupMax || units < static_cast<std::size_t>(nth)) {
            // (token, head) pairs dealt round-robin: later tokens attend to more positions.
            const std::size_t pairs = n_ * hp_.n_head;
            for (std::size_t p = me; p < pairs; p += static_cast<std::size_t>(nth)) {
                const std::size_t t = p / hp_.n_head, h = p % hp_.n_head;
                fill(t, h);
                job.prefetch = first_read(h / group);
                attend_(job, scratch[0]);
            }
            return;
        }
        // Lone-token order (decode, verification): the query heads of a KV head and as many
        // consecutive tokens as fit one group share each key and value row read
        // (attend_group); the units (token block, KV head) are dealt round-robin.
        detail::HeadJob jobs[detail::kGroupMax];
        for (std::size_t u = me; u < units; u += static_cast<std::size_t>(nth)) {
            const std::size_t b = u / hp_.n_head_kv, kvh = u % hp_.n_head_kv;
            const bool prefetch = first_read(kvh);
            std::size_t count = 0;
            for (std::size_t t = b * tb; t < std::min(n_, (b + 1) * tb); ++t) {
                for (std::size_t h = kvh * group; h < (kvh + 1) * group; ++h) {
                    fill(t, h);
                    job.prefetch = prefetch && count == 0;
                    jobs[count++] = job;
                }
            }
            attend_group_(jobs, count, scratch);
        }
    }

    void output(int ith, int nth) {
        const std::size_t d = hp_.n_embd;
        const Weight& w = m_.output();
        // The rows whose logits are wanted (the last layer left only those): the last token, or
        // all of them.
        const std::size_t count = out_rows();
        // The rows read here were finished by whichever thread owned them in the last layer.
        sync(nth);
        const auto [t0, t1] = ThreadPool::split(count, ith, nth);
        for (std::size_t i = t0; i < t1; ++i) {
            float* normed = b_.attn.p + i * d;
            rms_norm(b_.x.p + i * d, m_.output_norm().data(), normed, d, hp_.rms_eps);
            prepare(normed, d, i, {&w});
        }
        sync(nth);
        matmul({{&w, act_for(w), b_.logits.data(), hp_.n_vocab}}, count, ith, nth);
    }

    const Model& m_;
    const LlamaHparams& hp_;
    const kernels::Kernels& k_;
    Context::Buffers& b_;
    ThreadPool& pool_;
    std::uint32_t pos0_, n_ctx_;
    std::span<const std::int32_t> tokens_;
    std::size_t n_;
    bool all_logits_;
    bool invariant_;  // every token's bits as if evaluated alone
    detail::AttendFn attend_;
    detail::AttendGroupFn attend_group_;
    detail::SwigluFn swiglu_;
};

}  // namespace

void Context::forward(std::span<const std::int32_t> tokens, bool all_logits, bool invariant) {
    Forward f(*model_, *kernels_, *buf_, pool_, n_past_, n_ctx_, tokens, all_logits, invariant);
    const bool tiny =
        model_->weight_bytes_per_token() < kSingleThreadModelBytes && tokens.size() < 8;
    if (pool_.size() == 1 || tiny) {
        f.run(0, 1);
    } else {
        pool_.run([&f](int ith, int nth) { f.run(ith, nth); });
    }
}

}  // namespace pylon::runtime
