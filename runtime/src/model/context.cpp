// Context: buffers, KV cache and the public eval() contract; the forward pass itself is in
// llama_forward.cpp.
#include "pylon/runtime/context.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "model/forward_buffers.h"
#include "pylon/common/error.h"

namespace pylon::runtime {

PageBuffer::PageBuffer(std::size_t bytes) : size_(bytes) {
    if (bytes == 0) return;
    // Anonymous pages: untouched positions of a long context cost no memory.
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    data_ = p;
}

PageBuffer::~PageBuffer() {
    if (data_ != nullptr) ::munmap(data_, size_);
}

Context::Context(std::shared_ptr<const Model> model, const ContextParams& params,
                 const kernels::Kernels& k)
    : model_(std::move(model)), kernels_(&k), pool_(params.n_threads) {}

Context::~Context() = default;

Result<std::unique_ptr<Context>> Context::create(std::shared_ptr<const Model> model,
                                                 ContextParams params) {
    if (!model) return Error(Errc::invalid_argument, "no model");
    const LlamaHparams& hp = model->hparams();
    if (params.n_ctx == 0) params.n_ctx = hp.n_ctx_train;
    if (params.n_ctx > (1u << 22)) {
        return Error(Errc::limit_exceeded, "context of " + std::to_string(params.n_ctx) +
                                               " positions is too large");
    }
    if (params.n_batch == 0) params.n_batch = 512;
    params.n_batch = std::min(params.n_batch, params.n_ctx);
    if (params.n_threads < 1 || params.n_threads > 512) {
        return Error(Errc::invalid_argument, "threads must be between 1 and 512");
    }
    if (params.kv_sinks > 1024) {
        return Error(Errc::invalid_argument, "kv_sinks must be at most 1024");
    }
    const kernels::Isa isa = params.isa.value_or(kernels::best_isa());
    if (!kernels::isa_supported(isa)) {
        return Error(Errc::unsupported, "this CPU cannot run the " +
                                            std::string(kernels::isa_name(isa)) + " kernels");
    }
    std::unique_ptr<Context> ctx(new Context(model, params, kernels::kernels(isa)));
    ctx->n_ctx_ = params.n_ctx;
    ctx->n_batch_ = params.n_batch;
    try {
        ctx->buf_ = std::make_unique<Buffers>(*model, params.n_ctx, params.n_batch,
                                              ctx->pool_.size());
    } catch (const std::bad_alloc&) {
        return Error(Errc::limit_exceeded, "not enough memory for a context of " +
                                               std::to_string(params.n_ctx) + " positions");
    }
    ctx->init_kv(params);
    return ctx;
}

std::size_t Context::kv_cache_bytes() const noexcept {
    return buf_->k_cache.size() * 2 * sizeof(std::uint16_t) * buf_->kv_layer_elems;
}

void Context::truncate(std::uint32_t n) noexcept { n_past_ = std::min(n, n_past_); }

Result<std::span<const float>> Context::eval(std::span<const std::int32_t> tokens,
                                             bool all_logits) {
    return eval_impl(tokens, all_logits, false);
}

Result<std::span<const float>> Context::eval_each(std::span<const std::int32_t> tokens) {
    return eval_impl(tokens, true, true);
}

Result<std::span<const float>> Context::eval_impl(std::span<const std::int32_t> tokens,
                                                  bool all_logits, bool invariant) {
    const LlamaHparams& hp = model_->hparams();
    if (tokens.empty()) return Error(Errc::invalid_argument, "no tokens to evaluate");
    PYLON_TRY(reserve_kv(tokens.size()));  // n_ctx and the KV budget (kv_cache.cpp)
    for (const std::int32_t t : tokens) {
        if (t < 0 || static_cast<std::uint32_t>(t) >= hp.n_vocab) {
            return Error(Errc::invalid_argument, "token id " + std::to_string(t) +
                                                     " is outside the vocabulary of " +
                                                     std::to_string(hp.n_vocab));
        }
    }
    std::vector<float>& out = buf_->logits_out;
    out.resize(static_cast<std::size_t>(all_logits ? tokens.size() : 1) * hp.n_vocab);
    for (std::size_t done = 0; done < tokens.size();) {
        const std::size_t n = std::min<std::size_t>(n_batch_, tokens.size() - done);
        const bool last_chunk = done + n == tokens.size();
        forward(tokens.subspan(done, n), all_logits, invariant);
        if (all_logits) {
            std::memcpy(out.data() + done * hp.n_vocab, buf_->logits.data(),
                        n * hp.n_vocab * sizeof(float));
        } else if (last_chunk) {
            std::memcpy(out.data(), buf_->logits.data(), hp.n_vocab * sizeof(float));
        }
        n_past_ += static_cast<std::uint32_t>(n);
        done += n;
    }
    return std::span<const float>(out);
}

}  // namespace pylon::runtime
