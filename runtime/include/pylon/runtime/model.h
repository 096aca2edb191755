// A llama-architecture model: hyper-parameters and weights, immutable once loaded and shared by
// any number of Contexts (one per session). Weights stay in the GGUF file's read-only mapping;
// only the small norm vectors are copied out (as float).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pylon/common/result.h"
#include "pylon/runtime/ggml_type.h"
#include "pylon/runtime/gguf.h"
#include "pylon/runtime/kernels.h"

namespace pylon::runtime {

struct LlamaHparams {
    std::uint32_t n_vocab = 0;
    std::uint32_t n_ctx_train = 0;
    std::uint32_t n_embd = 0;
    std::uint32_t n_layer = 0;
    std::uint32_t n_ff = 0;
    std::uint32_t n_head = 0;
    std::uint32_t n_head_kv = 0;
    std::uint32_t head_dim = 0;  // n_embd / n_head
    std::uint32_t n_rot = 0;     // rotated dimensions per head (llama.rope.dimension_count)
    float rope_freq_base = 10000.0f;
    float rms_eps = 1e-5f;

    std::uint32_t kv_dim() const noexcept { return n_head_kv * head_dim; }
};

// A weight matrix of `rows` rows of `cols` elements (GGUF dims [cols, rows]) inside the mapping.
struct Weight {
    GgmlType type = GgmlType::F32;
    std::uint64_t cols = 0;
    std::uint64_t rows = 0;
    std::size_t row_stride = 0;  // bytes per row
    const std::byte* data = nullptr;
    // A copy repacked at load for packed_isa's kernels (kernels::Kernels::pack), or null.
    // Owned by the Model; `data` stays valid for other paths and for embedding lookups.
    const std::byte* packed = nullptr;
    kernels::Isa packed_isa = kernels::Isa::portable;
    std::uint64_t bytes() const noexcept { return rows * row_stride; }
};

struct LayerWeights {
    std::vector<float> attn_norm;
    Weight wq, wk, wv, wo;
    std::vector<float> ffn_norm;
    Weight w_gate, w_up, w_down;
};

class Model {
public:
    // Loads a llama GGUF: checks the architecture, every hyper-parameter against sane limits,
    // and every tensor's presence, shape and type, naming the first problem found.
    static Result<std::shared_ptr<const Model>> load(const std::string& path);
    static Result<std::shared_ptr<const Model>> from_gguf(std::shared_ptr<const gguf::File> file);

    const LlamaHparams& hparams() const noexcept { return hp_; }
    const gguf::File& gguf() const noexcept { return *file_; }
    std::shared_ptr<const gguf::File> gguf_ptr() const noexcept { return file_; }

    const Weight& token_embd() const noexcept { return token_embd_; }
    const Weight& output() const noexcept { return output_; }  // token_embd when tied
    bool tied_output() const noexcept { return tied_; }
    const std::vector<float>& output_norm() const noexcept { return output_norm_; }
    const std::vector<LayerWeights>& layers() const noexcept { return layers_; }

    // Weight bytes read to compute one token's logits (every matrix once, one embedding row).
    std::uint64_t weight_bytes_per_token() const noexcept;
    // Bytes of weights repacked at load (anonymous memory; 0 when the best kernel path has no
    // packed layout, or with PYLON_NO_REPACK=1 in the environment).
    std::uint64_t packed_bytes() const noexcept { return packed_bytes_; }
    std::uint64_t n_params() const noexcept;
    // "Q4_0", "Q8_0", ... the most common matrix type, or "mixed".
    std::string type_summary() const;

private:
    Model() = default;
    std::shared_ptr<const gguf::File> file_;
    LlamaHparams hp_;
    Weight token_embd_, output_;
    bool tied_ = false;
    std::vector<float> output_norm_;
    std::vector<LayerWeights> layers_;
    std::shared_ptr<void> packed_;  // the repacked copies (one anonymous mapping)
    std::uint64_t packed_bytes_ = 0;
    void pack_weights();
};

}  // namespace pylon::runtime
