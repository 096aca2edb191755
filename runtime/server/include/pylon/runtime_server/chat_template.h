// Chat prompts: which conversation layout a model expects, and the prompt tokens for a list of
// messages in it.
//
// A GGUF's `tokenizer.chat_template` is a Jinja template; like llama.cpp's built-in fallback
// (llm_chat_detect_template in src/llama-chat.cpp) we do not run Jinja but recognise the
// well-known layouts by distinctive substrings, in llama.cpp's order, and render them in code.
// A template name ("chatml", "llama3", ...) is accepted as well. A template we do not recognise,
// or one llama.cpp recognises as a layout we do not render, is reported as unknown; the server
// then uses ChatFormat::plain (and logs a warning). Without a template, the format is plain:
//
//     System: <content>\n      (each system/developer message)
//     User: <content>\n        (each user message)
//     Assistant: <content>\n   (each earlier assistant message)
//     Assistant:               (the turn the model writes; generation stops at "\nUser:")
//
// Special tokens: the layouts' own markers (<|im_start|>, </s>, [INST], ...) are emitted as one
// token when the vocabulary has a control or user-defined token with exactly that text, else as
// text. Message contents are always encoded as text, so a user cannot forge a control token by
// typing its name.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pylon/runtime/tokenizer.h"

namespace pylon::runtime_server {

enum class ChatFormat {
    plain,
    chatml,
    phi4,
    llama2,
    llama2_sys,
    llama2_sys_bos,
    llama2_sys_strip,
    mistral_v1,
    mistral_v3,
    mistral_v3_tekken,
    mistral_v7,
    phi3,
    falcon3,
    zephyr,
    gemma,
    openchat,
    vicuna,
    vicuna_orca,
    deepseek,
    llama3,
};

// "plain", "chatml", "llama2-sys", ... (llama.cpp's names).
std::string_view chat_format_name(ChatFormat format) noexcept;

// The layout of a chat template text or name; nullopt when it is not one we render.
std::optional<ChatFormat> detect_chat_format(std::string_view tmpl);

struct ChatMessage {
    std::string role;  // "system", "user" or "assistant"
    std::string content;
};

// A piece of a rendered prompt: template syntax (`marker`, may be a special token) or text.
struct PromptPiece {
    std::string text;
    bool marker = false;
};

// The prompt for `messages`, ending with the opening of the assistant's turn.
std::vector<PromptPiece> render_chat(ChatFormat format, std::span<const ChatMessage> messages);

// Tokens of a rendered prompt: BOS when the vocabulary adds one, markers that are control or
// user-defined tokens as their id, runs of other pieces encoded as text (with the vocabulary's
// space prefix at the start and after each special token, as llama.cpp does).
std::vector<std::int32_t> encode_prompt(const runtime::Tokenizer& tok,
                                        std::span<const PromptPiece> pieces);

// How a format's assistant turn ends: marker texts that end it when generated as one token
// (e.g. "<|im_end|>", "<|eot_id|>"), and text that ends it (plain: "\nUser:").
struct TurnEnd {
    std::vector<std::string> markers;
    std::vector<std::string> strings;
};
TurnEnd turn_end(ChatFormat format);

}  // namespace pylon::runtime_server
