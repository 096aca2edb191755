// Hex and base64 codecs. Decoders are strict: they refuse stray characters, bad padding and
// non-zero trailing bits, so that one value has one encoding.
#pragma once

#include <string>
#include <string_view>

#include "pylon/common/bytes.h"
#include "pylon/common/result.h"

namespace pylon::signing {

std::string hex_encode(ByteView data);  // lower case
[[nodiscard]] Result<Bytes> hex_decode(std::string_view hex);

std::string base64_encode(ByteView data);     // RFC 4648 §4, padded
std::string base64url_encode(ByteView data);  // RFC 4648 §5, unpadded
// Standard alphabet with padding.
[[nodiscard]] Result<Bytes> base64_decode(std::string_view text);
// URL-safe alphabet, padding optional.
[[nodiscard]] Result<Bytes> base64url_decode(std::string_view text);
// Either alphabet, padding optional (DSSE: "accept either").
[[nodiscard]] Result<Bytes> base64_decode_any(std::string_view text);

}  // namespace pylon::signing
