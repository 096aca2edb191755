// write_synth_model: a random-weight llama GGUF laid out as llama.cpp's llama2c converter and
// llama-quantize write it.
//
// Tensors, in file order (GGUF dims, row length first):
//   token_embd.weight [n_embd, n_vocab]   output_norm.weight [n_embd]
//   output.weight [n_embd, n_vocab]       (absent when tied)
//   blk.N.attn_norm [n_embd], attn_q [n_embd, n_embd], attn_k/attn_v [n_embd, kv_dim],
//   attn_output [n_embd, n_embd], ffn_norm [n_embd], ffn_gate [n_embd, n_ff],
//   ffn_down [n_ff, n_embd], ffn_up [n_embd, n_ff]  (each name ending in ".weight")
//
// Random numbers: row r of tensor T is drawn from xoshiro256+ seeded by splitmix64 from
// (seed, FNV-1a(T's name), r), then Box-Muller in double precision, scaled by stddev and rounded
// to float. So a value depends only on (seed, name, row, column), never on generation order.
// A pair member (synth::Variant) only multiplies some tensors' draws by a constant and sets a
// few more metadata keys (pylon.synth_pair.*), so shared tensors stay bit-identical.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <numbers>
#include <span>
#include <vector>

#include "pylon/common/error.h"
#include "pylon/runtime/gguf.h"
#include "pylon/runtime/gguf_writer.h"
#include "pylon/runtime/quant.h"
#include "pylon/runtime/synth.h"
#include "pylon/runtime/tokenizer.h"
#include "synth/synth_model.h"
#include "synth/synth_vocab.h"

namespace pylon::runtime {
namespace {

constexpr std::uint32_t kAlignment = 32;

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

std::uint64_t fnv1a(std::string_view s) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    return h;
}

// xoshiro256+ (Blackman & Vigna): the top 53 bits are what we use, and they are its good bits.
class Xoshiro {
public:
    explicit Xoshiro(std::uint64_t seed) noexcept {
        for (auto& w : s_) w = splitmix64(seed);
    }
    std::uint64_t next() noexcept {
        const std::uint64_t result = s_[0] + s_[3];
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = (s_[3] << 45) | (s_[3] >> 19);
        return result;
    }
    // Uniform in (0, 1] (never 0, so log() is finite) and in [0, 1).
    double open_unit() noexcept { return static_cast<double>((next() >> 11) + 1) * 0x1p-53; }
    double unit() noexcept { return static_cast<double>(next() >> 11) * 0x1p-53; }

private:
    std::uint64_t s_[4];
};

void fill_normal(Xoshiro& rng, float* out, std::size_t n, double stddev) noexcept {
    constexpr double kTwoPi = 2.0 * std::numbers::pi;
    std::size_t i = 0;
    for (; i + 1 < n; i += 2) {
        const double r = stddev * std::sqrt(-2.0 * std::log(rng.open_unit()));
        const double a = kTwoPi * rng.unit();
        out[i] = static_cast<float>(r * std::cos(a));
        out[i + 1] = static_cast<float>(r * std::sin(a));
    }
    if (i < n) {
        const double r = stddev * std::sqrt(-2.0 * std::log(rng.open_unit()));
        out[i] = static_cast<float>(r * std::cos(kTwoPi * rng.unit()));
    }
}

struct TensorPlan {
    std::string name;
    GgmlType type;
    std::uint64_t cols;  // row length
    std::uint64_t rows;  // 1 for a norm vector
    bool is_norm;
    double scale = 1.0;                 // multiplies the draws (synth::Variant)
    std::optional<double> stddev = {};  // instead of SynthOptions::stddev
};

bool writable(GgmlType t) {
    return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::Q8_0 || t == GgmlType::Q4_0;
}

// llama-quantize's rule for the legacy types: a row that does not fill whole blocks is F16.
GgmlType matrix_type(GgmlType wanted, std::uint64_t cols) {
    return row_bytes(wanted, cols) ? wanted : GgmlType::F16;
}

// general.file_type ("mostly X"), as llama.cpp's llama_ftype numbers it.
std::uint32_t file_type(GgmlType t) {
    switch (t) {
        case GgmlType::F16:
            return 1;
        case GgmlType::Q4_0:
            return 2;
        case GgmlType::Q8_0:
            return 7;
        default:
            return 0;
    }
}

std::vector<TensorPlan> plan_tensors(const SynthOptions& o, const synth::Variant& v = {}) {
    const SynthShape& s = o.shape;
    const std::uint64_t e = s.n_embd;
    const std::uint64_t kv = std::uint64_t{s.n_head_kv} * s.head_dim();
    std::vector<TensorPlan> plan;
    const auto matrix = [&](std::string name, GgmlType t, std::uint64_t cols, std::uint64_t rows) {
        plan.push_back({std::move(name), matrix_type(t, cols), cols, rows, false});
    };
    const auto norm = [&](std::string name) {
        plan.push_back({std::move(name), GgmlType::F32, e, 1, true});
    };
    matrix("token_embd.weight", o.embd_type.value_or(o.type), e, s.n_vocab);
    norm("output_norm.weight");
    if (!s.tied_output) {
        matrix("output.weight", o.output_type.value_or(o.type), e, s.n_vocab);
        plan.back().stddev = v.output_stddev;
    }
    for (std::uint32_t i = 0; i < s.n_layer; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        // The two matrices through which a layer writes to the residual stream.
        const double out_scale = i >= v.first_scaled_layer ? v.layer_scale : 1.0;
        norm(p + "attn_norm.weight");
        matrix(p + "attn_q.weight", o.type, e, e);
        matrix(p + "attn_k.weight", o.type, e, kv);
        matrix(p + "attn_v.weight", o.type, e, kv);
        matrix(p + "attn_output.weight", o.type, e, e);
        plan.back().scale = out_scale;
        norm(p + "ffn_norm.weight");
        matrix(p + "ffn_gate.weight", o.type, e, s.n_ff);
        matrix(p + "ffn_down.weight", o.type, s.n_ff, e);
        plan.back().scale = out_scale;
        matrix(p + "ffn_up.weight", o.type, e, s.n_ff);
    }
    return plan;
}

// Shape, types and stddev: what estimate_synth_bytes needs.
Result<void> check_basic(const SynthOptions& o) {
    PYLON_TRY(validate_synth_shape(o.shape));
    for (const auto& t : {std::optional(o.type), o.output_type, o.embd_type}) {
        if (t && !writable(*t)) {
            return Error(Errc::unsupported, "cannot write tensors of type " +
                                                std::string(type_name(*t)) +
                                                " (F32, F16, Q8_0 and Q4_0 can be written)");
        }
    }
    if (!std::isfinite(o.stddev) || o.stddev <= 0.0f || o.stddev > 1000.0f) {
        return Error(Errc::invalid_argument, "stddev must be in (0, 1000]");
    }
    return {};
}

}  // namespace

