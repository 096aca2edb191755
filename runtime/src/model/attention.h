// One query head attending over the F16 KV cache, in the arithmetic of llama.cpp's CPU backend
// (AVX-512 build) so that results agree with it to the last rounding, and identical bits on
// every kernel path (the portable and AVX2 versions emulate the AVX-512 order):
//
//   q     rounded to half (ggml converts the F32 query to the cache's F16 type);
//   Q·K   in a batch of two or more tokens with head_dim % 16 == 0: tinyBLAS
//         (llamafile_sgemm): one 16-lane FMA accumulator over the head in 16-element steps,
//         then a tree reduction (8+8, 4+4, 2+2, 1+1); otherwise (and always for a single
//         token: ggml calls tinyBLAS only for n >= 2) ggml_vec_dot_f16 (below); then times
//         1/sqrt(head_dim);
//   softmax  the KV length padded to 32 with masked entries, ARM optimized-routines' expf
//         16 lanes at a time, each 16-lane chunk tree-reduced into a double sum, times 1/sum;
//   P·V   probabilities rounded to half, zero-padded to 32 positions, V stored transposed;
//         each output element is, in a batch with head_dim % 4 == 0, tinyBLAS over n_pad,
//         otherwise ggml_vec_dot_f16(p, V_e, n_pad).
//
// ggml_vec_dot_f16(x, y, n): 4 x 16 float lanes accumulated with FMA over 64-element steps,
// folded (0+2, 1+3, then 0+1) and tree-reduced; the tail (n mod 64) added in double, one
// product at a time, in order. The sequential double tail is what costs: the SIMD versions run
// it for 8 keys (or 8 output elements) at once, lanes being keys, which keeps each one's order.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pylon/runtime/kernels.h"

namespace pylon::runtime::detail {

struct HeadJob {
    const float* q;          // head_dim floats
    const std::uint16_t* k;  // key of position j at k + j * k_stride (halves)
    std::size_t k_stride;
    const std::uint16_t* v;  // transposed values: element e of positions 0.. at v + e * v_stride
    std::size_t v_stride;    // >= n_kv rounded up to 32; padding must hold finite values
    std::size_t hd;          // head dimension
    std::size_t n_kv;        // positions attended to, >= 1
    float scale;             // 1/sqrt(head_dim)
    float* out;              // head_dim floats
    bool batched;            // part of a batch of two or more tokens (see the orders above)
    // Request this head's keys and values ahead of use (the first time a thread reads this KV
    // head in a pass: after that they are in its caches). Speed only.
    bool prefetch = true;
};

// Which order each product uses (see above).
inline bool qk_tinyblas(const HeadJob& job) {
    return job.batched && job.hd % 16 == 0;
}
inline bool pv_tinyblas(const HeadJob& job) {
    return job.batched && job.hd % 4 == 0;
}

// Per-thread scratch: `s` holds n_kv rounded up to 32 floats, `qf` head_dim + 16 floats, `q16`
// head_dim + 32 halves, `p16` n_kv rounded up to 32 halves.
struct HeadScratch {
    float* s;
    float* qf;
    std::uint16_t* q16;
    std::uint16_t* p16;
};

using AttendFn = void (*)(const HeadJob&, const HeadScratch&);

void attend_portable(const HeadJob& job, const HeadScratch& scratch);
#if defined(PYLON_X86_KERNELS)
void attend_avx2(const HeadJob& job, const HeadScratch& scratch);
void attend_avx512(const HeadJob& job, const HeadScratch& scratch);
#endif

// The version for a kernel path (defined out of line: PYLON_X86_KERNELS is private to the library).
AttendFn attend_for(kernels::Isa isa);

// Up to kGroupMax jobs on one KV head (the same k, v, k_stride, v_stride and hd), for example
// the query heads of a GQA group and neighbouring tokens of a batch kept in the lone-token
// order (speculative verification), each with its own scratch[i]. Every job gets exactly the
// bits attend gives it alone; the AVX-512 version reads each key and value row once for all of
// them where it can (lone-token jobs, hd % 64 == 0), the others run the jobs one by one.
constexpr std::size_t kGroupMax = 6;
using AttendGroupFn = void (*)(const HeadJob* jobs, std::size_t count, const HeadScratch* scratch);
void attend_group_portable(const HeadJob* jobs, std::size_t count, const HeadScratch* scratch);
#if defined(PYLON_X86_KERNELS)
void attend_group_avx2(const HeadJob* jobs, std::size_t count, const HeadScratch* scratch);
void attend_group_avx512(const HeadJob* jobs, std::size_t count, const HeadScratch* scratch);
#endif
AttendGroupFn attend_group_for(kernels::Isa isa);

// The SwiGLU gate in place, g[i] <- silu(g[i]) * u[i], with ggml's rounding (AVX-512 build):
// silu(x) = x / (1 + expf(-x)) with the ARM optimized-routines expf for each whole group of 16
// and libm's expf for the n % 16 left over. The attention kernels share that expf, hence here.
using SwigluFn = void (*)(float* g, const float* u, std::size_t n);
void swiglu_portable(float* g, const float* u, std::size_t n);
#if defined(PYLON_X86_KERNELS)
void swiglu_avx2(float* g, const float* u, std::size_t n);
void swiglu_avx512(float* g, const float* u, std::size_t n);
#endif
SwigluFn swiglu_for(kernels::Isa isa);

// Elements [from, n) with libm's expf, the scalar tail of ggml_vec_silu_f32 (out of line, in
// the portable translation unit, so that no ISA-specific copy of it can be linked in).
void swiglu_tail(float* g, const float* u, std::size_t from, std::size_t n);

}  // namespace pylon::runtime::detail
