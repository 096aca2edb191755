// ggml_vec_dot_f32/f16's leftovers, shared by the AVX2 and AVX-512 kernels (both have FMA and
// F16C). Included inside each translation unit's anonymous namespace: every ISA-specific TU
// keeps its own copy, so the linker can never hand one ISA's code to another's caller.
#pragma once

// The leftovers [np, k) added to the 4 x 16-lane part `main`: F32 in float as GCC compiles
// ggml's loop (see the portable path: rounded products added in order for whole groups of 8,
// FMA for the rest), F16 in double, one product at a time.
template <class Elem>
float vec_tail(float main, const Elem* x, const Elem* a, std::size_t np, std::size_t k) {
    if constexpr (std::is_same_v<Elem, float>) {
        float sum = main;
        const std::size_t fused = np + (k - np) / 8 * 8;
        for (std::size_t i = np; i < fused; ++i) sum += x[i] * a[i];
        __m128 s = _mm_set_ss(sum);
        for (std::size_t i = fused; i < k; ++i) {
            s = _mm_fmadd_ss(_mm_set_ss(x[i]), _mm_set_ss(a[i]), s);
        }
        return _mm_cvtss_f32(s);
    } else {
        double sum = main;
        for (std::size_t i = np; i < k; ++i) {
            sum += static_cast<double>(_cvtsh_ss(x[i]) * _cvtsh_ss(a[i]));
        }
        return static_cast<float>(sum);
    }
}
