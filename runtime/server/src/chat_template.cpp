// Chat layouts: detection by distinctive substrings in llama.cpp's order (src/llama-chat.cpp,
// llm_chat_detect_template), and rendering of the layouts we support.
#include "pylon/runtime_server/chat_template.h"

#include <array>
#include <cctype>
#include <utility>

namespace pylon::runtime_server {

namespace {

constexpr std::array<std::pair<std::string_view, ChatFormat>, 20> kNames{{
    {"plain", ChatFormat::plain},
    {"chatml", ChatFormat::chatml},
    {"phi4", ChatFormat::phi4},
    {"llama2", ChatFormat::llama2},
    {"llama2-sys", ChatFormat::llama2_sys},
    {"llama2-sys-bos", ChatFormat::llama2_sys_bos},
    {"llama2-sys-strip", ChatFormat::llama2_sys_strip},
    {"mistral-v1", ChatFormat::mistral_v1},
    {"mistral-v3", ChatFormat::mistral_v3},
    {"mistral-v3-tekken", ChatFormat::mistral_v3_tekken},
    {"mistral-v7", ChatFormat::mistral_v7},
    {"phi3", ChatFormat::phi3},
    {"falcon3", ChatFormat::falcon3},
    {"zephyr", ChatFormat::zephyr},
    {"gemma", ChatFormat::gemma},
    {"openchat", ChatFormat::openchat},
    {"vicuna", ChatFormat::vicuna},
    {"vicuna-orca", ChatFormat::vicuna_orca},
    {"deepseek", ChatFormat::deepseek},
    {"llama3", ChatFormat::llama3},
}};

std::string trim(std::string_view s) {
    std::size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
    return std::string(s.substr(b, e - b));
}

// Collects pieces, merging adjacent text.
class Builder {
public:
    Builder& m(std::string_view marker) {
        out_.push_back({std::string(marker), true});
        return *this;
    }
    Builder& t(std::string_view text) {
        if (text.empty()) return *this;
        if (!out_.empty() && !out_.back().marker) {
            out_.back().text += text;
        } else {
            out_.push_back({std::string(text), false});
        }
        return *this;
    }
    std::vector<PromptPiece> take() { return std::move(out_); }

private:
    std::vector<PromptPiece> out_;
};

void render_llama2(Builder& b, ChatFormat f, std::span<const ChatMessage> msgs) {
    const bool sys = f != ChatFormat::llama2;
    const bool bos_inside = f == ChatFormat::llama2_sys_bos;
    const bool strip = f == ChatFormat::llama2_sys_strip;
    bool inside = true;  // the first [INST] has no BOS of its own (the tokenizer adds it)
    b.m("[INST]").t(" ");
    for (const auto& msg : msgs) {
        const std::string c = strip ? trim(msg.content) : msg.content;
        if (!inside) {
            inside = true;
            if (bos_inside) b.m("<s>");
            b.m("[INST]").t(" ");
        }
        if (msg.role == "system") {
            if (sys) {
                b.t("<<SYS>>\n" + c + "\n<</SYS>>\n\n");
            } else {
                b.t(c + "\n");
            }
        } else if (msg.role == "user") {
            b.t(c + " ").m("[/INST]");
        } else {
            b.t(c).m("</s>");
            inside = false;
        }
    }
}

void render_mistral(Builder& b, ChatFormat f, std::span<const ChatMessage> msgs) {
    const std::string_view lead = f == ChatFormat::mistral_v1 ? " " : "";
    const std::string_view trail = f == ChatFormat::mistral_v3_tekken ? "" : " ";
    const bool trim_assistant = f == ChatFormat::mistral_v3;
    bool inside = false;
    for (const auto& msg : msgs) {
        if (!inside) {
            b.t(lead).m("[INST]").t(trail);
            inside = true;
        }
        if (msg.role == "system") {
            b.t(msg.content + "\n\n");
        } else if (msg.role == "user") {
            b.t(msg.content).t(lead).m("[/INST]");
        } else {
            b.t(trail).t(trim_assistant ? trim(msg.content) : msg.content).m("</s>");
            inside = false;
        }
    }
}

void render_gemma(Builder& b, std::span<const ChatMessage> msgs) {
    std::string system;  // gemma has no system turn: it goes into the next user turn
    for (const auto& msg : msgs) {
        if (msg.role == "system") {
            system += trim(msg.content);
            continue;
        }
        const std::string role = msg.role == "assistant" ? "model" : msg.role;
        b.m("<start_of_turn>").t(role + "\n");
        if (!system.empty() && role != "model") {
            b.t(system + "\n\n");
            system.clear();
        }
        b.t(trim(msg.content)).m("<end_of_turn>").t("\n");
    }
    b.m("<start_of_turn>").t("model\n");
}

}  // namespace

std::string_view chat_format_name(ChatFormat format) noexcept {
    for (const auto& [name, f] : kNames) {
        if (f == format) return name;
    }
    return "plain";
}

std::optional<ChatFormat> detect_chat_format(std::string_view tmpl) {
    for (const auto& [name, f] : kNames) {
        if (tmpl == name) return f;
    }
    auto has = [tmpl](std::string_view s) { return tmpl.find(s) != std::string_view::npos; };
    // The order matters: it is llama.cpp's, so that a template is read as it reads it. Layouts
    // llama.cpp knows and we do not render give nullopt where llama.cpp would pick them.
    if (has("<|im_start|>")) {
        if (has("<|im_sep|>")) return ChatFormat::phi4;
        if (has("<end_of_utterance>")) return std::nullopt;  // SmolVLM
        return ChatFormat::chatml;
    }
    if (tmpl.starts_with("mistral") || has("[INST]")) {
        if (has("[SYSTEM_PROMPT]")) return ChatFormat::mistral_v7;
        if (has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]")) {
            if (has(" [INST]")) return ChatFormat::mistral_v1;
            if (has("\"[INST]\"")) return ChatFormat::mistral_v3_tekken;
            return ChatFormat::mistral_v3;
        }
        if (has("content.strip()")) return ChatFormat::llama2_sys_strip;
        if (has("bos_token + '[INST]")) return ChatFormat::llama2_sys_bos;
        if (has("<<SYS>>")) return ChatFormat::llama2_sys;
        return ChatFormat::llama2;
    }
    if (has("<|assistant|>") && has("<|end|>")) return ChatFormat::phi3;
    if (has("[gMASK]<sop>")) return std::nullopt;  // ChatGLM 4
    if (has("<|assistant|>") && has("<|user|>")) {
        if (has("</s>")) return ChatFormat::falcon3;
        return std::nullopt;  // GLM-Edge
    }
    if (has("<|{{ item['role'] }}|>") && has("<|begin_of_image|>")) return std::nullopt;
    if (has("<|user|>") && has("<|endoftext|>")) return ChatFormat::zephyr;
    if (has("bos_token + message['role']")) return std::nullopt;  // Monarch
    if (has("<start_of_turn>")) return ChatFormat::gemma;
    if (has("'\\n\\nAssistant: ' + eos_token")) return std::nullopt;  // Orion
    if (has("GPT4 Correct ")) return ChatFormat::openchat;
    if (has("USER: ") && has("ASSISTANT: ")) {
        return has("SYSTEM: ") ? ChatFormat::vicuna_orca : ChatFormat::vicuna;
    }
    if (has("### Instruction:") && has("<|EOT|>")) return ChatFormat::deepseek;
    if (has("<|START_OF_TURN_TOKEN|>") && has("<|USER_TOKEN|>")) return std::nullopt;  // Command R
    if (has("<|start_header_id|>") && has("<|end_header_id|>")) return ChatFormat::llama3;
    return std::nullopt;
}

