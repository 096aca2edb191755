// Row quantization and dequantization, bit-exact with ggml's reference (`*_ref`) functions, so
// files we write are the files llama-quantize would write and rows we read mean what ggml means.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pylon/runtime/ggml_type.h"

namespace pylon::runtime {

// Quantizes k floats (k a multiple of 32) into k/32 blocks, as ggml's quantize_row_*_ref:
//   Q8_0: d = amax/127, q = roundf(x/d)
//   Q4_0: m = the element of largest magnitude (sign kept), d = m/-8, q = min(15, (int)(x/d + 8.5))
void quantize_row_q8_0(const float* x, BlockQ8_0* y, std::size_t k) noexcept;
void quantize_row_q4_0(const float* x, BlockQ4_0* y, std::size_t k) noexcept;

// Writes row `k` elements of `type` (any computable type) as floats.
void dequantize_row(GgmlType type, const void* row, float* y, std::size_t k) noexcept;

// Converts k floats to `type` (F32, F16, Q8_0, Q4_0); returns false for other types or a k the
// type cannot hold. `out` must have row_bytes(type, k) bytes.
bool quantize_row(GgmlType type, const float* x, void* out, std::size_t k) noexcept;

}  // namespace pylon::runtime
