// AVX-512 VNNI products of Q4_0 / Q8_0 weights with Q8_0 activations (formats in
// kernel_tables.h).
//
// One zmm holds two 32-blocks: bytes 0..31 block b, 32..63 block b+1, so the 16 int32 lanes of
// vpdpbusd are lanes 0-7 for block b and 8-15 for block b+1, and the per-block scale is one
// vector [d_b x8, d_{b+1} x8]. vpdpbusd multiplies unsigned by signed bytes, so the weights are
// made unsigned and the bias is removed through the accumulator's initial value, computed from
// the activation's group sums (shared by every weight row):
//   Q4_0: the 16 bytes of a block are broadcast to two 128-bit lanes and masked with 0x0f in
//         the first (elements 0..15) and 0xf0 in the second (16 * elements 16..31), which
//         saves a shift per row; init = -8 * sums (first lane) or -128 * sums (second), and
//         the activation's scale vector carries the 1/16 of the second lane (exact).
//   Q8_0: q xor 0x80 = q + 128, init = -128 * sums -> sum q * a
// Tiles of R weight rows x T activation rows keep R*T accumulators. Decode (T == 1) streams each
// weight row once, four rows and four blocks per step (Q4_0 with the layout described at
// q4_decode_quads). With two or more activation rows each pair's quants, seed and scale are
// derived once per call (PairAux); from kPanelMinTokens rows on the product goes to the
// repacking kernel of kernels_qpanel_avx512.cpp instead. A last odd block is added per
// (row, token) with a 256-bit step. Every function here is internal (AVX-512 code must not be
// reachable before the CPU check) except the entry point in namespace detail.

// GCC 12 reports the deliberately undefined pass-through operand (_mm512_undefined_ps() and
// friends) inside _mm512_cvtph_ps, _mm512_extractf64x4_pd, ... as (maybe-)uninitialized; the
// warning is located in the intrinsics header, so the suppression must precede it.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstdlib>
#include <cstring>

#include "kernels/kernel_tables.h"

namespace pylon::runtime::kernels::detail {

namespace {

// From this many activation rows on, repacking 16 weight rows (kernels_qpanel_avx512.cpp) pays.
constexpr std::size_t kPanelMinTokens = 8;

// Decode prefetches the weight rows this far ahead (two 4-row groups).
constexpr std::size_t kPrefetchRows = 8;
constexpr std::size_t kAuxPanelBytes = 128 * 1024;

constexpr std::size_t kActBlock = sizeof(BlockQ8_0);

std::uint16_t load_u16(const unsigned char* p) {
    std::uint16_t h;
    std::memcpy(&h, p, 2);
    return h;
}

// [h0 x8, h1 x8] as floats.
__m512 pair_scale(std::uint16_t h0, std::uint16_t h1) {
    const __m256i idx = _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m128i v = _mm_cvtsi32_si128(static_cast<int>(h0 | (static_cast<unsigned>(h1) << 16)));
    return _mm512_cvtph_ps(_mm256_permutexvar_epi16(idx, _mm256_castsi128_si256(v)));
}

// Scales of blocks b..b+3 of a Q8_0-layout row (34-byte blocks) as 32 halves
// [d_b x8, d_b+1 x8 | d_b+2 x8, d_b+3 x8]; reads 128 bytes, within the four blocks' 136.
__m512i quad_halves_34(const unsigned char* blk) {
    const __m512i idx =
        _mm512_set_epi16(51, 51, 51, 51, 51, 51, 51, 51, 34, 34, 34, 34, 34, 34, 34, 34, 17, 17, 17,
                         17, 17, 17, 17, 17, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_permutex2var_epi16(_mm512_loadu_si512(blk), idx, _mm512_loadu_si512(blk + 64));
}

// The two 32-blocks of Q8_0 quants starting at block `blk` (34-byte blocks), signed.
__m512i q8_pair(const unsigned char* blk) {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + kActBlock + 2));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

struct Q4Weights {
    static constexpr std::size_t kBlock = sizeof(BlockQ4_0);
    static constexpr int kSingleShift = 3;
    static constexpr bool kNibbles = true;
    static __m512i pair(const unsigned char* blk) {
        const __m512i keep =
            _mm512_set_epi64(static_cast<long long>(0xf0f0f0f0f0f0f0f0ull),
                             static_cast<long long>(0xf0f0f0f0f0f0f0f0ull), 0x0f0f0f0f0f0f0f0fll,
                             0x0f0f0f0f0f0f0f0fll, static_cast<long long>(0xf0f0f0f0f0f0f0f0ull),
                             static_cast<long long>(0xf0f0f0f0f0f0f0f0ull), 0x0f0f0f0f0f0f0f0fll,
                             0x0f0f0f0f0f0f0f0fll);
        __m512i v =
            _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2)));
        v = _mm512_mask_broadcast_i32x4(
            v, 0xff00, _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + kBlock + 2)));
        return _mm512_and_si512(v, keep);
    }
    static __m512i init(const std::int32_t* sums) {
        const __m512i shift = _mm512_setr_epi32(3, 3, 3, 3, 7, 7, 7, 7, 3, 3, 3, 3, 7, 7, 7, 7);
        return _mm512_sub_epi32(_mm512_setzero_si512(),
                                _mm512_sllv_epi32(_mm512_loadu_si512(sums), shift));
    }
    static __m512 act_scale(__m512 ad) {
        const float s = 1.0f / 16;
        return _mm512_mul_ps(ad, _mm512_setr_ps(1, 1, 1, 1, s, s, s, s, 1, 1, 1, 1, s, s, s, s));
    }
    static __m256i single(const unsigned char* blk) {
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
        const __m128i m = _mm_set1_epi8(0x0f);
        return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));
    }
    // Reads 64 bytes, within the four blocks' 72.
    static __m512i quad_halves(const unsigned char* blk) {
        const __m512i idx =
            _mm512_set_epi16(27, 27, 27, 27, 27, 27, 27, 27, 18, 18, 18, 18, 18, 18, 18, 18, 9, 9,
                             9, 9, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0);
        return _mm512_permutexvar_epi16(idx, _mm512_loadu_si512(blk));
    }
};

