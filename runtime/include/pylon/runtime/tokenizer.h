// SentencePiece-style BPE tokenizer (llama.cpp's "llama"/SPM vocabulary) built from GGUF
// metadata, and an incremental detokenizer for streaming.
//
// Encoding follows llama.cpp's SPM tokenizer (llm_tokenizer_spm, llama.cpp c392e50):
//   1. An empty text gives no tokens (only BOS/EOS when asked for).
//   2. With add_space_prefix (the default) one ' ' is prepended; then every ' ' becomes U+2581.
//   3. The text is split into UTF-8 characters: the length announced by the lead byte's high
//      bits when that many bytes follow and all are continuation bytes, else one byte (so an
//      invalid byte is a symbol of its own). Nothing is validated further or replaced. For
//      valid UTF-8 this is llama.cpp's split; llama.cpp trusts the lead byte alone.
//   4. The adjacent pair whose concatenation is a token with the highest score is merged, again
//      and again (ties: leftmost first), until no pair forms a token.
//   5. Each remaining symbol emits its token; a symbol that is not a token emits one byte token
//      `<0xXX>` per byte (byte fallback) or, where the vocabulary lacks that byte, unk.
// The text is never parsed for special tokens: "<s>" in the text is three characters. Only
// normal, user-defined and untyped (0) tokens take part in steps 4 and 5 (as in SentencePiece;
// llama.cpp would also match control/byte/unused texts, which no shipped llama vocabulary can
// reach, and which would let plain text forge control tokens). User-defined tokens are not split
// out of the text before BPE (llama.cpp does; the llama vocabularies we load have none).
//
// Decoding: token_to_piece() maps U+2581 back to ' ', a byte token to its raw byte and control,
// unknown and unused tokens to "". decode() concatenates pieces, so a UTF-8 sequence split over
// byte tokens reassembles. Round trip: for a vocabulary with all 256 byte tokens and a text s
// without U+2581, decode(encode(s, false)) == " " + s when add_space_prefix and s is not empty
// (s itself otherwise).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pylon/common/result.h"

namespace pylon::runtime {

namespace gguf {
class File;
}

// Token types, numbered as in `tokenizer.ggml.token_type`.
enum class TokenType : std::uint8_t {
    undefined = 0,
    normal = 1,
    unknown = 2,
    control = 3,
    user_defined = 4,
    unused = 5,
    byte = 6,
};

struct VocabConfig {
    std::int32_t bos_id = 1;  // -1: none
    std::int32_t eos_id = 2;  // -1: none
    std::int32_t unk_id = 0;  // -1: none (unencodable bytes are then dropped)
    bool add_bos = true;
    bool add_eos = false;
    bool add_space_prefix = true;
};

class Tokenizer {
public:
    static constexpr std::size_t kMaxTokens = std::size_t{1} << 20;
    static constexpr std::size_t kMaxTokenBytes = 256;

    // Validates and indexes a vocabulary: equal lengths, 1..kMaxTokens tokens, pieces of at
    // most kMaxTokenBytes, finite scores, known types, byte tokens spelled "<0xXX>", special
    // ids in range. Errc::invalid_argument / limit_exceeded naming the offending token.
    static Result<Tokenizer> create(std::vector<std::string> pieces, std::vector<float> scores,
                                    std::vector<TokenType> types, VocabConfig config = {});

    // Reads tokenizer.ggml.{model,tokens,scores,token_type,bos_token_id,eos_token_id,
    // unknown_token_id,add_bos_token,add_eos_token,add_space_prefix}. model must be "llama"
    // (Errc::unsupported otherwise); tokens, scores and token_type are required (parse_error
    // when missing or mistyped).
    static Result<Tokenizer> from_gguf(const gguf::File& file);

    // Encodes with the vocabulary's add_bos/add_eos defaults.
    std::vector<std::int32_t> encode(std::string_view text) const;
    // Encodes, adding BOS when add_bos (and EOS when the vocabulary asks for it).
    std::vector<std::int32_t> encode(std::string_view text, bool add_bos) const;

    // The text a token stands for (see the file comment); "" for an id out of range.
    std::string token_to_piece(std::int32_t id) const;
    // Appends token_to_piece(id) to out without a temporary.
    void append_piece(std::int32_t id, std::string& out) const;
    std::string decode(std::span<const std::int32_t> ids) const;

    std::int32_t n_vocab() const noexcept { return static_cast<std::int32_t>(pieces_.size()); }
    std::int32_t bos_id() const noexcept { return config_.bos_id; }
    std::int32_t eos_id() const noexcept { return config_.eos_id; }
    std::int32_t unk_id() const noexcept { return config_.unk_id; }
    const VocabConfig& config() const noexcept { return config_; }
    // True when every byte 0x00..0xFF has a byte token.
    bool has_byte_fallback() const noexcept { return byte_fallback_; }

    // Accessors for an id in [0, n_vocab()); out-of-range ids read as "", 0 and undefined.
    std::string_view piece(std::int32_t id) const noexcept;
    float score(std::int32_t id) const noexcept;
    TokenType type(std::int32_t id) const noexcept;
    bool is_control(std::int32_t id) const noexcept { return type(id) == TokenType::control; }
    // The id whose piece text is `text` (raw, with U+2581), any type.
    std::optional<std::int32_t> find(std::string_view text) const;

private:
    struct StringHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    using Index = std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>>;

    Tokenizer() = default;
    // The id of a normal/user-defined token with this text, or -1.
    std::int32_t lookup_mergeable(std::string_view text) const;
    void encode_spm(std::string_view text, std::vector<std::int32_t>& out) const;

    std::vector<std::string> pieces_;
    std::vector<float> scores_;
    std::vector<TokenType> types_;
    VocabConfig config_;
    Index all_;        // every piece text (last id wins on duplicates, as llama.cpp)
    Index mergeable_;  // normal and user-defined pieces only
    std::array<std::int32_t, 256> byte_ids_{};  // -1 where no token encodes the byte
    bool byte_fallback_ = false;
};

// Streaming detokenizer: push() returns only complete, valid UTF-8; an incomplete tail that may
// still become valid is held back until the next push. Bytes that can never form valid UTF-8
// come out as U+FFFD, so every returned string is valid UTF-8 (decode() keeps raw bytes).
class Detokenizer {
public:
    explicit Detokenizer(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}

    std::string push(std::int32_t id);
    // Emits what is held back (an unfinished sequence becomes U+FFFD) and resets.
    std::string flush();
    std::size_t pending_bytes() const noexcept { return pending_.size(); }

private:
    std::string drain(bool final);

    const Tokenizer* tokenizer_;
    std::string pending_;
};

}  // namespace pylon::runtime
