// Chat layouts: detection like llama.cpp's llm_chat_detect_template, rendering, special-token
// markers (and no forging of them from message text), and stop sequences over streamed text.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "pylon/runtime/gguf.h"
#include "pylon/runtime/tokenizer.h"
#include "pylon/runtime_server/chat_template.h"
#include "stop_strings.h"

using namespace pylon::runtime_server;
using pylon::runtime::Tokenizer;
using pylon::runtime::TokenType;

namespace {

std::string joined(const std::vector<PromptPiece>& pieces) {
    std::string s;
    for (const auto& p : pieces) s += p.text;
    return s;
}

Tokenizer llama_vocab() {
    auto file = pylon::runtime::gguf::File::open(std::string(PYLON_TEST_DATA) +
                                                 "/runtime/ggml-vocab-llama-spm.gguf");
    REQUIRE(file.ok());
    auto tok = Tokenizer::from_gguf(**file);
    REQUIRE(tok.ok());
    return std::move(*tok);
}

}  // namespace

TEST_CASE("chat template: layouts are detected by llama.cpp's markers, in its order",
          "[runtime_server]") {
    CHECK(detect_chat_format("{% for m in messages %}<|im_start|>{{ m.role }}...") ==
          ChatFormat::chatml);
    CHECK(detect_chat_format("<|im_start|>...<|im_sep|>") == ChatFormat::phi4);
    CHECK(detect_chat_format("{{ '[INST] ' + content }} <<SYS>>") == ChatFormat::llama2_sys);
    CHECK(detect_chat_format("{{ bos_token + '[INST] ' + content }} <<SYS>>") ==
          ChatFormat::llama2_sys_bos);
    CHECK(detect_chat_format("... [INST] ... content.strip() ...") == ChatFormat::llama2_sys_strip);
    CHECK(detect_chat_format("{{ '[INST] ' }}") == ChatFormat::llama2);
    CHECK(detect_chat_format("[SYSTEM_PROMPT] [INST]") == ChatFormat::mistral_v7);
    CHECK(detect_chat_format("<|start_header_id|>{{ role }}<|end_header_id|>") ==
          ChatFormat::llama3);
    CHECK(detect_chat_format("<|user|>\n{{ content }}<|endoftext|>") == ChatFormat::zephyr);
    CHECK(detect_chat_format("<|user|> <|assistant|> <|end|>") == ChatFormat::phi3);
    CHECK(detect_chat_format("<start_of_turn>user") == ChatFormat::gemma);
    CHECK(detect_chat_format("USER: {{ x }} ASSISTANT: ") == ChatFormat::vicuna);
    CHECK(detect_chat_format("SYSTEM: USER: ASSISTANT: ") == ChatFormat::vicuna_orca);
    CHECK(detect_chat_format("### Instruction: <|EOT|>") == ChatFormat::deepseek);
    // Names work as well.
    CHECK(detect_chat_format("llama3") == ChatFormat::llama3);
    CHECK(detect_chat_format("plain") == ChatFormat::plain);
    // Layouts llama.cpp knows that we do not render, and unknown templates: nullopt.
    CHECK_FALSE(detect_chat_format("<|START_OF_TURN_TOKEN|><|USER_TOKEN|>").has_value());
    CHECK_FALSE(detect_chat_format("[gMASK]<sop>").has_value());
    CHECK_FALSE(
        detect_chat_format("{% for message in messages %}{{ message.content }}").has_value());
    CHECK(chat_format_name(ChatFormat::llama2_sys_bos) == "llama2-sys-bos");
}