struct Q8Weights {
    static constexpr std::size_t kBlock = sizeof(BlockQ8_0);
    static constexpr int kSingleShift = 7;
    static constexpr bool kNibbles = false;
    static __m512i pair(const unsigned char* blk) {
        return _mm512_xor_si512(q8_pair(blk), _mm512_set1_epi8(static_cast<char>(0x80)));
    }
    static __m512i init(const std::int32_t* sums) {
        return _mm512_sub_epi32(_mm512_setzero_si512(),
                                _mm512_slli_epi32(_mm512_loadu_si512(sums), 7));
    }
    static __m512 act_scale(__m512 ad) { return ad; }
    static __m256i single(const unsigned char* blk) {
        return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2)),
                                _mm256_set1_epi8(static_cast<char>(0x80)));
    }
    static __m512i quad_halves(const unsigned char* blk) { return quad_halves_34(blk); }
};

// What a pair of blocks of one activation row contributes to every weight row, computed once
// per gemm call for prefill: the quants, the accumulator seed and the scale vector.
struct alignas(64) PairAux {
    __m512i a;
    __m512i init;
    __m512 ad;
};

// One activation row: Q8_0 blocks, then 8 group sums per block; `aux` (prefill only) has one
// PairAux per pair of blocks.
struct ActRow {
    const unsigned char* blocks;
    const std::int32_t* sums;
    const PairAux* aux;
    // Decode: bytes from a weight row to the one prefetched alongside it (kPrefetchRows ahead),
    // so that memory latency overlaps the arithmetic instead of following it.
    std::size_t ahead;
};

// Exact per-block product of one block, scaled as the portable path does.
template <class W>
float single_block(const unsigned char* wblk, const ActRow& a, std::size_t b) {
    const unsigned char* ablk = a.blocks + b * kActBlock;
    const __m256i s = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.sums + 8 * b));
    const __m256i init =
        _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(s, W::kSingleShift));
    const __m256i act = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ablk + 2));
    const __m256i p = _mm256_dpbusd_epi32(init, W::single(wblk), act);
    __m128i r = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, _MM_SHUFFLE(1, 0, 3, 2)));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, _MM_SHUFFLE(2, 3, 0, 1)));
    const float d = _cvtsh_ss(load_u16(wblk)) * _cvtsh_ss(load_u16(ablk));
    return d * static_cast<float>(_mm_cvtsi128_si32(r));
}

// A fresh copy of *p loaded from (L1) memory: vpdpbusd overwrites its accumulator, and a load
// costs a load port where the register copy the compiler would make costs a vector ALU slot.
__m512i load_seed(const __m512i* p) {
    __m512i v;
    __asm__ volatile("vmovdqa64 %1, %0" : "=v"(v) : "m"(*p));
    return v;
}

