#include "profiles.h"

namespace pylon::fleet_sim {

using Json = nlohmann::json;

// Hardware probes in the agent's vocabulary.
const std::map<std::string, Json>& profiles() {
    static const std::map<std::string, Json> p = {
        {"x86_64-sse",
         {{"arch", "x86_64"},
          {"isa", {"sse4_2"}},
          {"accelerators", Json::array()},
          {"ram_mb", 2048}}},
        {"x86_64-avx2",
         {{"arch", "x86_64"},
          {"isa", {"sse4_2", "avx", "avx2", "fma", "f16c"}},
          {"accelerators", Json::array()},
          {"ram_mb", 8192}}},
        {"x86_64-avx512",
         {{"arch", "x86_64"},
          {"isa", {"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl"}},
          {"accelerators", Json::array()},
          {"ram_mb", 16384}}},
        {"aarch64-neon",
         {{"arch", "aarch64"},
          {"isa", {"neon", "dotprod"}},
          {"accelerators", Json::array()},
          {"ram_mb", 4096}}},
        {"aarch64-small",
         {{"arch", "aarch64"},
          {"isa", {"neon"}},
          {"accelerators", Json::array()},
          {"ram_mb", 512}}},
        {"jetson-orin",
         {{"arch", "aarch64"},
          {"isa", {"neon", "dotprod"}},
          {"accelerators", {"cuda-sm87"}},
          {"ram_mb", 8192}}},
    };
    return p;
}

std::uint64_t mix(std::uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

std::uint64_t hash_text(std::string_view s) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

}  // namespace pylon::fleet_sim
