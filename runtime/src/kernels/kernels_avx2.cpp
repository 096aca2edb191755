// AVX2 + FMA + F16C kernel table, for x86-64 CPUs without AVX-512 (Haswell .. Alder Lake, Zen 1-3).
// Only AVX2/FMA/F16C instructions are used, so this path runs wherever isa_supported(Isa::avx2).
//
// Contracts shared with the portable table (kernel_tables.h):
//   - prepare_act writes the same bytes, padding included (zeros), as the portable path; Q8_0
//     activation quantization is ggml's AVX2 quantize_row_q8_0 step for step.
//   - Q8_0/Q4_0 block products are exact integers (see quant_tile: a Q8_0 weight of -128 is
//     exact, as in ggml), scaled per block by d_w * d_a in float. Only the float summation order
//     differs from the portable path (8 lanes, then a horizontal sum): results agree to rounding.
//
// Every function here is in an anonymous namespace and no std:: inline function or template is
// instantiated, so no AVX-compiled inline function can be merged by the linker into code that
// runs before the CPU check. The table is constant-initialised: no start-up code runs.
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "kernels/kernel_tables.h"

namespace pylon::runtime::kernels::detail {
namespace {

std::size_t pad64(std::size_t bytes) {
    return (bytes + 63) / 64 * 64;
}

float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Eight elements as floats.
__m256 load8(const float* p) {
    return _mm256_loadu_ps(p);
}
__m256 load8(const std::uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// --- activation rows --------------------------------------------------------------------------

// ggml's AVX2 quantize_row_q8_0 for one row, plus the per-4 group sums of the q.
void quantize_act_q8_0(const float* x, std::size_t k, unsigned char* out) {
    const std::size_t nb = k / kQK8_0;
    auto* blocks = reinterpret_cast<BlockQ8_0*>(out);
    unsigned char* sums = out + pad64(nb * sizeof(BlockQ8_0));
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i ones8 = _mm256_set1_epi8(1);
    const __m256i ones16 = _mm256_set1_epi16(1);
    for (std::size_t i = 0; i < nb; ++i) {
        const float* xb = x + i * kQK8_0;
        __m256 v0 = _mm256_loadu_ps(xb);
        __m256 v1 = _mm256_loadu_ps(xb + 8);
        __m256 v2 = _mm256_loadu_ps(xb + 16);
        __m256 v3 = _mm256_loadu_ps(xb + 24);
        __m256 max_abs = _mm256_andnot_ps(sign_bit, v0);
        max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(sign_bit, v1));
        max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(sign_bit, v2));
        max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(sign_bit, v3));
        __m128 max4 =
            _mm_max_ps(_mm256_extractf128_ps(max_abs, 1), _mm256_castps256_ps128(max_abs));
        max4 = _mm_max_ps(max4, _mm_movehl_ps(max4, max4));
        max4 = _mm_max_ss(max4, _mm_movehdup_ps(max4));
        const float max_scalar = _mm_cvtss_f32(max4);

        const float d = max_scalar / 127.f;
        const std::uint16_t dh = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        std::memcpy(&blocks[i].d, &dh, sizeof dh);
        const float id = max_scalar != 0.0f ? 127.f / max_scalar : 0.0f;
        const __m256 mul = _mm256_set1_ps(id);
        v0 = _mm256_round_ps(_mm256_mul_ps(v0, mul), _MM_ROUND_NEAREST);
        v1 = _mm256_round_ps(_mm256_mul_ps(v1, mul), _MM_ROUND_NEAREST);
        v2 = _mm256_round_ps(_mm256_mul_ps(v2, mul), _MM_ROUND_NEAREST);
        v3 = _mm256_round_ps(_mm256_mul_ps(v3, mul), _MM_ROUND_NEAREST);
        const __m256i i01 = _mm256_packs_epi32(_mm256_cvtps_epi32(v0), _mm256_cvtps_epi32(v1));
        const __m256i i23 = _mm256_packs_epi32(_mm256_cvtps_epi32(v2), _mm256_cvtps_epi32(v3));
        // packs interleave the 128-bit lanes; the permutation restores element order
        const __m256i q = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(i01, i23), perm);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(blocks[i].qs), q);

        const __m256i groups = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, q), ones16);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums + i * 8 * sizeof(std::int32_t)),
                            groups);
    }
    const std::size_t block_bytes = nb * sizeof(BlockQ8_0);
    std::memset(out + block_bytes, 0, pad64(block_bytes) - block_bytes);
    const std::size_t sum_bytes = nb * 8 * sizeof(std::int32_t);
    std::memset(sums + sum_bytes, 0, pad64(sum_bytes) - sum_bytes);
}

