// AVX-512 VNNI products of Q4_0 / Q8_0 weights repacked once, at model load, into 16-row panels
// (one zmm lane per weight row), for every batch size from decode (n = 1) to prefill.
//
// Packed layout of a weight (rows rounded up to 16 with zero rows; nb = k / 32 blocks):
//   panel p (rows 16p..16p+15), 64-byte aligned, made of ceil(nb / 2) groups of two blocks:
//     quants of block 2g, quants of block 2g+1, then one 64-byte line with both blocks' scales
//     (16 halves each: the 16 rows' block scales); an odd last block leaves its partner zero.
//     A block's quants are V vectors of 64 bytes (Q4_0: V = 4, Q8_0: V = 8); vector j holds, in
//     lane r, bytes 4j..4j+3 of the block's quants of row 16p + r: Q4_0 the packed nibbles as
//     stored (low nibbles are elements 4j.., high ones 16 + 4j..), Q8_0 the quants xor 0x80
//     (= q + 128, unsigned for vpdpbusd).
// The scales travel inside the quant stream (a separate scale stream per panel was a second
// sequence the prefetchers missed: decode lost a quarter of its bandwidth to it).
// Compared with row-major blocks this streams the weights in one aligned sequence and needs no
// permutes or horizontal sums. Rounding follows llama.cpp (x86) exactly. Q8_0 as
// ggml_vec_dot_q8_0_q8_0 and tinyBLAS_Q0_AVX: for each row, eight float accumulators,
// accumulator g taking the exact integer sum of elements 4g..4g+3 of every block as
// fma(d_w * d_a, sum, acc_g), then the tree (g + g+4, then (0+2) + (1+3)); a vpdpbusd of
// vector g (seeded with -bias * the activation group's sum) gives that integer sum for sixteen
// rows at once. Q4_0 as ggml's runtime-repacked q4_0_8x8 gemv/gemm (which llama.cpp uses for
// Q4_0 weights on AVX2/AVX-512 CPUs): one accumulator per row, each block's exact integer sum
// added as fma(sum, d_w * d_a, acc). One kernel serves every batch size, so one token decoded alone
// gets the bits it gets inside a prompt batch. With several tokens a Q4_0 panel is first
// unpacked to bytes (Q8_0's layout) so token pairs skip the nibble unpacking.

// GCC 12 reports the deliberately undefined pass-through operand inside _mm512_cvtph_ps and
// friends as (maybe-)uninitialized; the suppression must precede the intrinsics header.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels/kernel_tables.h"

