// Token sampling from logits: llama.cpp's default chain (repetition penalty, top-k, top-p,
// min-p, temperature, then a draw from the softmax) with a seeded, platform-independent PRNG.
//
// Rules (as llama.cpp's samplers at c392e50):
//   repetition penalty  each distinct id among the last repeat_last_n (< 0: all) history ids:
//                       logit > 0 ? logit / penalty : logit * penalty (1.0: off)
//   top-k               keep the k largest logits (k <= 0 or >= n_vocab: keep all)
//   top-p               softmax over what is left (before temperature); keep the shortest
//                       prefix, largest first, whose probability sum reaches p (>= 1.0: off)
//   min-p               keep logits >= max logit + ln(p), i.e. probability >= p × the top
//                       probability (<= 0: off)
//   temperature         divide the logits by it; 0 (or less) is greedy: the argmax of the
//                       penalized logits, ties to the lowest id, and no draw is made
// Every step keeps at least one token. Ties in ordering go to the lower id, so the result
// depends only on the logits, the history and the PRNG state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace pylon::runtime {

struct SamplingParams {
    float temperature = 0.8f;
    int top_k = 40;
    float top_p = 0.95f;
    float min_p = 0.05f;
    float repeat_penalty = 1.0f;
    int repeat_last_n = 64;
    std::uint64_t seed = 0;
};

// xoshiro256** seeded through splitmix64: the same sequence on every platform.
class Rng {
public:
    explicit Rng(std::uint64_t seed);
    std::uint64_t next() noexcept;
    // Uniform in [0, 1) with 53 random bits.
    double uniform() noexcept;

private:
    std::uint64_t s_[4];
};

// One token's probability in a sampling distribution.
struct TokenProb {
    std::int32_t id;
    double p;
};

// Not thread-safe; one per sequence. sample() allocates nothing for logits of up to n_vocab
// entries (the constructor reserves its scratch), except with repeat_last_n < 0 (the whole
// history), where the distinct-id scratch may grow.
class Sampler {
public:
    Sampler(SamplingParams params, std::size_t n_vocab);

    // The next token for these logits (non-empty, no NaN). `history` is the sequence so far,
    // most recent last; only its last repeat_last_n entries matter.
    std::int32_t sample(std::span<const float> logits, std::span<const std::int32_t> history = {});

    // The distribution sample() draws from, into `out`: the candidates the chain keeps with
    // their probabilities (summing to 1), most likely first, ties to the lower id. Greedy
    // (temperature <= 0): the argmax alone with probability 1. Draws nothing.
    void distribution(std::span<const float> logits, std::span<const std::int32_t> history,
                      std::vector<TokenProb>& out);

    const SamplingParams& params() const noexcept { return params_; }
    bool greedy() const noexcept { return params_.temperature <= 0.0f; }
    void reseed(std::uint64_t seed) { rng_ = Rng(seed); }
    Rng& rng() noexcept { return rng_; }

private:
    struct Candidate {
        float logit;
        std::int32_t id;
    };

    void apply_penalty(std::span<const std::int32_t> history);
    // Penalty, top-k, top-p, min-p: the kept candidates_ (sorted) and their unnormalized
    // probabilities after temperature in probs_; returns how many were kept.
    std::size_t select(std::span<const float> logits, std::span<const std::int32_t> history);

    SamplingParams params_;
    Rng rng_;
    std::vector<float> logits_;           // penalized copy of the input
    std::vector<Candidate> candidates_;   // n_vocab entries, the kept prefix sorted
    std::vector<std::int32_t> recent_;    // distinct recent ids
    std::vector<double> probs_;
};

// The index of the largest value, ties to the lowest index; -1 for an empty span.
std::int32_t argmax(std::span<const float> logits);

// The k most likely ids with their log-softmax over all of `logits` (computed in double with
// the max subtracted), most likely first, ties to the lower id. k is clamped to [0, size].
std::vector<std::pair<std::int32_t, float>> top_logprobs(std::span<const float> logits, int k);

}  // namespace pylon::runtime
