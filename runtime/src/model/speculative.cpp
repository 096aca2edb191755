// Speculative decoding (generate() with SpeculativeParams): draft, verify in one batched target
// pass, accept a prefix, emit the target's own next token, repeat.
//
// Correctness: the target's logits for a verified batch come from Context::eval_each, which
// gives every token the bits a lone token gets, so with greedy sampling the emitted sequence is
// exactly plain decoding's (the same sampler, the same history, the same logits). With
// temperature > 0 each draft d with draft distribution q is accepted with probability
// min(1, p(d)/q(d)) against the target's distribution p (both after the whole sampling chain);
// on rejection the token comes from norm(max(0, p − q)), and when every draft is accepted a bonus
// token comes from the target's next distribution (Leviathan et al. 2023, Chen et al. 2023) —
// which keeps the output distributed exactly as the target's own sampling.
//
// Adaptivity (see Tuner): plain decoding or a draft length is chosen step by step from a cost
// model measured as decoding goes (the target's time per batch size, drafting and sampling time
// per token, the acceptance rate), so speculation that does not pay is turned off and the draft
// length follows what verification really costs on this machine; and a draft stops early where
// the next token's chance of acceptance (learned per draft-confidence decile) no longer pays.
#include "model/speculative.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <functional>

#include "pylon/common/error.h"

namespace pylon::runtime::detail {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Probability of the most likely token under softmax(logits).
double top_probability(std::span<const float> logits) {
    float mx = logits[0];
    for (const float l : logits) mx = std::max(mx, l);
    double sum = 0.0;
    for (const float l : logits) sum += std::exp(static_cast<double>(l - mx));
    return 1.0 / sum;
}

double prob_of(const std::vector<TokenProb>& dist, std::int32_t id) {
    for (const TokenProb& t : dist) {
        if (t.id == id) return t.p;
    }
    return 0.0;
}

std::int32_t draw(const std::vector<TokenProb>& dist, double total, Rng& rng) {
    const double u = rng.uniform() * total;
    double cum = 0.0;
    for (const TokenProb& t : dist) {
        cum += t.p;
        if (u < cum) return t.id;
    }
    return dist.back().id;
}

// Proposes tokens continuing the history.
class Drafter {
public:
    virtual ~Drafter() = default;
    // Appends up to k drafts to `out` (and, when `q` is non-null, their draft distributions;
    // an empty distribution means a point mass on the draft) and each draft's confidence to
    // `conf` (the draft model's probability of it, or -1 when the drafter has none). Stops early
    // when keep(i, confidence) says a draft is not worth verifying.
    using Keep = std::function<bool(int, double)>;
    virtual Result<void> draft(const std::vector<std::int32_t>& history, int k,
                               std::vector<std::int32_t>& out,
                               std::vector<std::vector<TokenProb>>* q, std::vector<double>& conf,
                               const Keep& keep) = 0;
    // After verification: `history` now ends with the accepted drafts and the target's token.
    virtual void sync(std::size_t kept_history) { (void)kept_history; }
    // Seconds of the last draft() spent catching up with history the drafter had not seen
    // (a batch, not per-draft cost).
    virtual double catch_up_seconds() const { return 0.0; }
    // What the last draft() cost a draft model: its first pass (the one or two tokens a cycle
    // leaves it behind, giving the first draft; -1 when that was a longer catch-up) and the
    // passes after it, one per further draft. A drafter without a model reports nothing.
    struct Cost {
        double first_s = -1.0, next_s = 0.0;
        int next = 0;
    };
    virtual Cost last_cost() const { return {}; }
};

// Prompt lookup: the tokens that followed the most recent earlier occurrence of the history's
// longest suffix (ngram_max down to ngram_min tokens).
class LookupDrafter final : public Drafter {
public:
    explicit LookupDrafter(const SpeculativeParams& sp) : sp_(sp) {}

