// AVX-512 VNNI prefill product of Q4_0 / Q8_0 weights with many Q8_0 activation rows.
//
// The weight rows are repacked on the fly, 16 rows at a time, so that one zmm lane belongs to
// one weight row: for block b, vector j holds bytes 4j..4j+3 of the block's 32 unsigned quants
// of each of the 16 rows (Q4_0: nibbles 0..15; Q8_0: q xor 0x80 = q + 128), next to the 16
// rows' scales as floats. A token's block then costs eight vpdpbusd with the activation's four
// bytes broadcast from memory, starting from -bias * (sum of the block's activation quants)
// (bias 8 or 128), and one convert, multiply and FMA; each lane ends holding its row's full
// block product, so no horizontal reduction is needed and the 16 results are stored directly.
// Compared with the row-major tiles of kernels_q_avx512.cpp this needs about a third of the
// vector instructions per multiply-add; the repacking is paid once per 16 rows for all tokens.
// Every function here is internal except the entry point in namespace detail.

// GCC 12 reports the deliberately undefined pass-through operand (_mm512_undefined_ps() and
// friends) inside _mm512_cvtph_ps, _mm512_extractf64x4_pd, ... as (maybe-)uninitialized; the
// warning is located in the intrinsics header, so the suppression must precede it.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels/kernel_tables.h"

namespace pylon::runtime::kernels::detail {
namespace {

constexpr int kRows = 16;   // weight rows per panel: one per zmm lane
constexpr int kTokens = 8;  // activation rows per tile: 8 accumulators + 8 weight vectors
constexpr std::size_t kActBlock = sizeof(BlockQ8_0);

struct alignas(64) PackedBlock {
    __m512i w[8];
    __m512 d;
};

// Per (token, block): the accumulator seed and the activation scale.
struct ActInfo {
    std::int32_t seed;
    float d;
};

template <bool kQ4>
void pack(const unsigned char* W, std::size_t w_stride, int rows, std::size_t nb,
          PackedBlock* out) {
    constexpr std::size_t kBlock = kQ4 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0);
    const __mmask16 m = static_cast<__mmask16>(rows >= kRows ? 0xffffu : (1u << rows) - 1u);
    const int s = static_cast<int>(w_stride);
    const __m512i index =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32(s));
    const __m512i zero = _mm512_setzero_si512();
    for (std::size_t b = 0; b < nb; ++b) {
        const unsigned char* base = W + b * kBlock;
        // Four bytes at the scale: d and the first two quants, all inside the block.
        const __m512i d = _mm512_mask_i32gather_epi32(zero, m, index, base, 1);
        out[b].d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d));
        if constexpr (kQ4) {
            const __m512i low = _mm512_set1_epi8(0x0f);
            for (int j = 0; j < 4; ++j) {
                const __m512i g = _mm512_mask_i32gather_epi32(zero, m, index, base + 2 + 4 * j, 1);
                out[b].w[j] = _mm512_and_si512(g, low);
                out[b].w[j + 4] = _mm512_and_si512(_mm512_srli_epi16(g, 4), low);
            }
        } else {
            const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
            for (int j = 0; j < 8; ++j) {
                const __m512i g = _mm512_mask_i32gather_epi32(zero, m, index, base + 2 + 4 * j, 1);
                out[b].w[j] = _mm512_xor_si512(g, flip);
            }
        }
    }
}

