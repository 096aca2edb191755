// The AVX-512 kernel table: activation preparation, F32/F16 products, half conversions; the
// quantized products are in kernels_packed_avx512.cpp. Activation bytes
// are identical to the portable path's (kernel_tables.h): vcvtps2dq rounds ties to even under the
// default MXCSR, vpmovsdb saturates like the portable clamp, and vcvtps2ph/vcvtph2ps agree with
// fp16.h bit for bit.
//
// Products use tiles of R weight rows x T activation rows (up to 4 x 6) with one zmm
// accumulator each, so each weight vector is loaded once per T tokens and each activation vector
// once per R rows; a masked step covers k % 16. With several tokens, blocks of them whose rows
// fit in kActPanelBytes (L2) are swept past each group of weight rows. Nothing here calls an inline
// function shared with portable code (fp16.h, <cmath>): the linker could otherwise keep this file's
// AVX-512 copy.

// GCC 12 reports the deliberately undefined pass-through operand (_mm512_undefined_ps() and
// friends) inside _mm512_cvtph_ps, _mm512_extractf64x4_pd, ... as (maybe-)uninitialized; the
// warning is located in the intrinsics header, so the suppression must precede it.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <array>
#include <cstring>
#include <type_traits>

#include "kernels/kernel_tables.h"

namespace pylon::runtime::kernels::detail {

namespace {

// Decode prefetches the weight rows this far ahead (two 4-row groups).
constexpr std::size_t kPrefetchRows = 8;
constexpr std::size_t kActPanelBytes = 256 * 1024;

constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

__mmask16 tail_mask(std::size_t left) {
    return static_cast<__mmask16>((1u << left) - 1u);
}

void prepare_q8_0(const float* x, std::size_t k, unsigned char* out) {
    const std::size_t nb = k / kQK8_0;
    const std::size_t blocks_end = nb * sizeof(BlockQ8_0);
    const std::size_t sums_at = (blocks_end + 63) & ~std::size_t{63};
    std::memset(out + blocks_end, 0, sums_at - blocks_end);
    const __m256i ones = _mm256_set1_epi8(1);
    for (std::size_t b = 0; b < nb; ++b) {
        const __m512 v0 = _mm512_loadu_ps(x + 32 * b);
        const __m512 v1 = _mm512_loadu_ps(x + 32 * b + 16);
        const float amax =
            _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        const std::uint16_t d = _cvtss_sh(amax / 127.0f, kRound);
        const __m512 m = _mm512_set1_ps(id);
        const __m128i q0 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v0, m)));
        const __m128i q1 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v1, m)));
        unsigned char* blk = out + b * sizeof(BlockQ8_0);
        std::memcpy(blk, &d, 2);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(blk + 2), q0);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(blk + 18), q1);
        const __m256i q = _mm256_set_m128i(q1, q0);
        const __m256i sums = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, q);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + sums_at + 32 * b), sums);
    }
    const std::size_t sum_bytes = nb * 32;
    std::memset(out + sums_at + sum_bytes, 0, ((sum_bytes + 63) & ~std::size_t{63}) - sum_bytes);
}

void f32_to_f16(const float* x, std::uint16_t* y, std::size_t n) {
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(x + i), kRound));
    }
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        _mm256_mask_storeu_epi16(y + i, m,
                                 _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), kRound));
    }
}

void f16_to_f32(const std::uint16_t* x, float* y, std::size_t n) {
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm512_storeu_ps(
            y + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i))));
    }
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i)));
    }
}

void prepare_act(GgmlType w, const float* x, std::size_t k, void* out) {
    auto* bytes = static_cast<unsigned char*>(out);
    const std::size_t size = act_row_bytes(w, k);
    switch (w) {
        case GgmlType::F32:
            std::memcpy(out, x, k * sizeof(float));
            std::memset(bytes + k * sizeof(float), 0, size - k * sizeof(float));
            return;
        case GgmlType::F16:
            f32_to_f16(x, static_cast<std::uint16_t*>(out), k);
            std::memset(bytes + k * 2, 0, size - k * 2);
            return;
        case GgmlType::Q8_0:
        case GgmlType::Q4_0:
            prepare_q8_0(x, k, bytes);
            return;
        default:
            return;
    }
}

