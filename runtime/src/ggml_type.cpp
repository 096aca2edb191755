#include "pylon/runtime/ggml_type.h"

#include <array>
#include <cctype>

namespace pylon::runtime {
namespace {

constexpr std::array<TypeInfo, 20> kTypes{{
    {GgmlType::F32, "F32", 1, 4, true},
    {GgmlType::F16, "F16", 1, 2, true},
    {GgmlType::Q4_0, "Q4_0", 32, 18, true},
    {GgmlType::Q4_1, "Q4_1", 32, 20, false},
    {GgmlType::Q5_0, "Q5_0", 32, 22, false},
    {GgmlType::Q5_1, "Q5_1", 32, 24, false},
    {GgmlType::Q8_0, "Q8_0", 32, 34, true},
    {GgmlType::Q8_1, "Q8_1", 32, 36, false},
    {GgmlType::Q2_K, "Q2_K", 256, 84, false},
    {GgmlType::Q3_K, "Q3_K", 256, 110, false},
    {GgmlType::Q4_K, "Q4_K", 256, 144, false},
    {GgmlType::Q5_K, "Q5_K", 256, 176, false},
    {GgmlType::Q6_K, "Q6_K", 256, 210, false},
    {GgmlType::Q8_K, "Q8_K", 256, 292, false},
    {GgmlType::I8, "I8", 1, 1, false},
    {GgmlType::I16, "I16", 1, 2, false},
    {GgmlType::I32, "I32", 1, 4, false},
    {GgmlType::I64, "I64", 1, 8, false},
    {GgmlType::F64, "F64", 1, 8, false},
    {GgmlType::BF16, "BF16", 1, 2, false},
}};

}  // namespace

std::optional<TypeInfo> type_info(std::uint32_t raw) noexcept {
    for (const auto& t : kTypes) {
        if (static_cast<std::uint32_t>(t.type) == raw) return t;
    }
    return std::nullopt;
}

std::string_view type_name(GgmlType t) noexcept {
    const auto info = type_info(t);
    return info ? info->name : std::string_view("unknown");
}

std::optional<GgmlType> parse_type_name(std::string_view name) noexcept {
    for (const auto& t : kTypes) {
        if (t.name.size() != name.size()) continue;
        bool same = true;
        for (std::size_t i = 0; i < name.size() && same; ++i) {
            same = std::toupper(static_cast<unsigned char>(name[i])) == t.name[i];
        }
        if (same) return t.type;
    }
    return std::nullopt;
}

std::optional<std::size_t> row_bytes(GgmlType t, std::uint64_t n) noexcept {
    const auto info = type_info(t);
    if (!info || n % info->block_size != 0) return std::nullopt;
    const std::uint64_t blocks = n / info->block_size;
    std::uint64_t bytes = 0;
    if (__builtin_mul_overflow(blocks, static_cast<std::uint64_t>(info->type_size), &bytes)) {
        return std::nullopt;
    }
    if (bytes > static_cast<std::uint64_t>(SIZE_MAX)) return std::nullopt;
    return static_cast<std::size_t>(bytes);
}

}  // namespace pylon::runtime
