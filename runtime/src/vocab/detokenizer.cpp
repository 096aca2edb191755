// Detokenizer: streaming token → text with UTF-8 held back until complete (see tokenizer.h).
//
// Validity follows Unicode table 3-7 (no overlongs, no surrogates, nothing past U+10FFFF). An
// ill-formed sequence is replaced by one U+FFFD per maximal subpart, as the Unicode standard
// recommends and as most decoders do.

#include <string>

#include "pylon/runtime/tokenizer.h"

namespace pylon::runtime {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

struct LeadInfo {
    std::size_t len;               // 0: not a valid lead byte
    unsigned char second_lo = 0x80;  // allowed range of the second byte
    unsigned char second_hi = 0xBF;
};

LeadInfo lead_info(unsigned char c) {
    if (c < 0x80) return {1};
    if (c >= 0xC2 && c <= 0xDF) return {2};
    if (c == 0xE0) return {3, 0xA0, 0xBF};
    if (c == 0xED) return {3, 0x80, 0x9F};
    if (c >= 0xE1 && c <= 0xEF) return {3};
    if (c == 0xF0) return {4, 0x90, 0xBF};
    if (c >= 0xF1 && c <= 0xF3) return {4};
    if (c == 0xF4) return {4, 0x80, 0x8F};
    return {0};
}

}  // namespace

std::string Detokenizer::push(std::int32_t id) {
    tokenizer_->append_piece(id, pending_);
    return drain(false);
}

std::string Detokenizer::flush() {
    return drain(true);
}

std::string Detokenizer::drain(bool final) {
    std::string out;
    const std::size_t n = pending_.size();
    std::size_t i = 0;
    while (i < n) {
        const auto c = static_cast<unsigned char>(pending_[i]);
        const LeadInfo info = lead_info(c);
        if (info.len == 0) {
            out += kReplacement;
            ++i;
            continue;
        }
        std::size_t k = 1;
        bool bad = false;
        for (; k < info.len && i + k < n; ++k) {
            const auto b = static_cast<unsigned char>(pending_[i + k]);
            const unsigned char lo = k == 1 ? info.second_lo : 0x80;
            const unsigned char hi = k == 1 ? info.second_hi : 0xBF;
            if (b < lo || b > hi) {
                bad = true;
                break;
            }
        }
        if (bad) {
            out += kReplacement;  // the maximal subpart [i, i + k) is ill-formed
            i += k;
            continue;
        }
        if (k < info.len) {  // ran out of bytes: a valid prefix of a sequence
            if (!final) break;
            out += kReplacement;
            i = n;
            continue;
        }
        out.append(pending_, i, info.len);
        i += info.len;
    }
    pending_.erase(0, i);
    return out;
}

}  // namespace pylon::runtime
