// OpenAI wire format: response bodies and server-sent-event chunks for completions and chat.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/job.h"
#include "server/request.h"

namespace akv::server {

// Identity of one response: every chunk of a stream repeats it.
struct ResponseMeta {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string id;     // "cmpl-..." / "chatcmpl-..."
  int64_t created = 0;
  std::string model;
  std::string cache_spec;
};

// Accumulates a non-streamed answer from the generation events.
struct Accumulated {
  std::string text;
  std::vector<TokenLogprob> logprobs;
  GenEvent done;
};

// Serialises without throwing: invalid UTF-8 (token pieces can split a character) is replaced.
std::string Dump(const nlohmann::json& j);

std::string CompletionBody(const ResponseMeta& meta, const Accumulated& acc, bool want_logprobs);
// One "data: {...}\n\n" event per call.
std::string StreamStartChunk(const ResponseMeta& meta);  // chat: the assistant role delta
std::string StreamTextChunk(const ResponseMeta& meta, const GenEvent& token_event, bool want_logprobs);
std::string StreamFinishChunk(const ResponseMeta& meta, const GenEvent& done);
std::string StreamUsageChunk(const ResponseMeta& meta, const GenEvent& done);
std::string StreamErrorEvent(const ApiError& error);
inline constexpr const char* kStreamDone = "data: [DONE]\n\n";

nlohmann::json UsageJson(const GenEvent& done);
nlohmann::json CacheJson(const CacheStats& s);

}  // namespace akv::server
