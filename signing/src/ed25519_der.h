// The two fixed DER forms of Ed25519 keys (RFC 8410), read and written without OpenSSL so that
// a process handling only Ed25519 keys never initialises OpenSSL's decoders and providers:
//   SubjectPublicKeyInfo   30 2a 30 05 06 03 2b 65 70 03 21 00 || 32-byte public key
//   PKCS#8 v1 PrivateKeyInfo 30 2e 02 01 00 30 05 06 03 2b 65 70 04 22 04 20 || 32-byte seed
// Anything else (ECDSA keys, PKCS#8 v2 with an attached public key, attributes) is left to
// OpenSSL by the callers. Also: the body of a PEM block, decoded.
#pragma once

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <string_view>

#include <sodium.h>

#include "pylon/common/bytes.h"
#include "pylon/signing/encoding.h"

namespace pylon::signing::detail {

inline constexpr std::array<std::uint8_t, 12> kEd25519SpkiPrefix = {
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
inline constexpr std::array<std::uint8_t, 16> kEd25519Pkcs8Prefix = {
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};

// The 32 key bytes when `der` is exactly `prefix` followed by them.
template <std::size_t N>
std::optional<ByteView> ed25519_payload(ByteView der, const std::array<std::uint8_t, N>& prefix) {
    if (der.size() != N + 32 || !std::equal(prefix.begin(), prefix.end(), der.begin())) {
        return std::nullopt;
    }
    return der.subspan(N);
}

template <std::size_t N>
Bytes ed25519_der(const std::array<std::uint8_t, N>& prefix, ByteView key) {
    Bytes out(N + key.size());
    std::copy(prefix.begin(), prefix.end(), out.begin());
    std::copy(key.begin(), key.end(), out.begin() + static_cast<std::ptrdiff_t>(N));
    return out;
}

// The DER inside the only "-----BEGIN <label>-----" … "-----END <label>-----" block of `pem`,
// when it is plain base64 lines (no headers); nullopt otherwise (the caller falls back).
inline std::optional<Bytes> pem_body(std::string_view pem, std::string_view label) {
    const std::string begin = "-----BEGIN " + std::string(label) + "-----";
    const std::string end = "-----END " + std::string(label) + "-----";
    const auto b = pem.find(begin);
    if (b == std::string_view::npos || pem.find(begin, b + 1) != std::string_view::npos) {
        return std::nullopt;
    }
    const auto e = pem.find(end, b + begin.size());
    if (e == std::string_view::npos) return std::nullopt;
    std::string b64;
    for (char c : pem.substr(b + begin.size(), e - b - begin.size())) {
        if (c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
        if (c == ':') return std::nullopt;  // "Proc-Type:" style headers
        b64 += c;
    }
    auto der = base64_decode(b64);
    sodium_memzero(b64.data(), b64.size());  // it may be a private key
    if (!der) return std::nullopt;
    return std::move(*der);
}

// A PEM block of `der` as OpenSSL writes it (64-character lines).
inline std::string pem_encode(ByteView der, std::string_view label) {
    const std::string b64 = base64_encode(der);
    std::string pem = "-----BEGIN " + std::string(label) + "-----\n";
    for (std::size_t i = 0; i < b64.size(); i += 64) pem += b64.substr(i, 64) + "\n";
    pem += "-----END " + std::string(label) + "-----\n";
    return pem;
}

}  // namespace pylon::signing::detail