void f32_to_f16_row(const float* x, std::uint16_t* y, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), h);
    }
    for (; i < n; ++i) y[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}

// vcvtph2ps sets the quiet bit of a signalling NaN; fp16_to_fp32 keeps every NaN's bits, and so
// does this (the kernels that only compute with halves need not care).
__m256 halves_to_floats_exact(__m128i h) {
    const __m256i w = _mm256_cvtepu16_epi32(h);
    const __m256i mag = _mm256_and_si256(w, _mm256_set1_epi32(0x7fff));
    const __m256i is_nan = _mm256_cmpgt_epi32(mag, _mm256_set1_epi32(0x7c00));
    const __m256i nan_bits =
        _mm256_or_si256(_mm256_slli_epi32(_mm256_and_si256(w, _mm256_set1_epi32(0x8000)), 16),
                        _mm256_or_si256(_mm256_slli_epi32(mag, 13), _mm256_set1_epi32(0x70000000)));
    return _mm256_blendv_ps(_mm256_cvtph_ps(h), _mm256_castsi256_ps(nan_bits),
                            _mm256_castsi256_ps(is_nan));
}

void f16_to_f32_row(const std::uint16_t* x, float* y, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i));
        _mm256_storeu_ps(y + i, halves_to_floats_exact(h));
    }
    if (i < n) {
        std::uint16_t in[8] = {};
        float out[8];
        std::memcpy(in, x + i, (n - i) * sizeof(std::uint16_t));
        _mm256_storeu_ps(
            out, halves_to_floats_exact(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in))));
        std::memcpy(y + i, out, (n - i) * sizeof(float));
    }
}

void prepare_act(GgmlType w, const float* x, std::size_t k, void* out) {
    auto* bytes = static_cast<unsigned char*>(out);
    switch (w) {
        case GgmlType::F32:
            std::memcpy(bytes, x, k * sizeof(float));
            std::memset(bytes + k * sizeof(float), 0, pad64(k * sizeof(float)) - k * sizeof(float));
            return;
        case GgmlType::F16:
            f32_to_f16_row(x, static_cast<std::uint16_t*>(out), k);
            std::memset(bytes + k * 2, 0, pad64(k * 2) - k * 2);
            return;
        case GgmlType::Q8_0:
        case GgmlType::Q4_0:
            quantize_act_q8_0(x, k, bytes);
            return;
        default:
            portable_kernels().prepare_act(w, x, k, out);
            return;
    }
}

// --- attention helpers ------------------------------------------------------------------------

// --- matrix products --------------------------------------------------------------------------
//
// A tile computes weight rows r..r+R against activation rows t..t+T, so each weight load is
// shared by T products and each activation load by R. Decode (n == 1) runs 4x1 tiles: W is
// streamed once, four rows at a time sharing the activation loads. Batches run 2x4 tiles, whose
// accumulators, weights and activations fit the 16 ymm registers.

using TileFn = void (*)(const unsigned char* W, std::size_t w_stride, std::size_t k, std::size_t r,
                        const unsigned char* A, std::size_t a_stride, std::size_t t, float* y,
                        std::size_t ldy);

// F32 x F32 and F16 x F16 (E = float or std::uint16_t holding halves) in tinyBLAS's order
// (kernels.h): each output one 16-lane FMA chain, here two 8-lane halves, reduced as
// _mm512_reduce_add_ps does (8+8 = the halves' sum, then hsum's tree). k % 16 == 0.
template <class E, int R, int T>
void plain_tile(const unsigned char* W, std::size_t w_stride, std::size_t k, std::size_t r,
                const unsigned char* A, std::size_t a_stride, std::size_t t, float* y,
                std::size_t ldy) {
    const E* wr[R];
    const E* ar[T];
    for (int i = 0; i < R; ++i) wr[i] = reinterpret_cast<const E*>(W + (r + i) * w_stride);
    for (int j = 0; j < T; ++j) ar[j] = reinterpret_cast<const E*>(A + (t + j) * a_stride);
    __m256 acc[R][T][2];
    for (int i = 0; i < R; ++i) {
        for (int j = 0; j < T; ++j) acc[i][j][0] = acc[i][j][1] = _mm256_setzero_ps();
    }
    for (std::size_t e = 0; e < k; e += 16) {
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
            __m256 x[R];
#pragma GCC unroll 4
            for (int i = 0; i < R; ++i) x[i] = load8(wr[i] + e + 8 * h);
#pragma GCC unroll 4
            for (int j = 0; j < T; ++j) {
                const __m256 a = load8(ar[j] + e + 8 * h);
#pragma GCC unroll 4
                for (int i = 0; i < R; ++i) acc[i][j][h] = _mm256_fmadd_ps(x[i], a, acc[i][j][h]);
            }
        }
    }
    for (int i = 0; i < R; ++i) {
        for (int j = 0; j < T; ++j) {
            y[(t + j) * ldy + r + i] = hsum(_mm256_add_ps(acc[i][j][1], acc[i][j][0]));
        }
    }
}