struct F32Load {
    using Elem = float;
    static __m512 load(const float* p) { return _mm512_loadu_ps(p); }
    static __m512 load(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};

struct F16Load {
    using Elem = std::uint16_t;
    static __m512 load(const std::uint16_t* p) {
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    }
    static __m512 load(const std::uint16_t* p, __mmask16 m) {
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
    }
};

// tinyBLAS's order (llamafile_sgemm, which llama.cpp uses for F32/F16 products of two or more
// tokens when k % 16 == 0): one 16-lane FMA chain per output from zero, then
// _mm512_reduce_add_ps. k must be a multiple of 16.
template <class L, int R, int T>
void tile(const typename L::Elem* const* rows, const typename L::Elem* const* acts, std::size_t k,
          float* y, std::size_t ldy) {
    __m512 acc[R][T];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 6
        for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    }
    for (std::size_t i = 0; i < k; i += 16) {
        __m512 a[T];
#pragma GCC unroll 6
        for (int t = 0; t < T; ++t) a[t] = L::load(acts[t] + i);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            const __m512 w = L::load(rows[r] + i);
#pragma GCC unroll 6
            for (int t = 0; t < T; ++t) acc[r][t] = _mm512_fmadd_ps(w, a[t], acc[r][t]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 6
        for (int t = 0; t < T; ++t) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
    }
}

template <class L>
using FloatTile = void (*)(const typename L::Elem* const*, const typename L::Elem* const*,
                           std::size_t, float*, std::size_t);

template <class L, int R>
constexpr FloatTile<L> tile_for(int t) {
    return t == 1   ? tile<L, R, 1>
           : t == 2 ? tile<L, R, 2>
           : t == 3 ? tile<L, R, 3>
           : t == 4 ? tile<L, R, 4>
           : t == 5 ? tile<L, R, 5>
                    : tile<L, R, 6>;
}

template <class L, int R>
constexpr std::array<FloatTile<L>, 6> tile_row() {
    return {tile_for<L, R>(1), tile_for<L, R>(2), tile_for<L, R>(3),
            tile_for<L, R>(4), tile_for<L, R>(5), tile_for<L, R>(6)};
}

#include "kernels/vec_tail_x86.h"  // inside the anonymous namespace: see there

// ggml_vec_dot_f32 / ggml_vec_dot_f16 (AVX-512 build), which llama.cpp uses for one token and
// wherever tinyBLAS does not apply (k % 16 != 0): per row 4 x 16 lanes with FMA over 64-element
// steps, folded (0+2, 1+3, 0+1) and tree-reduced, then the leftovers one at a time: F32 in float
// (as GCC compiles ggml's loop: see the portable path), F16 in double. R rows at once, the rows
// prefetched `ahead` bytes ahead.
template <class L, int R>
void vec_rows(const typename L::Elem* const* rows, const typename L::Elem* a, std::size_t k,
              float* y, std::size_t ahead) {
    const std::size_t np = k & ~std::size_t{63};
    float main[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) main[r] = 0.0f;
    if (np > 0) {
        __m512 acc[R][4];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            for (int u = 0; u < 4; ++u) acc[r][u] = _mm512_setzero_ps();
        }
        for (std::size_t i = 0; i < np; i += 64) {
#pragma GCC unroll 4
            for (int u = 0; u < 4; ++u) {
                const __m512 av = L::load(a + i + 16 * u);
#pragma GCC unroll 4
                for (int r = 0; r < R; ++r) {
                    _mm_prefetch(reinterpret_cast<const char*>(rows[r] + i + 16 * u) + ahead,
                                 _MM_HINT_T0);
                    acc[r][u] = _mm512_fmadd_ps(L::load(rows[r] + i + 16 * u), av, acc[r][u]);
                }
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            const __m512 s02 = _mm512_add_ps(acc[r][0], acc[r][2]);
            const __m512 s13 = _mm512_add_ps(acc[r][1], acc[r][3]);
            main[r] = _mm512_reduce_add_ps(_mm512_add_ps(s02, s13));
        }
    }
    for (int r = 0; r < R; ++r) {
        y[r] = vec_tail(main[r], rows[r], a, np, k);
    }
}

// The same order for one weight row and T tokens at once (a batch that must keep every token's
// lone bits: gemm_lone): each 64-element step of the row is loaded once and multiplied into
// the T tokens' own 4 x 16 lanes, so the weights stream once while the arithmetic of the other
// tokens overlaps it. The row is prefetched `ahead` bytes ahead when kPrefetch.
template <class L, int T, bool kPrefetch>
void vec_tokens(const typename L::Elem* x, const typename L::Elem* const* acts, std::size_t k,
                float* y, std::size_t ldy, std::size_t ahead) {
    const std::size_t np = k & ~std::size_t{63};
    float main[T];
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) main[t] = 0.0f;
    if (np > 0) {
        __m512 acc[T][4];
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
            for (int u = 0; u < 4; ++u) acc[t][u] = _mm512_setzero_ps();
        }
        for (std::size_t i = 0; i < np; i += 64) {
            if constexpr (kPrefetch) {
                // 64 elements: four cache lines of F32, two of F16.
                constexpr std::size_t kLine = 64 / sizeof(typename L::Elem);
#pragma GCC unroll 4
                for (std::size_t l = 0; l < 64; l += kLine) {
                    _mm_prefetch(reinterpret_cast<const char*>(x + i + l) + ahead, _MM_HINT_T0);
                }
            }
#pragma GCC unroll 4
            for (int u = 0; u < 4; ++u) {
                const __m512 xv = L::load(x + i + 16 * u);
#pragma GCC unroll 8
                for (int t = 0; t < T; ++t) {
                    acc[t][u] = _mm512_fmadd_ps(xv, L::load(acts[t] + i + 16 * u), acc[t][u]);
                }
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
            const __m512 s02 = _mm512_add_ps(acc[t][0], acc[t][2]);
            const __m512 s13 = _mm512_add_ps(acc[t][1], acc[t][3]);
            main[t] = _mm512_reduce_add_ps(_mm512_add_ps(s02, s13));
        }
    }
    for (int t = 0; t < T; ++t) {
        y[static_cast<std::size_t>(t) * ldy] = vec_tail(main[t], x, acts[t], np, k);
    }
}

