#include "server/openai_format.h"

#include <algorithm>
#include <cmath>

namespace akv::server {

namespace {

using nlohmann::json;

json Bytes(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

json Logprob(float lp) { return std::isfinite(lp) ? json(lp) : json(-9999.0); }

// Chat format: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}.
json ChatLogprobs(const std::vector<TokenLogprob>& lps) {
  json content = json::array();
  for (const TokenLogprob& lp : lps) {
    json top = json::array();
    for (const LogprobEntry& e : lp.top)
      top.push_back({{"token", e.text}, {"logprob", Logprob(e.logprob)}, {"bytes", Bytes(e.text)}});
    content.push_back({{"token", lp.chosen.text},
                       {"logprob", Logprob(lp.chosen.logprob)},
                       {"bytes", Bytes(lp.chosen.text)},
                       {"top_logprobs", top}});
  }
  return {{"content", content}};
}

// Legacy completions format: parallel arrays, top_logprobs as {token text: logprob} maps.
json CompletionLogprobs(const std::vector<TokenLogprob>& lps, size_t text_offset) {
  json tokens = json::array(), token_lps = json::array(), tops = json::array(), offsets = json::array();
  for (const TokenLogprob& lp : lps) {
    tokens.push_back(lp.chosen.text);
    token_lps.push_back(Logprob(lp.chosen.logprob));
    json top = json::object();
    for (const LogprobEntry& e : lp.top) top[e.text] = Logprob(e.logprob);
    tops.push_back(top);
    offsets.push_back(text_offset);
    text_offset += lp.chosen.text.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", token_lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json Envelope(const ResponseMeta& m, const char* object) {
  return {{"id", m.id}, {"object", object}, {"created", m.created}, {"model", m.model}};
}

const char* ChunkObject(const ResponseMeta& m) {
  return m.endpoint == Endpoint::kChat ? "chat.completion.chunk" : "text_completion";
}

std::string Event(const json& j) { return "data: " + Dump(j) + "\n\n"; }

}  // namespace

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json CacheJson(const CacheStats& s) {
  const int64_t per = std::max(1, s.n_layer * s.n_head_kv);
  auto tier = [&](const TierCount& t) { return json{{"tokens", t.tokens / per}, {"bytes", t.bytes}}; };
  return {{"hot", tier(s.hot)},         {"warm", tier(s.warm)},         {"cold", tier(s.cold)},
          {"evicted", s.evicted / per}, {"promotions", s.promotions},   {"demotions", s.demotions},
          {"bytes", s.total_bytes()},   {"bits_per_value", s.bits_per_value}};
}

json UsageJson(const GenEvent& d) {
  return {{"prompt_tokens", d.prompt_tokens},
          {"completion_tokens", d.completion_tokens},
          {"total_tokens", d.prompt_tokens + d.completion_tokens}};
}

std::string CompletionBody(const ResponseMeta& m, const Accumulated& acc, bool want_logprobs) {
  json choice = {{"index", 0}, {"finish_reason", acc.done.finish_reason}};
  json body;
  if (m.endpoint == Endpoint::kChat) {
    body = Envelope(m, "chat.completion");
    choice["message"] = {{"role", "assistant"}, {"content", acc.text}};
    choice["logprobs"] = want_logprobs ? ChatLogprobs(acc.logprobs) : json(nullptr);
  } else {
    body = Envelope(m, "text_completion");
    choice["text"] = acc.text;
    choice["logprobs"] = want_logprobs ? CompletionLogprobs(acc.logprobs, 0) : json(nullptr);
  }
  body["choices"] = json::array({choice});
  body["usage"] = UsageJson(acc.done);
  body["akv"] = {{"cache_spec", m.cache_spec},
                 {"cache", CacheJson(acc.done.cache)},
                 {"ttft_ms", acc.done.ttft_ms},
                 {"truncated_prompt_tokens", acc.done.truncated_tokens}};
  return Dump(body);
}

std::string StreamStartChunk(const ResponseMeta& m) {
  if (m.endpoint != Endpoint::kChat) return "";
  json j = Envelope(m, ChunkObject(m));
  j["choices"] = json::array(
      {{{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr}, {"finish_reason", nullptr}}});
  return Event(j);
}

std::string StreamTextChunk(const ResponseMeta& m, const GenEvent& ev, bool want_logprobs) {
  json j = Envelope(m, ChunkObject(m));
  json choice = {{"index", 0}, {"finish_reason", nullptr}};
  if (m.endpoint == Endpoint::kChat) {
    choice["delta"] = {{"content", ev.text}};
    choice["logprobs"] = want_logprobs ? ChatLogprobs(ev.logprobs) : json(nullptr);
  } else {
    choice["text"] = ev.text;
    choice["logprobs"] = want_logprobs ? CompletionLogprobs(ev.logprobs, 0) : json(nullptr);
  }
  j["choices"] = json::array({choice});
  return Event(j);
}

std::string StreamFinishChunk(const ResponseMeta& m, const GenEvent& done) {
  json j = Envelope(m, ChunkObject(m));
  json choice = {{"index", 0}, {"finish_reason", done.finish_reason}, {"logprobs", nullptr}};
  if (m.endpoint == Endpoint::kChat) choice["delta"] = json::object();
  else choice["text"] = "";
  j["choices"] = json::array({choice});
  j["akv"] = {{"cache_spec", m.cache_spec}, {"cache", CacheJson(done.cache)}, {"ttft_ms", done.ttft_ms},
              {"truncated_prompt_tokens", done.truncated_tokens}};
  return Event(j);
}

std::string StreamUsageChunk(const ResponseMeta& m, const GenEvent& done) {
  json j = Envelope(m, ChunkObject(m));
  j["choices"] = json::array();
  j["usage"] = UsageJson(done);
  return Event(j);
}

std::string StreamErrorEvent(const ApiError& e) { return "data: " + e.ToJson() + "\n\n"; }

}  // namespace akv::server
