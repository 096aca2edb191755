// The AVX2 kernel table against the portable one, on the cases its tiling and vector code make
// special: k tails (F32/F16 rows not a multiple of 8), a single Q block, batches that are not a
// multiple of the 2x4 tile, odd row ranges, and Q8_0 weights at the ends of the int8 range
// (-128 must come out exact through the sign trick, as in ggml).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "pylon/runtime/fp16.h"
#include "pylon/runtime/ggml_type.h"
#include "pylon/runtime/kernels.h"
#include "pylon/runtime/quant.h"

using namespace pylon::runtime;
using kernels::Isa;
using kernels::Kernels;

namespace {

bool have_avx2() {
    if (kernels::isa_supported(Isa::avx2)) return true;
    WARN("this CPU lacks AVX2/FMA/F16C: AVX2 kernel tests skipped");
    return false;
}

std::vector<float> random_floats(std::mt19937& rng, std::size_t n, float scale = 1.0f) {
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

std::vector<unsigned char> prepare_rows(const Kernels& kt, GgmlType w, const float* x,
                                        std::size_t k, std::size_t n) {
    const std::size_t stride = kernels::act_row_bytes(w, k);
    std::vector<unsigned char> out(n * stride, 0xa5);
    for (std::size_t t = 0; t < n; ++t) kt.prepare_act(w, x + t * k, k, out.data() + t * stride);
    return out;
}

// Activation row t as floats: the values the products actually use.
std::vector<float> act_values(GgmlType w, const unsigned char* rows, std::size_t k, std::size_t t) {
    const unsigned char* row = rows + t * kernels::act_row_bytes(w, k);
    std::vector<float> v(k);
    const GgmlType act_type = w == GgmlType::F32   ? GgmlType::F32
                              : w == GgmlType::F16 ? GgmlType::F16
                                                   : GgmlType::Q8_0;
    dequantize_row(act_type, row, v.data(), k);
    return v;
}

std::size_t count_differences(const std::vector<std::uint16_t>& a,
                              const std::vector<std::uint16_t>& b) {
    std::size_t count = 0;
    for (std::size_t i = 0; i < a.size(); ++i) count += a[i] != b[i];
    return count;
}

struct Case {
    GgmlType type;
    std::size_t rows, k, n, r0, r1;
};

// Runs both tables on the same prepared activations and checks every output: equal up to float
// summation order (bounded by 2 k eps sum|w a|), and nothing written outside rows [r0, r1).
void check_gemm_agrees(const Case& c, const std::vector<unsigned char>& weights) {
    const Kernels& portable = kernels::kernels(Isa::portable);
    const Kernels& avx2 = kernels::kernels(Isa::avx2);
    std::mt19937 rng(static_cast<unsigned>(c.k * 131 + c.n));
    const std::vector<float> x = random_floats(rng, c.n * c.k);
    const std::vector<unsigned char> act = prepare_rows(portable, c.type, x.data(), c.k, c.n);
    REQUIRE(prepare_rows(avx2, c.type, x.data(), c.k, c.n) == act);

    const std::size_t w_stride = *row_bytes(c.type, c.k);
    const std::size_t ldy = c.rows + 3;
    constexpr float kUntouched = -12345.0f;
    std::vector<float> y_ref(c.n * ldy, kUntouched);
    std::vector<float> y(c.n * ldy, kUntouched);
    portable.gemm(c.type, weights.data(), w_stride, c.k, c.rows, c.r0, c.r1, act.data(), c.n,
                  y_ref.data(), ldy);
    avx2.gemm(c.type, weights.data(), w_stride, c.k, c.rows, c.r0, c.r1, act.data(), c.n, y.data(),
              ldy);

    std::vector<float> w_row(c.k);
    for (std::size_t t = 0; t < c.n; ++t) {
        const std::vector<float> a = act_values(c.type, act.data(), c.k, t);
        for (std::size_t r = 0; r < ldy; ++r) {
            INFO(type_name(c.type) << " k=" << c.k << " n=" << c.n << " rows [" << c.r0 << ", "
                                   << c.r1 << ") t=" << t << " r=" << r);
            const float got = y[t * ldy + r];
            if (r < c.r0 || r >= c.r1) {
                REQUIRE(got == kUntouched);
                continue;
            }
            dequantize_row(c.type, weights.data() + r * w_stride, w_row.data(), c.k);
            double magnitude = 0.0;
            for (std::size_t e = 0; e < c.k; ++e) magnitude += std::fabs(w_row[e] * a[e]);
            const double tolerance = 2.0 * c.k * 1.2e-7 * magnitude + 1e-30;
            REQUIRE(std::fabs(double{got} - y_ref[t * ldy + r]) <= tolerance);
        }
    }
}

std::vector<unsigned char> random_weights(GgmlType type, std::size_t rows, std::size_t k) {
    std::mt19937 rng(static_cast<unsigned>(rows * 7 + k));
    const std::vector<float> w = random_floats(rng, rows * k, 0.5f);
    const std::size_t stride = *row_bytes(type, k);
    std::vector<unsigned char> out(rows * stride);
    for (std::size_t r = 0; r < rows; ++r) {
        REQUIRE(quantize_row(type, w.data() + r * k, out.data() + r * stride, k));
    }
    return out;
}

}  // namespace

TEST_CASE("avx2: Q8_0 activation rows are byte-identical, ties round to even", "[kernels][avx2]") {
    if (!have_avx2()) return;
    const Kernels& avx2 = kernels::kernels(Isa::avx2);
    // Block 0: amax 127, so x * 127/amax == x and the .5 ties show round-half-even.
    // Block 1: all zero (d = 0, q = 0). Block 2: large values.
    std::vector<float> x(96, 0.0f);
    x[0] = 2.5f;
    x[1] = -3.5f;
    x[2] = 0.5f;
    x[3] = -127.0f;
    x[4] = 126.5f;
    for (std::size_t i = 64; i < 96; ++i) x[i] = 1.0e30f * static_cast<float>(i % 7) - 3.0e30f;
    for (GgmlType w : {GgmlType::Q8_0, GgmlType::Q4_0}) {
        const auto got = prepare_rows(avx2, w, x.data(), x.size(), 1);
        REQUIRE(got == prepare_rows(kernels::kernels(Isa::portable), w, x.data(), x.size(), 1));
        const auto* blocks = reinterpret_cast<const BlockQ8_0*>(got.data());
        CHECK(blocks[0].d == fp32_to_fp16(1.0f));
        CHECK(blocks[0].qs[0] == 2);
        CHECK(blocks[0].qs[1] == -4);
        CHECK(blocks[0].qs[2] == 0);
        CHECK(blocks[0].qs[3] == -127);
        CHECK(blocks[0].qs[4] == 126);
        CHECK(blocks[1].d == 0);
        // group sums follow the blocks (after 64-byte padding): block 0, group 0 = 2 - 4 + 0 - 127
        std::int32_t sum0 = 0;
        std::memcpy(&sum0, got.data() + 128, sizeof sum0);
        CHECK(sum0 == -129);
    }
}

TEST_CASE("avx2: F32/F16 activation rows and conversions match the portable path bit for bit",
          "[kernels][avx2]") {
    if (!have_avx2()) return;
    const Kernels& portable = kernels::kernels(Isa::portable);
    const Kernels& avx2 = kernels::kernels(Isa::avx2);
    std::mt19937 rng(7);
    for (std::size_t k : {1u, 7u, 8u, 9u, 31u, 33u, 100u}) {
        const std::vector<float> x = random_floats(rng, k, 1000.0f);
        for (GgmlType w : {GgmlType::F32, GgmlType::F16}) {
            INFO("k=" << k << " " << type_name(w));
            REQUIRE(prepare_rows(avx2, w, x.data(), k, 1) ==
                    prepare_rows(portable, w, x.data(), k, 1));
        }
    }
    // Every half (NaN payloads included) to float and back, then a 7-element tail (0 .. 6).
    std::vector<std::uint16_t> halves(65536 + 7);
    for (std::size_t i = 0; i < halves.size(); ++i) halves[i] = static_cast<std::uint16_t>(i);
    std::vector<float> f_ref(halves.size(), 1.0f), f(halves.size(), 1.0f);
    portable.f16_to_f32(halves.data(), f_ref.data(), halves.size());
    avx2.f16_to_f32(halves.data(), f.data(), halves.size());
    REQUIRE(std::memcmp(f.data(), f_ref.data(), f.size() * sizeof(float)) == 0);
    // Back to half: the identity except that signalling NaNs come back quiet (on both paths).
    std::vector<std::uint16_t> back_ref(halves.size()), back(halves.size());
    portable.f32_to_f16(f.data(), back_ref.data(), f.size());
    avx2.f32_to_f16(f.data(), back.data(), f.size());
    REQUIRE(count_differences(back, back_ref) == 0);
    REQUIRE(back[0x3c01] == 0x3c01);
    REQUIRE(back[0x7c01] == 0x7e01);
    // Floats that round: ties, overflow to infinity, subnormal results (7-element tail).
    std::uniform_int_distribution<std::uint32_t> bits;
    std::vector<float> any(4103);
    for (float& v : any) {
        const std::uint32_t b = bits(rng);
        std::memcpy(&v, &b, sizeof v);
    }
    std::vector<std::uint16_t> h_ref(any.size()), h(any.size());
    portable.f32_to_f16(any.data(), h_ref.data(), any.size());
    avx2.f32_to_f16(any.data(), h.data(), any.size());
    REQUIRE(count_differences(h, h_ref) == 0);
}

TEST_CASE("avx2: gemm agrees with the portable path across tiles, tails and row ranges",
          "[kernels][avx2]") {
    if (!have_avx2()) return;
    constexpr std::size_t kRows = 11;  // 2 full 4-row decode tiles + 3, 5 row pairs + 1
    for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0}) {
        const bool quant = type == GgmlType::Q8_0 || type == GgmlType::Q4_0;
        const std::vector<std::size_t> ks =
            quant ? std::vector<std::size_t>{32, 64, 160} : std::vector<std::size_t>{1, 7, 9, 40};
        for (std::size_t k : ks) {
            const auto weights = random_weights(type, kRows, k);
            for (std::size_t n : {1u, 2u, 3u, 4u, 5u, 6u, 7u, 9u}) {
                check_gemm_agrees({type, kRows, k, n, 0, kRows}, weights);
                check_gemm_agrees({type, kRows, k, n, 3, 10}, weights);
                check_gemm_agrees({type, kRows, k, n, 5, 6}, weights);
            }
        }
    }
}