namespace pylon::runtime::kernels::detail {
namespace {

constexpr std::size_t kRows = 16;
constexpr int kTokens = 2;
constexpr std::size_t kActBlock = sizeof(BlockQ8_0);
// Decode prefetches the panel stream this far ahead.
constexpr std::size_t kAhead = 8192;
// Decode in the eight-lane order reads this many panel runs side by side (kernel_bench, cold,
// one thread: 10-12 GB/s with one, 13-16 with four, 14-18 with eight; its accumulators spill at
// any count above two, which costs nothing while the loads wait for memory). The block order
// reads four (kBlockStreams), whose accumulators stay in registers.
constexpr int kStreamsGroups = 8;

struct Layout {
    bool q4;
    std::size_t nb, vecs, block_bytes, group_stride, panel_stride;
    std::size_t quants(std::size_t b) const noexcept {
        return (b / 2) * group_stride + (b % 2) * block_bytes;
    }
    std::size_t scales(std::size_t b) const noexcept {
        return (b / 2) * group_stride + 2 * block_bytes + (b % 2) * 32;
    }
};

Layout layout(GgmlType w, std::size_t k) {
    Layout l{};
    l.q4 = w == GgmlType::Q4_0;
    l.nb = k / kQK8_0;
    l.vecs = l.q4 ? 4 : 8;
    l.block_bytes = l.vecs * 64;
    l.group_stride = 2 * l.block_bytes + 64;
    l.panel_stride = (l.nb + 1) / 2 * l.group_stride;
    return l;
}

struct ActInfo {
    std::int32_t seed[8];   // -bias * (sum of each group of 4 activation quants of the block)
    std::int32_t seed_sum;  // their sum: -bias * (sum of the block's activation quants)
    float d;                // the block's activation scale
};

std::int32_t load_i32(const unsigned char* p) {
    std::int32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// The eight-lane order's final sum of a row's group accumulators: hsum_float_8's tree (groups g
// and g + 4, then (0 + 2) + (1 + 3)).
__m512 hsum8(const __m512* acc) {
    const __m512 r0 = _mm512_add_ps(acc[4], acc[0]);
    const __m512 r1 = _mm512_add_ps(acc[5], acc[1]);
    const __m512 r2 = _mm512_add_ps(acc[6], acc[2]);
    const __m512 r3 = _mm512_add_ps(acc[7], acc[3]);
    return _mm512_add_ps(_mm512_add_ps(r0, r2), _mm512_add_ps(r1, r3));
}

// kQ4: the panel holds Q4_0 nibbles (else bytes, Q8_0's layout). kBlock: the rounding of
// Q4_0 weights (one accumulator per row, each block's exact integer sum added as
// fma(sum, d_w * d_a, acc)), else that of Q8_0 weights (eight group accumulators).
template <int T, bool kQ4, bool kBlock>
void tile(const unsigned char* panel, const Layout& L, const unsigned char* const* acts,
          const ActInfo* const* info, float* y, std::size_t ldy, __mmask16 m) {
    // acc[t][g]: group g's running sum for token t, one lane per row (kBlock: acc[t][0] only).
    __m512 acc[T][8];
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
#pragma GCC unroll 8
        for (int g = 0; g < 8; ++g) acc[t][g] = _mm512_setzero_ps();
    }
    const __m512i low = _mm512_set1_epi8(0x0f);
    for (std::size_t b = 0; b < L.nb; ++b) {
        const unsigned char* q = panel + L.quants(b);
        __m512i w[8];
        if constexpr (kQ4) {
            for (int j = 0; j < 4; ++j) {
                _mm_prefetch(reinterpret_cast<const char*>(q + kAhead + 64 * j), _MM_HINT_T0);
            }
#pragma GCC unroll 4
            for (int j = 0; j < 4; ++j) {
                const __m512i x = _mm512_load_si512(q + 64 * j);
                w[j] = _mm512_and_si512(x, low);
                w[j + 4] = _mm512_and_si512(_mm512_srli_epi16(x, 4), low);
            }
        } else {
            for (int j = 0; j < 8; ++j) {
                _mm_prefetch(reinterpret_cast<const char*>(q + kAhead + 64 * j), _MM_HINT_T0);
            }
#pragma GCC unroll 8
            for (int j = 0; j < 8; ++j) w[j] = _mm512_load_si512(q + 64 * j);
        }
        const __m512 d = _mm512_cvtph_ps(
            _mm256_load_si256(reinterpret_cast<const __m256i*>(panel + L.scales(b))));
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) {
            const unsigned char* a = acts[t] + b * kActBlock + 2;
            const ActInfo& in = info[t][b];
            const __m512 scale = _mm512_mul_ps(d, _mm512_set1_ps(in.d));
            if constexpr (kBlock) {
                // Two integer chains (exact, so their split is free), then one fma per block.
                __m512i s0 = _mm512_set1_epi32(in.seed_sum), s1 = _mm512_setzero_si512();
#pragma GCC unroll 4
                for (int g = 0; g < 8; g += 2) {
                    s0 = _mm512_dpbusd_epi32(s0, w[g], _mm512_set1_epi32(load_i32(a + 4 * g)));
                    s1 = _mm512_dpbusd_epi32(s1, w[g + 1],
                                             _mm512_set1_epi32(load_i32(a + 4 * g + 4)));
                }
                acc[t][0] =
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), scale, acc[t][0]);
                continue;
            }
#pragma GCC unroll 8
            for (int g = 0; g < 8; ++g) {
                const __m512i s = _mm512_dpbusd_epi32(_mm512_set1_epi32(in.seed[g]), w[g],
                                                      _mm512_set1_epi32(load_i32(a + 4 * g)));
                acc[t][g] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(s), acc[t][g]);
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
        if constexpr (kBlock) {
            _mm512_mask_storeu_ps(y + static_cast<std::size_t>(t) * ldy, m, acc[t][0]);
            continue;
        }
        _mm512_mask_storeu_ps(y + static_cast<std::size_t>(t) * ldy, m, hsum8(acc[t]));
    }
}