#include "kernels/vec_tail_x86.h"  // inside the anonymous namespace: see there

// ggml_vec_dot_f32/f16's order (kernels.h): 4 x 16 lanes (here 4 x 2 x 8) over 64-element
// steps, folded (0+2, 1+3, 0+1) and reduced like _mm512_reduce_add_ps, then the leftovers one
// at a time (F32 in float as GCC compiles ggml's loop, F16 in double).
template <class E>
float vec_row(const E* x, const E* a, std::size_t k) {
    const std::size_t np = k & ~std::size_t{63};
    float main = 0.0f;
    if (np > 0) {
        __m256 acc[4][2];
        for (int u = 0; u < 4; ++u) acc[u][0] = acc[u][1] = _mm256_setzero_ps();
        for (std::size_t i = 0; i < np; i += 64) {
            _mm_prefetch(reinterpret_cast<const char*>(x + i) + 1024, _MM_HINT_T0);
#pragma GCC unroll 4
            for (int u = 0; u < 4; ++u) {
#pragma GCC unroll 2
                for (int h = 0; h < 2; ++h) {
                    const std::size_t e = i + 16 * u + 8 * h;
                    acc[u][h] = _mm256_fmadd_ps(load8(x + e), load8(a + e), acc[u][h]);
                }
            }
        }
        __m256 f[2];
        for (int h = 0; h < 2; ++h) {
            f[h] = _mm256_add_ps(_mm256_add_ps(acc[0][h], acc[2][h]),
                                 _mm256_add_ps(acc[1][h], acc[3][h]));
        }
        main = hsum(_mm256_add_ps(f[1], f[0]));
    }
    return vec_tail(main, x, a, np, k);
}

template <class E>
void vec_rows(const unsigned char* W, std::size_t w_stride, std::size_t k, std::size_t r0,
              std::size_t r1, const unsigned char* A, std::size_t a_stride, std::size_t n, float* y,
              std::size_t ldy) {
    // Rows outer, tokens inner: the weights stream once, later tokens read the row from L1.
    for (std::size_t r = r0; r < r1; ++r) {
        const E* x = reinterpret_cast<const E*>(W + r * w_stride);
        for (std::size_t t = 0; t < n; ++t) {
            y[t * ldy + r] = vec_row(x, reinterpret_cast<const E*>(A + t * a_stride), k);
        }
    }
}