std::vector<PromptPiece> render_chat(ChatFormat format, std::span<const ChatMessage> messages) {
    Builder b;
    switch (format) {
        case ChatFormat::plain:
            for (const auto& msg : messages) {
                const char* who = msg.role == "system" ? "System: "
                                  : msg.role == "user" ? "User: "
                                                       : "Assistant: ";
                b.t(who + msg.content + "\n");
            }
            b.t("Assistant:");
            break;
        case ChatFormat::chatml:
            for (const auto& msg : messages) {
                b.m("<|im_start|>").t(msg.role + "\n" + msg.content).m("<|im_end|>").t("\n");
            }
            b.m("<|im_start|>").t("assistant\n");
            break;
        case ChatFormat::phi4:
            for (const auto& msg : messages) {
                b.m("<|im_start|>").t(msg.role).m("<|im_sep|>").t(msg.content).m("<|im_end|>");
            }
            b.m("<|im_start|>").t("assistant").m("<|im_sep|>");
            break;
        case ChatFormat::llama2:
        case ChatFormat::llama2_sys:
        case ChatFormat::llama2_sys_bos:
        case ChatFormat::llama2_sys_strip:
            render_llama2(b, format, messages);
            break;
        case ChatFormat::mistral_v1:
        case ChatFormat::mistral_v3:
        case ChatFormat::mistral_v3_tekken:
            render_mistral(b, format, messages);
            break;
        case ChatFormat::mistral_v7:
            for (const auto& msg : messages) {
                if (msg.role == "system") {
                    b.m("[SYSTEM_PROMPT]").t(" " + msg.content).m("[/SYSTEM_PROMPT]");
                } else if (msg.role == "user") {
                    b.m("[INST]").t(" " + msg.content).m("[/INST]");
                } else {
                    b.t(" " + msg.content).m("</s>");
                }
            }
            break;
        case ChatFormat::phi3:
        case ChatFormat::falcon3:
        case ChatFormat::zephyr: {
            const std::string_view end = format == ChatFormat::phi3     ? "<|end|>"
                                         : format == ChatFormat::zephyr ? "<|endoftext|>"
                                                                        : "";
            for (const auto& msg : messages) {
                b.m("<|" + msg.role + "|>").t("\n" + msg.content);
                if (end.empty()) {
                    b.t("\n");
                } else {
                    b.m(end).t("\n");
                }
            }
            b.m("<|assistant|>").t("\n");
            break;
        }
        case ChatFormat::gemma:
            render_gemma(b, messages);
            break;
        case ChatFormat::openchat:
            for (const auto& msg : messages) {
                if (msg.role == "system") {
                    b.t(msg.content).m("<|end_of_turn|>");
                } else {
                    std::string role = msg.role;
                    role[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(role[0])));
                    b.t("GPT4 Correct " + role + ": " + msg.content).m("<|end_of_turn|>");
                }
            }
            b.t("GPT4 Correct Assistant:");
            break;
        case ChatFormat::vicuna:
        case ChatFormat::vicuna_orca:
            for (const auto& msg : messages) {
                if (msg.role == "system") {
                    b.t(format == ChatFormat::vicuna_orca ? "SYSTEM: " + msg.content + "\n"
                                                          : msg.content + "\n\n");
                } else if (msg.role == "user") {
                    b.t("USER: " + msg.content + "\n");
                } else {
                    b.t("ASSISTANT: " + msg.content).m("</s>").t("\n");
                }
            }
            b.t("ASSISTANT:");
            break;
        case ChatFormat::deepseek:
            for (const auto& msg : messages) {
                if (msg.role == "system") {
                    b.t(msg.content);
                } else if (msg.role == "user") {
                    b.t("### Instruction:\n" + msg.content + "\n");
                } else {
                    b.t("### Response:\n" + msg.content + "\n").m("<|EOT|>").t("\n");
                }
            }
            b.t("### Response:\n");
            break;
        case ChatFormat::llama3:
            for (const auto& msg : messages) {
                b.m("<|start_header_id|>").t(msg.role).m("<|end_header_id|>");
                b.t("\n\n" + trim(msg.content)).m("<|eot_id|>");
            }
            b.m("<|start_header_id|>").t("assistant").m("<|end_header_id|>").t("\n\n");
            break;
    }
    return b.take();
}