// Decode (one token) over S panels at once, read as S interleaved streams: one core's read
// bandwidth grows with the number of concurrent sequential streams (the L2 streamer follows each;
// measured here 10 GB/s for one stream, 14-16 GB/s for four). Every row is summed exactly as in
// tile<1, ...>, so the bits do not depend on S.

template <int S>
void decode_streams(const unsigned char* const* panels, const Layout& L, const unsigned char* act,
                    const ActInfo* info, float* const* ys, const __mmask16* ms) {
    __m512 acc[S][8];
#pragma GCC unroll 8
    for (int s = 0; s < S; ++s) {
#pragma GCC unroll 8
        for (int g = 0; g < 8; ++g) acc[s][g] = _mm512_setzero_ps();
    }
    const __m512i low = _mm512_set1_epi8(0x0f);
    for (std::size_t b = 0; b < L.nb; ++b) {
        const unsigned char* a = act + b * kActBlock + 2;
        const ActInfo& in = info[b];
        const __m512 da = _mm512_set1_ps(in.d);
        const std::size_t qoff = L.quants(b), soff = L.scales(b);
#pragma GCC unroll 8
        for (int s = 0; s < S; ++s) {
            const unsigned char* q = panels[s] + qoff;
            for (std::size_t j = 0; j < L.vecs; ++j) {
                _mm_prefetch(reinterpret_cast<const char*>(q + kAhead + 64 * j), _MM_HINT_T0);
            }
            const __m512 scale = _mm512_mul_ps(
                _mm512_cvtph_ps(
                    _mm256_load_si256(reinterpret_cast<const __m256i*>(panels[s] + soff))),
                da);
            if (L.q4) {
#pragma GCC unroll 4
                for (int j = 0; j < 4; ++j) {
                    const __m512i x = _mm512_load_si512(q + 64 * j);
                    const __m512i lo =
                        _mm512_dpbusd_epi32(_mm512_set1_epi32(in.seed[j]), _mm512_and_si512(x, low),
                                            _mm512_set1_epi32(load_i32(a + 4 * j)));
                    const __m512i hi =
                        _mm512_dpbusd_epi32(_mm512_set1_epi32(in.seed[j + 4]),
                                            _mm512_and_si512(_mm512_srli_epi16(x, 4), low),
                                            _mm512_set1_epi32(load_i32(a + 4 * j + 16)));
                    acc[s][j] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(lo), acc[s][j]);
                    acc[s][j + 4] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(hi), acc[s][j + 4]);
                }
            } else {
#pragma GCC unroll 8
                for (int g = 0; g < 8; ++g) {
                    const __m512i x = _mm512_load_si512(q + 64 * g);
                    const __m512i sum = _mm512_dpbusd_epi32(_mm512_set1_epi32(in.seed[g]), x,
                                                            _mm512_set1_epi32(load_i32(a + 4 * g)));
                    acc[s][g] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(sum), acc[s][g]);
                }
            }
        }
    }
#pragma GCC unroll 8
    for (int s = 0; s < S; ++s) _mm512_mask_storeu_ps(ys[s], ms[s], hsum8(acc[s]));
}

