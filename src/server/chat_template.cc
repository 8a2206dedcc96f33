#include "server/chat_template.h"

#include <algorithm>

namespace akv::server {

namespace {

std::string RenderChatMl(const std::vector<ChatMessage>& messages, const char* default_system) {
  std::string out;
  if (default_system && (messages.empty() || messages[0].role != "system"))
    out += std::string("<|im_start|>system\n") + default_system + "<|im_end|>\n";
  for (const ChatMessage& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  return out + "<|im_start|>assistant\n";
}

// Llama 2: the system prompt goes inside the first [INST] block; every completed assistant
// turn ends with </s> and the next user turn opens with <s>.
std::string RenderLlama2(const std::vector<ChatMessage>& messages) {
  std::string out, system;
  bool first_user = true;
  for (const ChatMessage& m : messages) {
    if (m.role == "system") {
      system += (system.empty() ? "" : "\n") + m.content;
    } else if (m.role == "user") {
      if (!first_user) out += "<s>";
      out += "[INST] ";
      if (!system.empty()) {
        out += "<<SYS>>\n" + system + "\n<</SYS>>\n\n";
        system.clear();
      }
      out += m.content + " [/INST]";
      first_user = false;
    } else {  // assistant
      out += " " + m.content + " </s>";
    }
  }
  return out;
}

std::string RenderLlama3(const std::vector<ChatMessage>& messages) {
  std::string out;
  for (const ChatMessage& m : messages)
    out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
  return out + "<|start_header_id|>assistant<|end_header_id|>\n\n";
}

}  // namespace

const char* ChatTemplateNames() { return "chatml, llama2, llama3, qwen"; }

std::string ChatTemplate::name() const {
  switch (family) {
    case ChatFamily::kChatMl: return "chatml";
    case ChatFamily::kLlama2: return "llama2";
    case ChatFamily::kLlama3: return "llama3";
    case ChatFamily::kQwen: return "qwen";
  }
  return "?";
}

std::string ChatTemplate::Render(const std::vector<ChatMessage>& messages) const {
  switch (family) {
    case ChatFamily::kChatMl: return RenderChatMl(messages, nullptr);
    case ChatFamily::kQwen: return RenderChatMl(messages, "You are a helpful assistant.");
    case ChatFamily::kLlama2: return RenderLlama2(messages);
    case ChatFamily::kLlama3: return RenderLlama3(messages);
  }
  return "";
}

std::vector<std::string> ChatTemplate::TurnEndStrings() const {
  switch (family) {
    case ChatFamily::kChatMl:
    case ChatFamily::kQwen: return {"<|im_end|>", "<|im_start|>"};
    case ChatFamily::kLlama2: return {"[INST]"};
    case ChatFamily::kLlama3: return {"<|eot_id|>", "<|start_header_id|>"};
  }
  return {};
}

StatusOr<ChatTemplate> ChatTemplateByName(const std::string& name) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  ChatTemplate t;
  if (n == "chatml") t.family = ChatFamily::kChatMl;
  else if (n == "llama2" || n == "llama-2") t.family = ChatFamily::kLlama2;
  else if (n == "llama3" || n == "llama-3") t.family = ChatFamily::kLlama3;
  else if (n == "qwen" || n == "qwen2") t.family = ChatFamily::kQwen;
  else return InvalidArgument("unknown chat template '" + name + "' (available: " + ChatTemplateNames() + ")");
  return t;
}

StatusOr<ChatTemplate> DetectChatTemplate(const std::string& jinja) {
  auto has = [&](const char* s) { return jinja.find(s) != std::string::npos; };
  ChatTemplate t;
  if (jinja.empty()) {
    return NotFound(std::string("the model has no chat template (tokenizer.chat_template); start the server with "
                                "--chat-template NAME (") + ChatTemplateNames() + ")");
  }
  if (has("<|start_header_id|>") && has("<|eot_id|>")) {
    t.family = ChatFamily::kLlama3;
  } else if (has("<|im_start|>")) {
    // Qwen's templates are ChatML plus a default system prompt.
    t.family = has("You are a helpful assistant") || has("Qwen") ? ChatFamily::kQwen : ChatFamily::kChatMl;
  } else if (has("[INST]")) {
    t.family = ChatFamily::kLlama2;
  } else {
    return Unsupported(std::string("the model's chat template (tokenizer.chat_template) is none of the known families; "
                                   "start the server with --chat-template NAME (") + ChatTemplateNames() + ")");
  }
  return t;
}

}  // namespace akv::server
