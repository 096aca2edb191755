// Attention for AVX-512 (see attention.h); bit-identical to attend_portable.
// GCC 12 reports a false -Wmaybe-uninitialized from inside its own AVX-512 intrinsics headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "model/attention.h"
#include "model/attention_simd.h"

namespace pylon::runtime::detail {
namespace {

__m512 load_h16(const std::uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// For 8 half rows y[r] (lanes r): sums[r] += sum over i < n, in order, of double(x[i] * y[r][i]);
// n a multiple of 8. The products of two halves are exact in float.
__m512d dsum8(const float* x, const std::uint16_t* const y[8], std::size_t n, __m512d sums) {
    for (std::size_t i0 = 0; i0 < n; i0 += 8) {
        const __m256 xv = _mm256_loadu_ps(x + i0);
        __m256 p[8];
        for (int r = 0; r < 8; ++r) p[r] = _mm256_mul_ps(xv, load_h8(y[r] + i0));
        transpose8(p);
        for (int i = 0; i < 8; ++i) sums = _mm512_add_pd(sums, _mm512_cvtps_pd(p[i]));
    }
    return sums;
}

double dsum1(const float* x, const std::uint16_t* y, std::size_t n, double sum) {
    for (std::size_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * _cvtsh_ss(y[i]));
    return sum;
}

// The 4 x 16-lane part of ggml_vec_dot_f16 over np (a multiple of 64) elements, reduced.
float ggml_main(const float* x, const std::uint16_t* y, std::size_t np) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (std::size_t i = 0; i < np; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), load_h16(y + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), load_h16(y + i + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), load_h16(y + i + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), load_h16(y + i + 48), a3);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a2), _mm512_add_ps(a1, a3)));
}

// out[r] = ggml_vec_dot_f16(x, y[r], n) for 8 rows.
void dot_ggml8(const float* x, const std::uint16_t* const y[8], std::size_t n, float* out) {
    const std::size_t np = n & ~std::size_t{63};
    alignas(64) double main[8];
    for (int r = 0; r < 8; ++r)
        main[r] = np > 0 ? static_cast<double>(ggml_main(x, y[r], np)) : 0.0;
    const std::uint16_t* tail[8];
    for (int r = 0; r < 8; ++r) tail[r] = y[r] + np;
    __m512d sums = _mm512_load_pd(main);
    const std::size_t n8 = (n - np) & ~std::size_t{7};
    sums = dsum8(x + np, tail, n8, sums);
    alignas(64) double s[8];
    _mm512_store_pd(s, sums);
    for (int r = 0; r < 8; ++r)
        out[r] = static_cast<float>(dsum1(x + np + n8, tail[r] + n8, n - np - n8, s[r]));
}

float dot_ggml1(const float* x, const std::uint16_t* y, std::size_t n) {
    const std::size_t np = n & ~std::size_t{63};
    const double main = np > 0 ? static_cast<double>(ggml_main(x, y, np)) : 0.0;
    return static_cast<float>(dsum1(x + np, y + np, n - np, main));
}

// ggml_v_expf (ARM optimized-routines' expf), 16 lanes.
__m512 v_expf(__m512 x) {
    const __m512 r = _mm512_set1_ps(0x1.8p23f);
    const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
    const __m512 n = _mm512_sub_ps(z, r);
    const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f),
                                      _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
    const __mmask16 d = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192), _CMP_GT_OQ);
    const __m512 u = _mm512_mul_ps(b, b);
    const __m512 j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(
            _mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
            _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
        u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
    const __m512 res = _mm512_scalef_ps(j, n);
    if (_mm512_kortestz(d, d)) return res;
    const __m512 alt = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_LE_OQ),
                                            _mm512_set1_ps(INFINITY), _mm512_setzero_ps());
    return _mm512_mask_blend_ps(d, res, alt);
}

