// The attention kernels (runtime/src/model/attention.h): every SIMD path gives the portable
// path's bits for every head size and KV length shape (tinyBLAS and ggml_vec_dot_f16 orders,
// 8-wide double tails and their remainders), and the portable path is right to half precision.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "model/attention.h"
#include "pylon/runtime/fp16.h"
#include "pylon/runtime/kernels.h"

using namespace pylon::runtime;

namespace {

struct Case {
    std::size_t hd, n_kv, group_stride;
    std::vector<float> q;
    std::vector<std::uint16_t> k, v;
    std::size_t v_stride;
};

Case make_case(std::mt19937& rng, std::size_t hd, std::size_t n_kv, float q_scale) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    Case c;
    c.hd = hd;
    c.n_kv = n_kv;
    c.group_stride = hd * 3;  // keys of other heads interleaved, as in the cache
    c.v_stride = (n_kv + 31) / 32 * 32 + 32;
    c.q.resize(hd);
    for (auto& x : c.q) x = nd(rng) * q_scale;
    c.k.resize(n_kv * c.group_stride);
    for (auto& x : c.k) x = fp32_to_fp16(nd(rng));
    c.v.assign(hd * c.v_stride, 0);
    for (std::size_t e = 0; e < hd; ++e) {
        for (std::size_t j = 0; j < c.v_stride; ++j)
            c.v[e * c.v_stride + j] = fp32_to_fp16(nd(rng));
    }
    return c;
}

std::vector<float> run(detail::AttendFn fn, const Case& c, bool batched) {
    const std::size_t n_pad = (c.n_kv + 31) / 32 * 32;
    std::vector<float> s(n_pad + 32, NAN), qf(c.hd + 32, NAN), out(c.hd, NAN);
    std::vector<std::uint16_t> q16(c.hd + 32), p16(n_pad, 0x7e00);
    detail::HeadJob job{};
    job.q = c.q.data();
    job.k = c.k.data();
    job.k_stride = c.group_stride;
    job.v = c.v.data();
    job.v_stride = c.v_stride;
    job.hd = c.hd;
    job.n_kv = c.n_kv;
    job.scale = 1.0f / std::sqrt(static_cast<float>(c.hd));
    job.out = out.data();
    job.batched = batched;
    fn(job, {s.data(), qf.data(), q16.data(), p16.data()});
    return out;
}

// softmax(q·k * scale) · v in double from the half-rounded inputs.
std::vector<double> reference(const Case& c) {
    std::vector<double> s(c.n_kv), out(c.hd, 0.0);
    const double scale = 1.0 / std::sqrt(static_cast<double>(c.hd));
    double mx = -INFINITY, sum = 0.0;
    for (std::size_t j = 0; j < c.n_kv; ++j) {
        double d = 0.0;
        for (std::size_t i = 0; i < c.hd; ++i) {
            d += fp16_to_fp32(fp32_to_fp16(c.q[i])) * fp16_to_fp32(c.k[j * c.group_stride + i]);
        }
        s[j] = d * scale;
        mx = std::max(mx, s[j]);
    }
    for (auto& x : s) sum += (x = std::exp(x - mx));
    for (std::size_t e = 0; e < c.hd; ++e) {
        for (std::size_t j = 0; j < c.n_kv; ++j) {
            out[e] += s[j] / sum * fp16_to_fp32(c.v[e * c.v_stride + j]);
        }
    }
    return out;
}

}  // namespace

