// Sampler, Rng, argmax and top_logprobs (rules in pylon/runtime/sampling.h).
//
// Cost per call: O(n_vocab) to copy and penalize the logits and to select the top k
// (nth_element), O(k log k) to sort them; top-p, min-p and the draw are O(k).

#include "pylon/runtime/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace pylon::runtime {

namespace {

std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

}  // namespace

Rng::Rng(std::uint64_t seed) {
    for (auto& s : s_) s = splitmix64(seed);
}

std::uint64_t Rng::next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
}

double Rng::uniform() noexcept {
    return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

Sampler::Sampler(SamplingParams params, std::size_t n_vocab) : params_(params), rng_(params.seed) {
    logits_.reserve(n_vocab);
    candidates_.reserve(n_vocab);
    probs_.reserve(n_vocab);
    recent_.reserve(static_cast<std::size_t>(std::max(params.repeat_last_n, 0)));
}

void Sampler::apply_penalty(std::span<const std::int32_t> history) {
    if (params_.repeat_penalty == 1.0f || params_.repeat_last_n == 0 || history.empty()) return;
    const std::size_t n = params_.repeat_last_n < 0
                              ? history.size()
                              : std::min(history.size(),
                                         static_cast<std::size_t>(params_.repeat_last_n));
    recent_.assign(history.end() - static_cast<std::ptrdiff_t>(n), history.end());
    std::sort(recent_.begin(), recent_.end());
    recent_.erase(std::unique(recent_.begin(), recent_.end()), recent_.end());
    for (const std::int32_t id : recent_) {
        if (id < 0 || static_cast<std::size_t>(id) >= logits_.size()) continue;
        float& l = logits_[static_cast<std::size_t>(id)];
        l = l > 0.0f ? l / params_.repeat_penalty : l * params_.repeat_penalty;
    }
}

std::size_t Sampler::select(std::span<const float> logits,
                            std::span<const std::int32_t> history) {
    logits_.assign(logits.begin(), logits.end());
    apply_penalty(history);
    const std::size_t n = logits_.size();
    candidates_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        candidates_[i] = {logits_[i], static_cast<std::int32_t>(i)};
    }
    const auto before = [](const Candidate& a, const Candidate& b) {
        return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
    };
    std::size_t kept = n;
    if (params_.top_k > 0 && static_cast<std::size_t>(params_.top_k) < n) {
        kept = static_cast<std::size_t>(params_.top_k);
        const auto kth = candidates_.begin() + static_cast<std::ptrdiff_t>(kept);
        std::nth_element(candidates_.begin(), kth, candidates_.end(), before);
    }
    std::sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(kept), before);

    // Softmax of the kept candidates (before temperature) for top-p.
    const double max_logit = candidates_[0].logit;
    if (params_.top_p < 1.0f) {
        double sum = 0.0;
        probs_.resize(kept);
        for (std::size_t i = 0; i < kept; ++i) {
            probs_[i] = std::exp(static_cast<double>(candidates_[i].logit) - max_logit);
            sum += probs_[i];
        }
        double cum = 0.0;
        for (std::size_t i = 0; i < kept; ++i) {
            cum += probs_[i] / sum;
            if (cum >= params_.top_p) {
                kept = i + 1;
                break;
            }
        }
    }
    if (params_.min_p > 0.0f) {
        const double min_logit = max_logit + std::log(static_cast<double>(params_.min_p));
        std::size_t i = 1;
        while (i < kept && candidates_[i].logit >= min_logit) ++i;
        kept = i;
    }

    // softmax(logit / temperature) over the kept candidates, unnormalized.
    const double inv_t = 1.0 / static_cast<double>(params_.temperature);
    probs_.resize(kept);
    for (std::size_t i = 0; i < kept; ++i) {
        probs_[i] = std::exp((static_cast<double>(candidates_[i].logit) - max_logit) * inv_t);
    }
    return kept;
}

std::int32_t Sampler::sample(std::span<const float> logits,
                             std::span<const std::int32_t> history) {
    if (logits.empty()) return -1;
    if (params_.temperature <= 0.0f) {
        logits_.assign(logits.begin(), logits.end());
        apply_penalty(history);
        return argmax(logits_);
    }
    const std::size_t kept = select(logits, history);
    double sum = 0.0;
    for (std::size_t i = 0; i < kept; ++i) sum += probs_[i];
    const double u = rng_.uniform() * sum;
    double cum = 0.0;
    for (std::size_t i = 0; i < kept; ++i) {
        cum += probs_[i];
        if (u < cum) return candidates_[i].id;
    }
    return candidates_[kept - 1].id;  // rounding left u at the very top
}

void Sampler::distribution(std::span<const float> logits, std::span<const std::int32_t> history,
                           std::vector<TokenProb>& out) {
    out.clear();
    if (logits.empty()) return;
    if (params_.temperature <= 0.0f) {
        logits_.assign(logits.begin(), logits.end());
        apply_penalty(history);
        out.push_back({argmax(logits_), 1.0});
        return;
    }
    const std::size_t kept = select(logits, history);
    double sum = 0.0;
    for (std::size_t i = 0; i < kept; ++i) sum += probs_[i];
    out.reserve(kept);
    for (std::size_t i = 0; i < kept; ++i) out.push_back({candidates_[i].id, probs_[i] / sum});
}

std::int32_t argmax(std::span<const float> logits) {
    if (logits.empty()) return -1;
    std::size_t best = 0;
    for (std::size_t i = 1; i < logits.size(); ++i) {
        if (logits[i] > logits[best]) best = i;
    }
    return static_cast<std::int32_t>(best);
}

std::vector<std::pair<std::int32_t, float>> top_logprobs(std::span<const float> logits, int k) {
    const std::size_t n = logits.size();
    const std::size_t kk = std::min(n, static_cast<std::size_t>(std::max(k, 0)));
    std::vector<std::pair<std::int32_t, float>> out;
    if (kk == 0) return out;
    double max_logit = -std::numeric_limits<double>::infinity();
    for (const float l : logits) max_logit = std::max(max_logit, static_cast<double>(l));
    double sum = 0.0;
    for (const float l : logits) sum += std::exp(static_cast<double>(l) - max_logit);
    const double log_z = max_logit + std::log(sum);

    std::vector<std::int32_t> ids(n);
    for (std::size_t i = 0; i < n; ++i) ids[i] = static_cast<std::int32_t>(i);
    const auto before = [&](std::int32_t a, std::int32_t b) {
        const float la = logits[static_cast<std::size_t>(a)];
        const float lb = logits[static_cast<std::size_t>(b)];
        return la > lb || (la == lb && a < b);
    };
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(kk), ids.end(),
                      before);
    out.reserve(kk);
    for (std::size_t i = 0; i < kk; ++i) {
        const double lp = static_cast<double>(logits[static_cast<std::size_t>(ids[i])]) - log_z;
        out.emplace_back(ids[i], static_cast<float>(lp));
    }
    return out;
}

}  // namespace pylon::runtime
