// Model::load: llama hyper-parameters from GGUF metadata, tensors bound by name and checked.
//
// Tensor names and shapes (GGUF dims, row length first), as llama.cpp writes them:
//   token_embd.weight [n_embd, n_vocab]      output_norm.weight [n_embd]
//   output.weight     [n_embd, n_vocab]      (absent: tied to token_embd)
//   blk.N.attn_norm.weight [n_embd]          blk.N.ffn_norm.weight [n_embd]
//   blk.N.attn_q.weight [n_embd, n_head*hd]  blk.N.attn_k/v.weight [n_embd, n_head_kv*hd]
//   blk.N.attn_output.weight [n_head*hd, n_embd]
//   blk.N.ffn_gate/up.weight [n_embd, n_ff]  blk.N.ffn_down.weight [n_ff, n_embd]
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>

#include <sys/mman.h>

#include "pylon/common/error.h"
#include "pylon/runtime/model.h"
#include "pylon/runtime/quant.h"

namespace pylon::runtime {
namespace {

// Bounds that keep a hostile header from driving allocations or arithmetic out of range.
constexpr std::uint64_t kMaxEmbd = 1 << 16;
constexpr std::uint64_t kMaxLayers = 1024;
constexpr std::uint64_t kMaxFf = 1 << 18;
constexpr std::uint64_t kMaxHeads = 1024;
constexpr std::uint64_t kMaxVocab = 1 << 21;
constexpr std::uint64_t kMaxCtx = 1 << 22;

Error model_error(std::string msg) { return Error(Errc::parse_error, std::move(msg)); }

Result<std::uint32_t> get_u32(const gguf::File& f, const std::string& key, std::uint64_t max,
                              std::optional<std::uint32_t> fallback = std::nullopt) {
    if (f.find(key) == nullptr) {
        if (fallback) return *fallback;
        return model_error("missing metadata key " + key);
    }
    PYLON_TRY_ASSIGN(const std::uint64_t v, f.get_uint(key));
    if (v == 0 || v > max) {
        return Error(Errc::limit_exceeded,
                     key + " = " + std::to_string(v) + " is outside 1.." + std::to_string(max));
    }
    return static_cast<std::uint32_t>(v);
}

Result<float> get_f32(const gguf::File& f, const std::string& key, float fallback, double lo,
                      double hi) {
    if (f.find(key) == nullptr) return fallback;
    PYLON_TRY_ASSIGN(const double v, f.get_float(key));
    if (!std::isfinite(v) || v < lo || v > hi) {
        return Error(Errc::limit_exceeded, key + " = " + std::to_string(v) + " is out of range");
    }
    return static_cast<float>(v);
}

Result<Weight> bind_matrix(const gguf::File& f, const std::string& name, std::uint64_t cols,
                           std::uint64_t rows) {
    const gguf::TensorInfo* t = f.find_tensor(name);
    if (t == nullptr) return model_error("missing tensor " + name);
    if (t->dims.size() != 2 || t->dims[0] != cols || t->dims[1] != rows) {
        std::string got;
        for (auto d : t->dims) got += (got.empty() ? "" : ", ") + std::to_string(d);
        return model_error("tensor " + name + " has shape [" + got + "], expected [" +
                           std::to_string(cols) + ", " + std::to_string(rows) + "]");
    }
    const auto info = type_info(t->type);
    if (!info || !info->computable) {
        return Error(Errc::unsupported, "tensor " + name + " has type " +
                                            std::string(type_name(t->type)) +
                                            ", which this runtime cannot compute with yet");
    }
    const auto stride = row_bytes(t->type, cols);
    if (!stride || *stride * rows != t->n_bytes) {
        return model_error("tensor " + name + " size does not match its shape");
    }
    return Weight{t->type, cols, rows, *stride, t->data};
}

Result<std::vector<float>> load_vector(const gguf::File& f, const std::string& name,
                                       std::uint64_t n) {
    const gguf::TensorInfo* t = f.find_tensor(name);
    if (t == nullptr) return model_error("missing tensor " + name);
    if (t->dims.size() != 1 || t->dims[0] != n) {
        return model_error("tensor " + name + " should be a vector of " + std::to_string(n));
    }
    if (t->type != GgmlType::F32 && t->type != GgmlType::F16) {
        return Error(Errc::unsupported, "norm tensor " + name + " must be F32 or F16");
    }
    std::vector<float> out(n);
    dequantize_row(t->type, t->data, out.data(), n);
    for (float v : out) {
        if (!std::isfinite(v)) return model_error("tensor " + name + " holds a non-finite value");
    }
    return out;
}

}  // namespace

Result<std::shared_ptr<const Model>> Model::load(const std::string& path) {
    auto file = gguf::File::open(path);
    if (!file) return std::move(file).error().with_context("loading model " + path);
    auto model = from_gguf(std::move(file).value());
    if (!model) return std::move(model).error().with_context("loading model " + path);
    return model;
}

Result<std::shared_ptr<const Model>> Model::from_gguf(std::shared_ptr<const gguf::File> file) {
    const gguf::File& f = *file;
    PYLON_TRY_ASSIGN(const auto arch, f.get_string("general.architecture"));
    if (arch != "llama") {
        return Error(Errc::unsupported,
                     "architecture '" + std::string(arch) + "' is not supported (only llama)");
    }
    std::shared_ptr<Model> m(new Model());
    m->file_ = std::move(file);
    LlamaHparams& hp = m->hp_;
    PYLON_TRY_ASSIGN(hp.n_embd, get_u32(f, "llama.embedding_length", kMaxEmbd));
    PYLON_TRY_ASSIGN(hp.n_layer, get_u32(f, "llama.block_count", kMaxLayers));
    PYLON_TRY_ASSIGN(hp.n_ff, get_u32(f, "llama.feed_forward_length", kMaxFf));
    PYLON_TRY_ASSIGN(hp.n_head, get_u32(f, "llama.attention.head_count", kMaxHeads));
    PYLON_TRY_ASSIGN(hp.n_head_kv,
                     get_u32(f, "llama.attention.head_count_kv", kMaxHeads, hp.n_head));
    PYLON_TRY_ASSIGN(hp.n_ctx_train, get_u32(f, "llama.context_length", kMaxCtx, 2048));
    if (hp.n_embd % hp.n_head != 0) {
        return model_error("embedding_length " + std::to_string(hp.n_embd) +
                           " is not a multiple of head_count " + std::to_string(hp.n_head));
    }
    if (hp.n_head % hp.n_head_kv != 0) {
        return model_error("head_count " + std::to_string(hp.n_head) +
                           " is not a multiple of head_count_kv " + std::to_string(hp.n_head_kv));
    }
    hp.head_dim = hp.n_embd / hp.n_head;
    PYLON_TRY_ASSIGN(hp.n_rot, get_u32(f, "llama.rope.dimension_count", hp.head_dim,
                                       hp.head_dim));
    if (hp.n_rot % 2 != 0) return model_error("rope.dimension_count must be even");
    PYLON_TRY_ASSIGN(hp.rope_freq_base, get_f32(f, "llama.rope.freq_base", 10000.0f, 1.0, 1e12));
    PYLON_TRY_ASSIGN(hp.rms_eps,
                     get_f32(f, "llama.attention.layer_norm_rms_epsilon", 1e-5f, 0.0, 1.0));

    const gguf::TensorInfo* emb = f.find_tensor("token_embd.weight");
    if (emb == nullptr) return model_error("missing tensor token_embd.weight");
    if (emb->dims.size() != 2 || emb->dims[1] == 0 || emb->dims[1] > kMaxVocab) {
        return model_error("token_embd.weight must be [n_embd, n_vocab] with n_vocab <= " +
                           std::to_string(kMaxVocab));
    }
    hp.n_vocab = static_cast<std::uint32_t>(emb->dims[1]);
    if (f.find("llama.vocab_size") != nullptr) {
        PYLON_TRY_ASSIGN(const auto nv, f.get_uint("llama.vocab_size"));
        if (nv != hp.n_vocab) return model_error("llama.vocab_size disagrees with token_embd");
    }

    const std::uint64_t q_dim = hp.n_embd;
    const std::uint64_t kv_dim = hp.kv_dim();
    PYLON_TRY_ASSIGN(m->token_embd_, bind_matrix(f, "token_embd.weight", hp.n_embd, hp.n_vocab));
    PYLON_TRY_ASSIGN(m->output_norm_, load_vector(f, "output_norm.weight", hp.n_embd));
    if (f.find_tensor("output.weight") != nullptr) {
        PYLON_TRY_ASSIGN(m->output_, bind_matrix(f, "output.weight", hp.n_embd, hp.n_vocab));
    } else {
        m->output_ = m->token_embd_;
        m->tied_ = true;
    }
    m->layers_.resize(hp.n_layer);
    for (std::uint32_t i = 0; i < hp.n_layer; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        LayerWeights& l = m->layers_[i];
        PYLON_TRY_ASSIGN(l.attn_norm, load_vector(f, p + "attn_norm.weight", hp.n_embd));
        PYLON_TRY_ASSIGN(l.wq, bind_matrix(f, p + "attn_q.weight", hp.n_embd, q_dim));
        PYLON_TRY_ASSIGN(l.wk, bind_matrix(f, p + "attn_k.weight", hp.n_embd, kv_dim));
        PYLON_TRY_ASSIGN(l.wv, bind_matrix(f, p + "attn_v.weight", hp.n_embd, kv_dim));
        PYLON_TRY_ASSIGN(l.wo, bind_matrix(f, p + "attn_output.weight", q_dim, hp.n_embd));
        PYLON_TRY_ASSIGN(l.ffn_norm, load_vector(f, p + "ffn_norm.weight", hp.n_embd));
        PYLON_TRY_ASSIGN(l.w_gate, bind_matrix(f, p + "ffn_gate.weight", hp.n_embd, hp.n_ff));
        PYLON_TRY_ASSIGN(l.w_up, bind_matrix(f, p + "ffn_up.weight", hp.n_embd, hp.n_ff));
        PYLON_TRY_ASSIGN(l.w_down, bind_matrix(f, p + "ffn_down.weight", hp.n_ff, hp.n_embd));
    }
    m->pack_weights();
    return std::shared_ptr<const Model>(std::move(m));
}

// Repacks every matrix that the best kernel path streams better in its own layout (AVX-512:
// Q4_0/Q8_0 in 16-row panels) into one anonymous mapping, asking for huge pages (fewer TLB
// misses while streaming). The file's pages are then no longer read for those matrices. Best
// effort: without memory the model keeps computing from the file mapping. The mapped pages of
// packed matrices are given back (read again only by a context on another kernel path).
void Model::pack_weights() {
    const kernels::Kernels& kt = kernels::best_kernels();
    const char* off = std::getenv("PYLON_NO_REPACK");
    if (kt.packed_bytes == nullptr || (off != nullptr && off[0] != '\0' && off[0] != '0')) return;
    std::vector<Weight*> ws;
    for (auto& l : layers_) {
        for (Weight* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) ws.push_back(w);
    }
    ws.push_back(&output_);
    std::vector<std::size_t> at(ws.size(), 0);
    std::size_t total = 0;
    for (std::size_t i = 0; i < ws.size(); ++i) {
        const std::size_t b = kt.packed_bytes(ws[i]->type, ws[i]->rows, ws[i]->cols);
        at[i] = b == 0 ? SIZE_MAX : total;
        if (b > SIZE_MAX - total - 64) return;
        total += (b + 63) & ~std::size_t{63};
    }
    if (total == 0) return;
    void* map = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) return;
    ::madvise(map, total, MADV_HUGEPAGE);
    packed_ = std::shared_ptr<void>(map, [total](void* p) { ::munmap(p, total); });
    auto* base = static_cast<std::byte*>(map);
    for (std::size_t i = 0; i < ws.size(); ++i) {
        if (at[i] == SIZE_MAX) continue;
        Weight& w = *ws[i];
        kt.pack(w.type, w.data, w.row_stride, w.rows, w.cols, base + at[i]);
        w.packed = base + at[i];
        w.packed_isa = kt.isa;
        file_->release(w.data, w.bytes());
    }
    ::mprotect(map, total, PROT_READ);
    packed_bytes_ = total;
}

std::uint64_t Model::weight_bytes_per_token() const noexcept {
    std::uint64_t total = token_embd_.row_stride + output_.bytes();
    for (const auto& l : layers_) {
        total += l.wq.bytes() + l.wk.bytes() + l.wv.bytes() + l.wo.bytes() + l.w_gate.bytes() +
                 l.w_up.bytes() + l.w_down.bytes();
    }
    return total;
}

std::uint64_t Model::n_params() const noexcept {
    std::uint64_t total = 0;
    for (const auto& t : file_->tensors()) total += t.n_elements;
    return total;
}

std::string Model::type_summary() const {
    std::map<GgmlType, std::uint64_t> bytes;
    for (const auto& l : layers_) {
        for (const Weight* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
            bytes[w->type] += w->bytes();
        }
    }
    auto best = std::max_element(bytes.begin(), bytes.end(),
                                 [](auto& a, auto& b) { return a.second < b.second; });
    return best == bytes.end() ? "none" : std::string(type_name(best->first));
}

}  // namespace pylon::runtime
