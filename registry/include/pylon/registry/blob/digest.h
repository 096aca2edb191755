// Digest: the content address of a blob, written `sha256:<64 lowercase hex>` as in the OCI
// distribution API. Only SHA-256 is accepted, and only in its canonical spelling, so that one
// blob has exactly one name (and one path on disk).
#pragma once

#include <string>
#include <string_view>

#include "pylon/common/result.h"
#include "pylon/signing/sha256.h"

namespace pylon::registry::blob {

class Digest {
public:
    static constexpr std::string_view kPrefix = "sha256:";

    // Errc::invalid_digest, naming what was wrong (algorithm, length, character), otherwise.
    [[nodiscard]] static Result<Digest> parse(std::string_view text);
    static Digest from_bytes(const signing::Digest& bytes) { return Digest(bytes); }

    const signing::Digest& bytes() const noexcept { return bytes_; }
    std::string hex() const;  // 64 lowercase hex characters
    std::string str() const;  // "sha256:" + hex()

    friend bool operator==(const Digest&, const Digest&) = default;

private:
    explicit Digest(const signing::Digest& bytes) : bytes_(bytes) {}
    signing::Digest bytes_;
};

}  // namespace pylon::registry::blob
