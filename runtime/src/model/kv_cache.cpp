// The KV budget of a Context: block size, capacity from a byte budget, eviction by the
// attention-sinks + recent-window policy with RoPE re-positioning, re-striding of the transposed
// V cache, and returning pages to the kernel.
//
// Layout (per layer, see forward_buffers.h): K is [position][kv_dim] halves, so positions
// [0, cap) are one prefix of the mapping; V is transposed, [kv_dim][v_stride] halves with
// v_stride = cap rounded up to 32 (and off powers of two: Buffers::v_stride_for), so the rows of a smaller capacity sit closer together and
// [kv_dim * v_stride, end) is one suffix. A block (kv_block()) is a multiple of 32 positions whose
// K rows fill whole pages; capacities are whole blocks (or n_ctx), so both tails start on page
// boundaries (V's rounded up to one) and madvise(MADV_DONTNEED) returns them to the kernel.
//
// Eviction keeps positions [0, s) (the sinks) and [n - w, n) (the recent window), moving the
// latter to [s, s + w). A key at position p carries the rotation of p; moved by -delta it is
// re-rotated like llama.cpp's K-shift: halves to floats, rotated by the angles of position
// -delta (computed as the forward pass computes a position's angles), rounded to half. V needs
// no rotation.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>

#include "model/forward_buffers.h"
#include "pylon/common/error.h"
#include "pylon/common/log.h"

