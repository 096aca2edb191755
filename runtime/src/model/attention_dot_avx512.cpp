// dot_f16_ggml for AVX-512 (see attention_dot.h).
// GCC 12 reports a false -Wmaybe-uninitialized from inside its own AVX-512 intrinsics headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "model/attention_dot.h"

namespace pylon::runtime::detail {
namespace {

float tail(const std::uint16_t* x, const std::uint16_t* y, std::size_t i, std::size_t n,
           double sumf) {
    for (; i < n; ++i) {
        const float a = _cvtsh_ss(x[i]), b = _cvtsh_ss(y[i]);
        sumf += static_cast<double>(a * b);
    }
    return static_cast<float>(sumf);
}

}  // namespace

float dot_f16_ggml_avx512(const std::uint16_t* x, const std::uint16_t* y, std::size_t n) {
    const std::size_t np = n & ~std::size_t{63};
    if (np == 0) return tail(x, y, 0, n, 0.0);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    for (std::size_t i = 0; i < np; i += 64) {
        for (int r = 0; r < 4; ++r) {
            const auto* px = reinterpret_cast<const __m256i*>(x + i + 16 * r);
            const auto* py = reinterpret_cast<const __m256i*>(y + i + 16 * r);
            const __m512 a = _mm512_cvtph_ps(_mm256_loadu_si256(px));
            const __m512 b = _mm512_cvtph_ps(_mm256_loadu_si256(py));
            acc[r] = _mm512_fmadd_ps(a, b, acc[r]);
        }
    }
    acc[0] = _mm512_add_ps(acc[0], acc[2]);
    acc[1] = _mm512_add_ps(acc[1], acc[3]);
    acc[0] = _mm512_add_ps(acc[0], acc[1]);
    // The same tree as _mm512_reduce_add_ps: halves, quarters, pairs.
    const __m256 h = _mm256_add_ps(_mm512_extractf32x8_ps(acc[0], 1),
                                   _mm512_castps512_ps256(acc[0]));
    const __m128 q = _mm_add_ps(_mm256_extractf128_ps(h, 1), _mm256_castps256_ps128(h));
    const __m128 p = _mm_add_ps(q, _mm_shuffle_ps(q, q, _MM_SHUFFLE(1, 0, 3, 2)));
    const float s = _mm_cvtss_f32(p) + _mm_cvtss_f32(_mm_shuffle_ps(p, p, 1));
    return tail(x, y, np, n, static_cast<double>(s));
}

}  // namespace pylon::runtime::detail