using TileFn = void (*)(const unsigned char*, const Layout&, const unsigned char* const*,
                        const ActInfo* const*, float*, std::size_t, __mmask16);

// Q4_0 weights in the block order for a small batch of T tokens (speculative verification, the
// tail of a prompt), over S panels read side by side as decode reads them: each panel's nibbles
// are read and unpacked once for all T tokens, so up to eight tokens cost little more memory time
// than one. Each (token, block) sum is the exact integer sum of tile<1, true, true>, added with
// the same fma: the bits of one token alone.
template <int T, int S>
void tile_q4_blocks(const unsigned char* const* panels, const Layout& L,
                    const unsigned char* const* acts, const ActInfo* const* info, float* const* ys,
                    std::size_t ldy, const __mmask16* ms) {
    constexpr int kChains = T * S <= 4 ? 2 : 1;  // few sums: two integer chains each
    __m512 acc[S][T];
#pragma GCC unroll 8
    for (int p = 0; p < S; ++p) {
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) acc[p][t] = _mm512_setzero_ps();
    }
    const __m512i low = _mm512_set1_epi8(0x0f);
    for (std::size_t b = 0; b < L.nb; ++b) {
        const std::size_t qoff = L.quants(b);
#pragma GCC unroll 8
        for (int p = 0; p < S; ++p) {
            const unsigned char* q = panels[p] + qoff;
            for (int j = 0; j < 4; ++j) {
                _mm_prefetch(reinterpret_cast<const char*>(q + kAhead + 64 * j), _MM_HINT_T0);
            }
            __m512i sum[T][kChains];
#pragma GCC unroll 8
            for (int t = 0; t < T; ++t) {
                sum[t][0] = _mm512_set1_epi32(info[t][b].seed_sum);
                if constexpr (kChains == 2) sum[t][1] = _mm512_setzero_si512();
            }
#pragma GCC unroll 4
            for (int j = 0; j < 4; ++j) {
                const __m512i x = _mm512_load_si512(q + 64 * j);
                const __m512i wl = _mm512_and_si512(x, low);
                const __m512i wh = _mm512_and_si512(_mm512_srli_epi16(x, 4), low);
#pragma GCC unroll 8
                for (int t = 0; t < T; ++t) {
                    const unsigned char* a = acts[t] + b * kActBlock + 2;
                    sum[t][0] =
                        _mm512_dpbusd_epi32(sum[t][0], wl, _mm512_set1_epi32(load_i32(a + 4 * j)));
                    sum[t][kChains - 1] = _mm512_dpbusd_epi32(
                        sum[t][kChains - 1], wh, _mm512_set1_epi32(load_i32(a + 4 * j + 16)));
                }
            }
            const __m512 d = _mm512_cvtph_ps(
                _mm256_load_si256(reinterpret_cast<const __m256i*>(panels[p] + L.scales(b))));
#pragma GCC unroll 8
            for (int t = 0; t < T; ++t) {
                __m512i total = sum[t][0];
                if constexpr (kChains == 2) total = _mm512_add_epi32(total, sum[t][1]);
                acc[p][t] =
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(total),
                                    _mm512_mul_ps(d, _mm512_set1_ps(info[t][b].d)), acc[p][t]);
            }
        }
    }
#pragma GCC unroll 8
    for (int p = 0; p < S; ++p) {
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
            _mm512_mask_storeu_ps(ys[p] + static_cast<std::size_t>(t) * ldy, ms[p], acc[p][t]);
        }
    }
}

using BlockFn = void (*)(const unsigned char* const*, const Layout&, const unsigned char* const*,
                         const ActInfo* const*, float* const*, std::size_t, const __mmask16*);

