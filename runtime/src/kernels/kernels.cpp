// Run-time choice of the kernel table: the CPU's features, optionally lowered by PYLON_ISA.
#include "pylon/runtime/kernels.h"

#include <cstdlib>
#include <string_view>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "kernels/kernel_tables.h"

namespace pylon::runtime::kernels {
namespace {

// F16C from CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports does not know "f16c".
bool cpu_has_f16c() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
    return (ecx & (1u << 29)) != 0;
#else
    return false;
#endif
}

constexpr std::size_t round_up_64(std::size_t n) noexcept {
    return (n + 63) & ~std::size_t{63};
}

Isa detect_best() noexcept {
    Isa best = Isa::portable;
    for (Isa isa : {Isa::avx2, Isa::avx512}) {
        if (isa_supported(isa)) best = isa;
    }
    // PYLON_ISA may only lower the choice: asking for more than the CPU has is ignored, as is
    // an unknown name.
    if (const char* env = std::getenv("PYLON_ISA")) {
        for (Isa isa : {Isa::portable, Isa::avx2, Isa::avx512}) {
            if (isa_name(isa) == env && static_cast<int>(isa) <= static_cast<int>(best) &&
                isa_supported(isa)) {
                return isa;
            }
        }
    }
    return best;
}

}  // namespace

std::string_view isa_name(Isa isa) noexcept {
    switch (isa) {
        case Isa::portable:
            return "portable";
        case Isa::avx2:
            return "avx2";
        case Isa::avx512:
            return "avx512";
    }
    return "unknown";
}

bool isa_supported(Isa isa) noexcept {
    switch (isa) {
        case Isa::portable:
            return true;
#if defined(PYLON_X86_KERNELS)
        // libgcc's checks include the OS enabling the YMM/ZMM state (XGETBV).
        case Isa::avx2:
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                   cpu_has_f16c();
        case Isa::avx512:
            return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                   __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                   __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma") &&
                   cpu_has_f16c();
#else
        case Isa::avx2:
        case Isa::avx512:
            return false;
#endif
    }
    return false;
}

Isa best_isa() noexcept {
    static const Isa best = detect_best();
    return best;
}

std::size_t act_row_bytes(GgmlType w, std::size_t k) noexcept {
    switch (w) {
        case GgmlType::F32:
            return round_up_64(k * sizeof(float));
        case GgmlType::F16:
            return round_up_64(k * sizeof(std::uint16_t));
        case GgmlType::Q8_0:
        case GgmlType::Q4_0: {
            const std::size_t blocks = k / kQK8_0;
            return round_up_64(blocks * sizeof(BlockQ8_0)) +
                   round_up_64(blocks * 8 * sizeof(std::int32_t));
        }
        default:
            return 0;
    }
}

const Kernels& kernels(Isa isa) noexcept {
    // An unsupported request gets the portable table rather than an illegal instruction.
    if (!isa_supported(isa)) return detail::portable_kernels();
    switch (isa) {
#if defined(PYLON_X86_KERNELS)
        case Isa::avx2:
            return detail::avx2_kernels();
        case Isa::avx512:
            return detail::avx512_kernels();
#endif
        default:
            return detail::portable_kernels();
    }
}

}  // namespace pylon::runtime::kernels
