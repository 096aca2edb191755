// Row quantization bit-exact with ggml's quantize_row_q8_0_ref / quantize_row_q4_0_ref, and
// dequantization of the computable types. This is the weight-side (file format) quantizer; the
// activation quantizer of the matrix products lives in the kernel tables (it rounds ties to even,
// as ggml's SIMD quantize_row_q8_0 does, where this one rounds them away from zero).
#include "pylon/runtime/quant.h"

#include <cmath>
#include <cstring>

#include "pylon/runtime/fp16.h"

namespace pylon::runtime {

void quantize_row_q8_0(const float* x, BlockQ8_0* y, std::size_t k) noexcept {
    for (std::size_t b = 0; b < k / kQK8_0; ++b) {
        const float* xb = x + b * kQK8_0;
        float amax = 0.0f;
        for (std::size_t j = 0; j < kQK8_0; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fp32_to_fp16(d);
        for (std::size_t j = 0; j < kQK8_0; ++j) {
            // roundf of |x*id| <= 127 (up to rounding of id); NaN, which ggml leaves undefined,
            // becomes 0 here rather than undefined behaviour.
            const float q = std::roundf(xb[j] * id);
            y[b].qs[j] = static_cast<std::int8_t>(q >= -127.0f && q <= 127.0f ? q : 0.0f);
        }
    }
}

void quantize_row_q4_0(const float* x, BlockQ4_0* y, std::size_t k) noexcept {
    for (std::size_t b = 0; b < k / kQK4_0; ++b) {
        const float* xb = x + b * kQK4_0;
        float amax = 0.0f;
        float max = 0.0f;
        for (std::size_t j = 0; j < kQK4_0; ++j) {
            if (amax < std::fabs(xb[j])) {
                amax = std::fabs(xb[j]);
                max = xb[j];
            }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fp32_to_fp16(d);
        // ggml: min(15, (int8_t)(x*id + 8.5f)); x*id lies in [-8, 8] (up to rounding), so
        // clamping the float to [0, 15] before truncating gives the same nibble and keeps
        // out-of-range or NaN input defined.
        const auto nibble = [id](float v) {
            float q = v * id + 8.5f;
            if (!(q >= 0.0f)) q = 0.0f;
            if (q > 15.0f) q = 15.0f;
            return static_cast<std::uint8_t>(q);
        };
        for (std::size_t j = 0; j < kQK4_0 / 2; ++j) {
            y[b].qs[j] =
                static_cast<std::uint8_t>(nibble(xb[j]) | (nibble(xb[j + kQK4_0 / 2]) << 4));
        }
    }
}

void dequantize_row(GgmlType type, const void* row, float* y, std::size_t k) noexcept {
    switch (type) {
        case GgmlType::F32:
            std::memcpy(y, row, k * sizeof(float));
            return;
        case GgmlType::F16: {
            const auto* h = static_cast<const std::uint16_t*>(row);
            for (std::size_t i = 0; i < k; ++i) y[i] = fp16_to_fp32(h[i]);
            return;
        }
        case GgmlType::Q8_0: {
            const auto* blocks = static_cast<const BlockQ8_0*>(row);
            for (std::size_t b = 0; b < k / kQK8_0; ++b) {
                const float d = fp16_to_fp32(blocks[b].d);
                for (std::size_t j = 0; j < kQK8_0; ++j) {
                    y[b * kQK8_0 + j] = static_cast<float>(blocks[b].qs[j]) * d;
                }
            }
            return;
        }
        case GgmlType::Q4_0: {
            const auto* blocks = static_cast<const BlockQ4_0*>(row);
            for (std::size_t b = 0; b < k / kQK4_0; ++b) {
                const float d = fp16_to_fp32(blocks[b].d);
                float* yb = y + b * kQK4_0;
                for (std::size_t j = 0; j < kQK4_0 / 2; ++j) {
                    yb[j] = static_cast<float>((blocks[b].qs[j] & 0x0f) - 8) * d;
                    yb[j + kQK4_0 / 2] = static_cast<float>((blocks[b].qs[j] >> 4) - 8) * d;
                }
            }
            return;
        }
        default:
            return;
    }
}

bool quantize_row(GgmlType type, const float* x, void* out, std::size_t k) noexcept {
    switch (type) {
        case GgmlType::F32:
            std::memcpy(out, x, k * sizeof(float));
            return true;
        case GgmlType::F16: {
            auto* h = static_cast<std::uint16_t*>(out);
            for (std::size_t i = 0; i < k; ++i) h[i] = fp32_to_fp16(x[i]);
            return true;
        }
        case GgmlType::Q8_0:
            if (k % kQK8_0 != 0) return false;
            quantize_row_q8_0(x, static_cast<BlockQ8_0*>(out), k);
            return true;
        case GgmlType::Q4_0:
            if (k % kQK4_0 != 0) return false;
            quantize_row_q4_0(x, static_cast<BlockQ4_0*>(out), k);
            return true;
        default:
            return false;
    }
}

}  // namespace pylon::runtime