// Q8_0 or Q4_0 weights (B) x Q8_0 activations. Per block and product, 8 int32 lanes each hold the
// exact sum of 4 consecutive x*y, the lanes ggml's AVX2 dot products compute; they are converted
// to float and accumulated with the scale d_w * d_a.
//   Q8_0: |x| (unsigned) times sign(x)*y. A weight of -128 becomes unsigned 128 and stays exact;
//         activations never hold -128, and |pair sums| <= 2*128*127 so maddubs never saturates.
//   Q4_0: the nibble u = x + 8 (unsigned) times y, minus 8 * (y's group sum from the activation
//         row), which saves the sign operations of the ggml form and gives the same lanes.
// kBlocks (Q4_0 only): the repacked kernels' order (kernels.h), else the group lanes.
template <class B, bool kBlocks, int R, int T>
void quant_tile(const unsigned char* W, std::size_t w_stride, std::size_t k, std::size_t r,
                const unsigned char* A, std::size_t a_stride, std::size_t t, float* y,
                std::size_t ldy) {
    constexpr bool kQ4 = std::is_same_v<B, BlockQ4_0>;
    const std::size_t nb = k / kQK8_0;
    const std::size_t sums_at = pad64(nb * sizeof(BlockQ8_0));
    const B* wr[R];
    const BlockQ8_0* ar[T];
    const std::int32_t* group_sums[T];
    for (int i = 0; i < R; ++i) wr[i] = reinterpret_cast<const B*>(W + (r + i) * w_stride);
    for (int j = 0; j < T; ++j) {
        ar[j] = reinterpret_cast<const BlockQ8_0*>(A + (t + j) * a_stride);
        group_sums[j] = reinterpret_cast<const std::int32_t*>(A + (t + j) * a_stride + sums_at);
    }
    __m256 acc[R][T];   // Q8_0: eight group lanes per product
    __m128 bacc[R][T];  // Q4_0: one accumulator per product (lane 0)
    for (int i = 0; i < R; ++i) {
        for (int j = 0; j < T; ++j) {
            acc[i][j] = _mm256_setzero_ps();
            bacc[i][j] = _mm_setzero_ps();
        }
    }
    const __m256i ones16 = _mm256_set1_epi16(1);
    const __m256i low_nibbles = _mm256_set1_epi8(0x0f);
    for (std::size_t b = 0; b < nb; ++b) {
        __m256i x[R];  // Q8_0: the signed weights; Q4_0: the nibbles
        __m256i ax[R];
        __m256 dx[R];
#pragma GCC unroll 4
        for (int i = 0; i < R; ++i) {
            if constexpr (kQ4) {
                // element j in the low nibble of qs[j], j + 16 in the high one
                const __m128i packed =
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(wr[i][b].qs));
                x[i] = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed),
                                        low_nibbles);
            } else {
                x[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr[i][b].qs));
                ax[i] = _mm256_sign_epi8(x[i], x[i]);
            }
            dx[i] = _mm256_set1_ps(_cvtsh_ss(wr[i][b].d));
        }
#pragma GCC unroll 4
        for (int j = 0; j < T; ++j) {
            const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ar[j][b].qs));
            const __m256 dy = _mm256_set1_ps(_cvtsh_ss(ar[j][b].d));
            // Q4_0: 8 * the group sums of y, what the +8 in the nibbles added to each lane
            const __m256i offset =
                kQ4 ? _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                                            group_sums[j] + 8 * b)),
                                        3)
                    : _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int i = 0; i < R; ++i) {
                __m256i sums;
                if constexpr (kQ4) {
                    sums = _mm256_sub_epi32(
                        _mm256_madd_epi16(_mm256_maddubs_epi16(x[i], q), ones16), offset);
                } else {
                    sums = _mm256_madd_epi16(_mm256_maddubs_epi16(ax[i], _mm256_sign_epi8(q, x[i])),
                                             ones16);
                }
                if constexpr (kBlocks) {  // the block's integer sum, then one fma (see dot_row)
                    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(sums),
                                              _mm256_extracti128_si256(sums, 1));
                    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
                    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
                    bacc[i][j] =
                        _mm_fmadd_ss(_mm_cvtepi32_ps(h),
                                     _mm256_castps256_ps128(_mm256_mul_ps(dx[i], dy)), bacc[i][j]);
                } else {
                    acc[i][j] = _mm256_fmadd_ps(_mm256_mul_ps(dx[i], dy), _mm256_cvtepi32_ps(sums),
                                                acc[i][j]);
                }
            }
        }
    }
    for (int i = 0; i < R; ++i) {
        for (int j = 0; j < T; ++j) {
            y[(t + j) * ldy + r + i] = kBlocks ? _mm_cvtss_f32(bacc[i][j]) : hsum(acc[i][j]);
        }
    }
}

// decode: 4 rows x 1; two[T] / one[T]: 2 or 1 rows x T activation rows (index 0 unused), so a
// batch that is not a multiple of 4 ends with one narrower tile, never with single rows.
struct Tiles {
    TileFn decode;
    TileFn two[5];
    TileFn one[5];
};
template <class E>
constexpr Tiles kPlainTiles{
    plain_tile<E, 4, 1>,
    {nullptr, plain_tile<E, 2, 1>, plain_tile<E, 2, 2>, plain_tile<E, 2, 3>, plain_tile<E, 2, 4>},
    {nullptr, plain_tile<E, 1, 1>, plain_tile<E, 1, 2>, plain_tile<E, 1, 3>, plain_tile<E, 1, 4>}};
template <class B, bool kB>
constexpr Tiles kQuantTiles{quant_tile<B, kB, 4, 1>,
                            {nullptr, quant_tile<B, kB, 2, 1>, quant_tile<B, kB, 2, 2>,
                             quant_tile<B, kB, 2, 3>, quant_tile<B, kB, 2, 4>},
                            {nullptr, quant_tile<B, kB, 1, 1>, quant_tile<B, kB, 1, 2>,
                             quant_tile<B, kB, 1, 3>, quant_tile<B, kB, 1, 4>}};

