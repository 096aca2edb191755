// The minimal vocabulary of synthetic models (see synth_vocab.h).
#include "synth/synth_vocab.h"

#include <cstdio>
#include <string>
#include <vector>

#include "pylon/common/error.h"
#include "pylon/runtime/tokenizer.h"

namespace pylon::runtime::synth {
namespace {

// The k-th string over a..z in shortlex order: a, b, ..., z, aa, ab, ...
std::string shortlex(std::uint64_t k) {
    std::string s;
    ++k;
    while (k > 0) {
        --k;
        s.insert(s.begin(), static_cast<char>('a' + k % 26));
        k /= 26;
    }
    return s;
}

}  // namespace

Result<void> set_minimal_vocab(gguf::Writer& w, std::uint32_t n_vocab) {
    if (n_vocab < kMinimalVocab) {
        return Error(Errc::invalid_argument, "a generated vocabulary needs at least " +
                                                 std::to_string(kMinimalVocab) + " tokens, not " +
                                                 std::to_string(n_vocab));
    }
    std::vector<std::string> pieces = {"<unk>", "<s>", "</s>"};
    std::vector<std::int32_t> types = {static_cast<std::int32_t>(TokenType::unknown),
                                       static_cast<std::int32_t>(TokenType::control),
                                       static_cast<std::int32_t>(TokenType::control)};
    pieces.reserve(n_vocab);
    types.reserve(n_vocab);
    for (int b = 0; b < 256; ++b) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        pieces.emplace_back(buf);
        types.push_back(static_cast<std::int32_t>(TokenType::byte));
    }
    std::vector<float> scores(pieces.size(), 0.0f);
    // A lone U+2581 first: without it a space before a non-letter would fall back to the three
    // bytes of U+2581 and decode as that character rather than as a space.
    const std::string space = "\xE2\x96\x81";
    if (pieces.size() < n_vocab) {
        pieces.push_back(space);
        types.push_back(static_cast<std::int32_t>(TokenType::normal));
        scores.push_back(0.0f);
    }
    for (std::uint64_t k = 0; pieces.size() < n_vocab; ++k) {
        const std::string word = shortlex(k / 2);
        pieces.push_back(k % 2 == 0 ? space + word : word);
        types.push_back(static_cast<std::int32_t>(TokenType::normal));
        scores.push_back(-1.0f - static_cast<float>(k));
    }
    w.set_string("tokenizer.ggml.model", "llama");
    w.set_strings("tokenizer.ggml.tokens", pieces);
    w.set_f32s("tokenizer.ggml.scores", scores);
    w.set_i32s("tokenizer.ggml.token_type", types);
    w.set_u32("tokenizer.ggml.bos_token_id", 1);
    w.set_u32("tokenizer.ggml.eos_token_id", 2);
    w.set_u32("tokenizer.ggml.unknown_token_id", 0);
    w.set_bool("tokenizer.ggml.add_bos_token", true);
    w.set_bool("tokenizer.ggml.add_eos_token", false);
    return {};
}

}  // namespace pylon::runtime::synth
