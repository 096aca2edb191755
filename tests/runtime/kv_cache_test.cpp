// The KV budget of a Context: budget -> capacity arithmetic, eviction by attention sinks + recent
// window (values moved bit for bit, keys re-rotated to their new positions as a fresh evaluation
// would give them), pages returned to the kernel (mincore and RSS), eval refusing tokens past the
// capacity, and generation going on after eviction and after the budget recovers.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "pylon/common/error.h"
#include "pylon/runtime/context.h"
#include "pylon/runtime/fp16.h"
#include "pylon/runtime/model.h"
#include "pylon/runtime/synth.h"
#include "temp_dir.h"

using namespace pylon::runtime;

namespace {

std::shared_ptr<const Model> stories() {
    auto m = Model::load(std::string(PYLON_TEST_DATA) + "/runtime/stories260K-f16.gguf");
    REQUIRE(m);
    return *m;
}

std::vector<std::int32_t> tokens(std::size_t n, std::uint32_t n_vocab, std::uint32_t seed) {
    std::vector<std::int32_t> out;
    std::uint32_t x = seed * 2654435761u + 1;
    for (std::size_t i = 0; i < n; ++i) {
        x = x * 1664525u + 1013904223u;
        out.push_back(static_cast<std::int32_t>((x >> 8) % n_vocab));
    }
    return out;
}

struct Kv {
    std::vector<std::uint16_t> k, v;
};

Kv read(const Context& ctx, std::uint32_t layer, std::uint32_t pos) {
    const std::size_t kvd = ctx.model().hparams().kv_dim();
    Kv out{std::vector<std::uint16_t>(kvd), std::vector<std::uint16_t>(kvd)};
    REQUIRE(ctx.read_kv(layer, pos, out.k, out.v));
    return out;
}

std::size_t rss_bytes() {
    std::ifstream f("/proc/self/statm");
    std::size_t size = 0, resident = 0;
    f >> size >> resident;
    return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

TEST_CASE("kv budget: capacity from bytes, in whole blocks, clamped", "[kv]") {
    auto model = stories();
    ContextParams cp;
    cp.n_ctx = 512;
    auto ctx = Context::create(model, cp).value();
    const auto& hp = model->hparams();
    // stories260K: kv_dim 32 -> 64 bytes of K per position and layer: 64 positions per 4 KiB page.
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t row = 2 * hp.kv_dim();
    CHECK(ctx->kv_block() % 32 == 0);
    CHECK(ctx->kv_block() * row % page == 0);
    if (page == 4096) CHECK(ctx->kv_block() == 64);
    CHECK(ctx->kv_bytes_per_position() == 4 * hp.n_layer * hp.kv_dim());
    CHECK(ctx->kv_budget() == Context::kKvUnlimited);
    CHECK(ctx->kv_capacity() == 512);

    const std::size_t bpp = ctx->kv_bytes_per_position();
    const std::uint32_t block = ctx->kv_block();
    ctx->set_kv_budget(bpp * (3 * block + block / 2));  // rounds down to whole blocks
    CHECK(ctx->kv_capacity() == 3 * block);
    ctx->set_kv_budget(bpp * 100000);  // more than n_ctx needs
    CHECK(ctx->kv_capacity() == 512);
    // Too small (even 0) is clamped to the floor: the sinks + 16, in whole blocks.
    ctx->set_kv_budget(0);
    CHECK(ctx->kv_budget() == 0);
    CHECK(ctx->kv_capacity() == ctx->kv_min_capacity());
    CHECK(ctx->kv_min_capacity() == block);
    CHECK(ctx->kv_min_bytes() == block * bpp);

    SECTION("too many sinks are refused") {
        ContextParams bad = cp;
        bad.kv_sinks = 5000;
        auto r = Context::create(model, bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == pylon::Errc::invalid_argument);
    }
    SECTION("an initial budget sizes the layout") {
        ContextParams small = cp;
        small.kv_budget = bpp * 2 * block;
        auto c2 = Context::create(model, small).value();
        CHECK(c2->kv_capacity() == 2 * block);
        auto ids = tokens(2 * block + 1, hp.n_vocab, 3);
        auto r = c2->eval(ids);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == pylon::Errc::limit_exceeded);
        CHECK(c2->n_past() == 0);
        ids.pop_back();
        REQUIRE(c2->eval(ids));
        CHECK(c2->n_past() == 2 * block);
    }
}

TEST_CASE("kv budget: eviction keeps sinks and the recent window, re-rotates keys", "[kv]") {
    auto model = stories();
    const auto& hp = model->hparams();
    ContextParams cp;
    cp.n_ctx = 512;
    cp.n_threads = GENERATE(1, 2);
    auto ctx = Context::create(model, cp).value();
    const auto ids = tokens(300, hp.n_vocab, 11);
    REQUIRE(ctx->eval(ids));
    REQUIRE(ctx->n_past() == 300);
    std::vector<Kv> before;
    for (std::uint32_t p = 0; p < 300; ++p) before.push_back(read(*ctx, 0, p));
    std::vector<Kv> before_last;  // the last layer too: V moves alike everywhere
    for (std::uint32_t p = 0; p < 300; ++p) before_last.push_back(read(*ctx, hp.n_layer - 1, p));

    const std::uint32_t cap = 2 * ctx->kv_block();  // 128
    ctx->set_kv_budget(cap * ctx->kv_bytes_per_position());
    // Not applied yet: eval already refuses, the cache is untouched.
    auto refused = ctx->eval(tokens(1, hp.n_vocab, 1));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code() == pylon::Errc::limit_exceeded);
    CHECK(ctx->n_past() == 300);