void run_tiles(const Tiles& tiles, const unsigned char* W, std::size_t w_stride, std::size_t k,
               std::size_t r0, std::size_t r1, const unsigned char* A, std::size_t a_stride,
               std::size_t n, float* y, std::size_t ldy) {
    std::size_t r = r0;
    if (n == 1) {
        for (; r + 4 <= r1; r += 4) tiles.decode(W, w_stride, k, r, A, a_stride, 0, y, ldy);
        for (; r < r1; ++r) tiles.one[1](W, w_stride, k, r, A, a_stride, 0, y, ldy);
        return;
    }
    for (; r < r1; r += 2) {
        const TileFn* row_tiles = r + 2 <= r1 ? tiles.two : tiles.one;
        std::size_t t = 0;
        for (; t + 4 <= n; t += 4) row_tiles[4](W, w_stride, k, r, A, a_stride, t, y, ldy);
        if (t < n) row_tiles[n - t](W, w_stride, k, r, A, a_stride, t, y, ldy);
    }
}

void gemm(GgmlType w, const void* W, std::size_t w_stride, std::size_t k, std::size_t m,
          std::size_t r0, std::size_t r1, const void* A, std::size_t n, float* y, std::size_t ldy) {
    const Tiles* tiles = nullptr;
    std::size_t a_stride = 0;
    switch (w) {
        case GgmlType::F32:
            tiles = &kPlainTiles<float>;
            a_stride = pad64(k * sizeof(float));
            if (!tinyblas_order(m, n, k)) {
                vec_rows<float>(static_cast<const unsigned char*>(W), w_stride, k, r0, r1,
                                static_cast<const unsigned char*>(A), a_stride, n, y, ldy);
                return;
            }
            break;
        case GgmlType::F16:
            tiles = &kPlainTiles<std::uint16_t>;
            a_stride = pad64(k * sizeof(std::uint16_t));
            if (!tinyblas_order(m, n, k)) {
                vec_rows<std::uint16_t>(static_cast<const unsigned char*>(W), w_stride, k, r0, r1,
                                        static_cast<const unsigned char*>(A), a_stride, n, y, ldy);
                return;
            }
            break;
        case GgmlType::Q8_0:
        case GgmlType::Q4_0:
            tiles = w == GgmlType::Q8_0 ? &kQuantTiles<BlockQ8_0, false>
                    : q4_block_order(m) ? &kQuantTiles<BlockQ4_0, true>
                                        : &kQuantTiles<BlockQ4_0, false>;
            a_stride = pad64(k / kQK8_0 * sizeof(BlockQ8_0)) + pad64(k / kQK8_0 * 32);
            break;
        default:
            portable_kernels().gemm(w, W, w_stride, k, m, r0, r1, A, n, y, ldy);
            return;
    }
    if (r0 >= r1) return;
    run_tiles(*tiles, static_cast<const unsigned char*>(W), w_stride, k, r0, r1,
              static_cast<const unsigned char*>(A), a_stride, n, y, ldy);
}

void gemm_lone(GgmlType w, const void* W, std::size_t w_stride, std::size_t k, std::size_t m,
               std::size_t r0, std::size_t r1, const void* A, std::size_t n, float* y,
               std::size_t ldy) {
    switch (w) {
        case GgmlType::F32:
            vec_rows<float>(static_cast<const unsigned char*>(W), w_stride, k, r0, r1,
                            static_cast<const unsigned char*>(A), pad64(k * sizeof(float)), n, y,
                            ldy);
            return;
        case GgmlType::F16:
            vec_rows<std::uint16_t>(static_cast<const unsigned char*>(W), w_stride, k, r0, r1,
                                    static_cast<const unsigned char*>(A),
                                    pad64(k * sizeof(std::uint16_t)), n, y, ldy);
            return;
        default:  // quantized products are summed alike for any n
            gemm(w, W, w_stride, k, m, r0, r1, A, n, y, ldy);
            return;
    }
}

constexpr Kernels kAvx2Kernels{
    Isa::avx2,      prepare_act, gemm,    gemm_lone, f32_to_f16_row,
    f16_to_f32_row, nullptr,     nullptr, nullptr,
};

}  // namespace

const Kernels& avx2_kernels() noexcept {
    return kAvx2Kernels;
}

}  // namespace pylon::runtime::kernels::detail