    Result<void> draft(const std::vector<std::int32_t>& h, int k, std::vector<std::int32_t>& out,
                       std::vector<std::vector<TokenProb>>* q, std::vector<double>& conf,
                       const Keep& keep) override {
        const std::size_t len = h.size();
        for (int n = sp_.ngram_max; n >= sp_.ngram_min; --n) {
            const auto un = static_cast<std::size_t>(n);
            if (len <= un) continue;
            const std::int32_t* suffix = h.data() + len - un;
            // Candidate starts i with h[i, i+n) == suffix and i + n < len, latest first.
            for (std::size_t i = len - un; i-- > 0;) {
                if (!std::equal(suffix, suffix + un, h.data() + i)) continue;
                for (std::size_t j = i + un; j < len && out.size() < static_cast<std::size_t>(k);
                     ++j) {
                    if (!keep(static_cast<int>(out.size()), -1.0)) break;
                    out.push_back(h[j]);
                    conf.push_back(-1.0);
                    if (q != nullptr) q->emplace_back();
                }
                return {};
            }
        }
        return {};
    }

private:
    const SpeculativeParams& sp_;
};

// A draft model in its own Context, kept in step with the accepted history.
class ModelDrafter final : public Drafter {
public:
    // The draft context holds the first `consumed_` history tokens (possibly shifted: see
    // room()), then up to evaluated_ drafts of the current cycle.
    ModelDrafter(Context& dctx, const SpeculativeParams& sp, const SamplingParams& sampling)
        : ctx_(dctx),
          sp_(sp),
          sampler_(draft_sampling(sampling), dctx.model().hparams().n_vocab),
          consumed_(dctx.n_past()) {}

    Result<void> draft(const std::vector<std::int32_t>& h, int k, std::vector<std::int32_t>& out,
                       std::vector<std::vector<TokenProb>>* q, std::vector<double>& conf,
                       const Keep& keep) override {
        evaluated_ = 0;
        // Catch up with the history the draft has not seen (one batch).
        const auto t0 = Clock::now();
        std::span<const std::int32_t> missing(h.data() + consumed_, h.size() - consumed_);
        if (!room(missing.size() + static_cast<std::size_t>(k))) {
            // Too far behind to fit: start afresh from the most recent history.
            ctx_.reset();
            const std::size_t keep_n = std::min<std::size_t>(h.size(), ctx_.kv_capacity() / 2);
            missing = std::span<const std::int32_t>(h.data() + h.size() - keep_n, keep_n);
            if (keep_n + static_cast<std::size_t>(k) > ctx_.kv_capacity()) return {};
        }
        auto logits = ctx_.eval(missing);
        if (!logits) return std::move(logits).error().with_context("draft model");
        consumed_ = h.size();
        // Beyond the one or two tokens a cycle leaves it behind, catching up is the cost of the
        // plain steps in between, not of this draft.
        catch_up_s_ = missing.size() > 2 ? seconds_since(t0) : 0.0;
        cost_ = Cost{missing.size() > 2 ? -1.0 : seconds_since(t0), 0.0, 0};
        std::vector<std::int32_t> seq = h;
        for (int i = 0; i < k; ++i) {
            std::int32_t d;
            double c;
            if (q == nullptr) {
                c = top_probability(*logits);
                if (c < sp_.p_min || !keep(i, c)) break;
                d = sampler_.sample(*logits, seq);
            } else {
                std::vector<TokenProb>& dist = q->emplace_back();
                sampler_.distribution(*logits, seq, dist);
                c = dist.front().p;
                if (c < sp_.p_min || !keep(i, c)) {
                    q->pop_back();
                    break;
                }
                d = draw(dist, 1.0, sampler_.rng());
            }
            out.push_back(d);
            conf.push_back(c);
            seq.push_back(d);
            if (i + 1 == k) break;
            const auto t1 = Clock::now();
            logits = ctx_.eval(std::span<const std::int32_t>(&out.back(), 1));
            if (!logits) return std::move(logits).error().with_context("draft model");
            cost_.next_s += seconds_since(t1);
            ++cost_.next;
            ++evaluated_;
        }
        return {};
    }

    double catch_up_seconds() const override { return catch_up_s_; }
    Cost last_cost() const override { return cost_; }

