// Facts about GGUF value types shared by the reader and the writer.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "pylon/runtime/gguf.h"

namespace pylon::runtime::gguf::detail {

inline constexpr std::uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
inline constexpr std::uint32_t kDefaultAlignment = 32;
inline constexpr std::string_view kAlignmentKey = "general.alignment";

// The type for a number read from a file, or nullopt when GGUF does not define it.
inline std::optional<ValueType> value_type(std::uint32_t raw) noexcept {
    if (raw > static_cast<std::uint32_t>(ValueType::f64)) return std::nullopt;
    return static_cast<ValueType>(raw);
}

// Encoded size of a scalar type; 0 for string and array (variable length).
inline std::uint64_t scalar_size(ValueType t) noexcept {
    switch (t) {
        case ValueType::u8:
        case ValueType::i8:
        case ValueType::boolean:
            return 1;
        case ValueType::u16:
        case ValueType::i16:
            return 2;
        case ValueType::u32:
        case ValueType::i32:
        case ValueType::f32:
            return 4;
        case ValueType::u64:
        case ValueType::i64:
        case ValueType::f64:
            return 8;
        case ValueType::string:
        case ValueType::array:
            return 0;
    }
    return 0;
}

// The fewest bytes one value of type t occupies in a file (an empty string or array included).
inline std::uint64_t min_encoded_size(ValueType t) noexcept {
    if (t == ValueType::string) return 8;
    if (t == ValueType::array) return 12;
    return scalar_size(t);
}

std::string_view value_type_name(ValueType t) noexcept;

}  // namespace pylon::runtime::gguf::detail
