// Synthetic llama models: random weights in the exact layout llama.cpp writes, for benchmarks and
// tests that need a model of a given size but not a trained one.
//
// A file written here loads in llama.cpp and in Model::load: tensor names, shapes, metadata keys
// and per-tensor types follow llama.cpp's conversion and llama-quantize (1-D norms F32; a matrix
// whose row length is not a multiple of the chosen type's block size is stored as F16). Weights
// are i.i.d. N(0, stddev^2), norms 1.0. The output is a function of (options, seed) only: the
// same options give the same bytes on every machine, whatever the order tensors are generated in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pylon/common/result.h"
#include "pylon/runtime/ggml_type.h"

namespace pylon::runtime {

struct SynthShape {
    std::uint32_t n_embd = 0;
    std::uint32_t n_ff = 0;
    std::uint32_t n_layer = 0;
    std::uint32_t n_head = 0;
    std::uint32_t n_head_kv = 0;
    std::uint32_t n_vocab = 0;
    std::uint32_t n_ctx = 0;
    bool tied_output = false;  // no output.weight: the classifier reuses token_embd

    // llama2.c-sized 110M model with the Llama-2 vocabulary size (untied, as llama.cpp's
    // llama2c converter writes it).
    static SynthShape synth110M() noexcept { return {768, 2048, 12, 12, 12, 32000, 1024, false}; }
    // karpathy's stories260K shape (GQA, ffn rows not a multiple of 32).
    static SynthShape stories260K() noexcept { return {64, 172, 5, 8, 4, 512, 512, false}; }

    std::uint32_t head_dim() const noexcept { return n_head == 0 ? 0 : n_embd / n_head; }
    std::uint64_t n_params() const noexcept;
    bool operator==(const SynthShape&) const = default;
};

// Parses a shape: a preset ("synth110M", "stories260K"), or comma-separated items
// "dim=768,ffn=2048,layers=12,heads=12,kv_heads=12,vocab=32000,ctx=1024[,tied]". dim, ffn,
// layers, heads and vocab are required unless the text starts with a preset, whose values the
// items then override ("stories260K,vocab=300"); kv_heads defaults to heads, ctx to 2048.
// Errc::invalid_argument naming the item for an unknown or repeated key, a value that is not a
// decimal number, or a shape validate_synth_shape() refuses.
Result<SynthShape> parse_synth_shape(std::string_view text);

// The inverse of parse_synth_shape (always the key=value form).
std::string format_synth_shape(const SynthShape& shape);

// Refuses zero values and values beyond what Model::load accepts (Errc::limit_exceeded), and
// dim % heads, heads % kv_heads or an odd head_dim (RoPE rotates pairs) (invalid_argument).
Result<void> validate_synth_shape(const SynthShape& shape);

struct SynthOptions {
    SynthShape shape;
    GgmlType type = GgmlType::F32;        // matrices: F32, F16, Q8_0 or Q4_0
    std::optional<GgmlType> output_type;  // output.weight (default: type)
    std::optional<GgmlType> embd_type;    // token_embd.weight (default: type)
    std::uint64_t seed = 0;
    float stddev = 0.02f;  // finite, > 0 and <= 1000
    // A GGUF whose tokenizer.* keys are copied; its token count must equal n_vocab. Empty: a
    // minimal valid llama vocabulary is written instead (needs n_vocab >= 259).
    std::string vocab_from;
    // Writes even when the estimated file size exceeds kSynthMaxBytes.
    bool force = false;
};

// Larger estimated outputs are refused unless SynthOptions::force: a typo in a shape should not
// fill a disk.
inline constexpr std::uint64_t kSynthMaxBytes = std::uint64_t{64} << 30;

struct SynthReport {
    std::uint64_t n_tensors = 0;
    std::uint64_t n_params = 0;
    std::uint64_t n_bytes = 0;  // size of the written file
    double seconds = 0;
};

// Estimated file size in bytes (tensor data with alignment; metadata roughly); nullopt when the
// options name a type that cannot be written.
std::optional<std::uint64_t> estimate_synth_bytes(const SynthOptions& options);

// Writes the model to `path` atomically (see gguf::Writer::write), streaming one row at a time,
// so memory use is one tensor's bytes at most, never the whole model. Errors: an invalid shape
// or type, stddev out of range, too large without force (limit_exceeded), a vocab_from file
// that cannot be read, has no llama tokenizer, or whose token count differs from n_vocab
// (invalid_argument), and I/O errors; `path` is untouched on failure.
Result<SynthReport> write_synth_model(const SynthOptions& options, const std::string& path);

}  // namespace pylon::runtime