constexpr int kBlockTokens = 8;
// Batches up to this size take tile_q4_blocks, eight tokens at a time (kernel_bench, cold, one
// thread, 768x768: 4 tokens 2.2x faster than token pairs over an unpacked panel, 12 tokens 2x,
// 17 tokens 1.5x); prompts keep the unpacked-panel path (no measurable difference at 512).
constexpr std::size_t kBlockBatchMax = 32;
// Panel runs read side by side for a batch of T tokens (index T - 1): as many as the
// accumulators of S x T sums leave registers for.
constexpr int kBlockStreams[kBlockTokens] = {4, 4, 2, 2, 2, 2, 1, 1};
constexpr BlockFn kBlockTiles[kBlockTokens] = {
    tile_q4_blocks<1, 4>, tile_q4_blocks<2, 4>, tile_q4_blocks<3, 2>, tile_q4_blocks<4, 2>,
    tile_q4_blocks<5, 2>, tile_q4_blocks<6, 2>, tile_q4_blocks<7, 1>, tile_q4_blocks<8, 1>};
constexpr BlockFn kBlockTilesOne[kBlockTokens] = {
    tile_q4_blocks<1, 1>, tile_q4_blocks<2, 1>, tile_q4_blocks<3, 1>, tile_q4_blocks<4, 1>,
    tile_q4_blocks<5, 1>, tile_q4_blocks<6, 1>, tile_q4_blocks<7, 1>, tile_q4_blocks<8, 1>};

template <bool kQ4, bool kBlock>
constexpr TileFn kTiles[kTokens] = {tile<1, kQ4, kBlock>, tile<2, kQ4, kBlock>};

// Packs rows [0, rows) (rows <= 16; the others become zero) of the panel starting at `W` into
// `out` (L.panel_stride bytes, 64-byte aligned): one masked 32-bit gather per vector and block.
// The caller guarantees w_stride * 15 fits in 31 bits.
void pack_panel(const Layout& L, const unsigned char* W, std::size_t w_stride, std::size_t rows,
                unsigned char* out) {
    const std::size_t block = L.q4 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0);
    const auto m = static_cast<__mmask16>(rows >= kRows ? 0xffffu : (1u << rows) - 1u);
    const __m512i index =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32(static_cast<int>(w_stride)));
    const __m512i zero = _mm512_setzero_si512();
    const __m512i flip = _mm512_set1_epi8(L.q4 ? 0 : static_cast<char>(0x80));
    for (std::size_t b = 0; b < L.nb; ++b) {
        const unsigned char* base = W + b * block;
        if (b % 2 == 0) {  // the 16 rows are 16 streams: request each a few blocks ahead
            for (std::size_t r = 0; r < rows; ++r) {
                _mm_prefetch(reinterpret_cast<const char*>(base + r * w_stride + 6 * block),
                             _MM_HINT_T0);
            }
        }
        // Four bytes at the scale (d and the first two quants, inside the block): keep d.
        const __m512i d = _mm512_mask_i32gather_epi32(zero, m, index, base, 1);
        _mm256_store_si256(reinterpret_cast<__m256i*>(out + L.scales(b)), _mm512_cvtepi32_epi16(d));
        unsigned char* q = out + L.quants(b);
        for (std::size_t j = 0; j < L.vecs; ++j) {
            const __m512i g = _mm512_mask_i32gather_epi32(zero, m, index, base + 2 + 4 * j, 1);
            // Padding rows stay zero (their scale is zero too), as in avx512_pack.
            _mm512_store_si512(q + 64 * j, _mm512_maskz_xor_epi32(m, g, flip));
        }
        if (b % 2 == 0 && b + 1 == L.nb) {  // the odd last block's partner: zero
            std::memset(out + L.quants(b + 1), 0, L.block_bytes);
            std::memset(out + L.scales(b + 1), 0, 32);
        }
    }
}

}  // namespace