template <class L>
using VecTokens = void (*)(const typename L::Elem*, const typename L::Elem* const*, std::size_t,
                           float*, std::size_t, std::size_t);

// gemm_lone for F32/F16: rows outer, up to kLoneT tokens per pass over a row (the first pass
// streams it from memory, later ones read it from L1).
template <class L>
void gemm_float_lone(GgmlType w, const void* W, std::size_t w_stride, std::size_t k, std::size_t r0,
                     std::size_t r1, const void* A, std::size_t n, float* y, std::size_t ldy) {
    constexpr std::size_t kLoneT = 6;
    static constexpr VecTokens<L> kFirst[kLoneT] = {vec_tokens<L, 1, true>, vec_tokens<L, 2, true>,
                                                    vec_tokens<L, 3, true>, vec_tokens<L, 4, true>,
                                                    vec_tokens<L, 5, true>, vec_tokens<L, 6, true>};
    static constexpr VecTokens<L> kLater[kLoneT] = {
        vec_tokens<L, 1, false>, vec_tokens<L, 2, false>, vec_tokens<L, 3, false>,
        vec_tokens<L, 4, false>, vec_tokens<L, 5, false>, vec_tokens<L, 6, false>};
    using Elem = typename L::Elem;
    const std::size_t a_stride = act_row_bytes(w, k);
    const auto* wbytes = static_cast<const unsigned char*>(W);
    const auto* abytes = static_cast<const unsigned char*>(A);
    const Elem* acts[kLoneT];
    for (std::size_t r = r0; r < r1; ++r) {
        const auto* x = reinterpret_cast<const Elem*>(wbytes + r * w_stride);
        for (std::size_t t = 0; t < n; t += kLoneT) {
            const std::size_t nt = n - t < kLoneT ? n - t : kLoneT;
            for (std::size_t i = 0; i < nt; ++i) {
                acts[i] = reinterpret_cast<const Elem*>(abytes + (t + i) * a_stride);
            }
            (t == 0 ? kFirst : kLater)[nt - 1](x, acts, k, y + t * ldy + r, ldy,
                                               kPrefetchRows * w_stride);
        }
    }
}

template <class L>
using VecRows = void (*)(const typename L::Elem* const*, const typename L::Elem*, std::size_t,
                         float*, std::size_t);

