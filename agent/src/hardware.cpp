// The hardware probe (hardware.h): cpuid/XCR0 on x86, the auxiliary vector's hwcaps on aarch64,
// /proc/meminfo, the device tree; and matching a probe against build targets.
#include "pylon/agent/hardware.h"

#include "pylon/common/hardware_fit.h"

#include <sys/utsname.h>

#include <algorithm>
#include <charconv>
#include <fstream>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__aarch64__)
#include <sys/auxv.h>
#endif

namespace pylon::agent {
namespace {

Error invalid(std::string what) {
    return Error(Errc::invalid_argument, std::move(what));
}

std::string read_small(const char* path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    std::string out(64 * 1024, '\0');
    in.read(out.data(), static_cast<std::streamsize>(out.size()));
    out.resize(static_cast<std::size_t>(in.gcount()));
    return out;
}

std::string normalise_arch(std::string m) {
    if (m == "arm64") return "aarch64";
    if (m == "amd64") return "x86_64";
    if (m.rfind("armv7", 0) == 0) return "armv7";
    return m;
}

void sort_unique(std::vector<std::string>& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
}

bool bit(std::uint64_t v, unsigned b) {
    return ((v >> b) & 1u) != 0;
}

void x86_features(const ProbeSources& s, std::vector<std::string>& isa) {
    if (!s.cpuid) return;
    const auto l0 = s.cpuid(0, 0);
    const std::uint32_t max_leaf = l0[0];
    if (max_leaf < 1) return;
    const auto l1 = s.cpuid(1, 0);
    const std::uint32_t ecx1 = l1[2], edx1 = l1[3];
    if (bit(edx1, 25)) isa.emplace_back("sse");
    if (bit(edx1, 26)) isa.emplace_back("sse2");
    if (bit(ecx1, 0)) isa.emplace_back("sse3");
    if (bit(ecx1, 9)) isa.emplace_back("ssse3");
    if (bit(ecx1, 19)) isa.emplace_back("sse4_1");
    if (bit(ecx1, 20)) isa.emplace_back("sse4_2");
    // The AVX families need the OS to save their registers: YMM (XCR0 bits 1-2), and for
    // AVX-512 the opmask and ZMM state (bits 5-7); AMX the tile state (bits 17-18).
    const bool os_avx = bit(ecx1, 27) && (s.xcr0 & 0x6) == 0x6;
    const bool os_avx512 = os_avx && (s.xcr0 & 0xE0) == 0xE0;
    const bool os_amx = (s.xcr0 & 0x60000) == 0x60000;
    if (os_avx) {
        if (bit(ecx1, 28)) isa.emplace_back("avx");
        if (bit(ecx1, 12)) isa.emplace_back("fma");
        if (bit(ecx1, 29)) isa.emplace_back("f16c");
    }
    if (max_leaf < 7) return;
    const auto l7 = s.cpuid(7, 0);
    const std::uint32_t ebx7 = l7[1], ecx7 = l7[2], edx7 = l7[3];
    if (bit(ebx7, 8)) isa.emplace_back("bmi2");
    if (os_avx && bit(ebx7, 5)) isa.emplace_back("avx2");
    if (os_avx512) {
        if (bit(ebx7, 16)) isa.emplace_back("avx512f");
        if (bit(ebx7, 17)) isa.emplace_back("avx512dq");
        if (bit(ebx7, 28)) isa.emplace_back("avx512cd");
        if (bit(ebx7, 30)) isa.emplace_back("avx512bw");
        if (bit(ebx7, 31)) isa.emplace_back("avx512vl");
        if (bit(ecx7, 11)) isa.emplace_back("avx512vnni");
        if (bit(edx7, 23)) isa.emplace_back("avx512fp16");
    }
    if (os_amx) {
        if (bit(edx7, 24)) isa.emplace_back("amx_tile");
        if (bit(edx7, 25)) isa.emplace_back("amx_int8");
        if (bit(edx7, 22)) isa.emplace_back("amx_bf16");
    }
    if (l7[0] >= 1) {
        const auto l71 = s.cpuid(7, 1);
        if (os_avx && bit(l71[0], 4)) isa.emplace_back("avxvnni");
        if (os_avx512 && bit(l71[0], 5)) isa.emplace_back("avx512bf16");
    }
}

void arm64_features(const ProbeSources& s, std::vector<std::string>& isa) {
    // Linux's HWCAP_* / HWCAP2_* bits (arch/arm64/include/uapi/asm/hwcap.h).
    if (bit(s.hwcap, 1)) isa.emplace_back("neon");
    if (bit(s.hwcap, 10)) isa.emplace_back("fp16");
    if (bit(s.hwcap, 20)) isa.emplace_back("dotprod");
    if (bit(s.hwcap, 22)) isa.emplace_back("sve");
    if (bit(s.hwcap2, 1)) isa.emplace_back("sve2");
    if (bit(s.hwcap2, 13)) isa.emplace_back("i8mm");
    if (bit(s.hwcap2, 14)) isa.emplace_back("bf16");
}

// NVIDIA Jetson modules, by SoC: their GPUs' CUDA compute capability.
void jetson_accelerators(std::string_view compatible, std::vector<std::string>& out) {
    static constexpr std::pair<std::string_view, std::string_view> kSoc[] = {
        {"nvidia,tegra234", "cuda-sm87"},  // Orin
        {"nvidia,tegra194", "cuda-sm72"},  // Xavier
        {"nvidia,tegra186", "cuda-sm62"},  // TX2
        {"nvidia,tegra210", "cuda-sm53"},  // TX1, Nano
    };
    // The property is a list of NUL-terminated strings.
    std::size_t pos = 0;
    while (pos < compatible.size()) {
        std::size_t end = compatible.find('\0', pos);
        if (end == std::string_view::npos) end = compatible.size();
        const std::string_view entry = compatible.substr(pos, end - pos);
        for (const auto& [soc, acc] : kSoc) {
            if (entry == soc) out.emplace_back(acc);
        }
        pos = end + 1;
    }
}

Result<std::int64_t> mem_total_mb(std::string_view meminfo) {
    std::size_t pos = 0;
    while (pos < meminfo.size()) {
        std::size_t end = meminfo.find('\n', pos);
        if (end == std::string_view::npos) end = meminfo.size();
        std::string_view line = meminfo.substr(pos, end - pos);
        pos = end + 1;
        if (line.rfind("MemTotal:", 0) != 0) continue;
        line.remove_prefix(9);
        while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
        std::int64_t kb = 0;
        const auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), kb);
        if (ec != std::errc() || kb <= 0 ||
            std::string_view(p, line.data() + line.size()) != " kB") {
            return invalid("/proc/meminfo: MemTotal is not a number of kB");
        }
        return kb / 1024;
    }
    return invalid("/proc/meminfo has no MemTotal line");
}