TEST_CASE("avx2: Q8_0 weights at -128 and 127 give exact products, as in ggml", "[kernels][avx2]") {
    if (!have_avx2()) return;
    const Kernels& portable = kernels::kernels(Isa::portable);
    const Kernels& avx2 = kernels::kernels(Isa::avx2);
    constexpr std::size_t kK = 64, kRows = 6, kN = 5;
    // Weight scales 1.0 and activations with amax 127 (scale 1.0): every product is an exact
    // integer below 2^24, so both paths must give exactly the integer dot product.
    std::vector<BlockQ8_0> w(kRows * kK / kQK8_0);
    for (std::size_t r = 0; r < kRows; ++r) {
        for (std::size_t b = 0; b < kK / kQK8_0; ++b) {
            BlockQ8_0& blk = w[r * (kK / kQK8_0) + b];
            blk.d = fp32_to_fp16(1.0f);
            for (std::size_t j = 0; j < kQK8_0; ++j) {
                const std::size_t e = b * kQK8_0 + j;
                blk.qs[j] =
                    static_cast<std::int8_t>(((e + r) % 3 == 0)   ? -128
                                             : ((e + r) % 3 == 1) ? 127
                                                                  : -static_cast<int>(e % 5));
            }
        }
    }
    std::vector<float> x(kN * kK);
    for (std::size_t t = 0; t < kN; ++t) {
        for (std::size_t e = 0; e < kK; ++e) {
            // +-127 in every block keeps the activation scale at exactly 1
            x[t * kK + e] =
                e % 32 == t ? 127.0f
                : e % 32 == t + 1
                    ? -127.0f
                    : static_cast<float>(static_cast<int>((e * 37 + t * 11) % 255) - 127);
        }
    }
    const auto act = prepare_rows(avx2, GgmlType::Q8_0, x.data(), kK, kN);
    std::vector<float> y_ref(kN * kRows), y(kN * kRows);
    portable.gemm(GgmlType::Q8_0, w.data(), sizeof(BlockQ8_0) * 2, kK, kRows, 0, kRows, act.data(),
                  kN, y_ref.data(), kRows);
    for (std::size_t n : {std::size_t{1}, kN}) {
        avx2.gemm(GgmlType::Q8_0, w.data(), sizeof(BlockQ8_0) * 2, kK, kRows, 0, kRows, act.data(),
                  n, y.data(), kRows);
        for (std::size_t t = 0; t < n; ++t) {
            for (std::size_t r = 0; r < kRows; ++r) {
                std::int64_t exact = 0;
                for (std::size_t e = 0; e < kK; ++e) {
                    exact += std::int64_t{w[r * 2 + e / 32].qs[e % 32]} *
                             static_cast<std::int64_t>(x[t * kK + e]);
                }
                INFO("n=" << n << " t=" << t << " r=" << r);
                REQUIRE(y[t * kRows + r] == static_cast<float>(exact));
                REQUIRE(y_ref[t * kRows + r] == static_cast<float>(exact));
            }
        }
    }
}
