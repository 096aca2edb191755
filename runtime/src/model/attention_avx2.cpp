// Attention for AVX2 + FMA + F16C (see attention.h); bit-identical to attend_portable. Every
// 16-lane quantity of the AVX-512 order is a pair of 8-lane halves (lo: lanes 0..7, hi: 8..15).
#include <immintrin.h>

#include <cmath>

#include "model/attention.h"
#include "model/attention_simd.h"

namespace pylon::runtime::detail {
namespace {

// _mm512_reduce_add_ps's tree over the 16 lanes hi:lo.
float tree16(__m256 lo, __m256 hi) {
    const __m256 h = _mm256_add_ps(hi, lo);
    const __m128 q = _mm_add_ps(_mm256_extractf128_ps(h, 1), _mm256_castps256_ps128(h));
    const __m128 p = _mm_add_ps(q, _mm_shuffle_ps(q, q, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_cvtss_f32(p) + _mm_cvtss_f32(_mm_shuffle_ps(p, p, 1));
}

double dsum1(const float* x, const std::uint16_t* y, std::size_t n, double sum) {
    for (std::size_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * _cvtsh_ss(y[i]));
    return sum;
}

float ggml_main(const float* x, const std::uint16_t* y, std::size_t np) {
    __m256 lo[4], hi[4];
    for (int r = 0; r < 4; ++r) lo[r] = hi[r] = _mm256_setzero_ps();
    for (std::size_t i = 0; i < np; i += 64) {
        for (int r = 0; r < 4; ++r) {
            const std::size_t o = i + 16 * static_cast<std::size_t>(r);
            lo[r] = _mm256_fmadd_ps(_mm256_loadu_ps(x + o), load_h8(y + o), lo[r]);
            hi[r] = _mm256_fmadd_ps(_mm256_loadu_ps(x + o + 8), load_h8(y + o + 8), hi[r]);
        }
    }
    lo[0] = _mm256_add_ps(lo[0], lo[2]);
    hi[0] = _mm256_add_ps(hi[0], hi[2]);
    lo[1] = _mm256_add_ps(lo[1], lo[3]);
    hi[1] = _mm256_add_ps(hi[1], hi[3]);
    return tree16(_mm256_add_ps(lo[0], lo[1]), _mm256_add_ps(hi[0], hi[1]));
}

// out[r] = ggml_vec_dot_f16(x, y[r], n) for 8 rows; the double tails run with rows as lanes.
void dot_ggml8(const float* x, const std::uint16_t* const y[8], std::size_t n, float* out) {
    const std::size_t np = n & ~std::size_t{63};
    alignas(32) double s[8];
    for (int r = 0; r < 8; ++r) s[r] = np > 0 ? static_cast<double>(ggml_main(x, y[r], np)) : 0.0;
    __m256d s0 = _mm256_load_pd(s), s1 = _mm256_load_pd(s + 4);
    const std::size_t n8 = (n - np) & ~std::size_t{7};
    for (std::size_t i0 = np; i0 < np + n8; i0 += 8) {
        const __m256 xv = _mm256_loadu_ps(x + i0);
        __m256 p[8];
        for (int r = 0; r < 8; ++r) p[r] = _mm256_mul_ps(xv, load_h8(y[r] + i0));
        transpose8(p);
        for (int i = 0; i < 8; ++i) {
            s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(p[i])));
            s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(p[i], 1)));
        }
    }
    _mm256_store_pd(s, s0);
    _mm256_store_pd(s + 4, s1);
    const std::size_t done = np + n8;
    for (int r = 0; r < 8; ++r)
        out[r] = static_cast<float>(dsum1(x + done, y[r] + done, n - done, s[r]));
}

float dot_ggml1(const float* x, const std::uint16_t* y, std::size_t n) {
    const std::size_t np = n & ~std::size_t{63};
    const double main = np > 0 ? static_cast<double>(ggml_main(x, y, np)) : 0.0;
    return static_cast<float>(dsum1(x + np, y + np, n - np, main));
}

__m256 pow2(__m256i e) {  // 2^e for -126 <= e <= 127
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23));
}

// ggml_v_expf as in the AVX-512 build; scalef(j, n) becomes two exact power-of-two products.
__m256 v_expf(__m256 x) {
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                      _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256 absn = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
    const __m256 big = _mm256_cmp_ps(absn, _mm256_set1_ps(192), _CMP_GT_OQ);
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(
            _mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
            _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
        u, _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_cvttps_epi32(_mm256_blendv_ps(n, _mm256_setzero_ps(), big));
    const __m256i e1 = _mm256_srai_epi32(_mm256_add_epi32(e, _mm256_srli_epi32(e, 31)), 1);
    const __m256 res = _mm256_mul_ps(_mm256_mul_ps(j, pow2(e1)), pow2(_mm256_sub_epi32(e, e1)));
    const __m256 alt =
        _mm256_and_ps(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_GT_OQ), _mm256_set1_ps(INFINITY));
    return _mm256_blendv_ps(res, alt, big);
}

__m256i lane_mask(std::size_t left) {  // lanes < left set
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const int l = left >= 8 ? 8 : static_cast<int>(left);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(l), idx);
}

__m256 exp_chunk(const float* s, std::size_t left, __m256 vmax) {
    if (left == 0) return _mm256_setzero_ps();
    const __m256i m = lane_mask(left);
    const __m256 x = _mm256_sub_ps(_mm256_maskload_ps(s, m), vmax);
    return _mm256_and_ps(v_expf(x), _mm256_castsi256_ps(m));
}

