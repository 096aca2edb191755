#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "pylon/runtime/fp16.h"
#include "pylon/runtime/ggml_type.h"

using namespace pylon::runtime;

TEST_CASE("type table: layouts of the computable types", "[runtime][types]") {
    REQUIRE(type_info(GgmlType::Q4_0)->type_size == sizeof(BlockQ4_0));
    REQUIRE(type_info(GgmlType::Q8_0)->type_size == sizeof(BlockQ8_0));
    REQUIRE_FALSE(type_info(4u).has_value());  // retired Q4_2
    REQUIRE(row_bytes(GgmlType::Q4_0, 64) == 36u);
    REQUIRE_FALSE(row_bytes(GgmlType::Q4_0, 172).has_value());
    REQUIRE_FALSE(row_bytes(GgmlType::F32, ~0ull).has_value());
    REQUIRE(parse_type_name("q8_0") == GgmlType::Q8_0);
    REQUIRE_FALSE(parse_type_name("q9_0").has_value());
}

TEST_CASE("fp16: every half converts to float and back unchanged", "[runtime][types]") {
    for (std::uint32_t h = 0; h < 0x10000; ++h) {
        const float f = fp16_to_fp32(static_cast<std::uint16_t>(h));
        if (std::isnan(f)) continue;
        REQUIRE(fp32_to_fp16(f) == h);
    }
    REQUIRE(fp32_to_fp16(65520.0f) == 0x7c00);  // rounds up to infinity
    REQUIRE(fp32_to_fp16(1.0f + 1.0f / 2048) == 0x3c00);  // tie -> even
    REQUIRE(fp32_to_fp16(std::numeric_limits<float>::denorm_min()) == 0);
    REQUIRE(fp16_to_fp32(0x0001) == std::ldexp(1.0f, -24));
}