std::string cpu_model(std::string_view cpuinfo) {
    for (const std::string_view key : {"model name", "Model", "Hardware"}) {
        std::size_t pos = 0;
        while (pos < cpuinfo.size()) {
            std::size_t end = cpuinfo.find('\n', pos);
            if (end == std::string_view::npos) end = cpuinfo.size();
            const std::string_view line = cpuinfo.substr(pos, end - pos);
            pos = end + 1;
            if (line.rfind(key, 0) != 0) continue;
            const std::size_t colon = line.find(':');
            if (colon == std::string_view::npos) continue;
            std::string_view v = line.substr(colon + 1);
            while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
            return std::string(v.substr(0, 256));
        }
    }
    return {};
}

bool valid_name(const std::string& s) {
    if (s.empty() || s.size() > 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    });
}

Result<std::vector<std::string>> name_list(const Json& j, const char* field) {
    const auto it = j.find(field);
    if (it == j.end()) return std::vector<std::string>{};
    if (!it->is_array() || it->size() > 64) {
        return invalid(std::string(field) + ": expected an array of at most 64 names");
    }
    std::vector<std::string> out;
    for (const auto& e : *it) {
        if (!e.is_string() || !valid_name(e.get<std::string>())) {
            return invalid(std::string(field) + ": \"" + e.dump().substr(0, 80) +
                           "\" is not a feature name");
        }
        out.push_back(e.get<std::string>());
    }
    sort_unique(out);
    return out;
}

Result<std::string> name_field(const Json& j, const char* field, bool required,
                               std::string fallback = {}) {
    const auto it = j.find(field);
    if (it == j.end()) {
        if (required) return invalid(std::string(field) + " is missing");
        return fallback;
    }
    if (!it->is_string() || !valid_name(it->get<std::string>())) {
        return invalid(std::string(field) + ": expected a name ([a-z0-9._-], 1 to 64 characters)");
    }
    return it->get<std::string>();
}

Result<std::int64_t> mb_field(const Json& j, const char* field) {
    const auto it = j.find(field);
    if (it == j.end()) return std::int64_t{0};
    if (!it->is_number_integer() || it->get<std::int64_t>() < 0 ||
        it->get<std::int64_t>() > (std::int64_t{1} << 40)) {
        return invalid(std::string(field) + ": expected a whole number of MiB");
    }
    return it->get<std::int64_t>();
}

}  // namespace