void softmax_round(float* s, std::uint16_t* p16, std::size_t n) {
    float mx = -INFINITY;
    for (std::size_t j = 0; j < n; ++j) mx = s[j] > mx ? s[j] : mx;
    const __m256 vmax = _mm256_set1_ps(mx);
    double sum = 0.0;
    for (std::size_t c = 0; c < n; c += 16) {
        const std::size_t left = n - c;
        const __m256 lo = exp_chunk(s + c, left, vmax);
        const __m256 hi = exp_chunk(s + c + 8, left > 8 ? left - 8 : 0, vmax);
        _mm256_storeu_ps(s + c, lo);
        _mm256_storeu_ps(s + c + 8, hi);
        sum += static_cast<double>(tree16(lo, hi));
    }
    const __m256 inv = _mm256_set1_ps(static_cast<float>(1.0 / sum));
    const std::size_t n_pad = (n + 31) / 32 * 32;
    for (std::size_t c = 0; c < n_pad; c += 8) {
        const __m256 m = _mm256_castsi256_ps(lane_mask(c < n ? n - c : 0));
        const __m128i h =
            _mm256_cvtps_ph(_mm256_and_ps(_mm256_mul_ps(_mm256_loadu_ps(s + c), inv), m),
                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p16 + c), h);
        _mm256_storeu_ps(s + c, _mm256_cvtph_ps(h));
    }
}

// tinyBLAS's order (one 16-lane chain, as two 8-lane halves) for two half rows against x:
// out[0..1] = x · r0, x · r1 over n (a multiple of 16) elements.
void tiny2(const float* x, const std::uint16_t* r0, const std::uint16_t* r1, std::size_t n,
           float* out) {
    __m256 lo0 = _mm256_setzero_ps(), hi0 = lo0, lo1 = lo0, hi1 = lo0;
    for (std::size_t i = 0; i < n; i += 16) {
        const __m256 xlo = _mm256_loadu_ps(x + i), xhi = _mm256_loadu_ps(x + i + 8);
        lo0 = _mm256_fmadd_ps(load_h8(r0 + i), xlo, lo0);
        hi0 = _mm256_fmadd_ps(load_h8(r0 + i + 8), xhi, hi0);
        lo1 = _mm256_fmadd_ps(load_h8(r1 + i), xlo, lo1);
        hi1 = _mm256_fmadd_ps(load_h8(r1 + i + 8), xhi, hi1);
    }
    out[0] = tree16(lo0, hi0);
    out[1] = tree16(lo1, hi1);
}

}  // namespace

void attend_avx2(const HeadJob& job, const HeadScratch& sc) {
    const std::size_t hd = job.hd, n_kv = job.n_kv;
    std::size_t i = 0;
    for (; i + 8 <= hd; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(job.q + i),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_ps(sc.qf + i, _mm256_cvtph_ps(h));
    }
    for (; i < hd; ++i) {
        sc.qf[i] = _cvtsh_ss(_cvtss_sh(job.q[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    std::size_t j = 0;
    if (qk_tinyblas(job)) {
        for (; j + 2 <= n_kv; j += 2) {
            const std::uint16_t* k0 = job.k + j * job.k_stride;
            tiny2(sc.qf, k0, k0 + job.k_stride, hd, sc.s + j);
            sc.s[j] *= job.scale;
            sc.s[j + 1] *= job.scale;
        }
        for (; j < n_kv; ++j) {
            const std::uint16_t* kj = job.k + j * job.k_stride;
            __m256 lo = _mm256_setzero_ps(), hi = lo;
            for (std::size_t d = 0; d < hd; d += 16) {
                lo = _mm256_fmadd_ps(load_h8(kj + d), _mm256_loadu_ps(sc.qf + d), lo);
                hi = _mm256_fmadd_ps(load_h8(kj + d + 8), _mm256_loadu_ps(sc.qf + d + 8), hi);
            }
            sc.s[j] = tree16(lo, hi) * job.scale;
        }
    } else {
        const __m256 vscale = _mm256_set1_ps(job.scale);
        for (; j + 8 <= n_kv; j += 8) {
            const std::uint16_t* rows[8];
            for (int r = 0; r < 8; ++r) rows[r] = job.k + (j + r) * job.k_stride;
            dot_ggml8(sc.qf, rows, hd, sc.s + j);
            _mm256_storeu_ps(sc.s + j, _mm256_mul_ps(_mm256_loadu_ps(sc.s + j), vscale));
        }
        for (; j < n_kv; ++j) sc.s[j] = dot_ggml1(sc.qf, job.k + j * job.k_stride, hd) * job.scale;
    }
    softmax_round(sc.s, sc.p16, n_kv);
    const std::size_t n_pad = (n_kv + 31) / 32 * 32;
    std::size_t e = 0;
    if (pv_tinyblas(job)) {
        for (; e + 2 <= hd; e += 2) {
            const std::uint16_t* v0 = job.v + e * job.v_stride;
            tiny2(sc.s, v0, v0 + job.v_stride, n_pad, job.out + e);
        }
        return;  // hd % 4 == 0
    }
    for (; e + 8 <= hd; e += 8) {
        const std::uint16_t* rows[8];
        for (int r = 0; r < 8; ++r) rows[r] = job.v + (e + r) * job.v_stride;
        dot_ggml8(sc.s, rows, n_pad, job.out + e);
    }
    for (; e < hd; ++e) job.out[e] = dot_ggml1(sc.s, job.v + e * job.v_stride, n_pad);
}

void swiglu_avx2(float* g, const float* u, std::size_t n) {
    const std::size_t groups = n / 16 * 16;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (std::size_t i = 0; i < groups; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 e = v_expf(_mm256_sub_ps(_mm256_setzero_ps(), x));
        const __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, e));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    swiglu_tail(g, u, groups, n);
}

}  // namespace pylon::runtime::detail
