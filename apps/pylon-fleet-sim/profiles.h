// pylon-fleet-sim's hardware profiles (probes in the agent's vocabulary) and the deterministic
// hashes that spread devices over profiles and failures from --seed.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace pylon::fleet_sim {

// Profile name → the hardware JSON a device of that profile enrols and reports with.
const std::map<std::string, nlohmann::json>& profiles();
// splitmix64's finaliser: a well-mixed 64-bit value from a counter or a seed.
std::uint64_t mix(std::uint64_t z);
// FNV-1a of a string.
std::uint64_t hash_text(std::string_view s);

}  // namespace pylon::fleet_sim
