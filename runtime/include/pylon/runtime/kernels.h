// Compute kernels behind one table per instruction set, chosen at run time from the CPU's
// features: AVX-512 (F, BW, VL, VNNI), AVX2 (+FMA, F16C), and a portable path that runs
// anywhere. Every path computes the same function; tests check that they agree.
//
// Matrix products follow ggml's scheme so results match llama.cpp to rounding:
//   weights F32  x activations F32  (activation row format: F32)
//   weights F16  x activations F16  (activations rounded to half first)
//   weights Q8_0 x activations Q8_0 (activations quantized per 32-block, round-to-nearest-even)
//   weights Q4_0 x activations Q8_0
// Products accumulate in float, in llama.cpp's (x86, AVX-512 build) summation order on every
// path, so all paths give the same bits. That order follows ggml's choice of kernel, which
// depends on the shapes (m = the weight's row count, n = activation rows):
//   F32/F16  tinyBLAS's (one 16-lane chain per output) when n >= 2, k % 16 == 0 and
//            m % 4 == 0; ggml_vec_dot_f32/f16's (4 x 16 lanes, 64-element steps) otherwise;
//   Q8_0     ggml_vec_dot_q8_0_q8_0's eight group lanes (tinyBLAS_Q0_AVX sums alike);
//   Q4_0     m % 8 == 0: the runtime-repacked q4_0_8x8 kernels' (one accumulator, each block's
//            integer sum added with one fma); otherwise the eight group lanes, as Q8_0.
// Activations are converted once per matrix product into an "activation row" whose format
// depends only on the weight type (see act_row_bytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pylon/runtime/ggml_type.h"

namespace pylon::runtime::kernels {

enum class Isa { portable = 0, avx2 = 1, avx512 = 2 };
std::string_view isa_name(Isa isa) noexcept;
// Best path this CPU supports; the PYLON_ISA environment variable (portable, avx2, avx512) may
// lower it (never raise it past what the CPU has).
Isa best_isa() noexcept;
bool isa_supported(Isa isa) noexcept;

// Bytes of one prepared activation row of k elements for weights of type `w` (k must be a
// multiple of the weight type's block size). Rows are laid out back to back at this stride.
std::size_t act_row_bytes(GgmlType w, std::size_t k) noexcept;

// The order choices above: F32/F16 in tinyBLAS's order (else ggml_vec_dot's); Q4_0 in the
// repacked kernels' block order (else the group lanes).
constexpr bool tinyblas_order(std::size_t m, std::size_t n, std::size_t k) noexcept {
    return n >= 2 && k % 16 == 0 && m % 4 == 0;
}
constexpr bool q4_block_order(std::size_t m) noexcept {
    return m % 8 == 0;
}

struct Kernels {
    Isa isa;
    // Converts one f32 row of k elements into the activation format for weights of type w.
    void (*prepare_act)(GgmlType w, const float* x, std::size_t k, void* out);
    // For every weight row r in [r0, r1) of an m-row weight and activation row t in [0, n):
    //   y[t * ldy + r] = dot(W row r, A row t)
    // W rows are w_stride bytes apart, A rows act_row_bytes(w, k) apart. Must handle any
    // n >= 1 (n == 1 is decode: optimise for streaming W once) and any row range; m only picks
    // the summation order (above).
    void (*gemm)(GgmlType w, const void* W, std::size_t w_stride, std::size_t k, std::size_t m,
                 std::size_t r0, std::size_t r1, const void* A, std::size_t n, float* y,
                 std::size_t ldy);
    // gemm with every activation row summed as it would be alone (n == 1), whatever n: the
    // bits a token decoded by itself gets, for a batch that must reproduce them (speculative
    // verification), reading W once for all n rows.
    void (*gemm_lone)(GgmlType w, const void* W, std::size_t w_stride, std::size_t k, std::size_t m,
                      std::size_t r0, std::size_t r1, const void* A, std::size_t n, float* y,
                      std::size_t ldy);
    // Half-precision conversions (round to nearest even).
    void (*f32_to_f16)(const float* x, std::uint16_t* y, std::size_t n);
    void (*f16_to_f32)(const std::uint16_t* x, float* y, std::size_t n);

    // Optional (null where a path has none): weights repacked once, at load, into the layout
    // this path streams best. packed_bytes is the size of that copy of a rows x k matrix, or 0
    // where the type is not packed; pack writes it (64-byte aligned output). gemm_packed is gemm
    // over the packed copy, with the same results for every n (a token decoded alone gets the
    // bits it gets inside a batch); it returns false, having written nothing, when it cannot
    // run (out of scratch memory), and the caller then uses gemm on the original rows.
    std::size_t (*packed_bytes)(GgmlType w, std::size_t rows, std::size_t k) noexcept;
    void (*pack)(GgmlType w, const void* W, std::size_t w_stride, std::size_t rows, std::size_t k,
                 void* out) noexcept;
    bool (*gemm_packed)(GgmlType w, const void* P, std::size_t k, std::size_t m, std::size_t r0,
                        std::size_t r1, const void* A, std::size_t n, float* y, std::size_t ldy);
};

// The table for `isa` (which must be supported: see isa_supported).
const Kernels& kernels(Isa isa) noexcept;
inline const Kernels& best_kernels() noexcept {
    return kernels(best_isa());
}

}  // namespace pylon::runtime::kernels