ProbeSources ProbeSources::from_system() {
    ProbeSources s;
    struct utsname u {};
    if (::uname(&u) == 0) s.machine = u.machine;
#if defined(__x86_64__) || defined(__i386__)
    s.cpuid = [](std::uint32_t leaf, std::uint32_t subleaf) {
        std::array<std::uint32_t, 4> r{};
        __cpuid_count(leaf, subleaf, r[0], r[1], r[2], r[3]);
        return r;
    };
    std::uint32_t a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid(1, &a, &b, &c, &d) != 0 && bit(c, 27)) {
        std::uint32_t lo = 0, hi = 0;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        s.xcr0 = (static_cast<std::uint64_t>(hi) << 32) | lo;
    }
#endif
#if defined(__aarch64__)
    s.hwcap = ::getauxval(AT_HWCAP);
    s.hwcap2 = ::getauxval(AT_HWCAP2);
#endif
    s.meminfo = read_small("/proc/meminfo");
    s.cpuinfo = read_small("/proc/cpuinfo");
    s.device_tree_compatible = read_small("/proc/device-tree/compatible");
    return s;
}

Result<Hardware> probe_hardware(const ProbeSources& s,
                                const std::vector<std::string>& extra_accelerators) {
    if (s.machine.empty()) return Error(Errc::io_error, "uname gave no machine name");
    Hardware hw;
    hw.arch = normalise_arch(s.machine);
    if (!valid_name(hw.arch)) return invalid("unexpected machine name \"" + s.machine + "\"");
    if (hw.arch == "x86_64" || hw.arch == "i686") x86_features(s, hw.isa);
    if (hw.arch == "aarch64") arm64_features(s, hw.isa);
    sort_unique(hw.isa);
    jetson_accelerators(s.device_tree_compatible, hw.accelerators);
    for (const auto& a : extra_accelerators) {
        if (!valid_name(a) || a == "none") {
            return invalid("accelerator \"" + a + "\" is not a name such as cuda-sm87");
        }
        hw.accelerators.push_back(a);
    }
    sort_unique(hw.accelerators);
    auto ram = mem_total_mb(s.meminfo);
    if (!ram) return std::move(ram).error();
    hw.ram_mb = *ram;
    hw.cpu_model = cpu_model(s.cpuinfo);
    return hw;
}

Result<Hardware> probe_hardware(const std::vector<std::string>& extra_accelerators) {
    return probe_hardware(ProbeSources::from_system(), extra_accelerators);
}

Json Hardware::to_json() const {
    return {{"arch", arch},
            {"isa", isa},
            {"accelerators", accelerators},
            {"ram_mb", ram_mb},
            {"cpu_model", cpu_model}};
}

Result<Hardware> Hardware::from_json(const Json& j) {
    if (!j.is_object()) return invalid("hardware: expected an object");
    Hardware hw;
    PYLON_TRY_ASSIGN(hw.arch, name_field(j, "arch", true));
    PYLON_TRY_ASSIGN(hw.isa, name_list(j, "isa"));
    PYLON_TRY_ASSIGN(hw.accelerators, name_list(j, "accelerators"));
    PYLON_TRY_ASSIGN(hw.ram_mb, mb_field(j, "ram_mb"));
    if (const auto it = j.find("cpu_model"); it != j.end()) {
        if (!it->is_string() || it->get<std::string>().size() > 256) {
            return invalid("cpu_model: expected a string of at most 256 bytes");
        }
        hw.cpu_model = it->get<std::string>();
    }
    return hw;
}

Result<BuildTarget> BuildTarget::from_json(const Json& j) {
    if (!j.is_object()) return invalid("target: expected an object");
    BuildTarget t;
    PYLON_TRY_ASSIGN(t.arch, name_field(j, "arch", true));
    PYLON_TRY_ASSIGN(t.isa, name_list(j, "isa"));
    PYLON_TRY_ASSIGN(t.accelerator, name_field(j, "accelerator", false, "none"));
    PYLON_TRY_ASSIGN(t.min_ram_mb, mb_field(j, "min_ram_mb"));
    return t;
}

Json BuildTarget::to_json() const {
    return {{"arch", arch}, {"isa", isa}, {"accelerator", accelerator}, {"min_ram_mb", min_ram_mb}};
}

std::optional<std::string> mismatch(const Hardware& hw, const BuildTarget& t) {
    return hardware_mismatch(HardwareHas{hw.arch, hw.isa, hw.accelerators, hw.ram_mb},
                             HardwareNeeds{t.arch, t.isa, t.accelerator, t.min_ram_mb});
}

bool prefer(const BuildTarget& a, const BuildTarget& b) {
    return hardware_prefer(HardwareNeeds{a.arch, a.isa, a.accelerator, a.min_ram_mb},
                           HardwareNeeds{b.arch, b.isa, b.accelerator, b.min_ram_mb});
}

}  // namespace pylon::agent
