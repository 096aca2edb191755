// The speculative tuner's decisions from injected costs, and prompt lookup's drafts (unit
// tests of their logic: no model).
#include <catch2/catch.hpp>

#include "model/speculative.h"
#include "model/speculative_tuner.h"

using namespace pylon::runtime;
using pylon::runtime::detail::DraftCost;
using pylon::runtime::detail::Tuner;

namespace {

SpeculativeParams params(int n_max = 16) {
    SpeculativeParams sp;
    sp.n_draft_max = n_max;
    sp.n_draft_start = 4;
    return sp;
}

// Drives the tuner for `steps` steps: a target pass over n tokens costs v1 * ratio(n), a draft
// pass d_s (first and further alike), every draft is accepted with probability `accept`
// (deterministic: a fixed pattern), sampling is free. Returns the draft lengths chosen.
template <class Ratio>
std::vector<int> drive(Tuner& t, int steps, double v1, Ratio ratio, double d_s, double accept) {
    std::vector<int> chosen;
    double credit = 0.0;  // accepts when the running credit reaches 1
    for (int i = 0; i < steps; ++i) {
        const int k = t.choose(64);
        chosen.push_back(k);
        int accepted = 0;
        for (; accepted < k; ++accepted) {
            credit += accept;
            if (credit < 1.0) {
                break;
            }
            credit -= 1.0;
        }
        const DraftCost dc = k > 0 ? DraftCost{d_s, d_s * (k - 1), k - 1} : DraftCost{};
        t.observe(k, accepted, dc, v1 * ratio(static_cast<std::size_t>(k) + 1), accepted + 1, 0.0);
    }
    return chosen;
}

int speculative_steps(const std::vector<int>& chosen, std::size_t from) {
    int n = 0;
    for (std::size_t i = from; i < chosen.size(); ++i) n += chosen[i] > 0;
    return n;
}

}  // namespace

TEST_CASE("tuner: cheap verification and high acceptance draft long", "[speculative][tuner]") {
    const SpeculativeParams sp = params();
    Tuner t(sp, 0.01);
    // Bandwidth-bound: up to 8 tokens cost about one.
    const auto chosen = drive(
        t, 200, 0.010, [](std::size_t n) { return 1.0 + 0.02 * static_cast<double>(n - 1); },
        0.0002, 0.95);
    // After the start, nearly every step speculates (a plain step every 16 cycles keeps V(1)).
    CHECK(speculative_steps(chosen, 100) >= 90);
    int longest = 0;
    for (std::size_t i = 100; i < chosen.size(); ++i) longest = std::max(longest, chosen[i]);
    CHECK(longest >= 8);
}

TEST_CASE("tuner: expensive verification and low acceptance stay plain", "[speculative][tuner]") {
    const SpeculativeParams sp = params();
    Tuner t(sp, 0.1);
    // Compute-bound: every extra token costs 60% of a pass; 40% acceptance.
    const auto chosen = drive(
        t, 400, 0.001, [](std::size_t n) { return 1.0 + 0.6 * static_cast<double>(n - 1); }, 0.0001,
        0.4);
    // Only probes: at most one step in eight speculates after the start, and fewer later.
    CHECK(speculative_steps(chosen, 50) <= 350 / 8);
    CHECK(speculative_steps(chosen, 200) <= 200 / 16);
}

TEST_CASE("tuner: the draft length follows the cost of verification", "[speculative][tuner]") {
    const SpeculativeParams sp = params();
    auto last_lengths = [&](double slope) {
        Tuner t(sp, 0.01);
        const auto chosen = drive(
            t, 300, 0.010,
            [slope](std::size_t n) { return 1.0 + slope * static_cast<double>(n - 1); }, 0.0002,
            0.8);
        double sum = 0;
        int count = 0;
        for (std::size_t i = 150; i < chosen.size(); ++i) {
            if (chosen[i] > 0) {
                sum += chosen[i];
                ++count;
            }
        }
        return count > 0 ? sum / count : 0.0;
    };
    const double cheap = last_lengths(0.02), dear = last_lengths(0.3);
    CHECK(cheap > 0);
    CHECK(dear > 0);  // 80% acceptance still pays at 0.3 per token, with shorter drafts
    CHECK(cheap > dear + 1.0);
}

TEST_CASE("tuner: not adaptive always drafts the maximum", "[speculative][tuner]") {
    SpeculativeParams sp = params(6);
    sp.adaptive = false;
    Tuner t(sp, 0.5);
    const auto chosen = drive(
        t, 20, 0.001, [](std::size_t n) { return static_cast<double>(n); }, 0.001, 0.1);
    for (int k : chosen) CHECK(k == 6);
    Tuner t2(sp, 0.5);
    CHECK(t2.choose(3) == 3);  // capped by the room left
    CHECK(t2.choose(0) == 0);
}

TEST_CASE("lookup drafts: the latest longest match, copied on into the drafts", "[speculative]") {
    using pylon::runtime::detail::lookup_drafts;
    auto drafts = [](std::vector<std::int32_t> h, int k, std::function<bool(int, int)> keep = {}) {
        std::vector<std::int32_t> out{99};  // appended after what is there
        lookup_drafts(
            h, k, 2, 4, out, keep ? keep : [](int, int) { return true; });
        out.erase(out.begin());
        return out;
    };
    // The suffix (3 4) last occurred followed by 5 6 7; an older occurrence is followed by 9.
    CHECK(drafts({3, 4, 9, 1, 3, 4, 5, 6, 7, 2, 3, 4}, 3) == std::vector<std::int32_t>{5, 6, 7});
    // The longest suffix wins: (7 3 4) matches where (3 4) alone matched more recently.
    CHECK(drafts({7, 3, 4, 8, 8, 3, 4, 1, 7, 3, 4}, 2) == std::vector<std::int32_t>{8, 8});
    // A phrase of period 3 near the end: the copy continues past the end of the history.
    CHECK(drafts({5, 1, 2, 3, 1, 2, 3, 1, 2}, 7) == std::vector<std::int32_t>{3, 1, 2, 3, 1, 2, 3});
    // Period 1: a run of one token drafts k of it.
    CHECK(drafts({4, 6, 6, 6}, 5) == std::vector<std::int32_t>{6, 6, 6, 6, 6});
    // No match, too short a history, k = 0: nothing.
    CHECK(drafts({1, 2, 3, 4, 5}, 4).empty());
    CHECK(drafts({1, 2}, 4).empty());
    CHECK(drafts({1, 2, 1, 2}, 0).empty());
    // keep() is told the matched suffix's length.
    int matched = 0;
    drafts({7, 3, 4, 8, 8, 3, 4, 1, 7, 3, 4}, 2, [&](int, int n) { return (matched = n) > 0; });
    CHECK(matched == 3);
    drafts({3, 4, 9, 1, 3, 4, 5, 6, 7, 2, 3, 4}, 1, [&](int, int n) { return (matched = n) > 0; });
    CHECK(matched == 2);
    // keep() stops the draft.
    CHECK(drafts({1, 2, 3, 1, 2, 3, 1, 2}, 6, [](int i, int) { return i < 2; }) ==
          std::vector<std::int32_t>{3, 1});
}
