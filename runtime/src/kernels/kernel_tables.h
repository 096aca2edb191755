// Per-ISA kernel tables, one per translation unit (kernels_portable.cpp, kernels_avx2.cpp,
// kernels_avx512.cpp); kernels.cpp picks one at run time. Only data crosses these borders: every
// function inside an ISA file is static, so nothing compiled with AVX flags can be called
// before the CPU check.
//
// Activation row formats (identical bytes on every path, see kernels.h):
//   weights F32        : k floats, row padded to a multiple of 64 bytes
//   weights F16        : k IEEE halves (round to nearest even), padded to 64 bytes
//   weights Q8_0, Q4_0 : k/32 BlockQ8_0 (d = amax/127 stored as half, q = round-half-even(x*127/amax)
//                        exactly as ggml's AVX quantize_row_q8_0), padded to 64 bytes, then
//                        k/32 * 8 int32: the sums of each group of 4 consecutive q (for VNNI's
//                        unsigned x signed products), padded to 64 bytes
#pragma once

#include "pylon/runtime/kernels.h"

namespace pylon::runtime::kernels::detail {

const Kernels& portable_kernels() noexcept;
const Kernels& avx2_kernels() noexcept;    // defined in kernels_avx2.cpp (x86 builds only)
const Kernels& avx512_kernels() noexcept;  // defined in kernels_avx512.cpp (x86 builds only)

// Internal to the AVX-512 path (only called after its CPU check), kernels_packed_avx512.cpp:
// Q4_0/Q8_0 products over row-major weights (each 16-row panel packed on the fly) ...
void avx512_gemm_quant(GgmlType w, const void* W, std::size_t w_stride, std::size_t k,
                       std::size_t m, std::size_t r0, std::size_t r1, const void* A,
                       std::size_t n, float* y, std::size_t ldy);

// ... and over weights packed at load (see Kernels).
std::size_t avx512_packed_bytes(GgmlType w, std::size_t rows, std::size_t k) noexcept;
void avx512_pack(GgmlType w, const void* W, std::size_t w_stride, std::size_t rows, std::size_t k,
                 void* out) noexcept;
bool avx512_gemm_packed(GgmlType w, const void* P, std::size_t k, std::size_t m, std::size_t r0,
                        std::size_t r1, const void* A, std::size_t n, float* y, std::size_t ldy);

}  // namespace pylon::runtime::kernels::detail
