// Tokenizer::from_gguf: the vocabulary from `tokenizer.ggml.*` metadata (keys and defaults as
// llama.cpp's llama_vocab::load for the "llama" model; see tokenizer.h).

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "pylon/runtime/gguf.h"
#include "pylon/runtime/tokenizer.h"

namespace pylon::runtime {

namespace {

constexpr std::uint64_t kNoToken32 = std::numeric_limits<std::uint32_t>::max();

Result<const gguf::Array*> get_typed_array(const gguf::File& file, std::string_view key,
                                           std::initializer_list<gguf::ValueType> element_types) {
    const gguf::Value* v = file.find(key);
    if (v == nullptr) return Error(Errc::parse_error, "missing metadata key " + std::string(key));
    const gguf::Array* a = v->as_array();
    if (a == nullptr) return Error(Errc::parse_error, std::string(key) + " is not an array");
    for (const auto t : element_types) {
        if (a->element_type == t) return a;
    }
    return Error(Errc::parse_error, std::string(key) + " has the wrong element type");
}

// An optional token id: absent → fallback; u32 max or a negative value → -1 (none).
Result<std::int32_t> get_token_id(const gguf::File& file, std::string_view key,
                                  std::int32_t fallback) {
    const gguf::Value* v = file.find(key);
    if (v == nullptr) return fallback;
    if (const auto i = v->as_int(); i && *i < 0) return -1;
    const auto u = v->as_uint();
    if (!u) return Error(Errc::parse_error, std::string(key) + " is not an integer");
    if (*u == kNoToken32) return -1;
    if (*u > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max())) {
        return Error(Errc::invalid_argument, std::string(key) + " is out of range");
    }
    return static_cast<std::int32_t>(*u);
}

Result<bool> get_flag(const gguf::File& file, std::string_view key, bool fallback) {
    const gguf::Value* v = file.find(key);
    if (v == nullptr) return fallback;
    const auto b = v->as_bool();
    if (!b) return Error(Errc::parse_error, std::string(key) + " is not a boolean");
    return *b;
}

}  // namespace

Result<Tokenizer> Tokenizer::from_gguf(const gguf::File& file) {
    const gguf::Value* model = file.find("tokenizer.ggml.model");
    if (model == nullptr) return Error(Errc::parse_error, "missing key tokenizer.ggml.model");
    const auto model_name = model->as_string();
    if (!model_name) return Error(Errc::parse_error, "tokenizer.ggml.model is not a string");
    if (*model_name != "llama") {
        return Error(Errc::unsupported,
                     "tokenizer model \"" + std::string(*model_name) + "\" is not supported");
    }

    PYLON_TRY_ASSIGN(const gguf::Array* tokens,
                     get_typed_array(file, "tokenizer.ggml.tokens", {gguf::ValueType::string}));
    PYLON_TRY_ASSIGN(const gguf::Array* scores,
                     get_typed_array(file, "tokenizer.ggml.scores",
                                     {gguf::ValueType::f32, gguf::ValueType::f64}));
    PYLON_TRY_ASSIGN(const gguf::Array* types,
                     get_typed_array(file, "tokenizer.ggml.token_type",
                                     {gguf::ValueType::i32, gguf::ValueType::u32}));
    const std::size_t n = tokens->items.size();
    if (n > kMaxTokens) {
        return Error(Errc::limit_exceeded, "vocabulary has " + std::to_string(n) + " tokens");
    }
    if (scores->items.size() != n || types->items.size() != n) {
        return Error(Errc::invalid_argument,
                     "vocabulary arrays differ in length: " + std::to_string(n) + " tokens, " +
                         std::to_string(scores->items.size()) + " scores, " +
                         std::to_string(types->items.size()) + " token types");
    }

    std::vector<std::string> pieces;
    std::vector<float> score_values;
    std::vector<TokenType> type_values;
    pieces.reserve(n);
    score_values.reserve(n);
    type_values.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const auto text = tokens->items[i].as_string();
        const auto score = scores->items[i].as_float();
        const auto type = types->items[i].as_int();
        if (!text || !score || !type) {
            return Error(Errc::parse_error, "vocabulary entry " + std::to_string(i) +
                                                " has a value of the wrong type");
        }
        if (text->size() > kMaxTokenBytes) {
            return Error(Errc::limit_exceeded, "token " + std::to_string(i) + " is " +
                                                   std::to_string(text->size()) + " bytes");
        }
        if (*type < 0 || *type > static_cast<std::int64_t>(TokenType::byte)) {
            return Error(Errc::invalid_argument,
                         "token " + std::to_string(i) + " has unknown type " +
                             std::to_string(*type));
        }
        pieces.emplace_back(*text);
        score_values.push_back(static_cast<float>(*score));
        type_values.push_back(static_cast<TokenType>(*type));
    }

    VocabConfig config;
    PYLON_TRY_ASSIGN(config.bos_id, get_token_id(file, "tokenizer.ggml.bos_token_id", 1));
    PYLON_TRY_ASSIGN(config.eos_id, get_token_id(file, "tokenizer.ggml.eos_token_id", 2));
    PYLON_TRY_ASSIGN(config.unk_id, get_token_id(file, "tokenizer.ggml.unknown_token_id", 0));
    PYLON_TRY_ASSIGN(config.add_bos, get_flag(file, "tokenizer.ggml.add_bos_token", true));
    PYLON_TRY_ASSIGN(config.add_eos, get_flag(file, "tokenizer.ggml.add_eos_token", false));
    PYLON_TRY_ASSIGN(config.add_space_prefix,
                     get_flag(file, "tokenizer.ggml.add_space_prefix", true));

    auto result = create(std::move(pieces), std::move(score_values), std::move(type_values),
                         config);
    if (!result) return std::move(result).error().with_context("tokenizer metadata");
    return result;
}

}  // namespace pylon::runtime
