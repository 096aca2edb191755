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
// Hashes a regular file by streaming it in fixed-size chunks (memory does not grow with the
// file). Anything else (a directory, a FIFO, a device) is refused with pylon::Errc::unsupported
// rather than read, so a hostile path cannot block or feed endless data.
[[nodiscard]] Result<Digest> sha256_file(const std::filesystem::path& path);
// Streams an open descriptor to its end; `what` names it in errors. The caller owns `fd`.
[[nodiscard]] Result<Digest> sha256_fd(int fd, std::string_view what);

std::string to_hex(const Digest& d);
// Parses 64 hex characters (either case).
[[nodiscard]] Result<Digest> digest_from_hex(std::string_view hex);

}  // namespace pylon::signing
