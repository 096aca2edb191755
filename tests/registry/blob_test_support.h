// Helpers shared by the blob store tests: deterministic payloads, their digests, opening a store.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "pylon/registry/blob/blob_store.h"
#include "pylon/signing/sha256.h"

namespace pylon::registry::blob::test {

// `size` pseudo-random bytes, the same for the same seed.
inline std::string pattern(std::size_t size, unsigned seed) {
    std::string s(size, '\0');
    std::uint32_t x = seed * 2654435761u + 7;
    for (auto& c : s) {
        x = x * 1664525u + 1013904223u;
        c = static_cast<char>(x >> 24);
    }
    return s;
}

inline Digest digest_of(std::string_view data) {
    return Digest::from_bytes(pylon::signing::sha256(data));
}

inline std::unique_ptr<BlobStore> open_store(const std::filesystem::path& root,
                                             BlobStoreConfig config = {}) {
    auto store = BlobStore::open_filesystem(root, std::move(config));
    REQUIRE(store);
    return std::move(store).value();
}

}  // namespace pylon::registry::blob::test
