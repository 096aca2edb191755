#include "pylon/registry/blob/digest.h"

#include <fmt/format.h>

#include "pylon/registry/blob/errors.h"

namespace pylon::registry::blob {
namespace {

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

}  // namespace

Result<Digest> Digest::parse(std::string_view text) {
    constexpr std::size_t kHexLength = 64;
    if (text.size() > kPrefix.size() + kHexLength + 64) {
        return Error(Errc::invalid_digest, fmt::format("digest is {} characters long; expected "
                                                       "sha256:<64 lowercase hex>",
                                                       text.size()));
    }
    const auto colon = text.find(':');
    if (colon == std::string_view::npos) {
        return Error(Errc::invalid_digest,
                     fmt::format("digest '{}' has no algorithm; expected sha256:<64 hex>", text));
    }
    if (text.substr(0, colon + 1) != kPrefix) {
        return Error(Errc::invalid_digest,
                     fmt::format("digest algorithm '{}' is not supported; only sha256 is",
                                 text.substr(0, colon)));
    }
    const std::string_view hex = text.substr(kPrefix.size());
    if (hex.size() != kHexLength) {
        return Error(Errc::invalid_digest,
                     fmt::format("sha256 digest has {} hex characters; expected 64", hex.size()));
    }
    signing::Digest bytes{};
    for (std::size_t i = 0; i < kHexLength; ++i) {
        if (hex_value(hex[i]) < 0) {
            return Error(Errc::invalid_digest,
                         fmt::format("sha256 digest has '{}' at position {}; expected lowercase "
                                     "hex",
                                     hex[i], i));
        }
    }
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        bytes[i] =
            static_cast<std::uint8_t>(hex_value(hex[2 * i]) * 16 + hex_value(hex[2 * i + 1]));
    }
    return Digest(bytes);
}

std::string Digest::hex() const {
    return signing::to_hex(bytes_);
}

std::string Digest::str() const {
    return std::string(kPrefix) + hex();
}

}  // namespace pylon::registry::blob
