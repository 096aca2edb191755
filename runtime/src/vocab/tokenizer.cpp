// Tokenizer: vocabulary validation, SPM BPE encoding and piece decoding (algorithm and rules in
// pylon/runtime/tokenizer.h).

#include "pylon/runtime/tokenizer.h"

#include <algorithm>
#include <cmath>
#include <queue>
#include <string>
#include <utility>

namespace pylon::runtime {

namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

// The length of the UTF-8 character at text[offs]: the length its lead byte announces (as
// llama.cpp's unicode_len_utf8) when that many bytes follow and all are continuation bytes;
// otherwise 1. Requiring the continuation bytes keeps an invalid lead byte from swallowing the
// U+2581 that stands for a space (llama.cpp would, and its space would come back as U+2581).
std::size_t utf8_char_len(std::string_view text, std::size_t offs) {
    static constexpr std::uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    const std::size_t len = kLen[static_cast<unsigned char>(text[offs]) >> 4];
    if (offs + len > text.size()) return 1;
    for (std::size_t k = 1; k < len; ++k) {
        if ((static_cast<unsigned char>(text[offs + k]) & 0xC0) != 0x80) return 1;
    }
    return len;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// The byte a "<0xXX>" piece stands for, or -1.
int parse_byte_piece(std::string_view p) {
    if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
    const int hi = hex_digit(p[3]);
    const int lo = hex_digit(p[4]);
    if (hi < 0 || lo < 0) return -1;
    return hi * 16 + lo;
}

std::string byte_piece(unsigned b) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    return std::string{'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
}

// One symbol of the text being merged: a byte range and its neighbours (-1: none). A symbol
// merged into its left neighbour has n == 0.
struct Symbol {
    std::size_t offset;
    std::size_t n;
    int prev;
    int next;
};

struct Bigram {
    int left;
    int right;
    float score;
    std::size_t size;  // bytes of the merged text: stale entries no longer match it
};

// Highest score first; among equal scores, the leftmost.
struct BigramOrder {
    bool operator()(const Bigram& a, const Bigram& b) const {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
};

}  // namespace

Result<Tokenizer> Tokenizer::create(std::vector<std::string> pieces, std::vector<float> scores,
                                    std::vector<TokenType> types, VocabConfig config) {
    const std::size_t n = pieces.size();
    if (n == 0) return Error(Errc::invalid_argument, "vocabulary has no tokens");
    if (n > kMaxTokens) {
        return Error(Errc::limit_exceeded, "vocabulary has " + std::to_string(n) +
                                               " tokens (limit " + std::to_string(kMaxTokens) +
                                               ")");
    }
    if (scores.size() != n || types.size() != n) {
        return Error(Errc::invalid_argument,
                     "vocabulary arrays differ in length: " + std::to_string(n) + " tokens, " +
                         std::to_string(scores.size()) + " scores, " +
                         std::to_string(types.size()) + " token types");
    }
    const auto check_id = [n](std::int32_t id, const char* what) -> Result<void> {
        if (id < -1 || id >= static_cast<std::int64_t>(n)) {
            return Error(Errc::invalid_argument, std::string(what) + " id " + std::to_string(id) +
                                                     " is out of range (vocabulary of " +
                                                     std::to_string(n) + ")");
        }
        return ok();
    };
    PYLON_TRY(check_id(config.bos_id, "bos"));
    PYLON_TRY(check_id(config.eos_id, "eos"));
    PYLON_TRY(check_id(config.unk_id, "unknown"));

    Tokenizer t;
    t.byte_ids_.fill(-1);
    t.all_.reserve(n);
    t.mergeable_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const auto id = static_cast<std::int32_t>(i);
        const std::string& p = pieces[i];
        if (p.size() > kMaxTokenBytes) {
            return Error(Errc::limit_exceeded, "token " + std::to_string(i) + " is " +
                                                   std::to_string(p.size()) + " bytes (limit " +
                                                   std::to_string(kMaxTokenBytes) + ")");
        }
        if (!std::isfinite(scores[i])) {
            return Error(Errc::invalid_argument,
                         "token " + std::to_string(i) + " has a non-finite score");
        }
        const auto raw_type = static_cast<unsigned>(types[i]);
        if (raw_type > static_cast<unsigned>(TokenType::byte)) {
            return Error(Errc::invalid_argument, "token " + std::to_string(i) +
                                                     " has unknown type " +
                                                     std::to_string(raw_type));
        }
        if (types[i] == TokenType::byte) {
            const int b = parse_byte_piece(p);
            if (b < 0) {
                return Error(Errc::invalid_argument, "byte token " + std::to_string(i) +
                                                         " is not spelled <0xXX>");
            }
        }
        t.all_.insert_or_assign(p, id);
        if (!p.empty() && (types[i] == TokenType::normal || types[i] == TokenType::user_defined ||
                           types[i] == TokenType::undefined)) {
            t.mergeable_.insert_or_assign(p, id);
        }
    }
    // Byte fallback as llama.cpp's byte_to_token: the "<0xXX>" token, else a one-byte piece.
    bool all_bytes = true;
    for (unsigned b = 0; b < 256; ++b) {
        if (auto it = t.all_.find(byte_piece(b)); it != t.all_.end()) {
            t.byte_ids_[b] = it->second;
        } else if (auto it1 = t.all_.find(std::string(1, static_cast<char>(b)));
                   it1 != t.all_.end()) {
            t.byte_ids_[b] = it1->second;
        } else {
            all_bytes = false;
        }
    }
    t.byte_fallback_ = all_bytes;
    t.pieces_ = std::move(pieces);
    t.scores_ = std::move(scores);
    t.types_ = std::move(types);
    t.config_ = config;
    return t;
}

std::int32_t Tokenizer::lookup_mergeable(std::string_view text) const {
    const auto it = mergeable_.find(text);
    return it == mergeable_.end() ? -1 : it->second;
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text) const {
    return encode(text, config_.add_bos);
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
    std::vector<std::int32_t> out;
    if (add_bos && config_.bos_id >= 0) out.push_back(config_.bos_id);
    if (!text.empty()) {
        std::string escaped;
        escaped.reserve(text.size() * 2 + 3);
        if (config_.add_space_prefix) escaped += kSpaceMarker;
        for (const char c : text) {
            if (c == ' ') {
                escaped += kSpaceMarker;
            } else {
                escaped += c;
            }
        }
        encode_spm(escaped, out);
    }
    if (config_.add_eos && config_.eos_id >= 0) out.push_back(config_.eos_id);
    return out;
}

void Tokenizer::encode_spm(std::string_view text, std::vector<std::int32_t>& out) const {
    std::vector<Symbol> symbols;
    symbols.reserve(text.size());
    for (std::size_t offs = 0; offs < text.size();) {
        const std::size_t len = utf8_char_len(text, offs);
        const int index = static_cast<int>(symbols.size());
        symbols.push_back({offs, len, index - 1, offs + len == text.size() ? -1 : index + 1});
        offs += len;
    }

    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
    const auto try_add = [&](int left, int right) {
        if (left < 0 || right < 0) return;
        const Symbol& l = symbols[static_cast<std::size_t>(left)];
        const Symbol& r = symbols[static_cast<std::size_t>(right)];
        const std::string_view merged = text.substr(l.offset, l.n + r.n);
        const std::int32_t id = lookup_mergeable(merged);
        if (id < 0) return;
        queue.push({left, right, scores_[static_cast<std::size_t>(id)], merged.size()});
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

    while (!queue.empty()) {
        const Bigram b = queue.top();
        queue.pop();
        Symbol& l = symbols[static_cast<std::size_t>(b.left)];
        Symbol& r = symbols[static_cast<std::size_t>(b.right)];
        // A stale entry: one side was merged away or has grown since it was queued.
        if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
        l.n += r.n;
        r.n = 0;
        l.next = r.next;
        if (r.next >= 0) symbols[static_cast<std::size_t>(r.next)].prev = b.left;
        try_add(l.prev, b.left);
        try_add(b.left, l.next);
    }

    for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[static_cast<std::size_t>(i)].next) {
        const Symbol& s = symbols[static_cast<std::size_t>(i)];
        const std::string_view piece_text = text.substr(s.offset, s.n);
        const std::int32_t id = lookup_mergeable(piece_text);
        if (id >= 0) {
            out.push_back(id);
            continue;
        }
        for (const char c : piece_text) {
            const std::int32_t byte_id = byte_ids_[static_cast<unsigned char>(c)];
            if (byte_id >= 0) {
                out.push_back(byte_id);
            } else if (config_.unk_id >= 0) {
                out.push_back(config_.unk_id);
            }
        }
    }
}

void Tokenizer::append_piece(std::int32_t id, std::string& out) const {
    if (id < 0 || id >= n_vocab()) return;
    const std::string& p = pieces_[static_cast<std::size_t>(id)];
    switch (types_[static_cast<std::size_t>(id)]) {
        case TokenType::undefined:
        case TokenType::normal:
            for (std::size_t i = 0; i < p.size();) {
                if (p.compare(i, kSpaceMarker.size(), kSpaceMarker) == 0) {
                    out += ' ';
                    i += kSpaceMarker.size();
                } else {
                    out += p[i++];
                }
            }
            return;
        case TokenType::user_defined:
            out += p;
            return;
        case TokenType::byte:
            out += static_cast<char>(parse_byte_piece(p));
            return;
        case TokenType::unknown:
        case TokenType::control:
        case TokenType::unused:
            return;
    }
}

std::string Tokenizer::token_to_piece(std::int32_t id) const {
    std::string out;
    append_piece(id, out);
    return out;
}

std::string Tokenizer::decode(std::span<const std::int32_t> ids) const {
    std::string out;
    for (const std::int32_t id : ids) append_piece(id, out);
    return out;
}

std::string_view Tokenizer::piece(std::int32_t id) const noexcept {
    if (id < 0 || id >= n_vocab()) return {};
    return pieces_[static_cast<std::size_t>(id)];
}

float Tokenizer::score(std::int32_t id) const noexcept {
    if (id < 0 || id >= n_vocab()) return 0.0f;
    return scores_[static_cast<std::size_t>(id)];
}

TokenType Tokenizer::type(std::int32_t id) const noexcept {
    if (id < 0 || id >= n_vocab()) return TokenType::undefined;
    return types_[static_cast<std::size_t>(id)];
}

std::optional<std::int32_t> Tokenizer::find(std::string_view text) const {
    const auto it = all_.find(text);
    if (it == all_.end()) return std::nullopt;
    return it->second;
}

}  // namespace pylon::runtime