// Decode of Q4_0, four blocks per step: one zmm holds the 16 quant bytes of each of the four
// blocks (gathered by one word permute over two loads), so its low nibbles are elements 0..15
// and its high nibbles elements 16..31 of each block; both vpdpbusd accumulate into the same
// lanes (lanes 4j..4j+3 belong to block j), which then need one convert and one FMA with the
// scale vector [d_j x4]. The activation side is rearranged to match, once for all R rows.
template <int R>
std::size_t q4_decode_quads(const unsigned char* const* rows, const ActRow& act, std::size_t nb,
                            __m512* acc) {
    const __m512i idx_qs =
        _mm512_set_epi16(63, 62, 61, 60, 31, 30, 29, 28, 26, 25, 24, 23, 22, 21, 20, 19, 17, 16, 15,
                         14, 13, 12, 11, 10, 8, 7, 6, 5, 4, 3, 2, 1);
    const __m512i idx_d = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 27, 27,
                                           27, 27, 18, 18, 18, 18, 9, 9, 9, 9, 0, 0, 0, 0);
    const __m512i idx_ad = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 51, 51,
                                            51, 51, 34, 34, 34, 34, 17, 17, 17, 17, 0, 0, 0, 0);
    const __m512i idx_sum =
        _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
    const __m512i four = _mm512_set1_epi32(4);
    const __m512i low = _mm512_set1_epi8(0x0f);
    std::size_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        const unsigned char* ablk = act.blocks + b * kActBlock;
        __m512i a_lo =
            _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ablk + 2)));
        __m512i a_hi =
            _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ablk + 18)));
        a_lo = _mm512_inserti32x4(a_lo,
                                  _mm_loadu_si128(reinterpret_cast<const __m128i*>(ablk + 36)), 1);
        a_hi = _mm512_inserti32x4(a_hi,
                                  _mm_loadu_si128(reinterpret_cast<const __m128i*>(ablk + 52)), 1);
        a_lo = _mm512_inserti32x4(a_lo,
                                  _mm_loadu_si128(reinterpret_cast<const __m128i*>(ablk + 70)), 2);
        a_hi = _mm512_inserti32x4(a_hi,
                                  _mm_loadu_si128(reinterpret_cast<const __m128i*>(ablk + 86)), 2);
        a_lo = _mm512_inserti32x4(a_lo,
                                  _mm_loadu_si128(reinterpret_cast<const __m128i*>(ablk + 104)), 3);
        a_hi = _mm512_inserti32x4(a_hi,
                                  _mm_loadu_si128(reinterpret_cast<const __m128i*>(ablk + 120)), 3);
        const __m512 ad = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(
            _mm512_loadu_si512(ablk), idx_ad, _mm512_loadu_si512(ablk + 64))));
        // Lane 4j+g: groups g (elements 4g..4g+3) and g+4 (16+4g..) of block j.
        const __m512i s0 = _mm512_loadu_si512(act.sums + 8 * b);
        const __m512i s1 = _mm512_loadu_si512(act.sums + 8 * b + 16);
        const __m512i sum =
            _mm512_add_epi32(_mm512_permutex2var_epi32(s0, idx_sum, s1),
                             _mm512_permutex2var_epi32(s0, _mm512_add_epi32(idx_sum, four), s1));
        const __m512i init = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sum, 3));
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            const unsigned char* wblk = rows[r] + b * sizeof(BlockQ4_0);
            _mm_prefetch(reinterpret_cast<const char*>(wblk + act.ahead), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(wblk + act.ahead + 64), _MM_HINT_T0);
            // Reads bytes 0..71: exactly the four blocks.
            const __m512i x0 = _mm512_loadu_si512(wblk);
            const __m512i qs = _mm512_permutex2var_epi16(x0, idx_qs, _mm512_loadu_si512(wblk + 8));
            const __m512i lo = _mm512_and_si512(qs, low);
            const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(qs, 4), low);
            const __m512i p = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(init, lo, a_lo), hi, a_hi);
            const __m512 wd =
                _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(idx_d, x0)));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(wd, ad), acc[r]);
        }
    }
    return b;
}

