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
// Adaptivity (see Tuner): speculation or plain decoding is chosen step by step from measured
// throughput (wall time per emitted token of each, as moving averages, with probes of the one not
// in use), so speculation that does not pay is turned off; the draft length follows the running
// acceptance rate and the measured relative cost of a draft token; and a draft stops early where
// the next token's chance of acceptance (learned per draft-confidence decile) no longer pays.
#include "model/speculative.h"

#include <algorithm>
#include <chrono>
#include <array>
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
            logits = ctx_.eval(std::span<const std::int32_t>(&out.back(), 1));
            if (!logits) return std::move(logits).error().with_context("draft model");
            ++evaluated_;
        }
        return {};
    }

    double catch_up_seconds() const override { return catch_up_s_; }

    void sync(std::size_t kept_history) override {
        // Of the drafts in the cache, those now part of the history stay.
        const std::size_t kept_drafts =
            kept_history > consumed_
                ? std::min<std::size_t>(kept_history - consumed_,
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
};

// Seconds per emitted token over the last kWindow steps: total time over total tokens (the
// true rate; a median of per-step ratios would misjudge cycles that emit 1 or several tokens),
// leaving out the slowest step once there are 5 (a preempted step on a shared machine).
class RunningRate {
public:
    void add(double seconds, double tokens) {
        buf_[next_++ % kWindow] = {seconds, tokens};
        n_ = std::min(n_ + 1, kWindow);
    }
    double get() const {
        double s = 0, t = 0, worst = -1, worst_s = 0, worst_t = 0;
        for (std::size_t i = 0; i < n_; ++i) {
            s += buf_[i].s;
            t += buf_[i].t;
            if (buf_[i].s / buf_[i].t > worst) {
                worst = buf_[i].s / buf_[i].t;
                worst_s = buf_[i].s;
                worst_t = buf_[i].t;
            }
        }
        if (n_ >= 5) {
            s -= worst_s;
            t -= worst_t;
        }
        return t > 0 ? s / t : 0.0;
    }
    std::size_t size() const { return n_; }

private:
    static constexpr std::size_t kWindow = 9;
    struct Sample {
        double s, t;
    };
    std::array<Sample, kWindow> buf_{};
    std::size_t next_ = 0, n_ = 0;
};

// Decides, step by step, between plain decoding and speculation, and the draft length.
//
// Speculation vs plain is decided on measured throughput: the wall time per emitted token of
// speculative cycles (drafting, verification, sampling: everything) against that of plain steps,
// over the last 9 of each. Speculation is used while it is clearly faster; otherwise plain decoding,
// with a one-token speculative probe every explore_every_ steps (16, doubling up to 256 while
// speculation keeps losing) so that a rising acceptance is noticed. In speculation, a plain step every
// kPlainEvery cycles keeps the plain figure current. The draft length k maximizes the expected
// tokens per cycle E(k) = (1 - a^(k+1)) / (1 - a) over the cycle's cost relative to a plain step,
// 1 + k r, with a the running acceptance rate and r the measured extra cost per draft token.
class Tuner {
public:
    Tuner(const SpeculativeParams& sp, double draft_cost_ratio)
        : sp_(sp), k_(sp.n_draft_start), r_min_(draft_cost_ratio + 0.02), r_(r_min_ + 0.1) {}

    int choose(int cap) {
        if (cap <= 0) return 0;
        if (!sp_.adaptive) return std::min(sp_.n_draft_max, cap);
        if (spec_mode_) {
            if (cycles_ > 0 && (plain_.size() == 0 || ++since_plain_ >= kPlainEvery)) {
                since_plain_ = 0;
                return 0;
            }
            return std::min(k_, cap);
        }
        if (++since_spec_ >= explore_every_) {
            // A one-token probe: cheap when speculation loses, and enough to show a gain
            // ((1 + a) tokens for 1 + r) when it would win.
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
    // it and every draft before it are accepted must exceed its relative cost r. That chance is
    // learned per confidence decile (shrunk towards the overall rate), so an unsure draft model
    // stops early, and a drafter whose confidence means little is not cut short by a fixed
    // threshold. The first draft always goes (so acceptance keeps being measured).
    bool keep(int i, double c) {
        if (!sp_.adaptive) return true;
        if (i == 0) prefix_ = 1.0;
        prefix_ *= p_accept(c);
        return i == 0 || prefix_ > r_;
    }
    // After verification: drafts [0, accepted) were accepted, draft `accepted` (if any) rejected.
    void observe_confidence(const std::vector<double>& conf, int accepted) {
        for (int i = 0; i < static_cast<int>(conf.size()) && i <= accepted; ++i) {
            Bucket& b = buckets_[bucket(conf[static_cast<std::size_t>(i)])];
            b.succ = b.succ * kDecay + (i < accepted ? 1.0 : 0.0);
            b.trials = b.trials * kDecay + 1.0;
        }
    }

    void observe_plain(double seconds) {
        plain_.add(seconds, 1.0);
        decide();
    }
    void observe_cycle(int drafted, int accepted, double seconds) {
        ++cycles_;
        const bool rejected = accepted < drafted;
        succ_ = succ_ * kDecay + accepted;
        trials_ = trials_ * kDecay + accepted + (rejected ? 1 : 0);
        // A probe while backed off counts twice: a few probes must be able to show a change.
        spec_.add(seconds, accepted + 1.0);
        if (exploring_) spec_.add(seconds, accepted + 1.0);
        if (plain_.size() > 0) {
            // The cost of a draft token can only be measured as a whole cycle's; it is never
            // below what the draft model's bytes say.
            r_ = std::max(r_min_, 0.8 * r_ + 0.2 * std::max(0.0, seconds / plain_.get() - 1.0) /
                                                   drafted);
        }
        if (exploring_) since_spec_ = 0;
        exploring_ = false;
        k_ = best_k();
        decide();
    }

private:
    static constexpr double kDecay = 0.9;
    static constexpr int kPlainEvery = 16;
    static constexpr int kExploreMin = 16, kExploreMax = 256;
    double alpha() const { return succ_ / trials_; }

    int best_k() const {
        const double a = std::clamp(alpha(), 0.0, 0.999);
        int best = 1;
        double best_v = 0;
        for (int k = 1; k <= sp_.n_draft_max; ++k) {
            const double v = (1.0 - std::pow(a, k + 1)) / (1.0 - a) / (1.0 + k * r_);
            if (v > best_v) {
                best_v = v;
                best = k;
            }
        }
        return best;
    }
    void decide() {
        if (plain_.size() == 0 || spec_.size() == 0) return;
        const double plain = plain_.get(), spec = spec_.get();
        // Hysteresis against timing noise: speculation must be 10% faster to be taken up, and
        // is left as soon as it is not 3% faster.
        if (spec_mode_ && spec > plain * 0.97) {
            spec_mode_ = false;
            since_spec_ = 0;
            explore_every_ = std::min(explore_every_ * 2, kExploreMax);
        } else if (!spec_mode_ && spec < plain * 0.9) {
            spec_mode_ = true;
            since_plain_ = 0;
            explore_every_ = kExploreMin / 2;  // doubled to kExploreMin at the next back-off
        }
    }

    struct Bucket {
        double succ, trials;
    };
    static constexpr int kBuckets = 10;  // confidence deciles; the last one: no confidence
    static std::size_t bucket(double c) {
        if (c < 0) return kBuckets;
        return static_cast<std::size_t>(std::clamp(static_cast<int>(c * kBuckets), 0, kBuckets - 1));
    }
    double p_accept(double c) const {
        const Bucket& b = buckets_[bucket(c)];
        return (b.succ + 2.0 * alpha()) / (b.trials + 2.0);
    }

    const SpeculativeParams& sp_;
    int k_;
    double r_min_;
    double r_;                  // extra cost of a draft token, relative to a plain step
    RunningRate plain_, spec_;  // seconds per emitted token: plain steps, speculative cycles
    double succ_ = 1, trials_ = 2;  // acceptance, decayed counts (prior: 1/2)
    std::array<Bucket, kBuckets + 1> buckets_{};
    double prefix_ = 1.0;
    bool spec_mode_ = true, exploring_ = false;
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
        ratio = static_cast<double>(sp.draft->model().weight_bytes_per_token()) /
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
        const std::size_t remaining = static_cast<std::size_t>(options.n_predict) -
                                      r.generated_ids.size();
        const int cap = static_cast<int>(std::min<std::size_t>(
            {static_cast<std::size_t>(sp.n_draft_max), ctx.kv_capacity() - ctx.n_past() - 1,
             remaining > 0 ? remaining - 1 : 0}));
        const auto t_step = Clock::now();
        const int k = tuner.choose(cap);

        drafts.clear();
        q.clear();
        conf.clear();
        double catch_up_s = 0;
        if (k > 0) {
            auto ok = drafter->draft(history, k, drafts, greedy ? nullptr : &q, conf, keep);
            if (!ok) return ok;
            catch_up_s = drafter->catch_up_seconds();
            if (drafts.empty()) tuner.no_drafts();
        }

        batch.assign(1, pending);
        batch.insert(batch.end(), drafts.begin(), drafts.end());
        const std::size_t base = ctx.n_past();
        auto rows = drafts.empty() ? ctx.eval(batch) : ctx.eval_each(batch);
        if (!rows) return std::move(rows).error().with_context("verifying drafts");
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
        // Everything this step cost except a draft model's catch-up after plain steps.
        const double step_s = std::max(0.0, seconds_since(t_step) - catch_up_s);
        if (drafts.empty()) {
            tuner.observe_plain(step_s);
            ++st.plain_steps;
        } else {
            tuner.observe_cycle(static_cast<int>(drafts.size()), accepted, step_s);
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
