// The portable kernel table: plain C++ that runs anywhere and defines what every SIMD path must
// compute (activation bytes identical, products equal up to summation order). Activation row
// formats are described in kernel_tables.h.
#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels/kernel_tables.h"
#include "pylon/runtime/fp16.h"

namespace pylon::runtime::kernels::detail {
namespace {

constexpr std::size_t round_up_64(std::size_t n) noexcept {
    return (n + 63) & ~std::size_t{63};
}

// Half -> float through a table (256 KiB, built once): the exact conversion branches per value,
// which makes F16 products on this path several times slower.
const float* half_table() {
    static const float* const table = [] {
        static float t[65536];
        for (std::uint32_t h = 0; h < 65536; ++h)
            t[h] = fp16_to_fp32(static_cast<std::uint16_t>(h));
        return t;
    }();
    return table;
}

// What the SIMD paths compute with a float->int32 conversion (vcvtps2dq: out of range or NaN
// gives INT32_MIN) followed by saturating packs to int8. Only reachable when 127/amax
// overflows (amax below ~4e-37) or for non-finite input.
std::int8_t round_to_q8(float v) {
    const float r = std::nearbyint(v);  // ties to even in the default rounding mode, as vroundps
    if (!(r > -2147483648.0f && r < 2147483648.0f)) return -128;
    return static_cast<std::int8_t>(r < -128.0f ? -128.0f : (r > 127.0f ? 127.0f : r));
}

// ggml's SIMD quantize_row_q8_0: d = amax/127 stored as half, q = round-half-even(x * 127/amax),
// followed by the sums of each group of 4 consecutive q.
void prepare_q8_0(const float* x, std::size_t k, void* out) {
    const std::size_t nb = k / kQK8_0;
    auto* blocks = static_cast<BlockQ8_0*>(out);
    auto* bytes = static_cast<unsigned char*>(out);
    const std::size_t sums_at = round_up_64(nb * sizeof(BlockQ8_0));
    std::memset(bytes + nb * sizeof(BlockQ8_0), 0, sums_at - nb * sizeof(BlockQ8_0));
    auto* sums = reinterpret_cast<std::int32_t*>(bytes + sums_at);
    for (std::size_t b = 0; b < nb; ++b) {
        const float* xb = x + b * kQK8_0;
        float amax = 0.0f;
        for (std::size_t j = 0; j < kQK8_0; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        blocks[b].d = fp32_to_fp16(amax / 127.0f);
        for (std::size_t j = 0; j < kQK8_0; ++j) {
            blocks[b].qs[j] = round_to_q8(xb[j] * id);
        }
        for (std::size_t g = 0; g < 8; ++g) {
            const std::int8_t* q = blocks[b].qs + 4 * g;
            sums[b * 8 + g] = q[0] + q[1] + q[2] + q[3];
        }
    }
    const std::size_t sum_bytes = nb * 8 * sizeof(std::int32_t);
    std::memset(bytes + sums_at + sum_bytes, 0, round_up_64(sum_bytes) - sum_bytes);
}

void prepare_act(GgmlType w, const float* x, std::size_t k, void* out) {
    auto* bytes = static_cast<unsigned char*>(out);
    switch (w) {
        case GgmlType::F32:
            std::memcpy(out, x, k * sizeof(float));
            std::memset(bytes + k * sizeof(float), 0, act_row_bytes(w, k) - k * sizeof(float));
            return;
        case GgmlType::F16: {
            auto* h = static_cast<std::uint16_t*>(out);
            for (std::size_t i = 0; i < k; ++i) h[i] = fp32_to_fp16(x[i]);
            std::memset(bytes + k * 2, 0, act_row_bytes(w, k) - k * 2);
            return;
        }
        case GgmlType::Q8_0:
        case GgmlType::Q4_0:
            prepare_q8_0(x, k, out);
            return;
        default:
            return;
    }
}

// _mm512_reduce_add_ps's tree as GCC 12 builds it: 8+8, 4+4, then (0+2) + (1+3).
float reduce16(const float* v) {
    float s8[8], s4[4];
    for (int i = 0; i < 8; ++i) s8[i] = v[i + 8] + v[i];
    for (int i = 0; i < 4; ++i) s4[i] = s8[i + 4] + s8[i];
    return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

// The two F32/F16 summation orders (kernels.h), element values through `val`.
template <class E, class Val>
float dot_tinyblas(const E* x, const E* a, std::size_t k, Val val) {
    float acc[16] = {};
    for (std::size_t i = 0; i < k; i += 16) {
        for (std::size_t l = 0; l < 16; ++l)
            acc[l] = std::fma(val(x[i + l]), val(a[i + l]), acc[l]);
    }
    return reduce16(acc);
}

template <class E, class Val>
float dot_vec(const E* x, const E* a, std::size_t k, Val val) {
    const std::size_t np = k & ~std::size_t{63};
    float main = 0.0f;
    if (np > 0) {
        float acc[4][16] = {};
        for (std::size_t i = 0; i < np; i += 64) {
            for (std::size_t u = 0; u < 4; ++u) {
                for (std::size_t l = 0; l < 16; ++l) {
                    const std::size_t e = i + 16 * u + l;
                    acc[u][l] = std::fma(val(x[e]), val(a[e]), acc[u][l]);
                }
            }
        }
        float folded[16];
        for (std::size_t l = 0; l < 16; ++l) {
            folded[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
        }
        main = reduce16(folded);
    }
    if constexpr (std::is_same_v<E, float>) {
        // ggml_vec_dot_f32's leftovers, in float, as GCC 12.2 compiles `sumf += x[i]*y[i]` at
        // -O3 -march=native on the goldens' Zen 4 (tuned as znver3, 512-bit vectors): whole
        // groups of 16, then of 8, vectorised as rounded products added in order, the last
        // (k - np) % 8 contracted to FMA.
        float sum = main;
        const std::size_t fused = np + (k - np) / 8 * 8;
        for (std::size_t i = np; i < fused; ++i) sum += x[i] * a[i];
        for (std::size_t i = fused; i < k; ++i) sum = std::fma(x[i], a[i], sum);
        return sum;
    } else {  // ggml_vec_dot_f16: double
        double sum = main;
        for (std::size_t i = np; i < k; ++i) sum += static_cast<double>(val(x[i]) * val(a[i]));
        return static_cast<float>(sum);
    }
}

float dot_row(GgmlType w, const void* wrow, const void* arow, std::size_t k, bool tinyblas,
              bool q4_blocks) {
    float sum = 0.0f;
    switch (w) {
        case GgmlType::F32: {
            const auto* a = static_cast<const float*>(arow);
            const auto* x = static_cast<const float*>(wrow);
            auto val = [](float v) { return v; };
            sum = tinyblas ? dot_tinyblas(x, a, k, val) : dot_vec(x, a, k, val);
            break;
        }
        case GgmlType::F16: {
            const auto* a = static_cast<const std::uint16_t*>(arow);
            const auto* x = static_cast<const std::uint16_t*>(wrow);
            const float* h = half_table();
            auto val = [h](std::uint16_t v) { return h[v]; };
            sum = tinyblas ? dot_tinyblas(x, a, k, val) : dot_vec(x, a, k, val);
            break;
        }
        case GgmlType::Q8_0:
        case GgmlType::Q4_0: {
            // Q8_0: ggml_vec_dot_q8_0_q8_0's order (AVX2, which llama.cpp runs on x86; its
            // tinyBLAS_Q0_AVX for batches sums the same way): eight lanes, lane g holding the
            // products of elements 4g..4g+3 of every block, each block's exact integer lane sum
            // added as fma(d_w * d_a, sum, lane); then the lanes' tree (g and g+4, then
            // (0+2) + (1+3)).
            // Q4_0 with q4_blocks (kernels.h): the order of ggml's repacked q4_0_8x8 kernels:
            // one accumulator, each block's exact integer sum added as fma(sum, d_w * d_a, acc);
            // otherwise as Q8_0.
            const auto* a = static_cast<const BlockQ8_0*>(arow);
            const bool q4 = w == GgmlType::Q4_0;
            const bool blocks = q4 && q4_blocks;
            const std::size_t block = q4 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0);
            const auto* wb = static_cast<const unsigned char*>(wrow);
            float lane[8] = {};
            float acc = 0.0f;
            for (std::size_t b = 0; b < k / kQK8_0; ++b) {
                const unsigned char* blk = wb + b * block;
                std::uint16_t dh;
                std::memcpy(&dh, blk, 2);
                const float d = fp16_to_fp32(dh) * fp16_to_fp32(a[b].d);
                int block_sum = 0;
                for (std::size_t g = 0; g < 8; ++g) {
                    int isum = 0;
                    for (std::size_t i = 4 * g; i < 4 * g + 4; ++i) {
                        int q;
                        if (q4) {
                            const unsigned char byte = blk[2 + (i % 16)];
                            q = (i < 16 ? (byte & 0x0f) : (byte >> 4)) - 8;
                        } else {
                            q = static_cast<signed char>(blk[2 + i]);
                        }
                        isum += q * a[b].qs[i];
                    }
                    block_sum += isum;
                    if (!blocks) lane[g] = std::fma(d, static_cast<float>(isum), lane[g]);
                }
                if (blocks) acc = std::fma(static_cast<float>(block_sum), d, acc);
            }
            if (blocks) {
                sum = acc;
                break;
            }
            const float r0 = lane[4] + lane[0], r1 = lane[5] + lane[1];
            const float r2 = lane[6] + lane[2], r3 = lane[7] + lane[3];
            sum = (r0 + r2) + (r1 + r3);
            break;
        }
        default:
            break;
    }
    return sum;
}

void gemm_order(GgmlType w, const void* W, std::size_t w_stride, std::size_t k, std::size_t m,
                std::size_t r0, std::size_t r1, const void* A, std::size_t n, float* y,
                std::size_t ldy, bool tinyblas) {
    const auto* wbytes = static_cast<const unsigned char*>(W);
    const auto* abytes = static_cast<const unsigned char*>(A);
    const std::size_t a_stride = act_row_bytes(w, k);
    const bool q4_blocks = q4_block_order(m);
    for (std::size_t r = r0; r < r1; ++r) {
        for (std::size_t t = 0; t < n; ++t) {
            y[t * ldy + r] =
                dot_row(w, wbytes + r * w_stride, abytes + t * a_stride, k, tinyblas, q4_blocks);
        }
    }
}

void gemm(GgmlType w, const void* W, std::size_t w_stride, std::size_t k, std::size_t m,
          std::size_t r0, std::size_t r1, const void* A, std::size_t n, float* y, std::size_t ldy) {
    gemm_order(w, W, w_stride, k, m, r0, r1, A, n, y, ldy, tinyblas_order(m, n, k));
}

void gemm_lone(GgmlType w, const void* W, std::size_t w_stride, std::size_t k, std::size_t m,
               std::size_t r0, std::size_t r1, const void* A, std::size_t n, float* y,
               std::size_t ldy) {
    gemm_order(w, W, w_stride, k, m, r0, r1, A, n, y, ldy, false);
}

void f32_to_f16(const float* x, std::uint16_t* y, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void f16_to_f32(const std::uint16_t* x, float* y, std::size_t n) {
    const float* h = half_table();
    for (std::size_t i = 0; i < n; ++i) y[i] = h[x[i]];
}

constexpr Kernels kTable{Isa::portable, prepare_act, gemm,    gemm_lone, f32_to_f16,
                         f16_to_f32,    nullptr,     nullptr, nullptr};

}  // namespace

const Kernels& portable_kernels() noexcept {
    return kTable;
}

}  // namespace pylon::runtime::kernels::detail
