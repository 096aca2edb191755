// Synthetic draft/target pair: shared tensors bit-identical, scaled extra layers, determinism,
// refusals, and the greedy agreement that divergence controls (speculative acceptance).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "pylon/runtime/gguf.h"
#include "pylon/runtime/model.h"
#include "pylon/runtime/synth.h"
#include "temp_dir.h"

using namespace pylon::runtime;

namespace {

std::string data_file(const std::string& name) {
    return std::string(PYLON_TEST_DATA) + "/runtime/" + name;
}

SynthPairOptions tiny_pair(GgmlType type, float divergence) {
    SynthPairOptions o;
    o.draft_shape =
        parse_synth_shape("dim=64,ffn=128,layers=2,heads=4,kv_heads=2,vocab=300,ctx=256").value();
    o.extra_layers = 6;
    o.divergence = divergence;
    o.logit_stddev = 4.0f;
    o.type = type;
    o.seed = 11;
    return o;
}

struct Pair {
    std::shared_ptr<const Model> target;
    std::shared_ptr<const Model> draft;
    SynthPairReport report;
};

Pair write_and_load(const SynthPairOptions& o, const pylon::test::TempDir& dir,
                    const std::string& tag = "") {
    const std::string t = (dir / ("target" + tag + ".gguf")).string();
    const std::string d = (dir / ("draft" + tag + ".gguf")).string();
    auto report = write_synth_pair(o, t, d);
    REQUIRE(report);
    auto target = Model::load(t);
    auto draft = Model::load(d);
    REQUIRE(target);
    REQUIRE(draft);
    return {*target, *draft, *report};
}

// BOS, then random ids past the control tokens: varied prompts, so that a random model's
// greedy loops do not dominate the rate.
std::vector<std::vector<std::int32_t>> random_prompts(int n, int len, std::int32_t n_vocab) {
    std::mt19937_64 rng(1234);
    std::uniform_int_distribution<std::int32_t> id(3, n_vocab - 1);
    std::vector<std::vector<std::int32_t>> prompts(n);
    for (auto& p : prompts) {
        p.push_back(1);
        for (int i = 1; i < len; ++i) p.push_back(id(rng));
    }
    return prompts;
}

PairAgreement agreement(const Pair& p, int n_prompts = 8, std::uint32_t n_predict = 24) {
    const auto prompts = random_prompts(n_prompts, 6, 300);
    auto a = measure_greedy_agreement(p.target, p.draft, prompts, n_predict);
    REQUIRE(a);
    REQUIRE(a->n_steps == static_cast<std::uint64_t>(n_prompts) * n_predict);
    return *a;
}

const gguf::TensorInfo& tensor(const Model& m, std::string_view name) {
    const gguf::TensorInfo* t = m.gguf().find_tensor(name);
    REQUIRE(t != nullptr);
    return *t;
}

}  // namespace

TEST_CASE("synth pair: the target extends the draft bit for bit", "[synth][synth_pair]") {
    pylon::test::TempDir dir;
    for (GgmlType type : {GgmlType::F32, GgmlType::Q8_0, GgmlType::Q4_0}) {
        DYNAMIC_SECTION("type " << type_name(type)) {
            const Pair p = write_and_load(tiny_pair(type, 0.25f), dir);
            CHECK(p.draft->hparams().n_layer == 2);
            CHECK(p.target->hparams().n_layer == 8);
            CHECK(p.target->hparams().n_embd == p.draft->hparams().n_embd);
            CHECK(p.target->hparams().n_vocab == p.draft->hparams().n_vocab);
            CHECK(p.report.draft.n_tensors == 3 + 2 * 9);
            CHECK(p.report.target.n_tensors == 3 + 8 * 9);
            CHECK(p.report.byte_ratio == Approx(static_cast<double>(p.report.target.n_bytes) /
                                                static_cast<double>(p.report.draft.n_bytes)));

            // Every tensor of the draft is in the target with the same type, shape and bytes.
            for (const gguf::TensorInfo& d : p.draft->gguf().tensors()) {
                INFO(d.name);
                const gguf::TensorInfo& t = tensor(*p.target, d.name);
                REQUIRE(t.type == d.type);
                REQUIRE(t.dims == d.dims);
                REQUIRE(t.n_bytes == d.n_bytes);
                CHECK(std::memcmp(t.data, d.data, d.n_bytes) == 0);
            }
            const gguf::File& tf = p.target->gguf();
            CHECK(tf.get_string("pylon.synth_pair.role").value() == "target");
            CHECK(p.draft->gguf().get_string("pylon.synth_pair.role").value() == "draft");
            CHECK(tf.get_uint("pylon.synth_pair.shared_layers").value() == 2);
        }
    }
}

