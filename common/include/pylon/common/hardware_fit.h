// Whether a device can run a build, in the shared vocabulary of hardware targets (DESIGN.md,
// "Artifacts"): the registry's director picks a device's build with it, and the agent checks the
// build it is told to install with it, so both sides always agree.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pylon {

// What a build needs.
struct HardwareNeeds {
    std::string arch;
    std::vector<std::string> isa;  // any order
    std::string accelerator = "none";
    std::int64_t min_ram_mb = 0;
};

// What a device has.
struct HardwareHas {
    std::string arch;
    std::vector<std::string> isa;           // any order
    std::vector<std::string> accelerators;  // any order
    std::int64_t ram_mb = 0;
};

// nullopt when the device can run the build: same arch, every required ISA feature present,
// accelerator "none" or one the device has, enough RAM. Otherwise why not, in words for a
// status report ("needs avx512f", "built for aarch64, the device is x86_64", ...).
std::optional<std::string> hardware_mismatch(const HardwareHas& has, const HardwareNeeds& needs);

// Of two builds that both fit, whether `a` is preferred to `b`: a build for an accelerator over a
// CPU build, then the one requiring more ISA features (more specific kernels), then the larger
// minimum RAM (the bigger model the device can hold). Neither preferred: equal rank.
bool hardware_prefer(const HardwareNeeds& a, const HardwareNeeds& b);

}  // namespace pylon