// _mm512_reduce_add_ps of 16 accumulators at once, in its exact tree (8+8, 4+4, then
// (0+2) + (1+3)), the 16 results in order.
__m512 reduce16(const __m512 a[16]) {
    __m512 b[8], c[4], d[2];
    for (int j = 0; j < 8; ++j) {  // t8 of accumulators 2j (lanes 0-7) and 2j+1 (lanes 8-15)
        const __m512 lo = _mm512_shuffle_f32x4(a[2 * j], a[2 * j + 1], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512 hi = _mm512_shuffle_f32x4(a[2 * j], a[2 * j + 1], _MM_SHUFFLE(3, 2, 3, 2));
        b[j] = _mm512_add_ps(hi, lo);
    }
    for (int j = 0; j < 4; ++j) {  // t4 of accumulators 4j..4j+3, one per 128-bit lane
        const __m512 x = _mm512_shuffle_f32x4(b[2 * j], b[2 * j + 1], _MM_SHUFFLE(2, 0, 2, 0));
        const __m512 y = _mm512_shuffle_f32x4(b[2 * j], b[2 * j + 1], _MM_SHUFFLE(3, 1, 3, 1));
        c[j] = _mm512_add_ps(y, x);
    }
    for (int j = 0; j < 2; ++j) {  // (t4[0] + t4[2], t4[1] + t4[3]) of two accumulators per lane
        const __m512 x = _mm512_shuffle_ps(c[2 * j], c[2 * j + 1], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512 y = _mm512_shuffle_ps(c[2 * j], c[2 * j + 1], _MM_SHUFFLE(3, 2, 3, 2));
        d[j] = _mm512_add_ps(x, y);
    }
    const __m512 x = _mm512_shuffle_ps(d[0], d[1], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512 y = _mm512_shuffle_ps(d[0], d[1], _MM_SHUFFLE(3, 1, 3, 1));
    // Element 4l + i now holds accumulator 4i + l.
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(order, _mm512_add_ps(x, y));
}

// out[r] = ggml_vec_dot_f16(x, y[r], n) for 16 rows: the 4 x 16-lane parts folded per row and
// reduced together, then the double tails 8 rows at a time.
void dot_ggml16(const float* x, const std::uint16_t* const y[16], std::size_t n, float* out) {
    const std::size_t np = n & ~std::size_t{63};
    alignas(64) float main[16] = {};
    if (np > 0) {
        __m512 folded[16];
        for (int r = 0; r < 16; ++r) {
            // Named accumulators: as an array GCC kept them in memory, one store-forwarding
            // round trip per fma.
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            const std::uint16_t* yr = y[r];
            for (std::size_t i = 0; i < np; i += 64) {
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), load_h16(yr + i), a0);
                a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), load_h16(yr + i + 16), a1);
                a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), load_h16(yr + i + 32), a2);
                a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), load_h16(yr + i + 48), a3);
            }
            folded[r] = _mm512_add_ps(_mm512_add_ps(a0, a2), _mm512_add_ps(a1, a3));
        }
        _mm512_store_ps(main, reduce16(folded));
    }
    const std::size_t n8 = (n - np) & ~std::size_t{7};
    for (int h = 0; h < 2; ++h) {
        const std::uint16_t* tail[8];
        for (int r = 0; r < 8; ++r) tail[r] = y[8 * h + r] + np;
        __m512d sums = _mm512_cvtps_pd(_mm256_load_ps(main + 8 * h));
        if (np == 0) sums = _mm512_setzero_pd();
        sums = dsum8(x + np, tail, n8, sums);
        alignas(64) double s[8];
        _mm512_store_pd(s, sums);
        for (int r = 0; r < 8; ++r) {
            out[8 * h + r] =
                static_cast<float>(dsum1(x + np + n8, tail[r] + n8, n - np - n8, s[r]));
        }
    }
}