Result<void> synth::check_options(const SynthOptions& o) {
    PYLON_TRY(check_basic(o));
    if (o.vocab_from.empty() && o.shape.n_vocab < synth::kMinimalVocab) {
        return Error(Errc::invalid_argument,
                     "vocab=" + std::to_string(o.shape.n_vocab) +
                         " is too small for a generated vocabulary (<unk>, <s>, </s> and 256 "
                         "byte tokens need " +
                         std::to_string(synth::kMinimalVocab) + "); copy a vocabulary instead");
    }
    return {};
}

namespace {

void set_model_metadata(gguf::Writer& w, const SynthOptions& o, const synth::Variant& v) {
    const SynthShape& s = o.shape;
    w.set_string("general.architecture", "llama");
    w.set_string("general.name", v.name.empty() ? "pylon synth " + format_synth_shape(s) : v.name);
    w.set_u32("general.file_type", file_type(o.type));
    w.set_u32("general.alignment", kAlignment);
    w.set_u64("general.seed", o.seed);  // not a llama.cpp key; records how to regenerate
    w.set_u32("llama.context_length", s.n_ctx);
    w.set_u32("llama.embedding_length", s.n_embd);
    w.set_u32("llama.block_count", s.n_layer);
    w.set_u32("llama.feed_forward_length", s.n_ff);
    w.set_u32("llama.attention.head_count", s.n_head);
    w.set_u32("llama.attention.head_count_kv", s.n_head_kv);
    w.set_u32("llama.rope.dimension_count", s.head_dim());
    w.set_f32("llama.rope.freq_base", 10000.0f);
    w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    w.set_u32("llama.vocab_size", s.n_vocab);
    if (v.set_metadata) v.set_metadata(w);
}

Result<void> set_vocab(gguf::Writer& w, const SynthOptions& o) {
    if (o.vocab_from.empty()) return synth::set_minimal_vocab(w, o.shape.n_vocab);
    auto src = gguf::File::open(o.vocab_from);
    if (!src) return std::move(src).error().with_context("vocabulary source " + o.vocab_from);
    auto tok = Tokenizer::from_gguf(**src);
    if (!tok) return std::move(tok).error().with_context("vocabulary source " + o.vocab_from);
    if (static_cast<std::uint64_t>(tok->n_vocab()) != o.shape.n_vocab) {
        return Error(Errc::invalid_argument,
                     "vocabulary source " + o.vocab_from + " has " +
                         std::to_string(tok->n_vocab()) +
                         " tokens but the shape has vocab=" + std::to_string(o.shape.n_vocab));
    }
    return w.copy_metadata(**src, "tokenizer.");
}

// Fills a tensor row by row; `scratch` holds one row of floats and is shared by the tensors of
// one write (they are filled one after another).
void fill_tensor(const TensorPlan& t, std::uint64_t tensor_seed, double stddev,
                 std::vector<float>& scratch, std::span<std::byte> out) {
    const std::size_t stride = *row_bytes(t.type, t.cols);
    scratch.resize(t.cols);
    for (std::uint64_t r = 0; r < t.rows; ++r) {
        if (t.is_norm) {
            std::fill(scratch.begin(), scratch.end(), 1.0f);
        } else {
            std::uint64_t row_state = tensor_seed ^ (r * 0xd1b54a32d192ed03ull);
            Xoshiro rng(splitmix64(row_state));
            fill_normal(rng, scratch.data(), t.cols, stddev);
            if (t.scale != 1.0) {
                for (float& x : scratch) x = static_cast<float>(x * t.scale);
            }
        }
        // Types were checked when planning, so quantize_row cannot refuse.
        quantize_row(t.type, scratch.data(), out.data() + r * stride, t.cols);
    }
}

std::uint64_t plan_bytes(const std::vector<TensorPlan>& plan) {
    std::uint64_t total = 0;
    for (const TensorPlan& t : plan) {
        const std::uint64_t n = *row_bytes(t.type, t.cols) * t.rows;
        total += (n + kAlignment - 1) / kAlignment * kAlignment;
    }
    return total;
}

}  // namespace

