// The hardware probe against fake sources (cpuid leaves, XCR0, hwcaps, /proc files, the device
// tree) and against this machine, and matching a probe against build targets.
#include <catch2/catch.hpp>

#include <map>

#include "pylon/agent/hardware.h"

using namespace pylon::agent;

namespace {

constexpr const char* kMeminfo = "MemTotal:       24731460 kB\nMemFree:  100 kB\n";

// A fake cpuid: leaf -> {eax, ebx, ecx, edx} (subleaf 1 of leaf 7 under key 0x70001).
ProbeSources x86(std::map<std::uint32_t, std::array<std::uint32_t, 4>> leaves, std::uint64_t xcr0) {
    ProbeSources s;
    s.machine = "x86_64";
    s.cpuid = [leaves](std::uint32_t leaf, std::uint32_t sub) {
        const std::uint32_t key = leaf == 7 && sub == 1 ? 0x70001 : leaf;
        const auto it = leaves.find(key);
        return it == leaves.end() ? std::array<std::uint32_t, 4>{} : it->second;
    };
    s.xcr0 = xcr0;
    s.meminfo = kMeminfo;
    s.cpuinfo = "processor\t: 0\nmodel name\t: Test CPU @ 3.0GHz\n";
    return s;
}

constexpr std::uint32_t b(unsigned n) {
    return 1u << n;
}

// Leaf 1 ECX: SSE4.2, FMA, OSXSAVE, AVX, F16C; leaf 7 EBX: BMI2, AVX2, AVX-512 F/DQ/CD/BW/VL;
// ECX: VNNI; leaf 7.1 EAX: AVX-VNNI, AVX512_BF16.
std::map<std::uint32_t, std::array<std::uint32_t, 4>> avx512_leaves() {
    return {{0, {7, 0, 0, 0}},
            {1, {0, 0, b(0) | b(9) | b(19) | b(20) | b(12) | b(27) | b(28) | b(29), b(25) | b(26)}},
            {7, {1, b(8) | b(5) | b(16) | b(17) | b(28) | b(30) | b(31), b(11), 0}},
            {0x70001, {b(4) | b(5), 0, 0, 0}}};
}

}  // namespace

TEST_CASE("x86 features come from cpuid, and the AVX families only where the OS saves them",
          "[agent][hardware]") {
    auto hw = probe_hardware(x86(avx512_leaves(), 0xE7));
    REQUIRE(hw);
    CHECK(hw->arch == "x86_64");
    CHECK(hw->isa == std::vector<std::string>{"avx", "avx2", "avx512bf16", "avx512bw", "avx512cd",
                                              "avx512dq", "avx512f", "avx512vl", "avx512vnni",
                                              "avxvnni", "bmi2", "f16c", "fma", "sse", "sse2",
                                              "sse3", "sse4_1", "sse4_2", "ssse3"});
    CHECK(hw->ram_mb == 24731460 / 1024);
    CHECK(hw->cpu_model == "Test CPU @ 3.0GHz");
    CHECK(hw->accelerators.empty());

    // An OS that saves YMM but not ZMM state: AVX2 yes, AVX-512 no.
    hw = probe_hardware(x86(avx512_leaves(), 0x7));
    REQUIRE(hw);
    CHECK(std::count(hw->isa.begin(), hw->isa.end(), "avx2") == 1);
    CHECK(std::none_of(hw->isa.begin(), hw->isa.end(),
                       [](const std::string& f) { return f.rfind("avx512", 0) == 0; }));
    // No OS support for AVX at all (XCR0 without YMM): the SSE family and BMI2 only.
    hw = probe_hardware(x86(avx512_leaves(), 0x3));
    REQUIRE(hw);
    CHECK(hw->isa ==
          std::vector<std::string>{"bmi2", "sse", "sse2", "sse3", "sse4_1", "sse4_2", "ssse3"});
}

TEST_CASE("aarch64 features come from hwcaps, Jetson GPUs from the device tree",
          "[agent][hardware]") {
    ProbeSources s;
    s.machine = "arm64";
    s.hwcap = (1u << 1) | (1u << 10) | (1u << 20);  // ASIMD, ASIMDHP, ASIMDDP
    s.hwcap2 = 1u << 13;                            // I8MM
    s.meminfo = "MemTotal: 8000000 kB\n";
    s.device_tree_compatible = std::string("nvidia,p3768-0000+p3767-0005\0nvidia,tegra234\0", 46);
    auto hw = probe_hardware(s, {"npu-rk3588"});
    REQUIRE(hw);
    CHECK(hw->arch == "aarch64");
    CHECK(hw->isa == std::vector<std::string>{"dotprod", "fp16", "i8mm", "neon"});
    CHECK(hw->accelerators == std::vector<std::string>{"cuda-sm87", "npu-rk3588"});
    CHECK(hw->ram_mb == 8000000 / 1024);
}

