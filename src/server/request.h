// A validated completion / chat-completion request, parsed from the JSON body.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "akv/akv.hpp"
#include "server/api_error.h"

namespace akv::server {

enum class Endpoint { kCompletions, kChat };

// What to do with request fields the server does not know.
enum class UnknownFields { kIgnore, kReject };

struct ChatMessage {
  std::string role;  // system, user or assistant
  std::string content;
};

struct CompletionRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;
  // Completions: text, or token ids when the prompt was given as an array of integers.
  std::string prompt;
  std::vector<int32_t> prompt_tokens;
  bool prompt_is_tokens = false;
  std::vector<ChatMessage> messages;  // chat

  int max_tokens = 0;  // resolved: the request's, or the server default
  SamplingParams sampling;
  bool seed_given = false;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // Top alternatives to report per token: -1 no logprobs, 0 the chosen token's only, up to 20.
  int logprobs = -1;

  std::string cache_spec;  // from the `akv` extension object; "" = the server's default cache
};

struct ParserLimits {
  int max_tokens_limit = 4096;   // largest max_tokens accepted
  int default_max_tokens = 256;  // when the request gives none
  UnknownFields unknown_fields = UnknownFields::kIgnore;
  size_t max_stop = 16;          // stop strings per request
  size_t max_stop_bytes = 256;   // bytes per stop string
  size_t max_messages = 1024;
  int max_depth = 32;            // JSON nesting
  SamplingParams defaults;       // sampling when the request says nothing
};

// Parses and validates a request body. Never throws; on failure fills *error (HTTP 400 with
// an OpenAI-style message naming the field) and returns false.
bool ParseCompletionRequest(std::string_view body, Endpoint endpoint, const ParserLimits& limits,
                            CompletionRequest* out, ApiError* error);

}  // namespace akv::server