// dot_ggml16 for G vectors x[g] against the same 16 half rows y[r], n elements: each row's
// 64-element chunks are loaded (and converted) once for all G; out[g][r] gets exactly
// dot_ggml16(x[g], y, n)[r]. G <= kGroupMax.
template <int G>
void dot_ggml16_multi(const float* const x[], const std::uint16_t* const y[16], std::size_t n,
                      float* const out[]) {
    const std::size_t np = n & ~std::size_t{63};
    alignas(64) float main[G][16] = {};
    if (np > 0) {
        __m512 folded[G][16];
        for (int r = 0; r < 16; ++r) {
            __m512 a[G][4];
#pragma GCC unroll 8
            for (int g = 0; g < G; ++g) {
                a[g][0] = a[g][1] = a[g][2] = a[g][3] = _mm512_setzero_ps();
            }
            const std::uint16_t* yr = y[r];
            for (std::size_t i = 0; i < np; i += 64) {
                const __m512 y0 = load_h16(yr + i), y1 = load_h16(yr + i + 16);
                const __m512 y2 = load_h16(yr + i + 32), y3 = load_h16(yr + i + 48);
#pragma GCC unroll 8
                for (int g = 0; g < G; ++g) {
                    a[g][0] = _mm512_fmadd_ps(_mm512_loadu_ps(x[g] + i), y0, a[g][0]);
                    a[g][1] = _mm512_fmadd_ps(_mm512_loadu_ps(x[g] + i + 16), y1, a[g][1]);
                    a[g][2] = _mm512_fmadd_ps(_mm512_loadu_ps(x[g] + i + 32), y2, a[g][2]);
                    a[g][3] = _mm512_fmadd_ps(_mm512_loadu_ps(x[g] + i + 48), y3, a[g][3]);
                }
            }
#pragma GCC unroll 8
            for (int g = 0; g < G; ++g) {
                folded[g][r] =
                    _mm512_add_ps(_mm512_add_ps(a[g][0], a[g][2]), _mm512_add_ps(a[g][1], a[g][3]));
            }
        }
        for (int g = 0; g < G; ++g) _mm512_store_ps(main[g], reduce16(folded[g]));
    }
    const std::size_t n8 = (n - np) & ~std::size_t{7};
    for (int g = 0; g < G; ++g) {
        for (int h = 0; h < 2; ++h) {
            const std::uint16_t* tail[8];
            for (int r = 0; r < 8; ++r) tail[r] = y[8 * h + r] + np;
            __m512d sums = _mm512_cvtps_pd(_mm256_load_ps(main[g] + 8 * h));
            if (np == 0) sums = _mm512_setzero_pd();
            sums = dsum8(x[g] + np, tail, n8, sums);
            alignas(64) double s[8];
            _mm512_store_pd(s, sums);
            for (int r = 0; r < 8; ++r) {
                out[g][8 * h + r] =
                    static_cast<float>(dsum1(x[g] + np + n8, tail[r] + n8, n - np - n8, s[r]));
            }
        }
    }
}

using DotMulti = void (*)(const float* const[], const std::uint16_t* const[16], std::size_t,
                          float* const[]);
constexpr DotMulti kDotMulti[kGroupMax] = {dot_ggml16_multi<1>, dot_ggml16_multi<2>,
                                           dot_ggml16_multi<3>, dot_ggml16_multi<4>,
                                           dot_ggml16_multi<5>, dot_ggml16_multi<6>};

__mmask16 head_mask(std::size_t left) {
    return left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1u);
}

// Softmax of s[0..n), then the probabilities rounded to half (as floats and as halves) and
// zero-padded to a multiple of 32.
void softmax_round(float* s, std::uint16_t* p16, std::size_t n) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (std::size_t c = 0; c < n; c += 16) {
        mx = _mm512_mask_max_ps(mx, head_mask(n - c), mx, _mm512_loadu_ps(s + c));
    }
    const __m512 vmax = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    double sum = 0.0;
    for (std::size_t c = 0; c < n; c += 16) {
        const __mmask16 m = head_mask(n - c);
        const __m512 e =
            _mm512_maskz_mov_ps(m, v_expf(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + c), vmax)));
        _mm512_storeu_ps(s + c, e);
        sum += static_cast<double>(_mm512_reduce_add_ps(e));
    }
    const __m512 inv = _mm512_set1_ps(static_cast<float>(1.0 / sum));
    const std::size_t n_pad = (n + 31) / 32 * 32;
    for (std::size_t c = 0; c < n_pad; c += 16) {
        const __mmask16 m = c < n ? head_mask(n - c) : static_cast<__mmask16>(0);
        const __m256i h = _mm512_cvtps_ph(_mm512_maskz_mul_ps(m, _mm512_loadu_ps(s + c), inv),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p16 + c), h);
        _mm512_storeu_ps(s + c, _mm512_cvtph_ps(h));
    }
}