TEST_CASE("attention: every kernel path gives the portable path's bits", "[runtime][attention]") {
    std::mt19937 rng(7);
    const std::size_t hds[] = {4, 8, 12, 16, 24, 40, 64, 72, 80, 128};
    const std::size_t lens[] = {1, 2, 7, 8, 9, 16, 31, 32, 33, 63, 64, 65, 100, 128, 129, 200, 511};
    int compared = 0;
    for (std::size_t hd : hds) {
        for (std::size_t n : lens) {
            for (float q_scale : {0.3f, 3.0f}) {
                // Alone (decode: ggml_vec_dot_f16's order) and in a batch (tinyBLAS's).
                for (bool batched : {false, true}) {
                    const Case c = make_case(rng, hd, n, q_scale);
                    const auto want = run(detail::attend_portable, c, batched);
                    const auto ref = reference(c);
                    for (std::size_t e = 0; e < hd; ++e) {
                        INFO("hd " << hd << " n_kv " << n << " e " << e);
                        REQUIRE(std::isfinite(want[e]));
                        // Probabilities and queries rounded to half: agreement to ~1e-3 relative.
                        CHECK(std::abs(want[e] - ref[e]) <= 4e-3 * (1.0 + std::abs(ref[e])));
                    }
                    for (auto isa : {kernels::Isa::avx2, kernels::Isa::avx512}) {
                        if (!kernels::isa_supported(isa)) continue;
                        const auto got = run(detail::attend_for(isa), c, batched);
                        INFO(kernels::isa_name(isa)
                             << " hd " << hd << " n_kv " << n << " batched " << batched);
                        CHECK(std::memcmp(got.data(), want.data(), hd * sizeof(float)) == 0);
                        ++compared;
                    }
                }
            }
        }
    }
    if (compared == 0) WARN("no SIMD path on this CPU; only the portable path was checked");
}

TEST_CASE("attention: a group of jobs on one KV head gives each job its own bits",
          "[runtime][attention]") {
    std::mt19937 rng(11);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    int compared = 0;
    for (std::size_t hd : {32u, 64u, 128u}) {
        for (std::size_t base : {1u, 15u, 31u, 60u, 97u, 255u}) {
            for (std::size_t count = 1; count <= detail::kGroupMax; ++count) {
                // `count` jobs: heads sharing the KV head, tokens at consecutive positions.
                const std::size_t n_max = base + count;
                Case c = make_case(rng, hd, n_max, 1.0f);
                std::vector<std::vector<float>> qs(count), s(count), qf(count);
                std::vector<std::vector<std::uint16_t>> q16(count), p16(count);
                std::vector<std::vector<float>> got(count), want(count);
                std::vector<detail::HeadJob> jobs(count);
                std::vector<detail::HeadScratch> scratch(count);
                const std::size_t pad = (n_max + 31) / 32 * 32 + 32;
                for (std::size_t g = 0; g < count; ++g) {
                    qs[g].resize(hd);
                    for (auto& x : qs[g]) x = nd(rng) * (g % 2 == 0 ? 0.5f : 2.0f);
                    s[g].assign(pad, NAN);
                    qf[g].assign(hd + 32, NAN);
                    q16[g].assign(hd + 32, 0);
                    p16[g].assign(pad, 0x7e00);
                    got[g].assign(hd, NAN);
                    want[g].assign(hd, NAN);
                    detail::HeadJob& j = jobs[g];
                    j.q = qs[g].data();
                    j.k = c.k.data();
                    j.k_stride = c.group_stride;
                    j.v = c.v.data();
                    j.v_stride = c.v_stride;
                    j.hd = hd;
                    j.n_kv = base + 1 + g / 2;  // two heads per token
                    j.scale = 1.0f / std::sqrt(static_cast<float>(hd));
                    j.batched = false;
                    scratch[g] = {s[g].data(), qf[g].data(), q16[g].data(), p16[g].data()};
                }
                for (auto isa :
                     {kernels::Isa::portable, kernels::Isa::avx2, kernels::Isa::avx512}) {
                    if (!kernels::isa_supported(isa)) continue;
                    for (std::size_t g = 0; g < count; ++g) {
                        jobs[g].out = want[g].data();
                        detail::attend_for(isa)(jobs[g], scratch[g]);
                        jobs[g].out = got[g].data();
                    }
                    detail::attend_group_for(isa)(jobs.data(), count, scratch.data());
                    for (std::size_t g = 0; g < count; ++g) {
                        INFO(kernels::isa_name(isa) << " hd " << hd << " base " << base << " count "
                                                    << count << " job " << g);
                        REQUIRE(std::isfinite(want[g][0]));
                        CHECK(std::memcmp(got[g].data(), want[g].data(), hd * sizeof(float)) == 0);
                        ++compared;
                    }
                }
            }
        }
    }
    CHECK(compared > 0);
}
