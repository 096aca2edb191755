// The speculative loop's adaptivity (speculative.cpp): a measured cost model that picks plain
// decoding or a draft length step by step, and the per-position stop threshold within a draft.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "pylon/runtime/generate.h"

namespace pylon::runtime::detail {

// What one draft() cost a draft model: its first pass (the one or two tokens a cycle leaves it
// behind, giving the first draft; -1 when that was a longer catch-up) and the passes after it,
// one per further draft.
struct DraftCost {
    double first_s = -1.0, next_s = 0.0;
    int next = 0;
};

// The median of the last kWindow samples of one quantity (robust to a preempted step on a shared
// machine, quick to follow a real change).
class Recent {
public:
    void add(double v) {
        buf_[next_++ % kWindow] = v;
        n_ = std::min(n_ + 1, kWindow);
    }
    bool empty() const { return n_ == 0; }
    double get() const {
        std::array<double, kWindow> v{};
        std::copy_n(buf_.begin(), n_, v.begin());
        std::nth_element(v.begin(), v.begin() + n_ / 2, v.begin() + n_);
        return v[n_ / 2];
    }

private:
    static constexpr std::size_t kWindow = 7;
    std::array<double, kWindow> buf_{};
    std::size_t next_ = 0, n_ = 0;
};

// Decides, step by step, between plain decoding and speculation, and the draft length, from a
// cost model whose every term is measured as decoding goes:
//   V(n)    seconds of a target pass over n tokens (n = 1: a plain step; n = k + 1: verifying k
//           drafts). Small batches cost little more than one token while the weights' memory
//           traffic dominates, and much more once the products' arithmetic does, which differs
//           by model, machine and moment. V(1) is the median of recent plain steps; V(n) for
//           n > 1 is V(1) times the median of recent ratios V(n)/V(1) (so the figures follow the
//           growth of attention with the context);
//   D0, D1  seconds of a draft model's first pass in a cycle (after the target's pass has
//           pushed its weights out of the caches) and of each further pass (0 for lookup);
//   S       seconds of sampling per emitted token;
//   a       the acceptance rate of a draft token (counts decayed by 0.95 per draft).
// A cycle with k drafts emits E(k) = (1 - a^(k+1)) / (1 - a) tokens on average and costs
// V(k+1) + D0 + (k - 1) D1 + E(k) S; a plain step emits one for V(1) + S. The k with the most
// tokens per second wins, if it beats plain decoding by 5% (else plain). The ratio of a batch size
// not yet measured is interpolated linearly between measured sizes (beyond the largest: at the last
// measured slope, or 0.15 per token), so an untried length is judged by its neighbours and tried
// when they say it pays. To keep the terms current, a plain step is taken every kPlainEvery cycles
// while speculating, and a one-token probe every explore_every_ plain steps (8, doubling to 256
// while speculation keeps losing).
class Tuner {
public:
    Tuner(const SpeculativeParams& sp, double draft_cost_ratio)
        : sp_(sp),
          k_(sp.n_draft_start),
          r_min_(draft_cost_ratio),
          ratio_(static_cast<std::size_t>(sp.n_draft_max) + 3),
          stop_below_(static_cast<std::size_t>(sp.n_draft_max) + 1, 0.1) {}

    int choose(int cap) {
        if (cap <= 0) return 0;
        if (!sp_.adaptive) return std::min(sp_.n_draft_max, cap);
        if (v1_.empty()) {
            // The first step speculates at the starting length; the second is plain.
            if (cycles_ == 0) return std::min(k_, cap);
            return 0;
        }
        if (k_ > 0) {
            if (++since_plain_ >= kPlainEvery) {
                since_plain_ = 0;
                // Speculation has held for a while: a later back-off starts probing often again.
                explore_every_ = kExploreMin / 2;
                return 0;
            }
            return std::min(k_, cap);
        }
        if (++since_spec_ >= explore_every_) {
            // A one-token probe: cheap when speculation loses, and it measures a and V(2).
            exploring_ = true;
            return 1;
        }
        return 0;
    }
    // The drafter proposed nothing: try again at the next step.
    void no_drafts() {
        if (exploring_) since_spec_ = explore_every_;
        exploring_ = false;
    }

    // Whether draft i (0-based) with confidence c (-1: none) is worth verifying: the chance that
    // it and every draft before it are accepted must exceed what one more draft costs (one more
    // token verified, one more draft pass) times the tokens per second the cycle gives. That
    // chance is learned per confidence decile (shrunk towards the overall rate), so an unsure
    // draft model stops early, and a drafter whose confidence means little is not cut short by a
    // fixed threshold. The first draft always goes (so acceptance keeps being measured).
    bool keep(int i, double c) {
        if (!sp_.adaptive) return true;
        if (i == 0) prefix_ = 1.0;
        prefix_ *= p_accept(c);
        return i == 0 || prefix_ > stop_below_[static_cast<std::size_t>(i)];
    }
    // After verification: drafts [0, accepted) were accepted, draft `accepted` (if any) rejected.
    void observe_confidence(const std::vector<double>& conf, int accepted) {
        for (int i = 0; i < static_cast<int>(conf.size()) && i <= accepted; ++i) {
            Bucket& b = buckets_[bucket(conf[static_cast<std::size_t>(i)])];
            b.succ = b.succ * kDecay + (i < accepted ? 1.0 : 0.0);
            b.trials = b.trials * kDecay + 1.0;
        }
    }