TEST_CASE("synth pair: divergence scales only the extra layers' attn_output and ffn_down",
          "[synth][synth_pair]") {
    pylon::test::TempDir dir;
    const Pair half = write_and_load(tiny_pair(GgmlType::F32, 0.5f), dir, "half");
    const Pair one = write_and_load(tiny_pair(GgmlType::F32, 1.0f), dir, "one");
    const Pair zero = write_and_load(tiny_pair(GgmlType::F32, 0.0f), dir, "zero");
    for (const gguf::TensorInfo& t : one.target->gguf().tensors()) {
        INFO(t.name);
        const gguf::TensorInfo& h = tensor(*half.target, t.name);
        const gguf::TensorInfo& z = tensor(*zero.target, t.name);
        REQUIRE(t.type == GgmlType::F32);
        const auto* a = reinterpret_cast<const float*>(t.data);
        const auto* b = reinterpret_cast<const float*>(h.data);
        const auto* c = reinterpret_cast<const float*>(z.data);
        const bool extra =
            t.name.rfind("blk.", 0) == 0 && std::stoi(std::string(t.name.substr(4))) >= 2;
        const bool writes = t.name.find("attn_output") != std::string::npos ||
                            t.name.find("ffn_down") != std::string::npos;
        if (extra && writes) {
            bool halved = true, zeroed = true;
            for (std::size_t i = 0; i < t.n_elements; ++i) {
                halved = halved && b[i] == a[i] * 0.5f;
                zeroed = zeroed && c[i] == 0.0f;
            }
            CHECK(halved);
            CHECK(zeroed);
        } else {
            CHECK(std::memcmp(a, b, t.n_bytes) == 0);
            CHECK(std::memcmp(a, c, t.n_bytes) == 0);
        }
    }
    // The output head's logits spread about logit_stddev: its rows have stddev 4 / sqrt(64).
    const gguf::TensorInfo& out = tensor(*one.draft, "output.weight");
    const auto* w = reinterpret_cast<const float*>(out.data);
    double sum2 = 0;
    for (std::size_t i = 0; i < out.n_elements; ++i) sum2 += double{w[i]} * w[i];
    CHECK(std::sqrt(sum2 / static_cast<double>(out.n_elements)) == Approx(0.5).epsilon(0.05));
}

TEST_CASE("synth pair: same options, same bytes; the draft does not depend on the target",
          "[synth][synth_pair]") {
    pylon::test::TempDir dir;
    SynthPairOptions o = tiny_pair(GgmlType::Q8_0, 0.3f);
    REQUIRE(write_synth_pair(o, (dir / "t1.gguf").string(), (dir / "d1.gguf").string()));
    REQUIRE(write_synth_pair(o, (dir / "t2.gguf").string(), (dir / "d2.gguf").string()));
    o.divergence = 0.6f;
    o.extra_layers = 3;
    REQUIRE(write_synth_pair(o, (dir / "t3.gguf").string(), (dir / "d3.gguf").string()));
    using pylon::test::read_all;
    CHECK(read_all(dir / "t1.gguf") == read_all(dir / "t2.gguf"));
    CHECK(read_all(dir / "d1.gguf") == read_all(dir / "d2.gguf"));
    CHECK(read_all(dir / "d1.gguf") == read_all(dir / "d3.gguf"));
    CHECK(read_all(dir / "t1.gguf") != read_all(dir / "t3.gguf"));
    // Nothing is left behind but the outputs.
    std::size_t n_files = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) {
        ++n_files;
    }
    CHECK(n_files == 6);
}

TEST_CASE("synth pair: greedy agreement is 100% at divergence 0 and falls as it grows",
          "[synth][synth_pair]") {
    pylon::test::TempDir dir;
    const auto rate = [&](GgmlType type, float divergence) {
        const Pair p = write_and_load(tiny_pair(type, divergence), dir);
        const PairAgreement a = agreement(p);
        INFO(type_name(type) << " divergence " << divergence << ": " << a.n_agree << "/"
                             << a.n_steps << ", sampling acceptance " << a.mean_sampling_acceptance
                             << ", draft confidence " << a.mean_draft_confidence);
        CHECK(a.mean_sampling_acceptance > 0.0);
        CHECK(a.mean_sampling_acceptance <= 1.0 + 1e-9);
        CHECK(a.mean_draft_confidence > 0.0);
        return a;
    };
    for (GgmlType type : {GgmlType::F32, GgmlType::Q8_0}) {
        DYNAMIC_SECTION("type " << type_name(type)) {
            const PairAgreement same = rate(type, 0.0f);
            CHECK(same.n_agree == same.n_steps);
            CHECK(same.mean_sampling_acceptance == Approx(1.0));
            const double mid = rate(type, 0.1f).rate();
            const double high = rate(type, 0.3f).rate();
            const double far = rate(type, 1.0f).rate();
            CHECK(mid >= 0.6);
            CHECK(mid <= 0.95);
            CHECK(high < mid);
            CHECK(far < high);
            CHECK(far < 0.4);
        }
    }
}