std::size_t avx512_packed_bytes(GgmlType w, std::size_t rows, std::size_t k) noexcept {
    if ((w != GgmlType::Q4_0 && w != GgmlType::Q8_0) || k == 0 || k % kQK8_0 != 0 || rows == 0) {
        return 0;
    }
    const Layout L = layout(w, k);
    // pack_panel's gathers address 16 rows with 32-bit offsets.
    if (L.nb * (L.q4 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0)) > 0x7fffffffu / kRows) return 0;
    const std::size_t panels = rows / kRows + (rows % kRows != 0);
    std::size_t total = 0;
    if (__builtin_mul_overflow(panels, L.panel_stride, &total)) return 0;
    return total;
}

void avx512_pack(GgmlType w, const void* W, std::size_t w_stride, std::size_t rows, std::size_t k,
                 void* out) noexcept {
    const Layout L = layout(w, k);
    const auto* src = static_cast<const unsigned char*>(W);
    auto* dst = static_cast<unsigned char*>(out);
    for (std::size_t p = 0; p * kRows < rows; ++p) {
        pack_panel(L, src + p * kRows * w_stride, w_stride, std::min(kRows, rows - p * kRows),
                   dst + p * L.panel_stride);
    }
}

namespace {

template <class PanelOf>
bool run_panels(const Layout& L, std::size_t k, bool blocks, std::size_t r0, std::size_t r1,
                const void* A, std::size_t n, float* y, std::size_t ldy, bool streams,
                PanelOf&& panel_of) {
    if (r0 >= r1 || n == 0) return true;
    const std::size_t a_stride = act_row_bytes(GgmlType::Q8_0, k);
    const std::size_t sums_at = (L.nb * kActBlock + 63) & ~std::size_t{63};
    // Every (token, block)'s seed and scale, computed once for all panels.
    constexpr std::size_t kStackInfo = 256;
    ActInfo stack_info[kStackInfo];
    ActInfo* info = stack_info;
    if (n * L.nb > kStackInfo) {
        info = static_cast<ActInfo*>(std::malloc(n * L.nb * sizeof(ActInfo)));
        if (info == nullptr) return false;
    }
    const auto* abytes = static_cast<const unsigned char*>(A);
    const int shift = L.q4 ? 3 : 7;
    for (std::size_t t = 0; t < n; ++t) {
        const unsigned char* row = abytes + t * a_stride;
        const auto* sums = reinterpret_cast<const std::int32_t*>(row + sums_at);
        for (std::size_t b = 0; b < L.nb; ++b) {
            ActInfo& in = info[t * L.nb + b];
            in.seed_sum = 0;
            for (std::size_t g = 0; g < 8; ++g) {
                in.seed[g] = -sums[8 * b + g] * (1 << shift);
                in.seed_sum += in.seed[g];
            }
            std::uint16_t h;
            std::memcpy(&h, row + b * kActBlock, 2);
            in.d = _cvtsh_ss(h);
        }
    }
    auto mask_of = [&](std::size_t p) {
        const std::size_t first = p * kRows;
        const std::size_t lo = r0 > first ? r0 - first : 0;
        const std::size_t hi = r1 - first < kRows ? r1 - first : kRows;
        return static_cast<__mmask16>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
    };
    if (n == 1 && streams && !blocks) {
        // Decode in the eight-lane order: the panels are split into kStreamsGroups contiguous
        // runs, read side by side (`streams` is only set for weights packed at load, whose
        // panel_of never fails). The block order's decode is tile_q4_blocks<1, 4> below.
        constexpr int S = kStreamsGroups;
        const std::size_t p_begin = r0 / kRows, p_end = (r1 + kRows - 1) / kRows;
        const std::size_t per = (p_end - p_begin) / S;
        const unsigned char* ps[S];
        float* ys[S];
        __mmask16 ms[S];
        auto one = [&](int i, std::size_t p) {
            ps[i] = panel_of(p);
            ys[i] = y + p * kRows;
            ms[i] = mask_of(p);
        };
        for (std::size_t i = 0; i < per; ++i) {
            for (int j = 0; j < S; ++j) one(j, p_begin + static_cast<std::size_t>(j) * per + i);
            decode_streams<S>(ps, L, abytes, info, ys, ms);
        }
        for (std::size_t p = p_begin + S * per; p < p_end; ++p) {
            one(0, p);
            decode_streams<1>(ps, L, abytes, info, ys, ms);
        }
        if (info != stack_info) std::free(info);
        return true;
    }
    if (blocks && n <= kBlockBatchMax) {
        // Q4_0 in the block order: each panel once for up to eight tokens at a time; the panels
        // in side-by-side runs as in decode where `streams` allows (weights packed at load).
        const std::size_t p_begin = r0 / kRows, p_end = (r1 + kRows - 1) / kRows;
        const int first_tokens = static_cast<int>(std::min<std::size_t>(n, kBlockTokens));
        const std::size_t S =
            streams ? static_cast<std::size_t>(kBlockStreams[first_tokens - 1]) : 1;
        const std::size_t per = (p_end - p_begin) / S;
        constexpr std::size_t kMaxS = 4;
        const unsigned char* ps[kMaxS];
        float* ys[kMaxS];
        __mmask16 ms[kMaxS];
        // Group g: panels p_begin + s * per + g (s < S) for g < per, then the rest one by one.
        const std::size_t groups = per + (p_end - p_begin - S * per);
        for (std::size_t g = 0; g < groups; ++g) {
            const std::size_t width = g < per ? S : 1;
            for (std::size_t i = 0; i < width; ++i) {
                const std::size_t p =
                    g < per ? p_begin + i * per + g : p_begin + S * per + (g - per);
                ps[i] = panel_of(p);
                if (ps[i] == nullptr) {
                    if (info != stack_info) std::free(info);
                    return false;
                }
                ys[i] = y + p * kRows;
                ms[i] = mask_of(p);
            }
            for (std::size_t t = 0; t < n; t += kBlockTokens) {
                const int nt = static_cast<int>(std::min<std::size_t>(n - t, kBlockTokens));
                const unsigned char* acts[kBlockTokens];
                const ActInfo* infos[kBlockTokens];
                for (int i = 0; i < nt; ++i) {
                    acts[i] = abytes + (t + static_cast<std::size_t>(i)) * a_stride;
                    infos[i] = info + (t + static_cast<std::size_t>(i)) * L.nb;
                }
                float* out[kMaxS];
                for (std::size_t i = 0; i < width; ++i) out[i] = ys[i] + t * ldy;
                // A chunk's own stream count must match the group's width.
                if (width > 1 && kBlockStreams[nt - 1] == static_cast<int>(width)) {
                    kBlockTiles[nt - 1](ps, L, acts, infos, out, ldy, ms);
                } else {
                    for (std::size_t i = 0; i < width; ++i) {
                        kBlockTilesOne[nt - 1](ps + i, L, acts, infos, out + i, ldy, ms + i);
                    }
                }
            }
        }
        if (info != stack_info) std::free(info);
        return true;
    }
    // With several tokens, a Q4_0 panel is unpacked once into Q8_0's layout (nibbles as bytes,
    // scales alongside) so the tiles skip the per-token-pair unpacking; the seeds keep Q4_0's
    // bias, so the products are the same bits.
    const Layout U = layout(GgmlType::Q8_0, k);
    unsigned char* unpacked = nullptr;
    if (L.q4 && n > kTokens) {
        unpacked = static_cast<unsigned char*>(std::aligned_alloc(64, U.panel_stride));
    }
    for (std::size_t p = r0 / kRows; p * kRows < r1; ++p) {
        const std::size_t first = p * kRows;
        const std::size_t lo = r0 > first ? r0 - first : 0;
        const std::size_t hi = r1 - first < kRows ? r1 - first : kRows;
        const auto m = static_cast<__mmask16>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
        const unsigned char* panel = panel_of(p);
        if (panel == nullptr) {
            std::free(unpacked);
            if (info != stack_info) std::free(info);
            return false;
        }
        if (unpacked != nullptr) {
            const __m512i low = _mm512_set1_epi8(0x0f);
            for (std::size_t b = 0; b < L.nb; ++b) {
                const unsigned char* q = panel + L.quants(b);
                unsigned char* to = unpacked + U.quants(b);
                for (int j = 0; j < 4; ++j) {
                    const __m512i x = _mm512_load_si512(q + 64 * j);
                    _mm512_store_si512(to + 64 * j, _mm512_and_si512(x, low));
                    _mm512_store_si512(to + 64 * (j + 4),
                                       _mm512_and_si512(_mm512_srli_epi16(x, 4), low));
                }
                std::memcpy(unpacked + U.scales(b), panel + L.scales(b), 32);
            }
        }
        for (std::size_t t = 0; t < n; t += kTokens) {
            const int nt = static_cast<int>(n - t < kTokens ? n - t : kTokens);
            const unsigned char* acts[kTokens];
            const ActInfo* infos[kTokens];
            for (int i = 0; i < nt; ++i) {
                acts[i] = abytes + (t + static_cast<std::size_t>(i)) * a_stride;
                infos[i] = info + (t + static_cast<std::size_t>(i)) * L.nb;
            }
            float* out = y + t * ldy + first;
            if (unpacked != nullptr) {
                (blocks ? kTiles<false, true> : kTiles<false, false>)[nt - 1](unpacked, U, acts,
                                                                              infos, out, ldy, m);
            } else if (L.q4) {
                // Q4_0 in the group order, one or two tokens (the block order took every batch
                // up to kBlockBatchMax above).
                kTiles<true, false>[nt - 1](panel, L, acts, infos, out, ldy, m);
            } else {
                kTiles<false, false>[nt - 1](panel, L, acts, infos, out, ldy, m);
            }
        }
    }
    std::free(unpacked);
    if (info != stack_info) std::free(info);
    return true;
}

}  // namespace

