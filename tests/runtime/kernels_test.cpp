// The kernel tables: the activation row format, the portable products against a double-precision
// reference, and every SIMD table this CPU supports against the portable one.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "pylon/runtime/fp16.h"
#include "pylon/runtime/kernels.h"
#include "pylon/runtime/quant.h"

using namespace pylon::runtime;
using kernels::act_row_bytes;
using kernels::best_isa;
using kernels::Isa;
using kernels::isa_name;
using kernels::isa_supported;

namespace {

const kernels::Kernels& table(Isa isa) {
    return kernels::kernels(isa);
}

const GgmlType kTypes[] = {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0};

// Floats with block-wise varying magnitude (zero blocks, tiny, large) and occasional spikes,
// the shapes real activations and weights have.
std::vector<float> random_values(std::mt19937& rng, std::size_t count) {
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::uniform_int_distribution<int> pick(0, 9);
    const float scales[] = {0.0f, 1e-4f, 0.01f, 1.0f, 1.0f, 1.0f, 3.0f, 30.0f, 500.0f, 1.0f};
    std::vector<float> x(count);
    float scale = 1.0f;
    for (std::size_t i = 0; i < count; ++i) {
        if (i % 32 == 0) scale = scales[pick(rng)];
        x[i] = u(rng) * scale;
        if (pick(rng) == 0 && pick(rng) == 0) x[i] = u(rng) * 2000.0f;
    }
    return x;
}

struct Weights {
    std::vector<unsigned char> bytes;
    std::size_t stride = 0;
    std::vector<float> values;  // dequantized, rows back to back
};

Weights make_weights(std::mt19937& rng, GgmlType type, std::size_t rows, std::size_t k) {
    Weights w;
    w.stride = *row_bytes(type, k) + 6;  // odd stride: rows need not be aligned
    w.bytes.assign(rows * w.stride, 0);
    w.values.resize(rows * k);
    for (std::size_t r = 0; r < rows; ++r) {
        const auto x = random_values(rng, k);
        REQUIRE(quantize_row(type, x.data(), w.bytes.data() + r * w.stride, k));
        dequantize_row(type, w.bytes.data() + r * w.stride, w.values.data() + r * k, k);
    }
    return w;
}

// Activation values as the prepared row represents them.
std::vector<float> act_values(GgmlType w, const void* row, std::size_t k) {
    std::vector<float> v(k);
    const GgmlType as = w == GgmlType::Q4_0 ? GgmlType::Q8_0 : w;
    dequantize_row(as, row, v.data(), k);
    return v;
}

bool close(float got, float want, double scale) {
    return std::fabs(static_cast<double>(got) - want) <= 2e-5 * scale + 1e-30;
}

}  // namespace

TEST_CASE("kernels: isa names, support and the chosen table", "[kernels]") {
    REQUIRE(isa_name(Isa::portable) == "portable");
    REQUIRE(isa_name(Isa::avx2) == "avx2");
    REQUIRE(isa_name(Isa::avx512) == "avx512");
    REQUIRE(isa_supported(Isa::portable));
    REQUIRE(isa_supported(best_isa()));
    REQUIRE(table(Isa::portable).isa == Isa::portable);
    if (isa_supported(Isa::avx512)) REQUIRE(table(Isa::avx512).isa == Isa::avx512);
    REQUIRE(&kernels::best_kernels() == &table(best_isa()));
}

TEST_CASE("kernels: activation row sizes", "[kernels]") {
    REQUIRE(act_row_bytes(GgmlType::F32, 172) == 704);
    REQUIRE(act_row_bytes(GgmlType::F16, 172) == 384);
    REQUIRE(act_row_bytes(GgmlType::Q8_0, 32) == 128);
    REQUIRE(act_row_bytes(GgmlType::Q4_0, 96) == 128 + 128);  // 102 bytes, 24 sums
}

TEST_CASE("kernels: Q8_0 activations round ties to even and carry group sums", "[kernels]") {
    std::vector<float> x(32, 0.0f);
    x[0] = 127.0f;  // id = 1 exactly
    x[1] = 2.5f;
    x[2] = 3.5f;
    x[3] = -2.5f;
    x[4] = 0.5f;
    x[5] = -1.5f;
    x[9] = -127.0f;
    std::vector<unsigned char> row(act_row_bytes(GgmlType::Q8_0, 32), 0xee);
    table(Isa::portable).prepare_act(GgmlType::Q8_0, x.data(), 32, row.data());
    BlockQ8_0 b;
    std::memcpy(&b, row.data(), sizeof b);
    REQUIRE(b.d == 0x3c00);
    const std::int8_t want[6] = {127, 2, 4, -2, 0, -2};
    for (int j = 0; j < 6; ++j) REQUIRE(b.qs[j] == want[j]);
    REQUIRE(b.qs[9] == -127);
    std::int32_t sums[8];
    std::memcpy(sums, row.data() + 64, sizeof sums);
    REQUIRE(sums[0] == 127 + 2 + 4 - 2);
    REQUIRE(sums[1] == 0 - 2 + 0 + 0);
    REQUIRE(sums[2] == -127);
    for (int g = 3; g < 8; ++g) REQUIRE(sums[g] == 0);
    for (std::size_t i = sizeof(BlockQ8_0); i < 64; ++i) REQUIRE(row[i] == 0);  // padding
}

