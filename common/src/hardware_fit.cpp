#include "pylon/common/hardware_fit.h"

#include <algorithm>

namespace pylon {
namespace {

bool contains(const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

std::optional<std::string> hardware_mismatch(const HardwareHas& has, const HardwareNeeds& needs) {
    if (needs.arch != has.arch) return "built for " + needs.arch + ", the device is " + has.arch;
    std::vector<std::string> missing;
    for (const auto& f : needs.isa) {
        if (!contains(has.isa, f) && !contains(missing, f)) missing.push_back(f);
    }
    if (!missing.empty()) {
        std::sort(missing.begin(), missing.end());
        std::string m = "needs ";
        for (std::size_t i = 0; i < missing.size(); ++i) m += (i ? ", " : "") + missing[i];
        return m;
    }
    if (needs.accelerator != "none" && !contains(has.accelerators, needs.accelerator)) {
        return "needs the accelerator " + needs.accelerator;
    }
    if (needs.min_ram_mb > has.ram_mb) {
        return "needs " + std::to_string(needs.min_ram_mb) + " MiB of RAM, the device has " +
               std::to_string(has.ram_mb);
    }
    return std::nullopt;
}

bool hardware_prefer(const HardwareNeeds& a, const HardwareNeeds& b) {
    const bool acc_a = a.accelerator != "none", acc_b = b.accelerator != "none";
    if (acc_a != acc_b) return acc_a;
    if (a.isa.size() != b.isa.size()) return a.isa.size() > b.isa.size();
    return a.min_ram_mb > b.min_ram_mb;
}

}  // namespace pylon