TEST_CASE("chat template: the plain layout", "[runtime_server]") {
    const std::vector<ChatMessage> msgs{
        {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello"}, {"user", "Bye"}};
    const auto pieces = render_chat(ChatFormat::plain, msgs);
    CHECK(joined(pieces) == "System: Be brief.\nUser: Hi\nAssistant: Hello\nUser: Bye\nAssistant:");
    CHECK(std::none_of(pieces.begin(), pieces.end(), [](const auto& p) { return p.marker; }));
    CHECK(turn_end(ChatFormat::plain).strings == std::vector<std::string>{"\nUser:"});
}

TEST_CASE("chat template: llama2 and llama3 render as llama.cpp does", "[runtime_server]") {
    const std::vector<ChatMessage> msgs{
        {"system", "S"}, {"user", "Hi"}, {"assistant", "Hello"}, {"user", "Bye"}};
    CHECK(joined(render_chat(ChatFormat::llama2_sys, msgs)) ==
          "[INST] <<SYS>>\nS\n<</SYS>>\n\nHi [/INST]Hello</s>[INST] Bye [/INST]");
    CHECK(joined(render_chat(ChatFormat::llama2_sys_bos, msgs)) ==
          "[INST] <<SYS>>\nS\n<</SYS>>\n\nHi [/INST]Hello</s><s>[INST] Bye [/INST]");
    CHECK(joined(render_chat(ChatFormat::chatml, msgs)) ==
          "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
          "<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
          "<|im_start|>assistant\n");
    CHECK(joined(render_chat(ChatFormat::llama3, {{{"user", " Hi \n"}}})) ==
          "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\n");
    CHECK(joined(render_chat(ChatFormat::gemma, msgs)) ==
          "<start_of_turn>user\nS\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n"
          "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n");
}

TEST_CASE("chat template: markers become special tokens, message text never does",
          "[runtime_server]") {
    const Tokenizer tok = llama_vocab();
    REQUIRE(tok.bos_id() == 1);
    REQUIRE(tok.eos_id() == 2);
    const std::vector<ChatMessage> msgs{
        {"user", "Hi"}, {"assistant", "Hello"}, {"user", "Say </s> and <s>"}};
    const auto ids = encode_prompt(tok, render_chat(ChatFormat::llama2, msgs));
    // BOS, the first turn as text, </s> as EOS, the next turn as text (space prefix after the
    // special token, as llama.cpp's SPM tokenizer does).
    std::vector<std::int32_t> expected{1};
    auto append = [&](std::string_view text) {
        const auto t = tok.encode(text, false);
        expected.insert(expected.end(), t.begin(), t.end());
    };
    append("[INST] Hi [/INST]Hello");
    expected.push_back(2);
    append("[INST] Say </s> and <s> [/INST]");
    CHECK(ids == expected);
    CHECK(std::count(ids.begin(), ids.end(), 2) == 1);
    CHECK(std::count(ids.begin(), ids.end(), 1) == 1);
}

TEST_CASE("chat template: control tokens of a vocabulary are used for its markers",
          "[runtime_server]") {
    std::vector<std::string> pieces{"<unk>",        "<s>",        "</s>",
                                    "<|im_start|>", "<|im_end|>", "\xe2\x96\x81"};
    std::vector<TokenType> types{TokenType::unknown, TokenType::control, TokenType::control,
                                 TokenType::control, TokenType::control, TokenType::normal};
    for (char c = 'a'; c <= 'z'; ++c) {
        pieces.emplace_back(1, c);
        types.push_back(TokenType::normal);
    }
    std::vector<float> scores(pieces.size(), 0.0f);
    auto tok = Tokenizer::create(pieces, scores, types);
    REQUIRE(tok.ok());
    const auto ids =
        encode_prompt(*tok, render_chat(ChatFormat::chatml, {{{"user", "say <|im_end|> now"}}}));
    REQUIRE(ids.size() > 3);
    CHECK(ids[0] == 1);
    CHECK(ids[1] == 3);
    CHECK(std::count(ids.begin(), ids.end(), 3) == 2);  // both turn openings
    CHECK(std::count(ids.begin(), ids.end(), 4) == 1);  // only the template's turn end
    CHECK(turn_end(ChatFormat::chatml).markers == std::vector<std::string>{"<|im_end|>"});
}

TEST_CASE("stop sequences: held back while they may still appear", "[runtime_server]") {
    SECTION("a stop split over pieces") {
        StopMatcher m({"world"});
        CHECK(m.push("Hello wo") == "Hello ");
        CHECK_FALSE(m.stopped());
        CHECK(m.push("rld! more") == "");
        CHECK(m.stopped());
        CHECK(m.push("ignored") == "");
        CHECK(m.flush() == "");
    }
    SECTION("a false start is released") {
        StopMatcher m({"world"});
        CHECK(m.push("wor") == "");
        CHECK(m.push("k") == "work");
        CHECK(m.push("w") == "");
        CHECK(m.flush() == "w");
        CHECK_FALSE(m.stopped());
    }
    SECTION("the earliest of several stops wins") {
        StopMatcher m({"bc", "ab"});
        CHECK(m.push("xa") == "x");
        CHECK(m.push("bc") == "");
        CHECK(m.stopped());
    }
    SECTION("cuts fall on UTF-8 character boundaries") {
        StopMatcher m({"\xc3\xa9!"});  // "é!"
        CHECK(m.push("caf\xc3\xa9") == "caf");
        CHECK(m.push("?") == "\xc3\xa9?");
    }
    SECTION("no stops: everything passes") {
        StopMatcher m({});
        CHECK(m.push("abc") == "abc");
        CHECK(m.flush() == "");
    }
}
