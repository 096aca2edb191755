// Fuzzes the SPM tokenizer on arbitrary bytes: never crash; every id is in range; with BOS the
// first id is BOS; decode(encode(x)) == " " + x (the space prefix) unless x contains U+2581,
// which encodes like a space; streaming detokenization of valid UTF-8 input reproduces it.
//
// The vocabulary is built in code (no test data at fuzz time): <unk> <s> </s>, the 256 byte
// tokens, ▁ and printable ASCII, then 400 pieces of 2..6 characters drawn from a fixed LCG over
// a small alphabet (so merges chain), with descending scores.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "pylon/runtime/tokenizer.h"

namespace {

using pylon::runtime::Tokenizer;
using pylon::runtime::TokenType;

const Tokenizer& fuzz_vocab() {
    static const Tokenizer tokenizer = [] {
        const std::string sp = "\xE2\x96\x81";
        std::vector<std::string> pieces = {"<unk>", "<s>", "</s>"};
        std::vector<TokenType> types = {TokenType::unknown, TokenType::control,
                                        TokenType::control};
        for (int b = 0; b < 256; ++b) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "<0x%02X>", b);
            pieces.emplace_back(buf);
            types.push_back(TokenType::byte);
        }
        std::vector<float> scores(pieces.size(), 0.0f);
        const auto add = [&](std::string p, float score) {
            pieces.push_back(std::move(p));
            scores.push_back(score);
            types.push_back(TokenType::normal);
        };
        add(sp, -1.0f);
        for (char c = '!'; c <= '~'; ++c) add(std::string(1, c), -1.0f);
        add("\xC3\xA9", -2.0f);  // é
        const std::vector<std::string> alphabet = {sp, "e", "t", "a", "o", "n", "s", "h", "<", ">"};
        std::uint32_t x = 12345;
        for (int i = 0; i < 400; ++i) {
            std::string p;
            const int len = 2 + i % 5;
            for (int j = 0; j < len; ++j) {
                x = x * 1103515245u + 12345u;
                p += alphabet[(x >> 16) % alphabet.size()];
            }
            add(std::move(p), -3.0f - static_cast<float>(i % 97));  // ties on purpose
        }
        auto t = Tokenizer::create(std::move(pieces), std::move(scores), std::move(types));
        if (!t) __builtin_trap();
        return std::move(t).value();
    }();
    return tokenizer;
}

bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t len = 0;
        unsigned char lo = 0x80;
        unsigned char hi = 0xBF;
        if (c < 0x80) {
            len = 1;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return false;
        }
        if (i + len > s.size()) return false;
        for (std::size_t k = 1; k < len; ++k) {
            const auto b = static_cast<unsigned char>(s[i + k]);
            if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return false;
        }
        i += len;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 4096) return 0;  // BPE is O(n log n); keep each run short
    const Tokenizer& t = fuzz_vocab();
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    const std::vector<std::int32_t> ids = t.encode(text, true);
    if (ids.empty() || ids[0] != t.bos_id()) __builtin_trap();
    for (const auto id : ids) {
        if (id < 0 || id >= t.n_vocab()) __builtin_trap();
        if (id == t.unk_id()) __builtin_trap();  // every byte has a byte token
    }
    const std::string decoded = t.decode(ids);
    if (text.find("\xE2\x96\x81") == std::string_view::npos) {
        const std::string expected = text.empty() ? std::string() : " " + std::string(text);
        if (decoded != expected) __builtin_trap();
    }

    pylon::runtime::Detokenizer detok(t);
    std::string streamed;
    for (const auto id : ids) {
        const std::string chunk = detok.push(id);
        if (!valid_utf8(chunk)) __builtin_trap();
        streamed += chunk;
    }
    const std::string tail = detok.flush();
    if (!valid_utf8(tail)) __builtin_trap();
    streamed += tail;
    if (valid_utf8(decoded) && streamed != decoded) __builtin_trap();
    return 0;
}
