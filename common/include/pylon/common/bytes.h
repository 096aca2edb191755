// Byte buffers and views shared by every library.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pylon {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView as_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_string_view(ByteView b) noexcept {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline Bytes to_bytes(std::string_view s) {
    return Bytes(s.begin(), s.end());
}
inline std::string to_string(ByteView b) {
    return std::string(as_string_view(b));
}

// Compares in time independent of where the inputs differ (for MACs and digests of secrets).
bool constant_time_equal(ByteView a, ByteView b) noexcept;

}  // namespace pylon