std::int32_t load_i32(const unsigned char* p) {
    std::int32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

template <int T>
void tile(const PackedBlock* pk, std::size_t nb, const unsigned char* const* acts,
          const ActInfo* const* info, float* y, std::size_t ldy, __mmask16 m) {
    __m512 acc[T];
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
    for (std::size_t b = 0; b < nb; ++b) {
        const PackedBlock& p = pk[b];
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
            const unsigned char* q = acts[t] + b * kActBlock + 2;
            __m512i s = _mm512_set1_epi32(info[t][b].seed);
#pragma GCC unroll 8
            for (int j = 0; j < 8; ++j) {
                s = _mm512_dpbusd_epi32(s, p.w[j], _mm512_set1_epi32(load_i32(q + 4 * j)));
            }
            // Rounded as the portable path does: ((d_w * d_a) * isum), then the sum in block
            // order, so prefill products equal the portable ones bit for bit.
            const __m512 scale = _mm512_mul_ps(p.d, _mm512_set1_ps(info[t][b].d));
            acc[t] = _mm512_add_ps(acc[t], _mm512_mul_ps(scale, _mm512_cvtepi32_ps(s)));
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t)
        _mm512_mask_storeu_ps(y + static_cast<std::size_t>(t) * ldy, m, acc[t]);
}

using TileFn = void (*)(const PackedBlock*, std::size_t, const unsigned char* const*,
                        const ActInfo* const*, float*, std::size_t, __mmask16);
constexpr TileFn kTiles[kTokens] = {tile<1>, tile<2>, tile<3>, tile<4>,
                                    tile<5>, tile<6>, tile<7>, tile<8>};

}  // namespace

// Called only from the AVX-512 quantized gemm (kernels_q_avx512.cpp) for n > 1. Returns false,
// having written nothing, when it cannot run (scratch memory, row stride past 2 GiB / 16).
bool avx512_gemm_quant_panel(GgmlType w, const void* W, std::size_t w_stride, std::size_t k,
                             std::size_t r0, std::size_t r1, const void* A, std::size_t n, float* y,
                             std::size_t ldy) {
    const bool q4 = w == GgmlType::Q4_0;
    const std::size_t nb = k / kQK8_0;
    if (nb == 0 || w_stride > 0x7fffffffu / kRows) return false;
    const std::size_t a_stride = act_row_bytes(GgmlType::Q8_0, k);
    const std::size_t sums_at = (nb * kActBlock + 63) & ~std::size_t{63};
    auto* packed = static_cast<PackedBlock*>(std::aligned_alloc(64, nb * sizeof(PackedBlock)));
    auto* info = static_cast<ActInfo*>(std::malloc(n * nb * sizeof(ActInfo)));
    if (packed == nullptr || info == nullptr) {
        std::free(packed);
        std::free(info);
        return false;
    }
    const auto* abytes = static_cast<const unsigned char*>(A);
    const int shift = q4 ? 3 : 7;
    for (std::size_t t = 0; t < n; ++t) {
        const unsigned char* row = abytes + t * a_stride;
        const auto* sums = reinterpret_cast<const std::int32_t*>(row + sums_at);
        for (std::size_t b = 0; b < nb; ++b) {
            std::int32_t total = 0;
            for (int g = 0; g < 8; ++g) total += sums[8 * b + static_cast<std::size_t>(g)];
            std::uint16_t h;
            std::memcpy(&h, row + b * kActBlock, 2);
            info[t * nb + b] = {-total * (1 << shift), _cvtsh_ss(h)};
        }
    }
    const auto* wbytes = static_cast<const unsigned char*>(W);
    for (std::size_t r = r0; r < r1; r += kRows) {
        const int rows = static_cast<int>(r1 - r < kRows ? r1 - r : kRows);
        const __mmask16 m = static_cast<__mmask16>(rows >= kRows ? 0xffffu : (1u << rows) - 1u);
        if (q4) {
            pack<true>(wbytes + r * w_stride, w_stride, rows, nb, packed);
        } else {
            pack<false>(wbytes + r * w_stride, w_stride, rows, nb, packed);
        }
        for (std::size_t t = 0; t < n; t += kTokens) {
            const int nt = static_cast<int>(n - t < kTokens ? n - t : kTokens);
            const unsigned char* acts[kTokens];
            const ActInfo* infos[kTokens];
            for (int i = 0; i < nt; ++i) {
                acts[i] = abytes + (t + static_cast<std::size_t>(i)) * a_stride;
                infos[i] = info + (t + static_cast<std::size_t>(i)) * nb;
            }
            kTiles[nt - 1](packed, nb, acts, infos, y + t * ldy + r, ldy, m);
        }
    }
    std::free(packed);
    std::free(info);
    return true;
}

}  // namespace pylon::runtime::kernels::detail
