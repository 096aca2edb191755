// IEEE 754 half precision <-> float, exact and portable (no F16C needed); the SIMD kernels use
// their own hardware conversions, which agree bit for bit with these.
#pragma once

#include <bit>
#include <cstdint>

namespace pylon::runtime {

// Round-to-nearest-even conversion, NaN and infinity preserved, subnormals handled.
constexpr std::uint16_t fp32_to_fp16(float f) noexcept {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    const std::uint32_t sign = (x >> 16) & 0x8000u;
    const std::uint32_t exp = (x >> 23) & 0xffu;
    std::uint32_t mant = x & 0x7fffffu;
    if (exp == 0xffu) {  // inf or NaN (keep a quiet NaN)
        return static_cast<std::uint16_t>(sign | 0x7c00u | (mant ? 0x200u | (mant >> 13) : 0u));
    }
    const int e = static_cast<int>(exp) - 127 + 15;
    if (e >= 0x1f) return static_cast<std::uint16_t>(sign | 0x7c00u);  // overflow -> inf
    if (e <= 0) {                                                      // subnormal or zero
        if (e < -10) return static_cast<std::uint16_t>(sign);
        mant |= 0x800000u;
        const int shift = 14 - e;
        std::uint32_t half = mant >> shift;
        const std::uint32_t rem = mant & ((1u << shift) - 1u);
        const std::uint32_t halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (half & 1u))) ++half;
        return static_cast<std::uint16_t>(sign | half);
    }
    std::uint32_t half = (static_cast<std::uint32_t>(e) << 10) | (mant >> 13);
    const std::uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;  // may carry into inf: correct
    return static_cast<std::uint16_t>(sign | half);
}

constexpr float fp16_to_fp32(std::uint16_t h) noexcept {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1fu;
    std::uint32_t mant = h & 0x3ffu;
    if (exp == 0x1fu) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        if (mant == 0) return std::bit_cast<float>(sign);
        int e = -1;
        do {  // normalise the subnormal
            ++e;
            mant <<= 1;
        } while ((mant & 0x400u) == 0);
        return std::bit_cast<float>(sign | (static_cast<std::uint32_t>(127 - 15 - e) << 23) |
                                    ((mant & 0x3ffu) << 13));
    }
    return std::bit_cast<float>(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

}  // namespace pylon::runtime