bool avx512_gemm_packed(GgmlType w, const void* P, std::size_t k, std::size_t m, std::size_t r0,
                        std::size_t r1, const void* A, std::size_t n, float* y, std::size_t ldy) {
    const Layout L = layout(w, k);
    const auto* panels = static_cast<const unsigned char*>(P);
    return run_panels(L, k, L.q4 && q4_block_order(m), r0, r1, A, n, y, ldy, true,
                      [&](std::size_t p) { return panels + p * L.panel_stride; });
}

// Row-major weights (a context whose weights were not repacked at load): each panel is packed
// on the fly into scratch, with one gather per vector, and multiplied by the same kernel, so the
// results are the packed ones bit for bit. Without scratch memory, or for row strides the
// 32-bit gather offsets cannot reach, the portable path computes the same bits.
void avx512_gemm_quant(GgmlType w, const void* W, std::size_t w_stride, std::size_t k,
                       std::size_t m, std::size_t r0, std::size_t r1, const void* A, std::size_t n,
                       float* y, std::size_t ldy) {
    const Layout L = layout(w, k);
    auto* scratch = w_stride <= 0x7fffffffu / kRows
                        ? static_cast<unsigned char*>(std::aligned_alloc(64, L.panel_stride))
                        : nullptr;
    const auto* rows = static_cast<const unsigned char*>(W);
    const bool ok =
        scratch != nullptr && run_panels(L, k, L.q4 && q4_block_order(m), r0, r1, A, n, y, ldy,
                                         false, [&](std::size_t p) {
                                             pack_panel(L, rows + p * kRows * w_stride, w_stride,
                                                        std::min(kRows, r1 - p * kRows), scratch);
                                             return static_cast<const unsigned char*>(scratch);
                                         });
    std::free(scratch);
    if (!ok) portable_kernels().gemm(w, W, w_stride, k, m, r0, r1, A, n, y, ldy);
}

}  // namespace pylon::runtime::kernels::detail