template <class W, int R, int T>
void tile(const unsigned char* const* rows, const ActRow* acts, std::size_t nb, float* y,
          std::size_t ldy) {
    __m512 acc[R][T];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    }
    std::size_t b = 0;
    if constexpr (T == 1 && W::kNibbles) {
        if (acts[0].aux == nullptr) {
            __m512 a1[R];
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) a1[r] = acc[r][0];
            b = q4_decode_quads<R>(rows, acts[0], nb, a1);
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) acc[r][0] = a1[r];
        }
    }
    if constexpr (T == 1 && !W::kNibbles) {
        for (; acts[0].aux == nullptr && b + 4 <= nb; b += 4) {
            const unsigned char* ablk = acts[0].blocks + b * kActBlock;
            const __m512i ah = quad_halves_34(ablk);
            const __m512 ad0 = W::act_scale(_mm512_cvtph_ps(_mm512_castsi512_si256(ah)));
            const __m512 ad1 = W::act_scale(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(ah, 1)));
            const __m512i a0 = q8_pair(ablk);
            const __m512i a1 = q8_pair(ablk + 2 * kActBlock);
            const __m512i init0 = W::init(acts[0].sums + 8 * b);
            const __m512i init1 = W::init(acts[0].sums + 8 * b + 16);
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) {
                const unsigned char* wblk = rows[r] + b * W::kBlock;
                const char* next = reinterpret_cast<const char*>(wblk + acts[0].ahead);
                _mm_prefetch(next, _MM_HINT_T0);
                _mm_prefetch(next + 64, _MM_HINT_T0);
                _mm_prefetch(next + 128, _MM_HINT_T0);
                const __m512i wh = W::quad_halves(wblk);
                const __m512 s0 = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(wh)), ad0);
                const __m512 s1 =
                    _mm512_mul_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(wh, 1)), ad1);
                const __m512i p0 = _mm512_dpbusd_epi32(init0, W::pair(wblk), a0);
                const __m512i p1 = _mm512_dpbusd_epi32(init1, W::pair(wblk + 2 * W::kBlock), a1);
                acc[r][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), s0, acc[r][0]);
                acc[r][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), s1, acc[r][0]);
            }
        }
    }
    if constexpr (T == 1) {
        if (acts[0].aux == nullptr) {
            for (; b + 2 <= nb; b += 2) {
                const unsigned char* ablk = acts[0].blocks + b * kActBlock;
                const __m512i a = q8_pair(ablk);
                const __m512i init = W::init(acts[0].sums + 8 * b);
                const __m512 ad =
                    W::act_scale(pair_scale(load_u16(ablk), load_u16(ablk + kActBlock)));
#pragma GCC unroll 4
                for (int r = 0; r < R; ++r) {
                    const unsigned char* wblk = rows[r] + b * W::kBlock;
                    const __m512 wd = pair_scale(load_u16(wblk), load_u16(wblk + W::kBlock));
                    const __m512i p = _mm512_dpbusd_epi32(init, W::pair(wblk), a);
                    acc[r][0] =
                        _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(wd, ad), acc[r][0]);
                }
            }
        }
    }
    for (; b + 2 <= nb; b += 2) {
        __m512i w[R];
        __m512 wd[R];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            const unsigned char* wblk = rows[r] + b * W::kBlock;
            w[r] = W::pair(wblk);
            wd[r] = pair_scale(load_u16(wblk), load_u16(wblk + W::kBlock));
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) {
            __m512i a;
            __m512 ad;
            PairAux own;
            const PairAux* x = acts[t].aux != nullptr ? &acts[t].aux[b / 2] : &own;
            if (acts[t].aux == nullptr) {  // no scratch memory for the PairAux panel
                const unsigned char* ablk = acts[t].blocks + b * kActBlock;
                own.init = W::init(acts[t].sums + 8 * b);
                a = q8_pair(ablk);
                ad = W::act_scale(pair_scale(load_u16(ablk), load_u16(ablk + kActBlock)));
            } else {
                a = x->a;
                ad = x->ad;
            }
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) {
                const __m512i p = _mm512_dpbusd_epi32(load_seed(&x->init), w[r], a);
                acc[r][t] =
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(wd[r], ad), acc[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) {
            float sum = _mm512_reduce_add_ps(acc[r][t]);
            if (b < nb) sum += single_block<W>(rows[r] + b * W::kBlock, acts[t], b);
            y[t * ldy + r] = sum;
        }
    }
}

using TileFn = void (*)(const unsigned char* const*, const ActRow*, std::size_t, float*,
                        std::size_t);

template <class W, int R>
constexpr TileFn tile_for(int t) {
    return t == 1 ? tile<W, R, 1> : t == 2 ? tile<W, R, 2> : t == 3 ? tile<W, R, 3> : tile<W, R, 4>;
}

