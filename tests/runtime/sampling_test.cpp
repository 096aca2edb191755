// Sampling: greedy, determinism per seed, each filter excluding what it must (statistics over
// many draws with fixed seeds), repetition penalty, and log-probabilities by hand.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "pylon/runtime/sampling.h"

using pylon::runtime::argmax;
using pylon::runtime::Rng;
using pylon::runtime::Sampler;
using pylon::runtime::SamplingParams;
using pylon::runtime::top_logprobs;

namespace {

std::vector<float> random_logits(std::size_t n, std::uint64_t seed) {
    Rng rng(seed);
    std::vector<float> l(n);
    for (auto& x : l) x = static_cast<float>(rng.uniform() * 10.0 - 5.0);
    return l;
}

// Logits whose softmax is exactly `probs`.
std::vector<float> logits_of(const std::vector<double>& probs) {
    std::vector<float> l;
    for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
    return l;
}

SamplingParams plain(float temperature = 1.0f) {
    SamplingParams p;
    p.temperature = temperature;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 42;
    return p;
}

// Frequencies of each id over `draws` samples.
std::vector<double> frequencies(Sampler& s, const std::vector<float>& logits, int draws) {
    std::vector<double> f(logits.size(), 0.0);
    for (int i = 0; i < draws; ++i) {
        const auto id = s.sample(logits);
        REQUIRE(id >= 0);
        REQUIRE(static_cast<std::size_t>(id) < logits.size());
        f[static_cast<std::size_t>(id)] += 1.0 / draws;
    }
    return f;
}

}  // namespace

TEST_CASE("greedy is argmax with ties to the lowest id", "[sampling]") {
    CHECK(argmax(std::vector<float>{1, 3, 2, 3}) == 1);
    CHECK(argmax(std::vector<float>{}) == -1);
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        const auto l = random_logits(1000, seed);
        Sampler greedy(plain(0.0f), l.size());
        const auto expected =
            static_cast<std::int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
        CHECK(greedy.sample(l) == expected);
        // top_k = 1 with any temperature is greedy too.
        SamplingParams k1 = plain(1.5f);
        k1.top_k = 1;
        k1.seed = seed;
        Sampler top1(k1, l.size());
        for (int i = 0; i < 10; ++i) CHECK(top1.sample(l) == expected);
    }
    Sampler greedy(plain(0.0f), 4);
    CHECK(greedy.sample(std::vector<float>{0, 5, 5, 1}) == 1);
}

TEST_CASE("same seed, same sequence; another seed, another", "[sampling]") {
    const auto l = random_logits(500, 7);
    SamplingParams p;  // the defaults: top-k 40, top-p 0.95, min-p 0.05, temperature 0.8
    p.seed = 1234;
    const auto run = [&](std::uint64_t seed) {
        SamplingParams q = p;
        q.seed = seed;
        Sampler s(q, l.size());
        std::vector<std::int32_t> out;
        for (int i = 0; i < 200; ++i) out.push_back(s.sample(l));
        return out;
    };
    const auto a = run(1234);
    CHECK(a == run(1234));
    CHECK(a != run(1235));
    // Fixed values from xoshiro256** seeded by splitmix64(1234): the sequence is the same on
    // every platform and build.
    Rng rng(1234);
    const auto first = rng.next();
    Rng again(1234);
    CHECK(again.next() == first);
    // Reference values of xoshiro256** (splitmix64-seeded) computed independently.
    Rng zero(0);
    CHECK(zero.next() == 0x99EC5F36CB75F2B4ull);
    CHECK(zero.next() == 0xBF6E1F784956452Aull);
    CHECK(zero.next() == 0x1A5F849D4933E6E0ull);
    CHECK(first == 0x0BAB45D9A0E3AE53ull);
}

