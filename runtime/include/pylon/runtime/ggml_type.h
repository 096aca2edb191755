// Tensor element types as GGUF numbers them (ggml's `enum ggml_type`), with their block layout.
//
// A quantized row of n elements is n / block_size blocks of type_size bytes each; a row whose
// length is not a multiple of block_size cannot be stored in that type. The numbering is part of
// the GGUF file format and must never change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace pylon::runtime {

enum class GgmlType : std::uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    BF16 = 30,
};

struct TypeInfo {
    GgmlType type;
    std::string_view name;    // "F32", "Q4_0", ... as llama.cpp prints them
    std::uint32_t block_size;  // elements per block (1 for plain types)
    std::uint32_t type_size;   // bytes per block
    bool computable;           // the runtime has kernels for it (F32, F16, Q8_0, Q4_0 today)
};

// Layout of a type number read from a file; nullopt for a number GGUF does not define (or that
// ggml has retired, such as 4 and 5).
std::optional<TypeInfo> type_info(std::uint32_t raw) noexcept;
inline std::optional<TypeInfo> type_info(GgmlType t) noexcept {
    return type_info(static_cast<std::uint32_t>(t));
}
std::string_view type_name(GgmlType t) noexcept;
// Parses "f32", "Q4_0", ... (case-insensitive).
std::optional<GgmlType> parse_type_name(std::string_view name) noexcept;

// Bytes of one row of `n` elements, or nullopt when n is not a multiple of the block size or the
// size overflows.
std::optional<std::size_t> row_bytes(GgmlType t, std::uint64_t n) noexcept;

// Block layouts of the types the kernels compute with (bit-exact with ggml).
inline constexpr std::size_t kQK4_0 = 32;
inline constexpr std::size_t kQK8_0 = 32;
struct BlockQ4_0 {
    std::uint16_t d;              // scale, IEEE half
    std::uint8_t qs[kQK4_0 / 2];  // element j in the low nibble of qs[j], j+16 in the high one;
                                  // value = (nibble - 8) * d
};
struct BlockQ8_0 {
    std::uint16_t d;         // scale, IEEE half
    std::int8_t qs[kQK8_0];  // value = qs[j] * d
};
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ8_0) == 34);

}  // namespace pylon::runtime
