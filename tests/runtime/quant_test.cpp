// Row quantization against hand-computed ggml blocks (ties, zeros, equal values, negative
// extremes) and the error bounds of a quantize/dequantize round trip.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "pylon/runtime/fp16.h"
#include "pylon/runtime/quant.h"

using namespace pylon::runtime;

namespace {

std::vector<float> block_of(float fill) {
    return std::vector<float>(32, fill);
}

std::uint8_t nibble(const BlockQ4_0& b, std::size_t j) {
    return j < 16 ? b.qs[j] & 0x0f : b.qs[j - 16] >> 4;
}

}  // namespace

TEST_CASE("quant: Q8_0 blocks as ggml's reference writes them", "[kernels][quant]") {
    SECTION("ties round away from zero") {
        auto x = block_of(0.0f);
        x[0] = 127.0f;  // amax 127 -> d = 1 exactly, id = 1
        x[1] = 2.5f;
        x[2] = -2.5f;
        x[3] = 0.5f;
        x[4] = -0.5f;
        x[5] = 1.5f;
        x[6] = 126.49f;
        BlockQ8_0 b{};
        quantize_row_q8_0(x.data(), &b, 32);
        REQUIRE(b.d == 0x3c00);
        const std::int8_t want[7] = {127, 3, -3, 1, -1, 2, 126};
        for (int j = 0; j < 7; ++j) REQUIRE(b.qs[j] == want[j]);
        for (int j = 7; j < 32; ++j) REQUIRE(b.qs[j] == 0);
    }
    SECTION("a negative extreme gives -127") {
        auto x = block_of(1.0f);
        x[31] = -127.0f;
        BlockQ8_0 b{};
        quantize_row_q8_0(x.data(), &b, 32);
        REQUIRE(b.d == 0x3c00);
        REQUIRE(b.qs[31] == -127);
        REQUIRE(b.qs[0] == 1);
    }
    SECTION("zeros give a zero scale and zero quants") {
        auto x = block_of(0.0f);
        BlockQ8_0 b{};
        std::memset(&b, 0x55, sizeof b);
        quantize_row_q8_0(x.data(), &b, 32);
        REQUIRE(b.d == 0);
        for (auto q : b.qs) REQUIRE(q == 0);
    }
    SECTION("equal values all quantize to 127") {
        auto x = block_of(3.0f);
        BlockQ8_0 b{};
        quantize_row_q8_0(x.data(), &b, 32);
        REQUIRE(b.d == fp32_to_fp16(3.0f / 127.0f));
        for (auto q : b.qs) REQUIRE(q == 127);
    }
    SECTION("several blocks are independent") {
        std::vector<float> x(64, 0.0f);
        x[0] = 127.0f;
        x[32] = -254.0f;
        x[33] = 3.0f;  // 3/2 = 1.5 -> 2
        BlockQ8_0 b[2]{};
        quantize_row_q8_0(x.data(), b, 64);
        REQUIRE(b[0].d == 0x3c00);
        REQUIRE(b[1].d == 0x4000);  // 2.0
        REQUIRE(b[1].qs[0] == -127);
        REQUIRE(b[1].qs[1] == 2);
    }
}