namespace pylon::runtime {
namespace {

std::size_t page_size() noexcept {
    static const std::size_t p = [] {
        const long v = ::sysconf(_SC_PAGESIZE);
        return v > 0 ? static_cast<std::size_t>(v) : std::size_t{4096};
    }();
    return p;
}

std::size_t round_up(std::size_t x, std::size_t m) noexcept {
    return (x + m - 1) / m * m;
}

// Resident bytes of [base + from, base + to) (page-aligned from; base is a mapping's start).
std::size_t resident(const void* base, std::size_t from, std::size_t to) noexcept {
    const std::size_t ps = page_size();
    if (base == nullptr || to <= from) return 0;
    auto* p = static_cast<unsigned char*>(const_cast<void*>(base)) + from;
    const std::size_t pages = (to - from + ps - 1) / ps;
    unsigned char vec[1024];
    std::size_t n_resident = 0;
    for (std::size_t p0 = 0; p0 < pages; p0 += sizeof vec) {
        const std::size_t n = std::min(sizeof vec, pages - p0);
        if (::mincore(p + p0 * ps, n * ps, vec) != 0) return 0;
        for (std::size_t i = 0; i < n; ++i) n_resident += vec[i] & 1u;
    }
    return n_resident * ps;
}

// Returns [round_up(from), size) of a mapping to the kernel; the resident bytes it held.
std::size_t release_tail(const PageBuffer& buf, std::size_t from) noexcept {
    const std::size_t start = round_up(from, page_size());
    const std::size_t end = round_up(buf.size(), page_size());
    if (buf.size() == 0 || start >= end) return 0;
    const std::size_t held = resident(buf.as<void>(), start, end);
    if (::madvise(buf.as<char>() + start, end - start, MADV_DONTNEED) != 0) return 0;
    return held;
}

std::string mib(std::size_t bytes) {
    return std::to_string(bytes / (1024 * 1024)) + "." +
           std::to_string(bytes % (1024 * 1024) * 10 / (1024 * 1024)) + " MiB";
}

}  // namespace

void Context::init_kv(const ContextParams& params) {
    const std::size_t row = 2 * static_cast<std::size_t>(model_->hparams().kv_dim());
    const std::size_t per_page = page_size() / std::gcd(page_size(), row);
    kv_block_ = static_cast<std::uint32_t>(
        std::min<std::size_t>(std::lcm<std::size_t>(32, per_page), std::size_t{1} << 22));
    n_sinks_ = params.kv_sinks;
    kv_budget_.store(params.kv_budget, std::memory_order_relaxed);
    const std::uint32_t cap = kv_capacity();
    if (cap < buf_->kv_cap) {  // nothing cached yet: only the layout changes
        buf_->kv_cap = cap;
        buf_->v_stride = Buffers::v_stride_for(cap);
    }
}

void Context::set_kv_budget(std::size_t bytes) noexcept {
    kv_budget_.store(bytes, std::memory_order_relaxed);
}

std::size_t Context::kv_bytes_per_position() const noexcept {
    const LlamaHparams& hp = model_->hparams();
    return 2 * sizeof(std::uint16_t) * static_cast<std::size_t>(hp.n_layer) * hp.kv_dim();
}

std::uint32_t Context::kv_min_capacity() const noexcept {
    const std::size_t min = round_up(static_cast<std::size_t>(n_sinks_) + 16, kv_block_);
    return static_cast<std::uint32_t>(std::min<std::size_t>(min, n_ctx_));
}

std::uint32_t Context::capacity_for(std::size_t budget) const noexcept {
    if (budget == kKvUnlimited) return n_ctx_;
    const std::size_t positions = budget / kv_bytes_per_position() / kv_block_ * kv_block_;
    return static_cast<std::uint32_t>(
        std::clamp<std::size_t>(positions, kv_min_capacity(), n_ctx_));
}

std::uint32_t Context::kv_capacity() const noexcept {
    return capacity_for(kv_budget());
}

std::size_t Context::kv_resident_bytes() const noexcept {
    std::size_t total = 0;
    for (const auto* caches : {&buf_->k_cache, &buf_->v_cache}) {
        for (const auto& b : *caches) total += resident(b->as<void>(), 0, b->size());
    }
    return total;
}

KvStats Context::kv_stats() const noexcept {
    KvStats s;
    s.evictions = kv_counters_.evictions.load(std::memory_order_relaxed);
    s.tokens_evicted = kv_counters_.tokens_evicted.load(std::memory_order_relaxed);
    s.shrinks = kv_counters_.shrinks.load(std::memory_order_relaxed);
    s.grows = kv_counters_.grows.load(std::memory_order_relaxed);
    s.bytes_released = kv_counters_.bytes_released.load(std::memory_order_relaxed);
    return s;
}

Result<void> Context::reserve_kv(std::size_t n) {
    if (n > n_ctx_ - n_past_) {
        return Error(Errc::limit_exceeded, "context full: " + std::to_string(n_past_) + " + " +
                                               std::to_string(n) + " tokens exceed n_ctx " +
                                               std::to_string(n_ctx_));
    }
    const std::uint32_t cap = kv_capacity();
    if (n_past_ > cap || n > cap - n_past_) {
        return Error(Errc::limit_exceeded,
                     "KV budget full: " + std::to_string(n_past_) + " + " + std::to_string(n) +
                         " tokens exceed the capacity of " + std::to_string(cap) +
                         " positions that the budget of " + std::to_string(kv_budget()) +
                         " bytes allows (apply_kv_budget() or shift() first)");
    }
    // The budget rose since the layout was last made: grow it now that the room is needed
    // (growing earlier would spread the V rows over more pages for nothing).
    if (n_past_ + n > buf_->kv_cap) relayout(cap, n_past_);
    return {};
}

std::uint32_t Context::apply_kv_budget() {
    const std::uint32_t cap = kv_capacity();
    if (cap >= buf_->kv_cap) return 0;  // growth happens when eval needs the room
    const std::uint32_t s = std::min(n_sinks_, n_past_);
    return relayout(cap, n_past_ > cap ? cap - s : n_past_);
}

std::uint32_t Context::shift(std::uint32_t n_keep_recent) {
    return relayout(buf_->kv_cap, n_keep_recent);
}

std::uint32_t Context::relayout(std::uint32_t new_cap, std::uint32_t keep_recent) {
    Buffers& b = *buf_;
    const LlamaHparams& hp = model_->hparams();
    const std::size_t kvd = hp.kv_dim();
    const std::uint32_t n_old = n_past_;
    const std::uint32_t s = std::min(n_sinks_, n_old);
    const std::uint32_t w = std::min(keep_recent, n_old - s);
    const std::uint32_t evicted = n_old - s - w;
    const std::uint32_t n_new = s + w;
    const std::uint32_t old_cap = b.kv_cap;
    const std::size_t old_stride = b.v_stride;
    const std::size_t new_stride = Buffers::v_stride_for(new_cap);
    if (evicted == 0 && new_cap == old_cap) return 0;
    const std::size_t src_r = n_old - w;  // first position of the recent window

    // RoPE angles of position -evicted: rotating a key by them moves it back `evicted` places.
    std::vector<float> cs(hp.n_rot);
    std::vector<double> cd(hp.n_rot);
    if (evicted > 0) {
        const float theta_scale = std::pow(hp.rope_freq_base, -2.0f / static_cast<float>(hp.n_rot));
        float theta = -static_cast<float>(evicted);
        for (std::uint32_t i0 = 0; i0 < hp.n_rot; i0 += 2) {
            cs[i0] = std::cos(theta);
            cs[i0 + 1] = std::sin(theta);
            theta *= theta_scale;
        }
        std::copy(cs.begin(), cs.end(), cd.begin());
    }

    const kernels::Kernels& kern = *kernels_;
    auto move_layer = [&](std::uint32_t il, float* row) {
        std::uint16_t* kc = b.k_cache[il]->as<std::uint16_t>();
        if (evicted > 0) {
            std::memmove(kc + s * kvd, kc + src_r * kvd, w * kvd * sizeof(std::uint16_t));
            for (std::size_t p = s; p < n_new; ++p) {
                // Whole rows through the kernels' conversions (same rounding as the scalar ones).
                kern.f16_to_f32(kc + p * kvd, row, kvd);
                for (std::uint32_t h = 0; h < hp.n_head_kv; ++h) {
                    float* head = row + h * hp.head_dim;
                    // In double (products exact) and rounded once: within an ulp of the
                    // fused form the forward pass uses, far below the half rounding that follows,
                    // and without a libm fma call per element on the generic build.
                    for (std::uint32_t i0 = 0; i0 < hp.n_rot; i0 += 2) {
                        const double x0 = head[i0], x1 = head[i0 + 1];
                        head[i0] = static_cast<float>(x0 * cd[i0] - x1 * cd[i0 + 1]);
                        head[i0 + 1] = static_cast<float>(x0 * cd[i0 + 1] + x1 * cd[i0]);
                    }
                }
                kern.f32_to_f16(row, kc + p * kvd, kvd);
            }
        }
        // V rows: each row's kept positions go to the start of its new place. Shrinking, rows
        // move towards the start (walk forward, sinks before the window); growing, towards the
        // end (walk backward, window before the sinks): no move overwrites a source still unread.
        std::uint16_t* vc = b.v_cache[il]->as<std::uint16_t>();
        const std::size_t pad = round_up(n_new, 32);
        auto move_row = [&](std::size_t e) {
            const std::uint16_t* src = vc + e * old_stride;
            std::uint16_t* dst = vc + e * new_stride;
            const std::size_t bytes_s = s * sizeof(std::uint16_t);
            const std::size_t bytes_w = w * sizeof(std::uint16_t);
            if (new_stride <= old_stride) {
                std::memmove(dst, src, bytes_s);
                std::memmove(dst + s, src + src_r, bytes_w);
            } else {
                std::memmove(dst + s, src + src_r, bytes_w);
                std::memmove(dst, src, bytes_s);
            }
            // The P·V dot reads up to n rounded to 32: keep that padding finite.
            std::fill(dst + n_new, dst + pad, std::uint16_t{0});
        };
        if (new_stride <= old_stride) {
            for (std::size_t e = 0; e < kvd; ++e) move_row(e);
        } else {
            for (std::size_t e = kvd; e-- > 0;) move_row(e);
        }
    };
    std::vector<float> rows(static_cast<std::size_t>(pool_.size()) * kvd);
    if (pool_.size() == 1) {
        for (std::uint32_t il = 0; il < hp.n_layer; ++il) move_layer(il, rows.data());
    } else {
        pool_.run([&](int ith, int n) {
            const auto [l0, l1] = ThreadPool::split(hp.n_layer, ith, n);
            float* row = rows.data() + static_cast<std::size_t>(ith) * kvd;
            for (std::size_t il = l0; il < l1; ++il)
                move_layer(static_cast<std::uint32_t>(il), row);
        });
    }

    std::size_t released = 0;
    if (new_cap < old_cap) {
        for (std::uint32_t il = 0; il < hp.n_layer; ++il) {
            released += release_tail(*b.k_cache[il], new_cap * kvd * sizeof(std::uint16_t));
            released += release_tail(*b.v_cache[il], kvd * new_stride * sizeof(std::uint16_t));
        }
    }
    b.v_stride = new_stride;
    b.kv_cap = new_cap;
    n_past_ = n_new;

    if (evicted > 0) {
        kv_counters_.evictions.fetch_add(1, std::memory_order_relaxed);
        kv_counters_.tokens_evicted.fetch_add(evicted, std::memory_order_relaxed);
    }
    if (new_cap < old_cap) kv_counters_.shrinks.fetch_add(1, std::memory_order_relaxed);
    if (new_cap > old_cap) kv_counters_.grows.fetch_add(1, std::memory_order_relaxed);
    kv_counters_.bytes_released.fetch_add(released, std::memory_order_relaxed);
    if (new_cap != old_cap) {
        log::info(
            "kv cache: capacity {} -> {} positions; evicted {} (kept {} sinks + {} recent); "
            "released {}",
            old_cap, new_cap, evicted, s, w, mib(released));
    } else {
        log::debug("kv cache: shift evicted {} positions (kept {} sinks + {} recent)", evicted, s,
                   w);
    }
    return evicted;
}

Result<void> Context::read_kv(std::uint32_t layer, std::uint32_t pos, std::span<std::uint16_t> k,
                              std::span<std::uint16_t> v) const {
    const std::size_t kvd = model_->hparams().kv_dim();
    if (layer >= model_->hparams().n_layer) {
        return Error(Errc::invalid_argument, "layer " + std::to_string(layer) + " out of range");
    }
    if (pos >= n_past_) {
        return Error(Errc::invalid_argument, "position " + std::to_string(pos) +
                                                 " is not cached (n_past " +
                                                 std::to_string(n_past_) + ")");
    }
    if (k.size() != kvd || v.size() != kvd) {
        return Error(Errc::invalid_argument,
                     "spans must hold kv_dim = " + std::to_string(kvd) + " halves");
    }
    const std::uint16_t* kc = buf_->k_cache[layer]->as<std::uint16_t>();
    const std::uint16_t* vc = buf_->v_cache[layer]->as<std::uint16_t>();
    std::copy_n(kc + pos * kvd, kvd, k.data());
    for (std::size_t e = 0; e < kvd; ++e) v[e] = vc[e * buf_->v_stride + pos];
    return {};
}

}  // namespace pylon::runtime