template <class L>
void gemm_float(GgmlType w, const void* W, std::size_t w_stride, std::size_t k, std::size_t m,
                std::size_t r0, std::size_t r1, const void* A, std::size_t n, float* y,
                std::size_t ldy) {
    if (!kernels::tinyblas_order(m, n, k)) {
        static constexpr VecRows<L> kVec[4] = {vec_rows<L, 1>, vec_rows<L, 2>, vec_rows<L, 3>,
                                               vec_rows<L, 4>};
        const std::size_t a_stride = act_row_bytes(w, k);
        const auto* wbytes = static_cast<const unsigned char*>(W);
        for (std::size_t t = 0; t < n; ++t) {
            const auto* a = reinterpret_cast<const typename L::Elem*>(
                static_cast<const unsigned char*>(A) + t * a_stride);
            for (std::size_t r = r0; r < r1; r += 4) {
                const int nr = static_cast<int>(r1 - r < 4 ? r1 - r : 4);
                const typename L::Elem* rows[4];
                for (int i = 0; i < nr; ++i) {
                    rows[i] = reinterpret_cast<const typename L::Elem*>(
                        wbytes + (r + static_cast<std::size_t>(i)) * w_stride);
                }
                kVec[nr - 1](rows, a, k, y + t * ldy + r, kPrefetchRows * w_stride);
            }
        }
        return;
    }
    // 4 weight rows x 6 tokens: 24 accumulators, 10 loads per 24 FMAs (tinyBLAS's shape).
    constexpr int kR = 4, kT = 6;
    static constexpr std::array<FloatTile<L>, kT> kTiles[kR] = {tile_row<L, 1>(), tile_row<L, 2>(),
                                                                tile_row<L, 3>(), tile_row<L, 4>()};
    using Elem = typename L::Elem;
    const std::size_t a_stride = act_row_bytes(w, k);
    const auto* wbytes = static_cast<const unsigned char*>(W);
    const auto* abytes = static_cast<const unsigned char*>(A);
    // Token blocks whose activation rows stay in L1/L2 while the weight rows stream past.
    std::size_t block = kActPanelBytes / a_stride / kT * kT;
    if (block < kT) block = kT;
    for (std::size_t t0 = 0; t0 < n; t0 += block) {
        const std::size_t t1 = n - t0 < block ? n : t0 + block;
        for (std::size_t r = r0; r < r1; r += kR) {
            const int nr = static_cast<int>(r1 - r < kR ? r1 - r : kR);
            const Elem* rows[kR];
            for (int i = 0; i < nr; ++i) {
                rows[i] = reinterpret_cast<const Elem*>(wbytes + (r + static_cast<std::size_t>(i)) *
                                                                     w_stride);
            }
            for (std::size_t t = t0; t < t1; t += kT) {
                const int nt = static_cast<int>(t1 - t < kT ? t1 - t : kT);
                const Elem* acts[kT];
                for (int i = 0; i < nt; ++i) {
                    acts[i] = reinterpret_cast<const Elem*>(
                        abytes + (t + static_cast<std::size_t>(i)) * a_stride);
                }
                kTiles[nr - 1][nt - 1](rows, acts, k, y + t * ldy + r, ldy);
            }
        }
    }
}

void gemm(GgmlType w, const void* W, std::size_t w_stride, std::size_t k, std::size_t m,
          std::size_t r0, std::size_t r1, const void* A, std::size_t n, float* y, std::size_t ldy) {
    switch (w) {
        case GgmlType::F32:
            gemm_float<F32Load>(w, W, w_stride, k, m, r0, r1, A, n, y, ldy);
            return;
        case GgmlType::F16:
            gemm_float<F16Load>(w, W, w_stride, k, m, r0, r1, A, n, y, ldy);
            return;
        case GgmlType::Q8_0:
        case GgmlType::Q4_0:
            avx512_gemm_quant(w, W, w_stride, k, m, r0, r1, A, n, y, ldy);
            return;
        default:
            return;
    }
}

void gemm_lone(GgmlType w, const void* W, std::size_t w_stride, std::size_t k, std::size_t m,
               std::size_t r0, std::size_t r1, const void* A, std::size_t n, float* y,
               std::size_t ldy) {
    switch (w) {
        case GgmlType::F32:
            gemm_float_lone<F32Load>(w, W, w_stride, k, r0, r1, A, n, y, ldy);
            return;
        case GgmlType::F16:
            gemm_float_lone<F16Load>(w, W, w_stride, k, r0, r1, A, n, y, ldy);
            return;
        default:  // quantized products are summed alike for any n
            gemm(w, W, w_stride, k, m, r0, r1, A, n, y, ldy);
            return;
    }
}

constexpr Kernels kTable{Isa::avx512,         prepare_act, gemm,
                         gemm_lone,           f32_to_f16,  f16_to_f32,
                         avx512_packed_bytes, avx512_pack, avx512_gemm_packed};

}  // namespace

const Kernels& avx512_kernels() noexcept {
    return kTable;
}

}  // namespace pylon::runtime::kernels::detail
