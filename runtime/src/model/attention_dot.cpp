#include "model/attention_dot.h"

#include <cmath>

#include "pylon/runtime/fp16.h"

namespace pylon::runtime::detail {

float dot_f16_ggml_portable(const std::uint16_t* x, const std::uint16_t* y, std::size_t n) {
    const std::size_t np = n & ~std::size_t{63};
    double sumf = 0.0;
    if (np > 0) {
        float acc[4][16] = {};
        for (std::size_t i = 0; i < np; i += 64) {
            for (int r = 0; r < 4; ++r) {
                for (int l = 0; l < 16; ++l) {
                    const std::size_t k = i + static_cast<std::size_t>(16 * r + l);
                    acc[r][l] = std::fma(fp16_to_fp32(x[k]), fp16_to_fp32(y[k]), acc[r][l]);
                }
            }
        }
        for (int l = 0; l < 16; ++l) {
            acc[0][l] += acc[2][l];
            acc[1][l] += acc[3][l];
            acc[0][l] += acc[1][l];
        }
        float t8[8], t4[4];
        for (int l = 0; l < 8; ++l) t8[l] = acc[0][l + 8] + acc[0][l];
        for (int l = 0; l < 4; ++l) t4[l] = t8[l + 4] + t8[l];
        sumf = static_cast<double>((t4[0] + t4[2]) + (t4[1] + t4[3]));
    }
    for (std::size_t i = np; i < n; ++i) {
        sumf += static_cast<double>(fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]));
    }
    return static_cast<float>(sumf);
}

}  // namespace pylon::runtime::detail