TEST_CASE("kernels: portable products match a double-precision reference", "[kernels]") {
    std::mt19937 rng(7);
    const auto& kt = table(Isa::portable);
    const std::size_t rows = 9, n = 3;
    for (GgmlType type : kTypes) {
        for (std::size_t k : {32u, 256u, 2080u}) {
            CAPTURE(type_name(type), k);
            const Weights w = make_weights(rng, type, rows, k);
            const std::size_t as = act_row_bytes(type, k);
            std::vector<unsigned char> act(n * as);
            std::vector<std::vector<float>> av;
            for (std::size_t t = 0; t < n; ++t) {
                const auto x = random_values(rng, k);
                kt.prepare_act(type, x.data(), k, act.data() + t * as);
                av.push_back(act_values(type, act.data() + t * as, k));
            }
            std::vector<float> y(n * rows, -1.0f);
            kt.gemm(type, w.bytes.data(), w.stride, k, rows, 0, rows, act.data(), n, y.data(),
                    rows);
            for (std::size_t t = 0; t < n; ++t) {
                for (std::size_t r = 0; r < rows; ++r) {
                    double ref = 0, mag = 0;
                    for (std::size_t i = 0; i < k; ++i) {
                        ref += static_cast<double>(w.values[r * k + i]) * av[t][i];
                        mag += std::fabs(static_cast<double>(w.values[r * k + i]) * av[t][i]);
                    }
                    REQUIRE(close(y[t * rows + r], static_cast<float>(ref), mag));
                }
            }
        }
    }
}

TEST_CASE("kernels: every supported table gives the portable products bit for bit", "[kernels]") {
    const auto& port = table(Isa::portable);
    std::mt19937 rng(2024);
    const std::size_t n_max = 33;
    for (Isa isa : {Isa::avx2, Isa::avx512}) {
        if (!isa_supported(isa)) {
            WARN("skipping " << isa_name(isa) << ": not supported by this CPU");
            continue;
        }
        const auto& kt = table(isa);
        // 37 rows: F32/F16 always in ggml_vec_dot's order, Q4_0 in group lanes; 40 rows:
        // tinyBLAS's order for batches with k % 16 == 0, Q4_0 in the repacked block order.
        for (std::size_t rows : {37u, 40u}) {
            const std::size_t ldy = rows + 5;
            for (GgmlType type : kTypes) {
                for (std::size_t k : {32u, 64u, 96u, 172u, 256u, 768u, 2048u, 4128u}) {
                    if (k % 32 != 0 && (type == GgmlType::Q8_0 || type == GgmlType::Q4_0)) continue;
                    CAPTURE(isa_name(isa), type_name(type), k, rows);
                    const Weights w = make_weights(rng, type, rows, k);
                    const std::size_t as = act_row_bytes(type, k);
                    std::vector<unsigned char> act(n_max * as), mine(n_max * as, 0xcd);
                    std::vector<std::vector<float>> av;
                    for (std::size_t t = 0; t < n_max; ++t) {
                        const auto x = random_values(rng, k);
                        port.prepare_act(type, x.data(), k, act.data() + t * as);
                        kt.prepare_act(type, x.data(), k, mine.data() + t * as);
                        av.push_back(act_values(type, act.data() + t * as, k));
                    }
                    REQUIRE(act == mine);
                    // Scale of each product's terms, for a tolerance that is relative to the
                    // summands (results near zero after cancellation stay checkable).
                    std::vector<double> mag(n_max * rows), ref(n_max * rows);
                    for (std::size_t t = 0; t < n_max; ++t) {
                        for (std::size_t r = 0; r < rows; ++r) {
                            double m = 0, e = 0;
                            for (std::size_t i = 0; i < k; ++i) {
                                const double p =
                                    static_cast<double>(w.values[r * k + i]) * av[t][i];
                                m += std::fabs(p);
                                e += p;
                            }
                            mag[t * rows + r] = m;
                            ref[t * rows + r] = e;
                        }
                    }
                    const std::pair<std::size_t, std::size_t> ranges[] = {
                        {0, rows}, {1, rows - 2}, {3, 4}, {5, 12}, {13, 30}};
                    for (std::size_t n : {1u, 2u, 3u, 4u, 5u, 7u, 8u, 16u, 33u}) {
                        for (auto [r0, r1] : ranges) {
                            CAPTURE(n, r0, r1);
                            std::vector<float> want(n * ldy, 1234.5f), got(n * ldy, 1234.5f);
                            port.gemm(type, w.bytes.data(), w.stride, k, rows, r0, r1, act.data(),
                                      n, want.data(), ldy);
                            kt.gemm(type, w.bytes.data(), w.stride, k, rows, r0, r1, act.data(), n,
                                    got.data(), ldy);
                            for (std::size_t t = 0; t < n; ++t) {
                                for (std::size_t r = 0; r < ldy; ++r) {
                                    const std::size_t i = t * ldy + r;
                                    if (r < r0 || r >= r1) {
                                        REQUIRE(got[i] == 1234.5f);  // outside the range: untouched
                                        continue;
                                    }
                                    // Every path sums in llama.cpp's order (kernels.h): same bits.
                                    CAPTURE(t, r, got[i], want[i]);
                                    REQUIRE(std::memcmp(&got[i], &want[i], 4) == 0);
                                    REQUIRE(close(got[i], static_cast<float>(ref[t * rows + r]),
                                                  mag[t * rows + r]));
                                }
                            }
                            // gemm_lone: every token gets the bits it gets alone (n = 1).
                            std::vector<float> alone(n * ldy, 1234.5f), lone(n * ldy, 1234.5f),
                                port_lone(n * ldy, 1234.5f);
                            for (std::size_t t = 0; t < n; ++t) {
                                port.gemm(type, w.bytes.data(), w.stride, k, rows, r0, r1,
                                          act.data() + t * as, 1, alone.data() + t * ldy, ldy);
                            }
                            kt.gemm_lone(type, w.bytes.data(), w.stride, k, rows, r0, r1,
                                         act.data(), n, lone.data(), ldy);
                            port.gemm_lone(type, w.bytes.data(), w.stride, k, rows, r0, r1,
                                           act.data(), n, port_lone.data(), ldy);
                            REQUIRE(std::memcmp(lone.data(), alone.data(), 4 * alone.size()) == 0);
                            REQUIRE(std::memcmp(port_lone.data(), alone.data(), 4 * alone.size()) ==
                                    0);
                        }
                    }
                }
            }
        }
    }
}