    void sync(std::size_t kept_history) override {
        // Of the drafts in the cache, those now part of the history stay.
        const std::size_t kept_drafts =
            kept_history > consumed_ ? std::min<std::size_t>(kept_history - consumed_,
                                                             static_cast<std::size_t>(evaluated_))
                                     : 0;
        ctx_.truncate(static_cast<std::uint32_t>(
            ctx_.n_past() - (static_cast<std::size_t>(evaluated_) - kept_drafts)));
        consumed_ += kept_drafts;
        evaluated_ = 0;
    }

private:
    // Makes room for n more positions in the draft's cache, shifting it (sinks + the most
    // recent half) when full, as the target's context shifts; false when n cannot fit.
    bool room(std::size_t n) {
        ctx_.apply_kv_budget();
        const std::uint32_t cap = ctx_.kv_capacity();
        if (ctx_.n_past() + n <= cap) return true;
        const std::uint32_t sinks = std::min(ctx_.kv_sinks(), cap);
        ctx_.shift((cap - sinks) / 2);
        return ctx_.n_past() + n <= cap;
    }
    static SamplingParams draft_sampling(SamplingParams s) {
        s.seed = s.seed ^ 0x9E3779B97F4A7C15ull;  // its own stream of draws
        return s;
    }
    Context& ctx_;
    const SpeculativeParams& sp_;
    Sampler sampler_;
    std::size_t consumed_ = 0;
    int evaluated_ = 0;
    double catch_up_s_ = 0.0;
    Cost cost_;
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
    void observe(int drafted, int accepted, const Drafter::Cost& dc, double eval_s, int sampled,
                 double sample_s) {
        if (drafted == 0) {
            v1_.add(eval_s);
        } else if (!v1_.empty()) {
            ratio_[static_cast<std::size_t>(drafted) + 1].add(eval_s / v1_.get());
        }
        if (sampled > 0) s_.add(sample_s / sampled);
        if (dc.first_s >= 0) d0_.add(dc.first_s);
        if (dc.next > 0) d1_.add(dc.next_s / dc.next);
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
        if (k_ == 0 && before > 0) {
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

}  // namespace

Verdict verify_sampled(std::span<const std::vector<TokenProb>> p,
                       std::span<const std::vector<TokenProb>> q,
                       std::span<const std::int32_t> drafts, Rng& rng) {
    const std::size_t k = drafts.size();
    for (std::size_t i = 0; i < k; ++i) {
        const double pd = prob_of(p[i], drafts[i]);
        const double qd = q[i].empty() ? 1.0 : prob_of(q[i], drafts[i]);
        if (qd > 0 && rng.uniform() < std::min(1.0, pd / qd)) continue;
        // Rejected: draw from norm(max(0, p - q)).
        std::vector<TokenProb> residual;
        double total = 0;
        for (const TokenProb& t : p[i]) {
            const double qt = q[i].empty() ? (t.id == drafts[i] ? 1.0 : 0.0) : prob_of(q[i], t.id);
            const double r = std::max(0.0, t.p - qt);
            if (r > 0) {
                residual.push_back({t.id, r});
                total += r;
            }
        }
        // total == 0 only when p == q, where rejection has probability 0; guard rounding.
        const std::int32_t next = total > 0 ? draw(residual, total, rng) : draw(p[i], 1.0, rng);
        return {static_cast<int>(i), next};
    }
    return {static_cast<int>(k), draw(p[k], 1.0, rng)};
}

Result<void> check_speculative(const Context& target, const SpeculativeParams& sp) {
    if (sp.n_draft_max < 1 || sp.n_draft_max > 64) {
        return Error(Errc::invalid_argument, "the longest draft must be between 1 and 64 tokens");
    }
    if (sp.n_draft_start < 1 || sp.n_draft_start > sp.n_draft_max) {
        return Error(Errc::invalid_argument,
                     "the first draft length must be between 1 and the longest draft");
    }
    if (!(sp.p_min >= 0.0f && sp.p_min <= 1.0f)) {
        return Error(Errc::invalid_argument, "p_min must be between 0 and 1");
    }
    if (sp.ngram_min < 1 || sp.ngram_max < sp.ngram_min || sp.ngram_max > 32) {
        return Error(Errc::invalid_argument, "lookup n-grams must satisfy 1 <= min <= max <= 32");
    }
    if (sp.draft != nullptr) {
        if (sp.draft == &target) {
            return Error(Errc::invalid_argument, "the draft context is the target's own");
        }
        if (sp.draft->model().hparams().n_vocab != target.model().hparams().n_vocab) {
            return Error(Errc::invalid_argument,
                         "the draft model's vocabulary (" +
                             std::to_string(sp.draft->model().hparams().n_vocab) +
                             " tokens) differs from the target's (" +
                             std::to_string(target.model().hparams().n_vocab) + ")");
        }
    }
    return {};
}

Result<void> speculative_loop(Context& ctx, Sampler& sampler, std::span<const float> logits,
                              Emitter& emit, const GenerateOptions& options) {
    const SpeculativeParams& sp = options.speculative;
    GenerateResult& r = emit.r;
    SpeculativeStats& st = r.speculative;
    std::unique_ptr<Drafter> drafter;
    double ratio = 0.0;
    if (sp.draft != nullptr) {
        drafter = std::make_unique<ModelDrafter>(*sp.draft, sp, options.sampling);
        ratio =
            static_cast<double>(sp.draft->model().weight_bytes_per_token()) /
            static_cast<double>(std::max<std::uint64_t>(1, ctx.model().weight_bytes_per_token()));
    } else {
        drafter = std::make_unique<LookupDrafter>(sp);
    }
    Tuner tuner(sp, ratio);
    const bool greedy = sampler.greedy();

    std::vector<std::int32_t> history = r.prompt_ids;
    std::int32_t pending = sampler.sample(logits, history);
    history.push_back(pending);
    if (!emit(pending)) return {};

    std::vector<std::int32_t> drafts, batch;
    std::vector<std::vector<TokenProb>> q, p;
    std::vector<double> conf;
    const Drafter::Keep keep = [&tuner](int i, double c) { return tuner.keep(i, c); };
    for (;;) {
        if (!make_room(ctx, 1, options)) {
            r.stop_reason = "context";
            return {};
        }
        // Room: the batch [pending, drafts...] must fit the context, and every draft beyond the
        // tokens still wanted is wasted.
        const std::size_t remaining =
            static_cast<std::size_t>(options.n_predict) - r.generated_ids.size();
        const int cap = static_cast<int>(std::min<std::size_t>(
            {static_cast<std::size_t>(sp.n_draft_max), ctx.kv_capacity() - ctx.n_past() - 1,
             remaining > 0 ? remaining - 1 : 0}));
        const auto t_step = Clock::now();
        const int k = tuner.choose(cap);

        drafts.clear();
        q.clear();
        conf.clear();
        double draft_s = 0;
        if (k > 0) {
            // Two thread pools share the cores: each one's idle workers sleep while the other
            // runs (spinning, they would take a core from it).
            if (sp.draft != nullptr) ctx.park_threads();
            auto ok = drafter->draft(history, k, drafts, greedy ? nullptr : &q, conf, keep);
            if (sp.draft != nullptr) sp.draft->park_threads();
            if (!ok) return ok;
            // A draft model's catch-up after plain steps is not the cost of these drafts.
            draft_s = std::max(0.0, seconds_since(t_step) - drafter->catch_up_seconds());
            if (drafts.empty()) tuner.no_drafts();
        }

        batch.assign(1, pending);
        batch.insert(batch.end(), drafts.begin(), drafts.end());
        const std::size_t base = ctx.n_past();
        const auto t_eval = Clock::now();
        auto rows = drafts.empty() ? ctx.eval(batch) : ctx.eval_each(batch);
        if (!rows) return std::move(rows).error().with_context("verifying drafts");
        const double eval_s = seconds_since(t_eval);
        const auto t_sample = Clock::now();
        const std::size_t n_vocab = ctx.model().hparams().n_vocab;
        auto row = [&](std::size_t i) { return rows->subspan(i * n_vocab, n_vocab); };

        int accepted = 0;
        std::int32_t next = -1;
        bool stop = false;
        if (greedy) {
            for (; accepted < static_cast<int>(drafts.size()); ++accepted) {
                const std::int32_t s = sampler.sample(row(accepted), history);
                if (s != drafts[accepted]) {
                    next = s;
                    break;
                }
                history.push_back(s);
                if (!emit(s)) {
                    stop = true;
                    ++accepted;
                    break;
                }
            }
            if (!stop && next < 0) next = sampler.sample(row(drafts.size()), history);
        } else {
            // The target's distributions after each prefix (the history grows by the drafts).
            p.resize(drafts.size() + 1);
            std::vector<std::int32_t> h = history;
            for (std::size_t i = 0; i <= drafts.size(); ++i) {
                sampler.distribution(row(i), h, p[i]);
                if (i < drafts.size()) h.push_back(drafts[i]);
            }
            const Verdict v = verify_sampled(p, q, drafts, sampler.rng());
            for (; accepted < v.accepted; ++accepted) {
                history.push_back(drafts[accepted]);
                if (!emit(drafts[accepted])) {
                    stop = true;
                    ++accepted;
                    break;
                }
            }
            next = v.next;
        }
        // Sampling (and emitting) this step's tokens.
        Drafter::Cost dc = drafter->last_cost();
        if (k > 0 && dc.first_s < 0 && dc.next == 0 && drafter->catch_up_seconds() == 0) {
            dc.first_s = draft_s;  // a drafter without a model: its whole time
        }
        if (k == 0) dc = {};
        tuner.observe(static_cast<int>(drafts.size()), accepted, dc, eval_s, accepted + 1,
                      seconds_since(t_sample));
        if (drafts.empty()) {
            ++st.plain_steps;
        } else {
            tuner.observe_confidence(conf, accepted);
            ++st.cycles;
            st.drafted += drafts.size();
            st.accepted += static_cast<std::uint64_t>(accepted);
        }
        if (stop) return {};
        // Forget the rejected drafts; the cache keeps pending and the accepted ones.
        ctx.truncate(static_cast<std::uint32_t>(base + 1 + static_cast<std::size_t>(accepted)));
        drafter->sync(history.size());
        pending = next;
        history.push_back(pending);
        if (!emit(pending)) return {};
    }
}

}  // namespace pylon::runtime::detail
