// The P·V dot product of attention in ggml_vec_dot_f16's summation order (AVX-512 build), so
// that llama.cpp's rounding of the result is reproduced: 4 x 16 float lanes accumulated with FMA
// over 64-element steps, lanes folded (0+2, 1+3, then 0+1) and tree-reduced (8+8, 4+4, 2+2,
// 1+1); the tail (n mod 64) is summed in double. All three versions return identical bits.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pylon/runtime/kernels.h"

namespace pylon::runtime::detail {

using DotF16Fn = float (*)(const std::uint16_t* x, const std::uint16_t* y, std::size_t n);

float dot_f16_ggml_portable(const std::uint16_t* x, const std::uint16_t* y, std::size_t n);
#if defined(PYLON_X86_KERNELS)
float dot_f16_ggml_avx2(const std::uint16_t* x, const std::uint16_t* y, std::size_t n);
float dot_f16_ggml_avx512(const std::uint16_t* x, const std::uint16_t* y, std::size_t n);
#endif

inline DotF16Fn dot_f16_ggml_for(kernels::Isa isa) {
#if defined(PYLON_X86_KERNELS)
    if (isa == kernels::Isa::avx512) return dot_f16_ggml_avx512;
    if (isa == kernels::Isa::avx2) return dot_f16_ggml_avx2;
#endif
    (void)isa;
    return dot_f16_ggml_portable;
}

}  // namespace pylon::runtime::detail