TEST_CASE("kernels: activation bytes agree on extreme inputs", "[kernels]") {
    // Blocks of huge, subnormal and tiny values (127/amax overflows below ~4e-37, where the
    // SIMD conversions saturate), zeros, signed zeros and exact .5 ties.
    std::vector<float> x;
    const float fills[] = {1e30f, -3e38f, 1e-40f, -1e-38f, 0.0f, -0.0f, 65519.0f, 70000.0f};
    for (float f : fills) {
        for (int j = 0; j < 32; ++j)
            x.push_back(j % 3 == 0 ? f : f * 0.5f * static_cast<float>(j % 5));
    }
    for (int j = 0; j < 32; ++j) x.push_back(static_cast<float>(j) - 15.5f);  // ties at id = 8.19
    x[300] = 127.0f;
    const std::size_t k = x.size();
    const auto& port = table(Isa::portable);
    for (Isa isa : {Isa::avx2, Isa::avx512}) {
        if (!isa_supported(isa)) continue;
        for (GgmlType type : kTypes) {
            CAPTURE(isa_name(isa), type_name(type));
            const std::size_t as = act_row_bytes(type, k);
            std::vector<unsigned char> want(as, 0xab), got(as, 0xcd);
            port.prepare_act(type, x.data(), k, want.data());
            table(isa).prepare_act(type, x.data(), k, got.data());
            REQUIRE(want == got);
        }
    }
}

TEST_CASE("kernels: half conversions agree with the portable ones", "[kernels]") {
    const auto& port = table(Isa::portable);
    std::mt19937 rng(99);
    for (Isa isa : {Isa::avx2, Isa::avx512}) {
        if (!isa_supported(isa)) {
            WARN("skipping " << isa_name(isa) << ": not supported by this CPU");
            continue;
        }
        const auto& kt = table(isa);
        CAPTURE(isa_name(isa));
        // Every half converts exactly (NaNs only need to stay NaN).
        std::vector<std::uint16_t> all(65536);
        for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint16_t>(i);
        std::vector<float> fa(all.size()), fb(all.size());
        port.f16_to_f32(all.data(), fa.data(), all.size());
        kt.f16_to_f32(all.data(), fb.data(), all.size());
        for (std::size_t i = 0; i < all.size(); ++i) {
            if (std::isnan(fa[i])) {
                REQUIRE(std::isnan(fb[i]));
            } else {
                REQUIRE(std::memcmp(&fa[i], &fb[i], 4) == 0);
            }
        }
        for (std::size_t n : {1u, 7u, 8u, 15u, 16u, 31u, 64u, 100u, 128u, 1000u, 4099u}) {
            CAPTURE(n);
            auto x = random_values(rng, n);
            auto yv = random_values(rng, n);
            // Rounding ties, overflow to infinity, subnormals and zero signs.
            const float special[] = {65520.0f, -65519.0f, 1.0f + 1.0f / 2048, 1e-7f, -6e-8f, -0.0f,
                                     3e-5f,    65504.0f};
            for (std::size_t i = 0; i < n && i < 8; ++i) x[(i * 37) % n] = special[i];
            std::vector<std::uint16_t> ha(n), hb(n);
            port.f32_to_f16(x.data(), ha.data(), n);
            kt.f32_to_f16(x.data(), hb.data(), n);
            REQUIRE(ha == hb);
        }
    }
}