template <class W>
void gemm_q(const void* W_, std::size_t w_stride, std::size_t k, std::size_t r0, std::size_t r1,
            const void* A, std::size_t n, float* y, std::size_t ldy) {
    constexpr int kR = 4, kT = 4;
    static constexpr TileFn kTiles[kR][kT] = {
        {tile_for<W, 1>(1), tile_for<W, 1>(2), tile_for<W, 1>(3), tile_for<W, 1>(4)},
        {tile_for<W, 2>(1), tile_for<W, 2>(2), tile_for<W, 2>(3), tile_for<W, 2>(4)},
        {tile_for<W, 3>(1), tile_for<W, 3>(2), tile_for<W, 3>(3), tile_for<W, 3>(4)},
        {tile_for<W, 4>(1), tile_for<W, 4>(2), tile_for<W, 4>(3), tile_for<W, 4>(4)},
    };
    const std::size_t nb = k / kQK8_0;
    const std::size_t a_stride = act_row_bytes(GgmlType::Q8_0, k);
    const std::size_t sums_at = (nb * kActBlock + 63) & ~std::size_t{63};
    const auto* wbytes = static_cast<const unsigned char*>(W_);
    const auto* abytes = static_cast<const unsigned char*>(A);
    // Decode reads the activation row directly; prefill first derives every pair's PairAux for a
    // block of tokens (sized to stay in L2) and reuses it for all weight rows.
    const std::size_t pairs = nb / 2;
    std::size_t block = n;
    PairAux* aux = nullptr;
    if (n > 1 && pairs > 0) {
        block = kAuxPanelBytes / (pairs * sizeof(PairAux)) / kT * kT;
        if (block < kT) block = kT;
        if (block > n) block = n;
        aux = static_cast<PairAux*>(std::aligned_alloc(64, block * pairs * sizeof(PairAux)));
        if (aux == nullptr) block = n;  // out of memory: tiles read the rows directly
    }
    for (std::size_t t0 = 0; t0 < n; t0 += block) {
        const std::size_t t1 = n - t0 < block ? n : t0 + block;
        if (aux != nullptr) {
            for (std::size_t t = t0; t < t1; ++t) {
                const unsigned char* row = abytes + t * a_stride;
                const auto* sums = reinterpret_cast<const std::int32_t*>(row + sums_at);
                for (std::size_t p = 0; p < pairs; ++p) {
                    const unsigned char* ablk = row + 2 * p * kActBlock;
                    PairAux& x = aux[(t - t0) * pairs + p];
                    x.a = q8_pair(ablk);
                    x.init = W::init(sums + 16 * p);
                    x.ad = W::act_scale(pair_scale(load_u16(ablk), load_u16(ablk + kActBlock)));
                }
            }
        }
        for (std::size_t r = r0; r < r1; r += kR) {
            const int nr = static_cast<int>(r1 - r < kR ? r1 - r : kR);
            const unsigned char* rows[kR];
            for (int i = 0; i < nr; ++i) {
                rows[i] = wbytes + (r + static_cast<std::size_t>(i)) * w_stride;
            }
            for (std::size_t t = t0; t < t1; t += kT) {
                const int nt = static_cast<int>(t1 - t < kT ? t1 - t : kT);
                ActRow acts[kT];
                for (int i = 0; i < nt; ++i) {
                    const std::size_t ti = t + static_cast<std::size_t>(i);
                    const unsigned char* row = abytes + ti * a_stride;
                    acts[i] = {row, reinterpret_cast<const std::int32_t*>(row + sums_at),
                               aux != nullptr ? aux + (ti - t0) * pairs : nullptr,
                               kPrefetchRows * w_stride};
                }
                kTiles[nr - 1][nt - 1](rows, acts, nb, y + t * ldy + r, ldy);
            }
        }
    }
    std::free(aux);
}

}  // namespace

// Called only through the AVX-512 table (kernels_avx512.cpp).
void avx512_gemm_quant(GgmlType w, const void* W, std::size_t w_stride, std::size_t k,
                       std::size_t r0, std::size_t r1, const void* A, std::size_t n, float* y,
                       std::size_t ldy) {
    if (n >= kPanelMinTokens && avx512_gemm_quant_panel(w, W, w_stride, k, r0, r1, A, n, y, ldy)) {
        return;
    }
    if (w == GgmlType::Q4_0) {
        gemm_q<Q4Weights>(W, w_stride, k, r0, r1, A, n, y, ldy);
    } else {
        gemm_q<Q8Weights>(W, w_stride, k, r0, r1, A, n, y, ldy);
    }
}

}  // namespace pylon::runtime::kernels::detail