    const std::uint32_t evicted = ctx->apply_kv_budget();
    CHECK(evicted == 300 - cap);
    CHECK(ctx->n_past() == cap);
    const KvStats st = ctx->kv_stats();
    CHECK(st.evictions == 1);
    CHECK(st.tokens_evicted == 300 - cap);
    CHECK(st.shrinks == 1);

    const std::uint32_t s = ctx->kv_sinks();
    REQUIRE(s == 4);
    const std::uint32_t first_recent = 300 - (cap - s);
    for (std::uint32_t p = 0; p < cap; ++p) {
        const std::uint32_t src = p < s ? p : first_recent + (p - s);
        CAPTURE(p, src);
        const Kv now = read(*ctx, 0, p);
        REQUIRE(now.v == before[src].v);  // values move bit for bit
        REQUIRE(read(*ctx, hp.n_layer - 1, p).v == before_last[src].v);
        if (p < s) REQUIRE(now.k == before[src].k);  // sinks stay where they are
    }

    // Layer 0's key depends only on the token and its position: evaluating the kept tokens
    // afresh gives the keys the moved ones must now equal, up to two half roundings.
    std::vector<std::int32_t> kept(ids.begin(), ids.begin() + s);
    kept.insert(kept.end(), ids.begin() + first_recent, ids.end());
    REQUIRE(kept.size() == cap);
    auto fresh = Context::create(model, cp).value();
    REQUIRE(fresh->eval(kept));
    double max_err = 0, max_unrotated = 0;
    for (std::uint32_t p = s; p < cap; ++p) {
        const Kv now = read(*ctx, 0, p);
        const Kv want = read(*fresh, 0, p);
        const Kv& old = before[first_recent + (p - s)];
        for (std::size_t i = 0; i < now.k.size(); ++i) {
            // Rounding errors scale with the rotated pair's length.
            const std::size_t i0 = i & ~std::size_t{1};
            const double w = fp16_to_fp32(want.k[i]);
            const double len = std::hypot(fp16_to_fp32(want.k[i0]), fp16_to_fp32(want.k[i0 + 1]));
            const double tol = 4e-3 * std::max(1.0, len);
            max_err = std::max(max_err, std::fabs(fp16_to_fp32(now.k[i]) - w) / tol);
            max_unrotated = std::max(max_unrotated, std::fabs(fp16_to_fp32(old.k[i]) - w) / tol);
        }
    }
    CHECK(max_err <= 1.0);
    CHECK(max_unrotated > 10.0);  // without the re-rotation the keys would be far off

    // Generation goes on in the room that shift() makes.
    auto full = ctx->eval(tokens(1, hp.n_vocab, 2));
    REQUIRE_FALSE(full);
    CHECK(full.error().code() == pylon::Errc::limit_exceeded);
    CHECK(ctx->shift(cap / 2) == cap - s - cap / 2);
    CHECK(ctx->n_past() == s + cap / 2);
    for (const std::int32_t t : tokens(20, hp.n_vocab, 5)) {
        auto logits = ctx->eval(std::span<const std::int32_t>(&t, 1));
        REQUIRE(logits);
        for (const float x : *logits) REQUIRE(std::isfinite(x));
    }
    CHECK(ctx->n_past() == s + cap / 2 + 20);
}