TEST_CASE("quant: Q4_0 blocks as ggml's reference writes them", "[kernels][quant]") {
    SECTION("negative extreme: d = -8/-8 = 1") {
        auto x = block_of(0.0f);
        x[0] = -8.0f;
        x[1] = 7.0f;
        x[2] = -7.5f;  // -7.5 + 8.5 = 1.0 -> 1
        x[3] = 0.5f;   // 9.0 -> 9
        x[4] = -0.5f;  // 8.0 -> 8
        x[5] = 7.4f;   // 15.9 -> 15
        x[16] = 3.0f;  // high nibble of qs[0]
        BlockQ4_0 b{};
        quantize_row_q4_0(x.data(), &b, 32);
        REQUIRE(b.d == 0x3c00);
        const std::uint8_t want[6] = {0, 15, 1, 9, 8, 15};
        for (int j = 0; j < 6; ++j) REQUIRE(nibble(b, j) == want[j]);
        REQUIRE(b.qs[0] == (0 | (11 << 4)));
        for (int j = 6; j < 16; ++j) REQUIRE(nibble(b, j) == 8);
    }
    SECTION("positive extreme: d = -1, the extreme maps to 0 and -8 clips to 15") {
        auto x = block_of(0.0f);
        x[0] = 8.0f;
        x[1] = -8.0f;  // 16.5 -> 16 -> min(15)
        x[2] = 0.5f;   // -0.5 + 8.5 = 8
        BlockQ4_0 b{};
        quantize_row_q4_0(x.data(), &b, 32);
        REQUIRE(b.d == 0xbc00);
        REQUIRE(nibble(b, 0) == 0);
        REQUIRE(nibble(b, 1) == 15);
        REQUIRE(nibble(b, 2) == 8);
    }
    SECTION("of two equal magnitudes the first one's sign wins") {
        auto x = block_of(0.0f);
        x[0] = -4.0f;
        x[1] = 4.0f;  // id = 2: 8 + 8.5 -> 15 (clipped from 16)
        BlockQ4_0 b{};
        quantize_row_q4_0(x.data(), &b, 32);
        REQUIRE(b.d == 0x3800);  // 0.5
        REQUIRE(nibble(b, 0) == 0);
        REQUIRE(nibble(b, 1) == 15);
    }
    SECTION("zeros give d = -0 (0 / -8) and nibbles 8") {
        auto x = block_of(0.0f);
        BlockQ4_0 b{};
        quantize_row_q4_0(x.data(), &b, 32);
        REQUIRE(b.d == 0x8000);
        for (auto q : b.qs) REQUIRE(q == 0x88);
    }
    SECTION("equal positive values all map to nibble 0") {
        auto x = block_of(2.0f);
        BlockQ4_0 b{};
        quantize_row_q4_0(x.data(), &b, 32);
        REQUIRE(b.d == fp32_to_fp16(-0.25f));
        for (auto q : b.qs) REQUIRE(q == 0x00);
    }
}

TEST_CASE("quant: dequantize(quantize(x)) stays within the scale's error bound",
          "[kernels][quant]") {
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    const std::size_t k = 32 * 64;
    std::vector<float> x(k);
    for (std::size_t i = 0; i < k; ++i) x[i] = dist(rng) * (i < 32 ? 1000.0f : 1.0f);
    std::vector<float> back(k);

    std::vector<BlockQ8_0> q8(k / 32);
    REQUIRE(quantize_row(GgmlType::Q8_0, x.data(), q8.data(), k));
    dequantize_row(GgmlType::Q8_0, q8.data(), back.data(), k);
    for (std::size_t i = 0; i < k; ++i) {
        const float d = std::fabs(fp16_to_fp32(q8[i / 32].d));
        REQUIRE(std::fabs(back[i] - x[i]) <= d * 0.5f + std::fabs(x[i]) * 0x1p-10f);
    }

    std::vector<BlockQ4_0> q4(k / 32);
    REQUIRE(quantize_row(GgmlType::Q4_0, x.data(), q4.data(), k));
    dequantize_row(GgmlType::Q4_0, q4.data(), back.data(), k);
    for (std::size_t i = 0; i < k; ++i) {
        // 8/8 of the extreme's side cannot be stored (nibble 16), so the bound is a full step.
        const float d = std::fabs(fp16_to_fp32(q4[i / 32].d));
        REQUIRE(std::fabs(back[i] - x[i]) <= d * 1.0f + std::fabs(x[i]) * 0x1p-10f);
    }

    std::vector<std::uint16_t> h(k);
    REQUIRE(quantize_row(GgmlType::F16, x.data(), h.data(), k));
    dequantize_row(GgmlType::F16, h.data(), back.data(), k);
    for (std::size_t i = 0; i < k; ++i) REQUIRE(back[i] == fp16_to_fp32(fp32_to_fp16(x[i])));

    std::vector<float> f(k);
    REQUIRE(quantize_row(GgmlType::F32, x.data(), f.data(), k));
    dequantize_row(GgmlType::F32, f.data(), back.data(), k);
    REQUIRE(back == x);
}

TEST_CASE("quant: quantize_row refuses types and lengths it cannot write", "[kernels][quant]") {
    std::vector<float> x(48, 1.0f);
    std::vector<unsigned char> out(1024);
    REQUIRE_FALSE(quantize_row(GgmlType::Q4_0, x.data(), out.data(), 48));
    REQUIRE_FALSE(quantize_row(GgmlType::Q8_0, x.data(), out.data(), 48));
    REQUIRE_FALSE(quantize_row(GgmlType::Q4_K, x.data(), out.data(), 256));
    REQUIRE(quantize_row(GgmlType::F16, x.data(), out.data(), 48));
}