// tinyBLAS's order for 16 half rows (row r at base + r * stride) against x over n elements (a
// multiple of 16): the 16 results, in order.
__m512 tiny16(const float* x, const std::uint16_t* base, std::size_t stride, std::size_t n) {
    __m512 acc[16];
    for (int r = 0; r < 16; ++r) acc[r] = _mm512_setzero_ps();
    for (std::size_t i = 0; i < n; i += 16) {
        const __m512 xv = _mm512_loadu_ps(x + i);
#pragma GCC unroll 16
        for (int r = 0; r < 16; ++r)
            acc[r] = _mm512_fmadd_ps(load_h16(base + r * stride + i), xv, acc[r]);
    }
    return reduce16(acc);
}

}  // namespace

void attend_avx512(const HeadJob& job, const HeadScratch& sc) {
    const std::size_t hd = job.hd, n_kv = job.n_kv;
    // The cache is usually out of the caches (decode streams all weights between two uses of
    // a layer's cache), and the transposed V rows are short, scattered reads: request them all
    // now, so that they arrive while Q·K and the softmax run.
    if (job.prefetch) {
        const std::size_t row_bytes = (n_kv + 31) / 32 * 32 * sizeof(std::uint16_t);
        for (std::size_t e = 0; e < hd; ++e) {
            const char* row = reinterpret_cast<const char*>(job.v + e * job.v_stride);
            for (std::size_t o = 0; o < row_bytes; o += 64) _mm_prefetch(row + o, _MM_HINT_T0);
        }
    }
    if (job.prefetch) {
        // K rows are one per token, a whole KV row apart: too far apart for the hardware
        // prefetcher to follow.
        const std::size_t key_bytes = hd * sizeof(std::uint16_t);
        for (std::size_t j = 0; j < n_kv; ++j) {
            const char* row = reinterpret_cast<const char*>(job.k + j * job.k_stride);
            for (std::size_t o = 0; o < key_bytes; o += 64) _mm_prefetch(row + o, _MM_HINT_T0);
        }
    }
    // The query rounded to half, kept as floats.
    for (std::size_t i = 0; i < hd; i += 16) {
        const __mmask16 m = head_mask(hd - i);
        const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, job.q + i),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm512_storeu_ps(sc.qf + i, _mm512_cvtph_ps(h));
    }
    const __m512 vscale = _mm512_set1_ps(job.scale);
    std::size_t j = 0;
    if (qk_tinyblas(job)) {
        for (; j + 16 <= n_kv; j += 16) {
            _mm512_storeu_ps(
                sc.s + j,
                _mm512_mul_ps(tiny16(sc.qf, job.k + j * job.k_stride, job.k_stride, hd), vscale));
        }
        for (; j + 4 <= n_kv; j += 4) {
            const std::uint16_t* kj = job.k + j * job.k_stride;
            __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                             _mm512_setzero_ps()};
            for (std::size_t i = 0; i < hd; i += 16) {
                const __m512 q = _mm512_loadu_ps(sc.qf + i);
                for (int r = 0; r < 4; ++r) {
                    acc[r] = _mm512_fmadd_ps(load_h16(kj + r * job.k_stride + i), q, acc[r]);
                }
            }
            for (int r = 0; r < 4; ++r) sc.s[j + r] = _mm512_reduce_add_ps(acc[r]) * job.scale;
        }
        for (; j < n_kv; ++j) {
            const std::uint16_t* kj = job.k + j * job.k_stride;
            __m512 acc = _mm512_setzero_ps();
            for (std::size_t i = 0; i < hd; i += 16) {
                acc = _mm512_fmadd_ps(load_h16(kj + i), _mm512_loadu_ps(sc.qf + i), acc);
            }
            sc.s[j] = _mm512_reduce_add_ps(acc) * job.scale;
        }
    } else {
        // Sixteen keys at a time share one reduction tree (reduce16: the same bits as sixteen
        // _mm512_reduce_add_ps).
        for (; j + 16 <= n_kv; j += 16) {
            const std::uint16_t* rows[16];
            for (int r = 0; r < 16; ++r) rows[r] = job.k + (j + r) * job.k_stride;
            dot_ggml16(sc.qf, rows, hd, sc.s + j);
            _mm512_storeu_ps(sc.s + j, _mm512_mul_ps(_mm512_loadu_ps(sc.s + j), vscale));
        }
        for (; j + 8 <= n_kv; j += 8) {
            const std::uint16_t* rows[8];
            for (int r = 0; r < 8; ++r) rows[r] = job.k + (j + r) * job.k_stride;
            dot_ggml8(sc.qf, rows, hd, sc.s + j);
            _mm256_storeu_ps(
                sc.s + j, _mm256_mul_ps(_mm256_loadu_ps(sc.s + j), _mm512_castps512_ps256(vscale)));
        }
        for (; j < n_kv; ++j) {
            sc.s[j] = dot_ggml1(sc.qf, job.k + j * job.k_stride, hd) * job.scale;
        }
    }
    softmax_round(sc.s, sc.p16, n_kv);
    const std::size_t n_pad = (n_kv + 31) / 32 * 32;
    std::size_t e = 0;
    if (pv_tinyblas(job)) {
        for (; e + 16 <= hd; e += 16) {
            _mm512_storeu_ps(job.out + e,
                             tiny16(sc.s, job.v + e * job.v_stride, job.v_stride, n_pad));
        }
        for (; e < hd; ++e) {
            __m512 acc = _mm512_setzero_ps();
            for (std::size_t l = 0; l < n_pad; l += 16) {
                acc = _mm512_fmadd_ps(load_h16(job.v + e * job.v_stride + l),
                                      _mm512_loadu_ps(sc.s + l), acc);
            }
            job.out[e] = _mm512_reduce_add_ps(acc);
        }
        return;
    }
    for (; e + 16 <= hd; e += 16) {
        const std::uint16_t* rows[16];
        for (int r = 0; r < 16; ++r) rows[r] = job.v + (e + r) * job.v_stride;
        dot_ggml16(sc.s, rows, n_pad, job.out + e);
    }
    for (; e + 8 <= hd; e += 8) {
        const std::uint16_t* rows[8];
        for (int r = 0; r < 8; ++r) rows[r] = job.v + (e + r) * job.v_stride;
        dot_ggml8(sc.s, rows, n_pad, job.out + e);
    }
    for (; e < hd; ++e) job.out[e] = dot_ggml1(sc.s, job.v + e * job.v_stride, n_pad);
}

