// The attention softmax, computed the way ggml's CPU backend computes it so that logits agree
// with llama.cpp to rounding. This matters more than it seems: llama.cpp rounds the
// probabilities to half precision before multiplying by V, so a one-ulp difference in exp() can
// flip a rounding and move a log-probability by 1e-3.
//
// ggml (AVX-512 build) pads the KV length to 32 with masked (-inf) entries, evaluates exp with
// the polynomial of ARM's optimized-routines expf (max error ~1.5 ulp) 16 lanes at a time, and
// adds each 16-lane chunk with a tree reduction (8+8, 4+4, 2+2, 1+1) into a double sum.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstddef>

namespace pylon::runtime::detail {

inline float pow2(int e) noexcept {  // 2^e for -126 <= e <= 127
    return std::bit_cast<float>(static_cast<std::uint32_t>(e + 127) << 23);
}

// The expf approximation (ARM optimized-routines, as in ggml's ggml_v_expf), one lane.
inline float v_expf(float x) noexcept {
    const float r = 0x1.8p23f;
    const float z = std::fma(x, 0x1.715476p+0f, r);
    const float n = z - r;
    if (std::fabs(n) > 192.0f) return x > 0 ? INFINITY : 0.0f;
    const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float j = std::fma(
        std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                 std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
        u, std::fma(0x1.ffffecp-1f, b, 1.0f));
    // scalef(j, n) = j * 2^n; n is integral and |n| <= 192, so two exact powers of two suffice
    // (a single one whenever the result is a normal float, which is all softmax cares about).
    const int e = static_cast<int>(n);
    const int e1 = e / 2, e2 = e - e1;
    return j * pow2(e1) * pow2(e2);
}

// In place: s[0..n) <- softmax(s). Returns nothing; s must have room for n rounded up to 16.
inline void softmax(float* s, std::size_t n) noexcept {
    float mx = -INFINITY;
    for (std::size_t j = 0; j < n; ++j) mx = s[j] > mx ? s[j] : mx;
    double sum = 0.0;
    for (std::size_t c = 0; c < n; c += 16) {
        float lane[16];
        for (std::size_t i = 0; i < 16; ++i) {
            lane[i] = c + i < n ? v_expf(s[c + i] - mx) : 0.0f;
            if (c + i < n) s[c + i] = lane[i];
        }
        float t8[8], t4[4];
        for (int i = 0; i < 8; ++i) t8[i] = lane[i + 8] + lane[i];
        for (int i = 0; i < 4; ++i) t4[i] = t8[i + 4] + t8[i];
        const float a = t4[0] + t4[2], b = t4[1] + t4[3];
        sum += static_cast<double>(a + b);
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (std::size_t j = 0; j < n; ++j) s[j] *= inv;
}

}  // namespace pylon::runtime::detail
