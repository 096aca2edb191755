// Synthetic llama models: random weights in the exact layout llama.cpp writes, for benchmarks and
// tests that need a model of a given size but not a trained one.
//
// A file written here loads in llama.cpp and in Model::load: tensor names, shapes, metadata keys
// and per-tensor types follow llama.cpp's conversion and llama-quantize (1-D norms F32; a matrix
// whose row length is not a multiple of the chosen type's block size is stored as F16). Weights
// are i.i.d. N(0, stddev^2), norms 1.0. The output is a function of (options, seed) only: the
// same options give the same bytes on every machine, whatever the order tensors are generated in.
//
// write_synth_pair writes a *synthetic* draft/target pair for speculative decoding, because no
// trained pair sharing a vocabulary is available offline. It is not a trained model and says
// nothing about how a real draft agrees with a real target; it gives a target that is many times
// the draft's size and whose greedy predictions the draft shares at a rate set by one parameter:
//   - the draft is a synthetic model of `draft_shape`;
//   - the target has the draft's token_embd, output_norm, output head and layers, bit for bit
//     (same seed, same names, same streams), as its first layers, then `extra_layers` more whose
//     attn_output and ffn_down are drawn as usual and multiplied by `divergence` (ε). Those two
//     matrices are the only way a layer writes to the residual stream, so ε = 0 leaves the
//     stream, hence the logits, exactly the draft's, and a larger ε moves the target away;
//   - the output head is drawn with stddev logit_stddev / sqrt(n_embd), so the logits of the
//     RMS-normalised stream have a standard deviation of about logit_stddev: a random head with
//     the usual 0.02 gives nearly flat distributions, which would make the draft's confidence
//     (adaptive drafting) and the sampling acceptance rule min(1, p/q) meaningless.
// Greedy agreement (how often the draft's argmax equals the target's on the target's own greedy
// continuation, i.e. greedy speculative acceptance) falls as ε grows; docs/BENCHMARKS.md
// "Synthetic draft/target pair" gives the measured curve for the default shape.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

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
    // The draft of the default synthetic pair (SynthPairOptions): stories260K's vocabulary
    // size, so its tokenizer can be copied, and layers wide enough that the 2 + 20-layer target
    // is bandwidth-bound on decode.
    static SynthShape pair_draft() noexcept { return {1024, 2816, 2, 16, 16, 512, 2048, false}; }

    std::uint32_t head_dim() const noexcept { return n_head == 0 ? 0 : n_embd / n_head; }
    std::uint64_t n_params() const noexcept;
    bool operator==(const SynthShape&) const = default;
};

// Parses a shape: a preset ("synth110M", "stories260K", "pairDraft"), or comma-separated items
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

struct SynthPairOptions {
    // Measured for the default shape (Q8_0 and Q4_0) to give about 80% greedy agreement
    // (docs/BENCHMARKS.md "Synthetic draft/target pair").
    static constexpr float kDefaultDivergence = 0.025f;

    SynthShape draft_shape = SynthShape::pair_draft();  // untied; the target's first layers
    std::uint32_t extra_layers = 20;                    // target layers beyond the draft's, >= 1
    float divergence = kDefaultDivergence;  // ε, in [0, 100]: scale of the extra layers' writes
    float logit_stddev = 6.0f;       // in (0, 1000]: the output head's logit spread (both models)
    GgmlType type = GgmlType::Q8_0;  // matrices: F32, F16, Q8_0 or Q4_0 (both models)
    std::uint64_t seed = 0;
    float stddev = 0.02f;    // every other matrix, as SynthOptions::stddev
    std::string vocab_from;  // as SynthOptions::vocab_from
    bool force = false;      // as SynthOptions::force, for the two files together

    SynthShape target_shape() const noexcept;
};

struct SynthPairReport {
    SynthReport target;
    SynthReport draft;
    double byte_ratio = 0;  // target.n_bytes / draft.n_bytes
};

// Writes the pair atomically as far as two files can be: the draft is staged beside draft_path
// and renamed into place only after the target was written, so a failure leaves both paths as
// they were (unless that last rename itself fails, when only the target has been replaced). The
// draft's bytes do not depend on extra_layers or divergence. Errors: everything write_synth_model
// refuses; a tied draft shape (the head is scaled, the embedding must not be) or extra_layers
// = 0 or a target past the layer limit (invalid_argument / limit_exceeded); divergence or
// logit_stddev out of range, or the same path for both files (invalid_argument); both files
// together above kSynthMaxBytes without force (limit_exceeded).
Result<SynthPairReport> write_synth_pair(const SynthPairOptions& options,
                                         const std::string& target_path,
                                         const std::string& draft_path);

class Model;

// How much a draft agrees with a target along the target's greedy continuations.
struct PairAgreement {
    std::uint64_t n_steps = 0;  // predictions compared
    std::uint64_t n_agree = 0;  // of which the draft's argmax equalled the target's
    // Means over the steps, softmax at temperature 1: sum over tokens of min(p, q) (target p,
    // draft q), the probability that the sampling rule min(1, p/q) accepts a draft token; and
    // the draft's probability of its own argmax (its confidence).
    double mean_sampling_acceptance = 0;
    double mean_draft_confidence = 0;
    double rate() const noexcept {
        return n_steps == 0 ? 0.0 : static_cast<double>(n_agree) / static_cast<double>(n_steps);
    }
};

// For each prompt (non-empty token ids), decodes n_predict tokens greedily with the target and,
// before each one, asks the draft for its argmax given the same tokens: the greedy agreement
// rate, which is greedy speculative decoding's per-token acceptance (a draft token is accepted
// exactly when it is the target's argmax after an accepted prefix). Prompts are evaluated with
// Context::eval_each and tokens one at a time, so a token's logits do not depend on batching.
// Errors: models with different vocabulary sizes, an empty prompt, a token outside the
// vocabulary, or prompt + n_predict beyond either model's context (invalid_argument).
Result<PairAgreement> measure_greedy_agreement(std::shared_ptr<const Model> target,
                                               std::shared_ptr<const Model> draft,
                                               std::span<const std::vector<std::int32_t>> prompts,
                                               std::uint32_t n_predict, int n_threads = 1);

}  // namespace pylon::runtime
