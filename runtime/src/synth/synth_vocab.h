// The minimal llama (SPM) vocabulary written into synthetic models that copy no real one.
#pragma once

#include <cstdint>

#include "pylon/common/result.h"
#include "pylon/runtime/gguf_writer.h"

namespace pylon::runtime::synth {

// <unk>, <s>, </s> and the 256 byte tokens.
inline constexpr std::uint32_t kMinimalVocab = 3 + 256;

// Sets tokenizer.ggml.* for an n_vocab-token vocabulary (n_vocab >= kMinimalVocab):
//   0 "<unk>" (unknown), 1 "<s>", 2 "</s>" (control), 3..258 "<0x00>".."<0xFF>" (byte), then
//   normal pieces "▁" (U+2581, a space), "▁a", "a", "▁b", "b", ... "▁z", "z", "▁aa", "aa", ...
//   (all distinct) with strictly descending scores, so Tokenizer::from_gguf accepts the vocabulary
//   and any text encodes (letters through the fillers, everything else through byte fallback).
Result<void> set_minimal_vocab(gguf::Writer& w, std::uint32_t n_vocab);

}  // namespace pylon::runtime::synth
