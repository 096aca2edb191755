// Text generation over a Context: tokenize, evaluate the prompt in batches, then sample and
// decode one token at a time until n_predict tokens, EOS, or a full context.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "pylon/common/result.h"
#include "pylon/runtime/context.h"
#include "pylon/runtime/sampling.h"
#include "pylon/runtime/tokenizer.h"

namespace pylon::runtime {

struct GenerateOptions {
    int n_predict = 128;
    SamplingParams sampling;
    bool stop_at_eos = true;
};

struct GenerateResult {
    std::vector<std::int32_t> prompt_ids;
    std::vector<std::int32_t> generated_ids;
    std::string text;
    std::string stop_reason;  // "limit", "eos" or "context"
    double prompt_seconds = 0;
    double decode_seconds = 0;
    std::size_t decoded_tokens = 0;  // tokens evaluated one at a time (decode speed's numerator)

    double prompt_tok_s() const noexcept {
        return prompt_seconds > 0 ? static_cast<double>(prompt_ids.size()) / prompt_seconds : 0;
    }
    double decode_tok_s() const noexcept {
        return decode_seconds > 0 ? static_cast<double>(decoded_tokens) / decode_seconds : 0;
    }
};

// Starts from an empty context (ctx is reset). on_text receives text as it becomes valid UTF-8.
Result<GenerateResult> generate(Context& ctx, const Tokenizer& tok, std::string_view prompt,
                                const GenerateOptions& options,
                                const std::function<void(std::string_view)>& on_text = {});

}  // namespace pylon::runtime
