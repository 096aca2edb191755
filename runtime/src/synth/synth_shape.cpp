// SynthShape: presets, the "key=value,..." shape syntax, and the limits a shape must respect.
#include <charconv>
#include <map>
#include <vector>

#include "pylon/common/error.h"
#include "pylon/runtime/synth.h"

namespace pylon::runtime {
namespace {

// The same bounds Model::load applies, so every shape we accept also loads.
constexpr std::uint64_t kMaxEmbd = 1 << 16;
constexpr std::uint64_t kMaxFf = 1 << 18;
constexpr std::uint64_t kMaxLayers = 1024;
constexpr std::uint64_t kMaxHeads = 1024;
constexpr std::uint64_t kMaxVocab = 1 << 21;
constexpr std::uint64_t kMaxCtx = 1 << 22;
constexpr std::uint32_t kDefaultCtx = 2048;

std::optional<SynthShape> find_preset(std::string_view name) {
    if (name == "synth110M") return SynthShape::synth110M();
    if (name == "stories260K") return SynthShape::stories260K();
    if (name == "pairDraft") return SynthShape::pair_draft();
    return std::nullopt;
}

std::vector<std::string_view> split(std::string_view text, char sep) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    while (true) {
        const std::size_t pos = text.find(sep, start);
        out.push_back(text.substr(start, pos - start));
        if (pos == std::string_view::npos) return out;
        start = pos + 1;
    }
}

Error bad_shape(std::string msg) {
    return Error(Errc::invalid_argument, "shape: " + msg);
}

Result<void> check_range(std::string_view what, std::uint64_t v, std::uint64_t max) {
    if (v == 0 || v > max) {
        return Error(Errc::limit_exceeded, "shape: " + std::string(what) + " = " +
                                               std::to_string(v) + " is outside 1.." +
                                               std::to_string(max));
    }
    return {};
}

}  // namespace

std::uint64_t SynthShape::n_params() const noexcept {
    const std::uint64_t e = n_embd;
    const std::uint64_t kv = std::uint64_t{n_head_kv} * head_dim();
    const std::uint64_t per_layer = 2 * e + 2 * e * e + 2 * e * kv + 3 * e * n_ff;
    const std::uint64_t io = e * n_vocab * (tied_output ? 1 : 2) + e;
    return io + per_layer * n_layer;
}

Result<void> validate_synth_shape(const SynthShape& s) {
    PYLON_TRY(check_range("dim", s.n_embd, kMaxEmbd));
    PYLON_TRY(check_range("ffn", s.n_ff, kMaxFf));
    PYLON_TRY(check_range("layers", s.n_layer, kMaxLayers));
    PYLON_TRY(check_range("heads", s.n_head, kMaxHeads));
    PYLON_TRY(check_range("kv_heads", s.n_head_kv, kMaxHeads));
    PYLON_TRY(check_range("vocab", s.n_vocab, kMaxVocab));
    PYLON_TRY(check_range("ctx", s.n_ctx, kMaxCtx));
    if (s.n_embd % s.n_head != 0) {
        return bad_shape("dim " + std::to_string(s.n_embd) + " is not a multiple of heads " +
                         std::to_string(s.n_head));
    }
    if (s.n_head % s.n_head_kv != 0) {
        return bad_shape("heads " + std::to_string(s.n_head) + " is not a multiple of kv_heads " +
                         std::to_string(s.n_head_kv));
    }
    if (s.head_dim() % 2 != 0) {
        return bad_shape("head dimension dim/heads = " + std::to_string(s.head_dim()) +
                         " must be even (RoPE rotates pairs)");
    }
    return {};
}

Result<SynthShape> parse_synth_shape(std::string_view text) {
    if (text.empty()) return bad_shape("empty (give a preset or dim=...,ffn=...)");
    std::vector<std::string_view> items = split(text, ',');
    SynthShape s;
    bool from_preset = false;
    if (items.front().find('=') == std::string_view::npos && items.front() != "tied") {
        const auto preset = find_preset(items.front());
        if (!preset) {
            return bad_shape("unknown preset '" + std::string(items.front()) +
                             "' (known: synth110M, stories260K, pairDraft)");
        }
        s = *preset;
        from_preset = true;
        items.erase(items.begin());
    }
    const std::map<std::string_view, std::uint32_t SynthShape::*> keys = {
        {"dim", &SynthShape::n_embd},         {"ffn", &SynthShape::n_ff},
        {"layers", &SynthShape::n_layer},     {"heads", &SynthShape::n_head},
        {"kv_heads", &SynthShape::n_head_kv}, {"vocab", &SynthShape::n_vocab},
        {"ctx", &SynthShape::n_ctx},
    };
    std::map<std::string_view, bool> seen;
    for (std::string_view item : items) {
        if (item == "tied") {
            if (seen["tied"]) return bad_shape("'tied' given twice");
            seen["tied"] = true;
            s.tied_output = true;
            continue;
        }
        const std::size_t eq = item.find('=');
        if (eq == std::string_view::npos) {
            return bad_shape("item '" + std::string(item) + "' is not key=value");
        }
        const std::string_view key = item.substr(0, eq);
        const std::string_view val = item.substr(eq + 1);
        const auto it = keys.find(key);
        if (it == keys.end()) {
            return bad_shape("unknown key '" + std::string(key) +
                             "' (known: dim, ffn, layers, heads, kv_heads, vocab, ctx, tied)");
        }
        if (seen[key]) return bad_shape("key '" + std::string(key) + "' given twice");
        seen[key] = true;
        std::uint64_t v = 0;
        const auto [end, ec] = std::from_chars(val.data(), val.data() + val.size(), v);
        if (val.empty() || ec != std::errc() || end != val.data() + val.size() || v > 0xffffffffu) {
            return bad_shape("'" + std::string(item) + "': value is not a number up to 2^32-1");
        }
        s.*(it->second) = static_cast<std::uint32_t>(v);
    }
    if (!from_preset) {
        for (std::string_view key : {"dim", "ffn", "layers", "heads", "vocab"}) {
            if (!seen[key]) return bad_shape("missing key '" + std::string(key) + "'");
        }
        if (!seen["kv_heads"]) s.n_head_kv = s.n_head;
        if (!seen["ctx"]) s.n_ctx = kDefaultCtx;
    }
    PYLON_TRY(validate_synth_shape(s));
    return s;
}

std::string format_synth_shape(const SynthShape& s) {
    std::string out = "dim=" + std::to_string(s.n_embd) + ",ffn=" + std::to_string(s.n_ff) +
                      ",layers=" + std::to_string(s.n_layer) +
                      ",heads=" + std::to_string(s.n_head) +
                      ",kv_heads=" + std::to_string(s.n_head_kv) +
                      ",vocab=" + std::to_string(s.n_vocab) + ",ctx=" + std::to_string(s.n_ctx);
    if (s.tied_output) out += ",tied";
    return out;
}

}  // namespace pylon::runtime
