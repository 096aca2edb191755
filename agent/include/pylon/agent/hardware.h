// The device's hardware, in the vocabulary of build hardware targets (the "target" object in a
// TUF target's custom "pylon" fields, catalog::HardwareTarget on the registry): CPU architecture,
// ISA features, accelerators and RAM. A build fits a device when the architecture is the same,
// every required ISA feature is present, its accelerator is "none" or one the device has, and the
// device has at least its minimum RAM; among fitting builds the agent prefers the most specific
// (see prefer()).
//
// Vocabulary:
//   arch          "x86_64", "aarch64", "armv7", "riscv64", ... (uname's machine, "arm64" and
//                 "amd64" normalised)
//   isa (x86)     sse sse2 sse3 ssse3 sse4_1 sse4_2 avx avx2 fma f16c bmi2 avx512f avx512cd
//                 avx512bw avx512dq avx512vl avx512vnni avx512bf16 avx512fp16 avxvnni amx_tile
//                 amx_int8 amx_bf16 — the AVX families only where the OS saves their registers
//                 (XCR0)
//   isa (aarch64) neon (asimd) dotprod (asimddp) fp16 (asimdhp) i8mm bf16 sve sve2
//   accelerators  "cuda-sm<major><minor>" (NVIDIA Jetson modules recognised from the device tree;
//                 others declared in the agent's config), sorted
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pylon/common/result.h"

namespace pylon::agent {

using Json = nlohmann::json;

struct Hardware {
    std::string arch;
    std::vector<std::string> isa;           // sorted, no duplicates
    std::vector<std::string> accelerators;  // sorted, no duplicates; empty: none
    std::int64_t ram_mb = 0;                // MemTotal
    std::string cpu_model;                  // informational ("" when unknown)

    Json to_json() const;
    // Errc::invalid_argument naming the field for anything malformed.
    [[nodiscard]] static Result<Hardware> from_json(const Json& j);
    bool operator==(const Hardware&) const = default;
};

// Where the probe reads. from_system() fills it from this machine; tests supply their own.
struct ProbeSources {
    std::string machine;  // uname(2) machine
    // x86: cpuid(leaf, subleaf) -> {eax, ebx, ecx, edx}; empty on other architectures.
    std::function<std::array<std::uint32_t, 4>(std::uint32_t, std::uint32_t)> cpuid;
    std::uint64_t xcr0 = 0;  // x86: XGETBV(0), the register state the OS saves
    // aarch64: getauxval(AT_HWCAP) / (AT_HWCAP2).
    std::uint64_t hwcap = 0, hwcap2 = 0;
    std::string meminfo;                 // /proc/meminfo
    std::string cpuinfo;                 // /proc/cpuinfo (the model name)
    std::string device_tree_compatible;  // /proc/device-tree/compatible (NUL-separated)

    static ProbeSources from_system();
};

// Errc::io_error / invalid_argument when a source cannot be read or parsed (no MemTotal, an
// empty machine name).
[[nodiscard]] Result<Hardware> probe_hardware(
    const ProbeSources& sources, const std::vector<std::string>& extra_accelerators = {});
[[nodiscard]] Result<Hardware> probe_hardware(
    const std::vector<std::string>& extra_accelerators = {});

// A build's hardware target (catalog::HardwareTarget's JSON form: {"arch", "isa", "accelerator",
// "min_ram_mb"}).
struct BuildTarget {
    std::string arch;
    std::vector<std::string> isa;
    std::string accelerator = "none";
    std::int64_t min_ram_mb = 0;

    [[nodiscard]] static Result<BuildTarget> from_json(const Json& j);
    Json to_json() const;
};

// nullopt when `hw` can run a build for `target`; otherwise why not ("needs avx512f", "needs
// 8192 MiB of RAM, has 4096", ...), for the device's status report.
std::optional<std::string> mismatch(const Hardware& hw, const BuildTarget& target);

// Whether, of two targets that both fit, `a` is to be preferred to `b`: a build for an
// accelerator the device has over a CPU build, then the one requiring more ISA features (the
// more specific kernels), then the larger minimum RAM (the bigger model the device can hold).
bool prefer(const BuildTarget& a, const BuildTarget& b);

}  // namespace pylon::agent
