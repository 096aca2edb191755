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
#include "model/speculative_tuner.h"

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
    // What the last draft() cost a draft model (see DraftCost); a drafter without a model
    // reports nothing.
    using Cost = DraftCost;
    virtual Cost last_cost() const { return {}; }
};

// Prompt lookup as a drafter (lookup_drafts).
class LookupDrafter final : public Drafter {
public:
    explicit LookupDrafter(const SpeculativeParams& sp) : sp_(sp) {}

    Result<void> draft(const std::vector<std::int32_t>& h, int k, std::vector<std::int32_t>& out,
                       std::vector<std::vector<TokenProb>>* q, std::vector<double>& conf,
                       const Keep& keep) override {
        const std::size_t first = out.size();
        double c = -1.0;
        lookup_drafts(h, k, sp_.ngram_min, sp_.ngram_max, out, [&](int i, int n) {
            c = confidence(n);
            return keep(i, c);
        });
        for (std::size_t i = first; i < out.size(); ++i) {
            conf.push_back(c);
            if (q != nullptr) q->emplace_back();
        }
        return {};
    }

private:
    // A label for the tuner's confidence buckets (not a probability): the length of the
    // matched suffix, longest highest, so that acceptance is learned per match length (a
    // 4-token match inside copied text is accepted far more often than a chance 2-token one).
    double confidence(int n) const {
        return 0.15 + 0.8 * static_cast<double>(n) / static_cast<double>(sp_.ngram_max);
    }
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
        // Catch up with the history the draft has not seen (one batch). After a run of plain
        // steps only the most recent kCatchUpWindow tokens are evaluated: the cache then holds
        // the older context, a gap, and the recent window at the positions that follow — the
        // same approximation as a context shift's, harmless in a drafter (the target verifies
        // every draft) — so that a probe after a long pause costs a bounded batch, not one
        // evaluation of every token decoded plainly.
        const auto t0 = Clock::now();
        std::span<const std::int32_t> missing(h.data() + consumed_, h.size() - consumed_);
        if (missing.size() > kCatchUpWindow) missing = missing.last(kCatchUpWindow);
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
    static constexpr std::size_t kCatchUpWindow = 16;
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

}  // namespace

void lookup_drafts(std::span<const std::int32_t> h, int k, int ngram_min, int ngram_max,
                   std::vector<std::int32_t>& out, const std::function<bool(int, int)>& keep) {
    const std::size_t len = h.size();
    const std::size_t first = out.size();
    for (int n = ngram_max; n >= ngram_min; --n) {
        const auto un = static_cast<std::size_t>(n);
        if (len <= un) continue;
        const std::int32_t* suffix = h.data() + len - un;
        // Candidate starts i with h[i, i+n) == suffix and i + n < len, latest first.
        for (std::size_t i = len - un; i-- > 0;) {
            if (!std::equal(suffix, suffix + un, h.data() + i)) continue;
            for (std::size_t j = i + un; out.size() - first < static_cast<std::size_t>(k); ++j) {
                if (!keep(static_cast<int>(out.size() - first), n)) break;
                // j < len: the history; beyond it, the drafts copied so far (j - len is
                // always below their count: the copy starts before len).
                out.push_back(j < len ? h[j] : out[first + (j - len)]);
            }
            return;
        }
    }
}

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
