#include "model/speculative.h"

#include "pylon/common/error.h"

namespace pylon::runtime::detail {

Result<void> check_speculative(const Context& target, const SpeculativeParams& sp) {
    if (sp.n_draft_max < 1 || sp.n_draft_max > 64) {
        return Error(Errc::invalid_argument, "the longest draft must be between 1 and 64 tokens");
    }
    if (sp.draft != nullptr) {
        if (sp.draft == &target) {
            return Error(Errc::invalid_argument, "the draft context is the target's own");
        }
        if (sp.draft->model().hparams().n_vocab != target.model().hparams().n_vocab) {
            return Error(Errc::invalid_argument,
                         "the draft model's vocabulary (" +
                             std::to_string(sp.draft->model().hparams().n_vocab) +
                             " tokens) differs from the target's (" +
                             std::to_string(target.model().hparams().n_vocab) + ")");
        }
    }
    return {};
}

Result<void> speculative_loop(Context&, Sampler&, std::span<const float>, Emitter&,
                              const GenerateOptions&) {
    return Error(Errc::unsupported, "speculative decoding: not yet");
}

}  // namespace pylon::runtime::detail