TEST_CASE("top-k, top-p and min-p exclude what they must", "[sampling]") {
    const std::vector<double> probs = {0.5, 0.3, 0.15, 0.05};
    const auto l = logits_of(probs);
    const int kDraws = 20000;
    SECTION("no filter: the softmax itself") {
        Sampler s(plain(), l.size());
        const auto f = frequencies(s, l, kDraws);
        for (std::size_t i = 0; i < probs.size(); ++i) {
            CHECK(f[i] == Approx(probs[i]).margin(0.015));
        }
    }
    SECTION("top-k 2") {
        SamplingParams p = plain();
        p.top_k = 2;
        Sampler s(p, l.size());
        const auto f = frequencies(s, l, kDraws);
        CHECK(f[2] == 0.0);
        CHECK(f[3] == 0.0);
        CHECK(f[0] == Approx(0.5 / 0.8).margin(0.015));
    }
    SECTION("top-p 0.75 keeps the two largest (0.5 + 0.3 reaches it)") {
        SamplingParams p = plain();
        p.top_p = 0.75f;
        Sampler s(p, l.size());
        const auto f = frequencies(s, l, kDraws);
        CHECK(f[2] == 0.0);
        CHECK(f[3] == 0.0);
        CHECK(f[0] == Approx(0.5 / 0.8).margin(0.015));
        CHECK(f[1] == Approx(0.3 / 0.8).margin(0.015));
    }
    SECTION("top-p 0.4 keeps one") {
        SamplingParams p = plain();
        p.top_p = 0.4f;
        Sampler s(p, l.size());
        const auto f = frequencies(s, l, 1000);
        CHECK(f[1] == 0.0);
        CHECK(f[2] == 0.0);
        CHECK(f[3] == 0.0);
    }
    SECTION("min-p 0.2 drops what is below 0.2 x 0.5") {
        SamplingParams p = plain();
        p.min_p = 0.2f;
        Sampler s(p, l.size());
        const auto f = frequencies(s, l, kDraws);
        CHECK(f[3] == 0.0);
        CHECK(f[2] == Approx(0.15 / 0.95).margin(0.015));
        CHECK(f[0] == Approx(0.5 / 0.95).margin(0.015));
    }
    SECTION("temperature 0.5 squares the probabilities") {
        Sampler s(plain(0.5f), l.size());
        const auto f = frequencies(s, l, kDraws);
        double z = 0;
        for (double q : probs) z += q * q;
        for (std::size_t i = 0; i < probs.size(); ++i) {
            CHECK(f[i] == Approx(probs[i] * probs[i] / z).margin(0.015));
        }
    }
    SECTION("filters apply before temperature") {
        // At temperature 3 the tail would be likely, but min-p 0.2 has already removed id 3.
        SamplingParams p = plain(3.0f);
        p.min_p = 0.2f;
        Sampler s(p, l.size());
        CHECK(frequencies(s, l, kDraws)[3] == 0.0);
    }
}

TEST_CASE("repetition penalty", "[sampling]") {
    SamplingParams p = plain(0.0f);
    p.repeat_penalty = 1.5f;
    p.repeat_last_n = 2;
    Sampler s(p, 6);
    // Positive logits are divided: 2.0 / 1.5 = 1.33 < 1.9.
    const std::vector<float> pos = {2.0f, 1.9f, -1, -1, -1, -1};
    CHECK(s.sample(pos) == 0);
    CHECK(s.sample(pos, std::vector<std::int32_t>{0}) == 1);
    // Only the last repeat_last_n tokens count, each once however often it appears.
    CHECK(s.sample(pos, std::vector<std::int32_t>{0, 5, 5}) == 0);
    CHECK(s.sample(pos, std::vector<std::int32_t>{0, 0}) == 1);
    // Negative logits are multiplied: -1.0 * 1.5 = -1.5 < -1.2.
    const std::vector<float> neg = {-1.0f, -1.2f, -9, -9, -9, -9};
    CHECK(s.sample(neg, std::vector<std::int32_t>{0}) == 1);
    // Penalty 1 changes nothing.
    SamplingParams off = p;
    off.repeat_penalty = 1.0f;
    Sampler s_off(off, 6);
    CHECK(s_off.sample(pos, std::vector<std::int32_t>{0}) == 0);
}

TEST_CASE("top_logprobs against a hand computation", "[sampling]") {
    const std::vector<float> l = {1.0f, 3.0f, 2.0f, 3.0f};
    const double z = std::log(std::exp(1.0) + std::exp(3.0) + std::exp(2.0) + std::exp(3.0));
    const auto top = top_logprobs(l, 3);
    REQUIRE(top.size() == 3);
    CHECK(top[0].first == 1);  // tie with id 3: lower id first
    CHECK(top[1].first == 3);
    CHECK(top[2].first == 2);
    CHECK(top[0].second == Approx(3.0 - z).epsilon(1e-6));
    CHECK(top[2].second == Approx(2.0 - z).epsilon(1e-6));
    const auto all = top_logprobs(l, 10);  // clamped
    REQUIRE(all.size() == 4);
    double sum = 0;
    for (const auto& [id, lp] : all) sum += std::exp(static_cast<double>(lp));
    CHECK(sum == Approx(1.0).epsilon(1e-6));
    CHECK(top_logprobs(l, 0).empty());
    // Large logits do not overflow: the max is subtracted.
    const auto big = top_logprobs(std::vector<float>{1000.0f, 1001.0f}, 1);
    REQUIRE(big.size() == 1);
    CHECK(big[0].first == 1);
    CHECK(big[0].second == Approx(-std::log1p(std::exp(-1.0))).epsilon(1e-6));
}
