// Streaming SHA-256 through OpenSSL EVP (which uses SHA-NI / AVX2 when the CPU has them).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "pylon/common/bytes.h"
#include "pylon/common/result.h"

namespace pylon::signing {

using Digest = std::array<std::uint8_t, 32>;

class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(Sha256&&) noexcept;
    Sha256& operator=(Sha256&&) noexcept;

    void update(ByteView data);
    void update(std::string_view data) { update(as_bytes(data)); }
    // Returns the digest and resets the hasher for reuse.
    Digest finish();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

Digest sha256(ByteView data);
inline Digest sha256(std::string_view data) {
    return sha256(as_bytes(data));
}
// Hashes a file by streaming it in fixed-size chunks (memory does not grow with the file).
[[nodiscard]] Result<Digest> sha256_file(const std::filesystem::path& path);

std::string to_hex(const Digest& d);
// Parses 64 hex characters (either case).
[[nodiscard]] Result<Digest> digest_from_hex(std::string_view hex);

}  // namespace pylon::signing
