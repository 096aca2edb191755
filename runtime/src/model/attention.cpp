// Portable attention (see attention.h): the reference the SIMD versions must match bit for bit.
#include <algorithm>
#include <cmath>

#include "model/attention.h"
#include "model/softmax.h"
#include "pylon/runtime/fp16.h"

namespace pylon::runtime::detail {
namespace {

// The tree of _mm512_reduce_add_ps: lanes l and l+8, then l and l+4, then (0+2) + (1+3).
float tree16(const float* v) {
    float t8[8], t4[4];
    for (int i = 0; i < 8; ++i) t8[i] = v[i + 8] + v[i];
    for (int i = 0; i < 4; ++i) t4[i] = t8[i + 4] + t8[i];
    return (t4[0] + t4[2]) + (t4[1] + t4[3]);
}

// ggml_vec_dot_f16 with x already converted to floats.
float dot_ggml(const float* x, const std::uint16_t* y, std::size_t n) {
    const std::size_t np = n & ~std::size_t{63};
    double sumf = 0.0;
    if (np > 0) {
        float acc[4][16] = {};
        for (std::size_t i = 0; i < np; i += 64) {
            for (int r = 0; r < 4; ++r) {
                for (int l = 0; l < 16; ++l) {
                    const std::size_t k = i + static_cast<std::size_t>(16 * r + l);
                    acc[r][l] = std::fma(x[k], fp16_to_fp32(y[k]), acc[r][l]);
                }
            }
        }
        for (int l = 0; l < 16; ++l) {
            acc[0][l] += acc[2][l];
            acc[1][l] += acc[3][l];
            acc[0][l] += acc[1][l];
        }
        sumf = static_cast<double>(tree16(acc[0]));
    }
    for (std::size_t i = np; i < n; ++i) sumf += static_cast<double>(x[i] * fp16_to_fp32(y[i]));
    return static_cast<float>(sumf);
}

// tinyBLAS: one 16-lane accumulator over n (a multiple of 16), then the tree.
float dot_tinyblas(const float* x, const std::uint16_t* y, std::size_t n) {
    float acc[16] = {};
    for (std::size_t i = 0; i < n; i += 16) {
        for (std::size_t l = 0; l < 16; ++l)
            acc[l] = std::fma(fp16_to_fp32(y[i + l]), x[i + l], acc[l]);
    }
    return tree16(acc);
}

}  // namespace

void attend_portable(const HeadJob& job, const HeadScratch& sc) {
    const std::size_t hd = job.hd, n_kv = job.n_kv;
    for (std::size_t i = 0; i < hd; ++i) sc.qf[i] = fp16_to_fp32(fp32_to_fp16(job.q[i]));
    const bool tiny = qk_tinyblas(job);
    for (std::size_t j = 0; j < n_kv; ++j) {
        const std::uint16_t* kj = job.k + j * job.k_stride;
        sc.s[j] = (tiny ? dot_tinyblas(sc.qf, kj, hd) : dot_ggml(sc.qf, kj, hd)) * job.scale;
    }
    softmax(sc.s, n_kv);
    const std::size_t n_pad = (n_kv + 31) / 32 * 32;
    for (std::size_t j = 0; j < n_pad; ++j) {
        sc.s[j] = j < n_kv ? fp16_to_fp32(fp32_to_fp16(sc.s[j])) : 0.0f;
    }
    const bool pv_tiny = pv_tinyblas(job);
    for (std::size_t e = 0; e < hd; ++e) {
        const std::uint16_t* ve = job.v + e * job.v_stride;
        job.out[e] = pv_tiny ? dot_tinyblas(sc.s, ve, n_pad) : dot_ggml(sc.s, ve, n_pad);
    }
}

void swiglu_tail(float* g, const float* u, std::size_t from, std::size_t n) {
    for (std::size_t i = from; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void swiglu_portable(float* g, const float* u, std::size_t n) {
    const std::size_t groups = n / 16 * 16;
    for (std::size_t i = 0; i < groups; ++i) g[i] = g[i] / (1.0f + v_expf(0.0f - g[i])) * u[i];
    swiglu_tail(g, u, groups, n);
}

SwigluFn swiglu_for(kernels::Isa isa) {
#if defined(PYLON_X86_KERNELS)
    if (isa == kernels::Isa::avx512) return swiglu_avx512;
    if (isa == kernels::Isa::avx2) return swiglu_avx2;
#endif
    (void)isa;
    return swiglu_portable;
}

AttendFn attend_for(kernels::Isa isa) {
#if defined(PYLON_X86_KERNELS)
    if (isa == kernels::Isa::avx512) return attend_avx512;
    if (isa == kernels::Isa::avx2) return attend_avx2;
#endif
    (void)isa;
    return attend_portable;
}

void attend_group_portable(const HeadJob* jobs, std::size_t count, const HeadScratch* scratch) {
    for (std::size_t i = 0; i < count; ++i) attend_portable(jobs[i], scratch[i]);
}

#if defined(PYLON_X86_KERNELS)
void attend_group_avx2(const HeadJob* jobs, std::size_t count, const HeadScratch* scratch) {
    for (std::size_t i = 0; i < count; ++i) attend_avx2(jobs[i], scratch[i]);
}
#endif

AttendGroupFn attend_group_for(kernels::Isa isa) {
#if defined(PYLON_X86_KERNELS)
    if (isa == kernels::Isa::avx512) return attend_group_avx512;
    if (isa == kernels::Isa::avx2) return attend_group_avx2;
#endif
    (void)isa;
    return attend_group_portable;
}

}  // namespace pylon::runtime::detail