TEST_CASE("synth pair: the default pair is bandwidth-sized and 8x the draft",
          "[synth][synth_pair]") {
    const SynthPairOptions o;
    CHECK(o.draft_shape == SynthShape::pair_draft());
    CHECK(parse_synth_shape("pairDraft").value() == SynthShape::pair_draft());
    for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0}) {
        INFO(type_name(type));
        SynthOptions d;
        d.shape = o.draft_shape;
        d.type = type;
        SynthOptions t = d;
        t.shape = o.target_shape();
        CHECK(t.shape.n_layer == 22);
        const auto db = estimate_synth_bytes(d);
        const auto tb = estimate_synth_bytes(t);
        REQUIRE(db);
        REQUIRE(tb);
        CHECK(static_cast<double>(*tb) >= 8.0 * static_cast<double>(*db));
        CHECK(*tb >= 150'000'000);  // far past any CPU cache
    }
}

TEST_CASE("synth pair: bad parameters are refused by name and write nothing",
          "[synth][synth_pair]") {
    pylon::test::TempDir dir;
    const std::string t = (dir / "t.gguf").string();
    const std::string d = (dir / "d.gguf").string();
    const auto refuses = [&](const SynthPairOptions& o, pylon::Errc code, std::string_view needle,
                             const std::string& tp, const std::string& dp) {
        auto r = write_synth_pair(o, tp, dp);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == code);
        CHECK_THAT(r.error().what(), Catch::Contains(std::string(needle)));
        CHECK(std::filesystem::is_empty(dir.path()));
    };
    using pylon::Errc;
    const SynthPairOptions good = tiny_pair(GgmlType::Q8_0, 0.1f);
    SynthPairOptions o = good;
    o.draft_shape.tied_output = true;
    refuses(o, Errc::invalid_argument, "untied", t, d);
    o = good;
    o.extra_layers = 0;
    refuses(o, Errc::invalid_argument, "extra_layers", t, d);
    o.extra_layers = 2000;
    refuses(o, Errc::limit_exceeded, "layers", t, d);
    for (float bad : {-0.1f, 101.0f, std::nanf(""), INFINITY}) {
        o = good;
        o.divergence = bad;
        refuses(o, Errc::invalid_argument, "divergence", t, d);
    }
    for (float bad : {0.0f, -1.0f, 2000.0f, std::nanf("")}) {
        o = good;
        o.logit_stddev = bad;
        refuses(o, Errc::invalid_argument, "logit_stddev", t, d);
    }
    o = good;
    o.stddev = 0.0f;
    refuses(o, Errc::invalid_argument, "stddev", t, d);
    o = good;
    o.type = GgmlType::Q4_K;
    refuses(o, Errc::unsupported, "Q4_K", t, d);
    refuses(good, Errc::invalid_argument, "same path", t, t);
    refuses(good, Errc::invalid_argument, "same path", t, (dir / "." / "t.gguf").string());
    o = good;
    o.vocab_from = data_file("stories260K-f32.gguf");  // 512 tokens, the shape has 300
    refuses(o, Errc::invalid_argument, "512 tokens", t, d);
    o = good;
    o.draft_shape = SynthShape::pair_draft();
    o.draft_shape.n_embd = 16384;
    o.draft_shape.n_head = 128;
    o.draft_shape.n_head_kv = 128;
    o.draft_shape.n_ff = 65536;
    o.extra_layers = 60;
    refuses(o, Errc::limit_exceeded, "GiB", t, d);

    SECTION("a target that cannot be written leaves the draft's path untouched") {
        const std::string bad_target = (dir / "missing" / "t.gguf").string();
        auto r = write_synth_pair(good, bad_target, d);
        REQUIRE_FALSE(r);
        CHECK(std::filesystem::is_empty(dir.path()));
    }
}

TEST_CASE("synth pair: a copied vocabulary and measure_greedy_agreement's refusals",
          "[synth][synth_pair]") {
    pylon::test::TempDir dir;
    SynthPairOptions o = tiny_pair(GgmlType::Q4_0, 0.1f);
    o.draft_shape.n_vocab = 512;
    o.vocab_from = data_file("stories260K-f32.gguf");
    const Pair p = write_and_load(o, dir);
    CHECK(p.target->hparams().n_vocab == 512);
    CHECK(p.draft->gguf().find("tokenizer.ggml.tokens") != nullptr);

    const std::vector<std::vector<std::int32_t>> empty = {{}};
    CHECK(measure_greedy_agreement(p.target, p.draft, empty, 4).error().code() ==
          pylon::Errc::invalid_argument);
    const std::vector<std::vector<std::int32_t>> one = {{1, 2, 3}};
    CHECK(measure_greedy_agreement(p.target, p.draft, one, 1000).error().code() ==
          pylon::Errc::invalid_argument);
    const std::vector<std::vector<std::int32_t>> outside = {{1, 600}};
    CHECK_FALSE(measure_greedy_agreement(p.target, p.draft, outside, 4));

    const Pair other = write_and_load(tiny_pair(GgmlType::Q4_0, 0.1f), dir, "300");
    CHECK(measure_greedy_agreement(p.target, other.draft, one, 4).error().code() ==
          pylon::Errc::invalid_argument);
}