TEST_CASE("kernels: packed weights give the portable products bit for bit, for every batch",
          "[kernels]") {
    const auto& port = table(Isa::portable);
    std::mt19937 rng(77);
    bool ran = false;
    for (Isa isa : {Isa::avx2, Isa::avx512}) {
        if (!isa_supported(isa) || table(isa).packed_bytes == nullptr) continue;
        const auto& kt = table(isa);
        for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0}) {
            REQUIRE(kt.packed_bytes(GgmlType::F32, 16, 64) == 0);  // only the quantized types
            for (std::size_t k : {32u, 96u, 256u, 768u}) {
                // 136 and 261 rows: decode reads several panel runs side by side (4 or 8), with
                // panels left over, and partial first and last panels in the ranges below.
                for (std::size_t rows : {1u, 15u, 16u, 17u, 24u, 37u, 40u, 136u, 261u}) {
                    CAPTURE(isa_name(isa), type_name(type), k, rows);
                    ran = true;
                    const Weights w = make_weights(rng, type, rows, k);
                    const std::size_t pb = kt.packed_bytes(type, rows, k);
                    REQUIRE(pb > 0);
                    REQUIRE(pb % 64 == 0);
                    std::vector<unsigned char> storage(pb + 64, 0xee);
                    auto* packed = reinterpret_cast<unsigned char*>(
                        (reinterpret_cast<std::uintptr_t>(storage.data()) + 63) &
                        ~std::uintptr_t{63});
                    kt.pack(type, w.bytes.data(), w.stride, rows, k, packed);
                    const std::size_t n_max = 19, ldy = rows + 3;
                    const std::size_t as = act_row_bytes(type, k);
                    std::vector<unsigned char> act(n_max * as);
                    for (std::size_t t = 0; t < n_max; ++t) {
                        const auto x = random_values(rng, k);
                        port.prepare_act(type, x.data(), k, act.data() + t * as);
                    }
                    // One token at a time: the reference bits for every batch below.
                    std::vector<float> single(n_max * ldy, 0.0f);
                    for (std::size_t t = 0; t < n_max; ++t) {
                        REQUIRE(kt.gemm_packed(type, packed, k, rows, 0, rows, act.data() + t * as,
                                               1, single.data() + t * ldy, ldy));
                    }
                    std::vector<float> want(n_max * ldy, 0.0f);
                    port.gemm(type, w.bytes.data(), w.stride, k, rows, 0, rows, act.data(), n_max,
                              want.data(), ldy);
                    for (std::size_t t = 0; t < n_max; ++t) {
                        for (std::size_t r = 0; r < rows; ++r) {
                            CAPTURE(t, r);
                            REQUIRE(std::memcmp(&single[t * ldy + r], &want[t * ldy + r], 4) == 0);
                        }
                    }
                    const std::pair<std::size_t, std::size_t> ranges[] = {
                        {0, rows}, {rows / 2, rows}, {rows / 3, rows - rows / 3}, {rows - 1, rows}};
                    for (std::size_t n : {1u, 2u, 8u, 9u, 19u}) {
                        for (auto [r0, r1] : ranges) {
                            if (r0 >= r1) continue;
                            CAPTURE(n, r0, r1);
                            std::vector<float> got(n * ldy, 1234.5f);
                            REQUIRE(kt.gemm_packed(type, packed, k, rows, r0, r1, act.data(), n,
                                                   got.data(), ldy));
                            for (std::size_t t = 0; t < n; ++t) {
                                for (std::size_t r = 0; r < ldy; ++r) {
                                    const float g = got[t * ldy + r];
                                    if (r < r0 || r >= r1) {
                                        REQUIRE(g == 1234.5f);  // outside the range: untouched
                                    } else {
                                        REQUIRE(std::memcmp(&g, &single[t * ldy + r], 4) == 0);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    if (!ran) WARN("no kernel path with packed weights on this CPU");
}
