// Chat templates of the common families, rendered in C++ (no Jinja): the GGUF
// `tokenizer.chat_template` is recognised by its marker tokens, or the family is named with
// `--chat-template NAME`.
#pragma once

#include <string>
#include <vector>

#include "akv/status.h"
#include "server/request.h"

namespace akv::server {

enum class ChatFamily { kChatMl, kLlama2, kLlama3, kQwen };

struct ChatTemplate {
  ChatFamily family = ChatFamily::kChatMl;
  std::string name() const;
  // The prompt for `messages`, ending where the assistant's reply begins. Without BOS: the
  // tokenizer adds it as the model's metadata says. Special tokens appear as text
  // ("<|im_start|>"), so tokenize with parse_special.
  std::string Render(const std::vector<ChatMessage>& messages) const;
  // Text that ends a turn: a stop string, so models whose vocabulary lacks the end-of-turn
  // token (or that write it as plain text) still stop at the end of the reply.
  std::vector<std::string> TurnEndStrings() const;
};

// "chatml", "llama2", "llama3", "qwen" (case-insensitive); error lists them.
StatusOr<ChatTemplate> ChatTemplateByName(const std::string& name);
// Recognises a Jinja template from GGUF metadata; error when it is none of the families.
StatusOr<ChatTemplate> DetectChatTemplate(const std::string& jinja);
const char* ChatTemplateNames();  // "chatml, llama2, llama3, qwen"

}  // namespace akv::server