void attend_group_avx512(const HeadJob* jobs, std::size_t count, const HeadScratch* scratch) {
    const HeadJob& j0 = jobs[0];
    const std::size_t hd = j0.hd;
    bool shared = count >= 2 && count <= kGroupMax && hd % 64 == 0;
    std::size_t n_max = 0;
    for (std::size_t g = 0; g < count && shared; ++g) {
        shared = !jobs[g].batched;
        n_max = std::max(n_max, jobs[g].n_kv);
    }
    if (!shared) {
        for (std::size_t g = 0; g < count; ++g) attend_avx512(jobs[g], scratch[g]);
        return;
    }
    const auto G = static_cast<int>(count);
    if (j0.prefetch) {
        const std::size_t row_bytes = (n_max + 31) / 32 * 32 * sizeof(std::uint16_t);
        for (std::size_t e = 0; e < hd; ++e) {
            const char* row = reinterpret_cast<const char*>(j0.v + e * j0.v_stride);
            for (std::size_t o = 0; o < row_bytes; o += 64) _mm_prefetch(row + o, _MM_HINT_T0);
        }
        for (std::size_t j = 0; j < n_max; ++j) {
            const char* row = reinterpret_cast<const char*>(j0.k + j * j0.k_stride);
            for (std::size_t o = 0; o < hd * sizeof(std::uint16_t); o += 64) {
                _mm_prefetch(row + o, _MM_HINT_T0);
            }
        }
    }
    const float* qf[kGroupMax];
    for (int g = 0; g < G; ++g) {
        for (std::size_t i = 0; i < hd; i += 16) {
            const __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(jobs[g].q + i),
                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm512_storeu_ps(scratch[g].qf + i, _mm512_cvtph_ps(h));
        }
        qf[g] = scratch[g].qf;
    }
    // Q·K for every key up to the longest job's: each key's dot is the same whatever block it
    // falls in (dot_ggml16/8/1 reduce alike), and keys past a job's own n_kv are not used.
    float* s_out[kGroupMax];
    alignas(64) float spare[kGroupMax][16];
    for (std::size_t j = 0; j < n_max; j += 16) {
        const std::size_t nb = std::min<std::size_t>(16, n_max - j);
        const std::uint16_t* rows[16];
        for (std::size_t r = 0; r < 16; ++r) rows[r] = j0.k + (j + (r < nb ? r : 0)) * j0.k_stride;
        for (int g = 0; g < G; ++g) s_out[g] = nb == 16 ? scratch[g].s + j : spare[g];
        kDotMulti[G - 1](qf, rows, hd, s_out);
        for (int g = 0; g < G; ++g) {
            float* s = scratch[g].s + j;
            if (nb < 16) std::copy_n(spare[g], nb, s);
            for (std::size_t r = 0; r < nb; ++r) s[r] *= jobs[g].scale;
        }
    }
    for (int g = 0; g < G; ++g) softmax_round(scratch[g].s, scratch[g].p16, jobs[g].n_kv);
    // P·V, jobs with the same padded length together (a batch's consecutive tokens have one or
    // two lengths).
    bool done[kGroupMax] = {};
    for (int a = 0; a < G; ++a) {
        if (done[a]) continue;
        const std::size_t n_pad = (jobs[a].n_kv + 31) / 32 * 32;
        const float* ps[kGroupMax];
        float* outs[kGroupMax];
        std::size_t idx[kGroupMax];
        int m = 0;
        for (int g = a; g < G; ++g) {
            if (done[g] || (jobs[g].n_kv + 31) / 32 * 32 != n_pad) continue;
            done[g] = true;
            idx[m] = static_cast<std::size_t>(g);
            ps[m++] = scratch[g].s;
        }
        for (std::size_t e = 0; e < hd; e += 16) {
            const std::uint16_t* rows[16];
            for (int r = 0; r < 16; ++r) rows[r] = j0.v + (e + r) * j0.v_stride;
            for (int g = 0; g < m; ++g) outs[g] = jobs[idx[g]].out + e;
            kDotMulti[m - 1](ps, rows, n_pad, outs);
        }
    }
}

void swiglu_avx512(float* g, const float* u, std::size_t n) {
    const std::size_t groups = n / 16 * 16;
    const __m512 one = _mm512_set1_ps(1.0f);
    for (std::size_t i = 0; i < groups; i += 16) {
        const __m512 x = _mm512_loadu_ps(g + i);
        const __m512 e = v_expf(_mm512_sub_ps(_mm512_setzero_ps(), x));
        const __m512 s = _mm512_div_ps(x, _mm512_add_ps(one, e));
        _mm512_storeu_ps(g + i, _mm512_mul_ps(s, _mm512_loadu_ps(u + i)));
    }
    swiglu_tail(g, u, groups, n);
}

}  // namespace pylon::runtime::detail