std::vector<std::int32_t> encode_prompt(const runtime::Tokenizer& tok,
                                        std::span<const PromptPiece> pieces) {
    std::vector<std::int32_t> out;
    if (tok.config().add_bos && tok.bos_id() >= 0) out.push_back(tok.bos_id());
    std::string text;
    auto flush = [&] {
        if (text.empty()) return;
        auto ids = tok.encode(text, false);
        if (tok.config().add_eos && !ids.empty() && ids.back() == tok.eos_id()) ids.pop_back();
        out.insert(out.end(), ids.begin(), ids.end());
        text.clear();
    };
    for (const auto& p : pieces) {
        if (p.marker) {
            if (auto id = tok.find(p.text);
                id && (tok.type(*id) == runtime::TokenType::control ||
                       tok.type(*id) == runtime::TokenType::user_defined)) {
                flush();
                out.push_back(*id);
                continue;
            }
        }
        text += p.text;
    }
    flush();
    return out;
}

TurnEnd turn_end(ChatFormat format) {
    switch (format) {
        case ChatFormat::plain:
            return {{}, {"\nUser:"}};
        case ChatFormat::chatml:
        case ChatFormat::phi4:
            return {{"<|im_end|>"}, {}};
        case ChatFormat::phi3:
            return {{"<|end|>"}, {}};
        case ChatFormat::zephyr:
            return {{"<|endoftext|>"}, {}};
        case ChatFormat::gemma:
            return {{"<end_of_turn>"}, {}};
        case ChatFormat::openchat:
            return {{"<|end_of_turn|>"}, {}};
        case ChatFormat::deepseek:
            return {{"<|EOT|>"}, {}};
        case ChatFormat::llama3:
            return {{"<|eot_id|>"}, {}};
        default:
            return {{"</s>"}, {}};
    }
}

}  // namespace pylon::runtime_server