std::optional<std::uint64_t> estimate_synth_bytes(const SynthOptions& o) {
    if (!check_basic(o)) return std::nullopt;
    const auto plan = plan_tensors(o);
    // Header: about 64 bytes per tensor info, and per token its piece, score and type.
    const std::uint64_t header = 4096 + 64 * plan.size() + std::uint64_t{o.shape.n_vocab} * 24;
    return plan_bytes(plan) + header;
}

Result<SynthReport> write_synth_model(const SynthOptions& o, const std::string& path) {
    return synth::write_model(o, {}, path);
}

Result<SynthReport> synth::write_model(const SynthOptions& o, const Variant& v,
                                       const std::string& path) {
    const auto start = std::chrono::steady_clock::now();
    PYLON_TRY(check_options(o));
    const std::uint64_t estimate = *estimate_synth_bytes(o);
    if (estimate > kSynthMaxBytes && !o.force) {
        return Error(Errc::limit_exceeded,
                     "the model would be about " + std::to_string((estimate + (1 << 29)) >> 30) +
                         " GiB, more than the " + std::to_string(kSynthMaxBytes >> 30) +
                         " GiB limit (force, --force in the CLI, writes it anyway)");
    }

    gguf::Writer w;
    set_model_metadata(w, o, v);
    PYLON_TRY(set_vocab(w, o));

    const auto plan = plan_tensors(o, v);
    auto scratch = std::make_shared<std::vector<float>>();
    SynthReport report;
    for (const TensorPlan& t : plan) {
        std::uint64_t seed_state = o.seed ^ fnv1a(t.name);
        const std::uint64_t tensor_seed = splitmix64(seed_state);
        const double stddev = t.stddev.value_or(o.stddev);
        std::vector<std::uint64_t> dims = {t.cols};
        if (!t.is_norm) dims.push_back(t.rows);
        PYLON_TRY(w.add_tensor(t.name, t.type, std::move(dims),
                               [t, tensor_seed, stddev, scratch](std::span<std::byte> out) {
                                   fill_tensor(t, tensor_seed, stddev, *scratch, out);
                               }));
        report.n_params += t.cols * t.rows;
    }
    report.n_tensors = plan.size();
    PYLON_TRY(w.write(path));

    std::error_code ec;
    report.n_bytes = std::filesystem::file_size(path, ec);
    if (ec) return Error(Errc::io_error, "stat " + path + ": " + ec.message());
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
}

}  // namespace pylon::runtime