    // One step: `drafted` drafts (0: a plain step) of which `accepted` were accepted, what
    // drafting cost, the target pass's seconds, and sampling `sampled` tokens' seconds.
    void observe(int drafted, int accepted, const DraftCost& dc, double eval_s, int sampled,
                 double sample_s) {
        if (drafted == 0) {
            v1_.add(eval_s);
        } else if (!v1_.empty()) {
            ratio_[static_cast<std::size_t>(drafted) + 1].add(eval_s / v1_.get());
        }
        if (sampled > 0) s_.add(sample_s / sampled);
        if (dc.first_s >= 0) d0_.add(dc.first_s);
        if (dc.next > 0) d1_.add(dc.next_s / dc.next);
        const bool probe = drafted > 0 && exploring_;
        if (drafted > 0) {
            ++cycles_;
            const bool rejected = accepted < drafted;
            succ_ = succ_ * kDecay + accepted;
            trials_ = trials_ * kDecay + accepted + (rejected ? 1 : 0);
            if (exploring_) since_spec_ = 0;
            exploring_ = false;
        }
        if (!sp_.adaptive || v1_.empty()) return;
        const int before = k_;
        k_ = best_k();
        if (k_ == 0 && (before > 0 || probe)) {
            // Speculation lost again (or a probe did not win it back): probe half as often.
            since_spec_ = 0;
            explore_every_ = std::min(explore_every_ * 2, kExploreMax);
        } else if (k_ > 0 && before == 0) {
            // The probe interval is kept: a short-lived switch (the acceptance estimate
            // wandering up) must not make probes frequent again.
            since_plain_ = 0;
        }
    }

private:
    static constexpr double kDecay = 0.95;  // the acceptance estimate spans ~20 drafts
    static constexpr int kPlainEvery = 16;
    static constexpr int kExploreMin = 8, kExploreMax = 256;
    static constexpr double kMargin = 1.05;
    double alpha() const { return succ_ / trials_; }

    // V(n)/V(1), measured or interpolated.
    double ratio(std::size_t n) const {
        auto at = [&](std::size_t i) { return i == 1 ? 1.0 : ratio_[i].get(); };
        auto known = [&](std::size_t i) { return i == 1 || !ratio_[i].empty(); };
        if (known(n)) return at(n);
        std::size_t lo = n - 1;
        while (!known(lo)) --lo;
        std::size_t hi = n + 1;
        while (hi < ratio_.size() && !known(hi)) ++hi;
        if (hi < ratio_.size()) {
            return at(lo) +
                   (at(hi) - at(lo)) * static_cast<double>(n - lo) / static_cast<double>(hi - lo);
        }
        double slope = 0.15;
        if (lo > 1) {
            std::size_t below = lo - 1;
            while (!known(below)) --below;
            slope = std::max(0.0, (at(lo) - at(below)) / static_cast<double>(lo - below));
        }
        return at(lo) + slope * static_cast<double>(n - lo);
    }

    int best_k() {
        const double a = std::clamp(alpha(), 0.0, 0.999);
        const double sample = s_.empty() ? 0.0 : s_.get();
        const double v1 = v1_.get();
        // Until measured, a draft pass costs what the draft model's bytes say.
        const double d1 = d1_.empty() ? r_min_ * v1 : d1_.get();
        const double d0 = d0_.empty() ? d1 : d0_.get();
        // Speculation must promise kMargin more tokens per second than plain decoding: what
        // the model leaves out (a drafter's catch-up after plain steps, cache truncation, the
        // timing noise of a shared machine) must not turn a predicted small gain into a loss.
        const double plain_rate = 1.0 / (v1 + sample);
        int best = 0;
        double best_rate = plain_rate * kMargin;
        for (int k = 1; k <= sp_.n_draft_max; ++k) {
            const double e = (1.0 - std::pow(a, k + 1)) / (1.0 - a);
            const double c =
                v1 * ratio(static_cast<std::size_t>(k) + 1) + d0 + (k - 1) * d1 + e * sample;
            const double rate = e / c;
            // Ties go to the shorter draft (less wasted work when the model is off).
            if (rate > best_rate * 1.005) {
                best_rate = rate;
                best = k;
            }
        }
        if (best == 0) best_rate = plain_rate;
        if (best > 0) {
            // Draft i makes the batch i + 2 tokens long: its marginal cost is that step in V
            // and one draft pass.
            for (std::size_t i = 1; i < stop_below_.size(); ++i) {
                const double extra = v1 * (ratio(i + 2) - ratio(i + 1)) + d1;
                stop_below_[i] = std::clamp(extra * best_rate, 0.0, 0.95);
            }
        }
        return best;
    }

    struct Bucket {
        double succ, trials;
    };
    static constexpr int kBuckets = 10;  // confidence deciles; the last one: no confidence
    static std::size_t bucket(double c) {
        if (c < 0) return kBuckets;
        return static_cast<std::size_t>(
            std::clamp(static_cast<int>(c * kBuckets), 0, kBuckets - 1));
    }
    double p_accept(double c) const {
        const Bucket& b = buckets_[bucket(c)];
        return (b.succ + 2.0 * alpha()) / (b.trials + 2.0);
    }

    const SpeculativeParams& sp_;
    int k_;
    double r_min_;                  // the draft model's bytes over the target's
    Recent v1_;                     // V(1)
    std::vector<Recent> ratio_;     // V(n)/V(1), index n = batch size
    Recent d0_, d1_, s_;            // D0, D1 and S
    double succ_ = 1, trials_ = 2;  // acceptance, decayed counts (prior: 1/2)
    std::array<Bucket, kBuckets + 1> buckets_{};
    double prefix_ = 1.0;
    std::vector<double> stop_below_;  // per draft index: the least prefix chance worth verifying
    bool exploring_ = false;
    std::uint64_t cycles_ = 0;
    int since_plain_ = 0, since_spec_ = 0, explore_every_ = kExploreMin / 2;
};

}  // namespace pylon::runtime::detail
