// dot_f16_ggml for AVX2 (see attention_dot.h): each 16-lane accumulator is two 8-lane halves.
#include <immintrin.h>

#include "model/attention_dot.h"

namespace pylon::runtime::detail {

float dot_f16_ggml_avx2(const std::uint16_t* x, const std::uint16_t* y, std::size_t n) {
    const std::size_t np = n & ~std::size_t{63};
    double sumf = 0.0;
    if (np > 0) {
        __m256 lo[4], hi[4];
        for (int r = 0; r < 4; ++r) lo[r] = hi[r] = _mm256_setzero_ps();
        for (std::size_t i = 0; i < np; i += 64) {
            for (int r = 0; r < 4; ++r) {
                const std::uint16_t* px = x + i + 16 * r;
                const std::uint16_t* py = y + i + 16 * r;
                auto load = [](const std::uint16_t* p) {
                    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
                };
                lo[r] = _mm256_fmadd_ps(load(px), load(py), lo[r]);
                hi[r] = _mm256_fmadd_ps(load(px + 8), load(py + 8), hi[r]);
            }
        }
        lo[0] = _mm256_add_ps(lo[0], lo[2]);
        hi[0] = _mm256_add_ps(hi[0], hi[2]);
        lo[1] = _mm256_add_ps(lo[1], lo[3]);
        hi[1] = _mm256_add_ps(hi[1], hi[3]);
        lo[0] = _mm256_add_ps(lo[0], lo[1]);
        hi[0] = _mm256_add_ps(hi[0], hi[1]);
        const __m256 h = _mm256_add_ps(hi[0], lo[0]);  // lanes l+8 and l
        const __m128 q = _mm_add_ps(_mm256_extractf128_ps(h, 1), _mm256_castps256_ps128(h));
        const __m128 p = _mm_add_ps(q, _mm_shuffle_ps(q, q, _MM_SHUFFLE(1, 0, 3, 2)));
        sumf = static_cast<double>(_mm_cvtss_f32(p) + _mm_cvtss_f32(_mm_shuffle_ps(p, p, 1)));
    }
    for (std::size_t i = np; i < n; ++i) {
        sumf += static_cast<double>(_cvtsh_ss(x[i]) * _cvtsh_ss(y[i]));
    }
    return static_cast<float>(sumf);
}

}  // namespace pylon::runtime::detail