TEST_CASE("kv budget: shift() on demand and growth when the budget recovers", "[kv]") {
    auto model = stories();
    const auto& hp = model->hparams();
    ContextParams cp;
    cp.n_ctx = 512;
    auto ctx = Context::create(model, cp).value();
    const auto ids = tokens(200, hp.n_vocab, 21);
    REQUIRE(ctx->eval(ids));
    CHECK(ctx->shift(500) == 0);  // nothing to evict
    const Kv last = read(*ctx, 2, 199);
    CHECK(ctx->shift(100) == 96);
    CHECK(ctx->n_past() == 104);
    CHECK(read(*ctx, 2, 103).v == last.v);
    CHECK(ctx->kv_stats().shrinks == 0);  // same capacity: no layout change

    // Shrink (no eviction needed: 104 <= 128), then let the budget recover: the layout grows only
    // when eval needs the room, keeping every cached value.
    ctx->set_kv_budget(2 * ctx->kv_block() * ctx->kv_bytes_per_position());
    CHECK(ctx->apply_kv_budget() == 0);
    CHECK(ctx->kv_stats().shrinks == 1);
    std::vector<Kv> cached;
    for (std::uint32_t p = 0; p < 104; ++p) cached.push_back(read(*ctx, 3, p));
    ctx->set_kv_budget(Context::kKvUnlimited);
    CHECK(ctx->apply_kv_budget() == 0);
    CHECK(ctx->kv_stats().grows == 0);
    REQUIRE(ctx->eval(tokens(20, hp.n_vocab, 8)));  // 124 <= 128: still the small layout
    CHECK(ctx->kv_stats().grows == 0);
    REQUIRE(ctx->eval(tokens(100, hp.n_vocab, 9)));  // 224: grows
    CHECK(ctx->kv_stats().grows == 1);
    for (std::uint32_t p = 0; p < 104; ++p) REQUIRE(read(*ctx, 3, p).v == cached[p].v);
    CHECK(ctx->n_past() == 224);
}

TEST_CASE("kv budget: a shrunk cache returns its pages to the kernel", "[kv]") {
    pylon::test::TempDir dir;
    SynthOptions o;
    // Wide K/V (kv_dim 512, 8 layers), tiny FFN and vocabulary: 20 MiB of KV for 512 positions.
    o.shape =
        parse_synth_shape("dim=512,ffn=32,layers=8,heads=4,kv_heads=4,vocab=260,ctx=2048").value();
    o.type = GgmlType::F16;
    o.seed = 3;
    const std::string path = (dir / "wide.gguf").string();
    REQUIRE(write_synth_model(o, path));
    auto model = Model::load(path).value();
    ContextParams cp;
    cp.n_ctx = 2048;
    cp.n_threads = 2;
    auto ctx = Context::create(model, cp).value();
    const std::size_t before_eval = ctx->kv_resident_bytes();
    REQUIRE(ctx->eval(tokens(512, 260, 4)));
    const std::size_t filled = ctx->kv_resident_bytes();
    const std::size_t rss_filled = rss_bytes();
    INFO("resident KV: empty " << before_eval << ", filled " << filled);
    // K: 512 positions x 1 KiB per layer; V: 512 rows of one 4 KiB page (stride 2048) per layer.
    CHECK(filled >= before_eval + (std::size_t{18} << 20));

    ctx->set_kv_budget(128 * ctx->kv_bytes_per_position());
    REQUIRE(ctx->kv_capacity() == 128);
    CHECK(ctx->apply_kv_budget() == 512 - 128);
    const std::size_t shrunk = ctx->kv_resident_bytes();
    const std::size_t rss_shrunk = rss_bytes();
    INFO("resident KV shrunk: " << shrunk << "; RSS " << rss_filled << " -> " << rss_shrunk);
    // 128 positions: 128 KiB of K and 128 KiB of V per layer, 2 MiB in all.
    CHECK(shrunk <= (std::size_t{2} << 20) + 16 * 4096);
    CHECK(ctx->kv_stats().bytes_released >= filled - shrunk - 16 * 4096);
    CHECK(static_cast<long long>(rss_filled) - static_cast<long long>(rss_shrunk) >= 16ll << 20);
    // And it still runs.
    CHECK(ctx->shift(64) == 128 - 4 - 64);
    REQUIRE(ctx->eval(tokens(8, 260, 6)));
}