TEST_CASE("the probe refuses sources it cannot read, with the reason", "[agent][hardware]") {
    ProbeSources s = x86(avx512_leaves(), 0xE7);
    s.meminfo = "MemFree: 1 kB\n";
    auto hw = probe_hardware(s);
    REQUIRE_FALSE(hw);
    CHECK_THAT(hw.error().message(), Catch::Contains("MemTotal"));
    s.meminfo = "MemTotal: lots kB\n";
    REQUIRE_FALSE(probe_hardware(s));
    s.meminfo = kMeminfo;
    s.machine = "";
    REQUIRE_FALSE(probe_hardware(s));
    s.machine = "x86_64";
    hw = probe_hardware(s, {"Not A Name"});
    REQUIRE_FALSE(hw);
    CHECK_THAT(hw.error().message(), Catch::Contains("Not A Name"));
}

TEST_CASE("this machine's probe agrees with the compiler's view of its CPU", "[agent][hardware]") {
    auto hw = probe_hardware();
    REQUIRE(hw);
    CHECK(hw->ram_mb > 0);
#if defined(__x86_64__)
    CHECK(hw->arch == "x86_64");
    auto has = [&](const char* f) {
        return std::binary_search(hw->isa.begin(), hw->isa.end(), std::string(f));
    };
    CHECK(has("avx2") == (__builtin_cpu_supports("avx2") != 0));
    CHECK(has("avx512f") == (__builtin_cpu_supports("avx512f") != 0));
    CHECK(has("fma") == (__builtin_cpu_supports("fma") != 0));
#endif
    // JSON round trip.
    auto back = Hardware::from_json(hw->to_json());
    REQUIRE(back);
    CHECK(*back == *hw);
}

TEST_CASE("a build target fits when arch, ISA, accelerator and RAM do; the most specific wins",
          "[agent][hardware]") {
    Hardware hw;
    hw.arch = "x86_64";
    hw.isa = {"avx", "avx2", "f16c", "fma"};
    hw.ram_mb = 4096;
    auto target = [](const char* json) {
        return BuildTarget::from_json(Json::parse(json)).value();
    };
    const BuildTarget generic = target(R"({"arch":"x86_64","isa":[],"min_ram_mb":512})");
    const BuildTarget avx2 = target(R"({"arch":"x86_64","isa":["fma","avx2"],"min_ram_mb":512})");
    const BuildTarget avx512 = target(R"({"arch":"x86_64","isa":["avx512f"]})");
    const BuildTarget arm = target(R"({"arch":"aarch64","isa":["neon"]})");
    const BuildTarget big = target(R"({"arch":"x86_64","isa":[],"min_ram_mb":8192})");
    const BuildTarget cuda = target(R"({"arch":"x86_64","accelerator":"cuda-sm87"})");
    CHECK_FALSE(mismatch(hw, generic));
    CHECK_FALSE(mismatch(hw, avx2));
    CHECK(mismatch(hw, avx512) == "needs avx512f");
    CHECK(mismatch(hw, arm) == "built for aarch64, the device is x86_64");
    CHECK(mismatch(hw, big) == "needs 8192 MiB of RAM, the device has 4096");
    CHECK(mismatch(hw, cuda) == "needs the accelerator cuda-sm87");
    hw.accelerators = {"cuda-sm87"};
    CHECK_FALSE(mismatch(hw, cuda));
    CHECK(prefer(avx2, generic));
    CHECK_FALSE(prefer(generic, avx2));
    CHECK(prefer(cuda, avx2));
    CHECK(prefer(big, generic));

    // Malformed targets are refused with the field named.
    auto bad = BuildTarget::from_json(Json::parse(R"({"isa":["avx2"]})"));
    REQUIRE_FALSE(bad);
    CHECK_THAT(bad.error().message(), Catch::Contains("arch"));
    bad = BuildTarget::from_json(Json::parse(R"({"arch":"x86_64","isa":["AVX 2"]})"));
    REQUIRE_FALSE(bad);
    CHECK_THAT(bad.error().message(), Catch::Contains("isa"));
    bad = BuildTarget::from_json(Json::parse(R"({"arch":"x86_64","min_ram_mb":-1})"));
    REQUIRE_FALSE(bad);
    CHECK_THAT(bad.error().message(), Catch::Contains("min_ram_mb"));
}
