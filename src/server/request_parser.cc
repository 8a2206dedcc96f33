// Request body -> CompletionRequest. Every field is type- and range-checked; the error names
// the field (OpenAI's "param") so clients can tell what to fix.
#include <cmath>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "engine/utf8.h"
#include "server/cache_spec.h"
#include "server/request.h"

namespace akv::server {

namespace {

using nlohmann::json;

// Deepest [ / { nesting outside strings. Checked before parsing so hostile bodies cannot make
// the parser or the destructor of the parsed value work through absurd depths.
int NestingDepth(std::string_view body) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escape = false;
  for (char c : body) {
    if (in_string) {
      if (escape) escape = false;
      else if (c == '\\') escape = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') max_depth = std::max(max_depth, ++depth);
    else if (c == ']' || c == '}') --depth;
  }
  return max_depth;
}

const std::set<std::string>& KnownFields(Endpoint e) {
  static const std::set<std::string> common = {
      "model", "max_tokens", "temperature", "top_p", "top_k", "min_p", "repeat_penalty", "repeat_last_n",
      "seed", "stop", "stream", "stream_options", "logprobs", "n", "presence_penalty", "frequency_penalty",
      "user", "akv", "ignore_eos", "logit_bias"};
  static const std::set<std::string> completions = [] {
    auto s = common;
    s.insert({"prompt", "echo", "suffix", "best_of", "top_logprobs"});
    return s;
  }();
  static const std::set<std::string> chat = [] {
    auto s = common;
    s.insert({"messages", "top_logprobs", "max_completion_tokens", "response_format", "tools", "tool_choice",
              "parallel_tool_calls"});
    return s;
  }();
  return e == Endpoint::kChat ? chat : completions;
}

class Parser {
 public:
  Parser(const json& body, Endpoint endpoint, const ParserLimits& limits, CompletionRequest* out)
      : j_(body), endpoint_(endpoint), limits_(limits), r_(*out) {}

  bool Run(ApiError* error) {
    error_ = error;
    r_ = CompletionRequest{};
    r_.endpoint = endpoint_;
    r_.sampling = limits_.defaults;
    return Fields() && Prompt() && Sampling() && Limits() && Stop() && Streaming() && Logprobs() && Unsupported() &&
           Extension();
  }

 private:
  bool Fail(const std::string& param, const std::string& message, const std::string& code = "") {
    *error_ = BadRequest(message, param, code);
    return false;
  }
  const json* Get(const char* key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;  // null means "default", as in OpenAI's API
  }
  bool Number(const char* key, double lo, double hi, float* out) {
    const json* v = Get(key);
    if (!v) return true;
    if (!v->is_number()) return Fail(key, std::string("'") + key + "' must be a number");
    const double d = v->get<double>();
    if (!std::isfinite(d) || d < lo || d > hi)
      return Fail(key, std::string("'") + key + "' must be in [" + Fmt(lo) + ", " + Fmt(hi) + "], got " + Fmt(d));
    *out = static_cast<float>(d);
    return true;
  }
  bool Integer(const char* key, int64_t lo, int64_t hi, int64_t* out, bool* given = nullptr) {
    const json* v = Get(key);
    if (given) *given = v != nullptr;
    if (!v) return true;
    if (!v->is_number_integer()) return Fail(key, std::string("'") + key + "' must be an integer");
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi))
      return Fail(key, std::string("'") + key + "' must be at most " + std::to_string(hi) + ", got " + v->dump());
    const int64_t x = v->is_number_unsigned() ? static_cast<int64_t>(v->get<uint64_t>()) : v->get<int64_t>();
    if (x < lo || x > hi)
      return Fail(key, std::string("'") + key + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                           "], got " + std::to_string(x));
    *out = x;
    return true;
  }
  bool Bool(const char* key, bool* out) {
    const json* v = Get(key);
    if (!v) return true;
    if (!v->is_boolean()) return Fail(key, std::string("'") + key + "' must be true or false");
    *out = v->get<bool>();
    return true;
  }
  static std::string Fmt(double d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", d);
    return buf;
  }

  bool Fields() {
    const auto& known = KnownFields(endpoint_);
    for (const auto& [key, value] : j_.items()) {
      if (known.count(key)) continue;
      if (limits_.unknown_fields == UnknownFields::kReject)
        return Fail(key, "unrecognized request argument supplied: " + key, "unknown_parameter");
    }
    if (const json* m = Get("model"); m && !m->is_string()) return Fail("model", "'model' must be a string");
    if (const json* m = Get("model")) r_.model = m->get<std::string>();
    if (const json* u = Get("user"); u && !u->is_string()) return Fail("user", "'user' must be a string");
    return true;
  }

  bool Text(const json& v, const std::string& param, std::string* out) {
    if (!v.is_string()) return Fail(param, "'" + param + "' must be a string");
    *out = v.get<std::string>();
    // nlohmann already rejects ill-formed UTF-8 and lone surrogates; this keeps the guarantee
    // local, since generation and tokenization rely on it.
    if (!IsValidUtf8(*out)) return Fail(param, "'" + param + "' is not valid UTF-8", "invalid_utf8");
    return true;
  }

  bool Prompt() {
    if (endpoint_ == Endpoint::kChat) return Messages();
    const json* p = Get("prompt");
    if (!p) return Fail("prompt", "'prompt' is required");
    if (p->is_string()) return Text(*p, "prompt", &r_.prompt);
    if (!p->is_array()) return Fail("prompt", "'prompt' must be a string, or an array of token ids");
    if (p->empty()) return Fail("prompt", "'prompt' is empty");
    if ((*p)[0].is_string()) {
      if (p->size() != 1)
        return Fail("prompt", "batched prompts are not supported: send one request per prompt");
      return Text((*p)[0], "prompt", &r_.prompt);
    }
    if (p->size() == 1 && (*p)[0].is_array()) p = &(*p)[0];  // [[ids...]]: one tokenized prompt
    r_.prompt_is_tokens = true;
    for (const json& t : *p) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > std::numeric_limits<int32_t>::max())
        return Fail("prompt", "'prompt' arrays must hold token ids (non-negative integers)");
      r_.prompt_tokens.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
    if (r_.prompt_tokens.empty()) return Fail("prompt", "'prompt' is empty");
    return true;
  }

  bool Messages() {
    const json* m = Get("messages");
    if (!m) return Fail("messages", "'messages' is required");
    if (!m->is_array() || m->empty()) return Fail("messages", "'messages' must be a non-empty array");
    if (m->size() > limits_.max_messages)
      return Fail("messages", "too many messages (" + std::to_string(m->size()) + ", at most " +
                                  std::to_string(limits_.max_messages) + ")");
    for (size_t i = 0; i < m->size(); ++i) {
      const json& msg = (*m)[i];
      const std::string param = "messages[" + std::to_string(i) + "]";
      if (!msg.is_object()) return Fail(param, "'" + param + "' must be an object with 'role' and 'content'");
      auto role = msg.find("role");
      if (role == msg.end() || !role->is_string()) return Fail(param + ".role", "'" + param + ".role' must be a string");
      ChatMessage cm;
      cm.role = role->get<std::string>();
      if (cm.role == "developer") cm.role = "system";  // OpenAI's newer name for the system role
      if (cm.role != "system" && cm.role != "user" && cm.role != "assistant")
        return Fail(param + ".role", "unsupported role '" + cm.role + "' (system, user, assistant)");
      auto content = msg.find("content");
      if (content == msg.end() || content->is_null()) return Fail(param + ".content", "'" + param + ".content' is required");
      if (content->is_string()) {
        if (!Text(*content, param + ".content", &cm.content)) return false;
      } else if (content->is_array()) {
        // Content parts: only text parts are understood.
        for (size_t k = 0; k < content->size(); ++k) {
          const json& part = (*content)[k];
          const std::string pp = param + ".content[" + std::to_string(k) + "]";
          if (!part.is_object() || part.value("type", json()) != "text")
            return Fail(pp, "only text content parts ({\"type\": \"text\", \"text\": ...}) are supported");
          auto text = part.find("text");
          std::string piece;
          if (text == part.end() || !Text(*text, pp + ".text", &piece)) {
            if (text == part.end()) return Fail(pp + ".text", "'" + pp + ".text' is required");
            return false;
          }
          cm.content += piece;
        }
      } else {
        return Fail(param + ".content", "'" + param + ".content' must be a string or an array of text parts");
      }
      r_.messages.push_back(std::move(cm));
    }
    return true;
  }

  bool Sampling() {
    SamplingParams& s = r_.sampling;
    int64_t top_k = s.top_k, last_n = s.repeat_last_n, seed = 0;
    if (!Number("temperature", 0, 100, &s.temperature) || !Number("top_p", 1e-9, 1, &s.top_p) ||
        !Number("min_p", 0, 1, &s.min_p) || !Number("repeat_penalty", 1e-3, 100, &s.repeat_penalty) ||
        !Integer("top_k", 0, 1 << 20, &top_k) || !Integer("repeat_last_n", 0, 1 << 20, &last_n) ||
        !Integer("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), &seed,
                 &r_.seed_given))
      return false;
    s.top_k = static_cast<int>(top_k);
    s.repeat_last_n = static_cast<int>(last_n);
    if (r_.seed_given) {
      const json* v = Get("seed");
      s.seed = v->is_number_unsigned() ? v->get<uint64_t>() : static_cast<uint64_t>(seed);
    }
    return Bool("ignore_eos", &r_.ignore_eos);
  }

  bool Limits() {
    int64_t max_tokens = limits_.default_max_tokens;
    bool given = false;
    const char* key = endpoint_ == Endpoint::kChat && Get("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if (!Integer(key, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), &max_tokens, &given))
      return false;
    if (given && max_tokens < 1) return Fail(key, std::string("'") + key + "' must be >= 1, got " + std::to_string(max_tokens));
    if (given && max_tokens > limits_.max_tokens_limit)
      return Fail(key, std::string("'") + key + "' is " + std::to_string(max_tokens) + ", more than this server allows (" +
                           std::to_string(limits_.max_tokens_limit) + ", the context size)",
                  "max_tokens_exceeded");
    r_.max_tokens = static_cast<int>(std::min<int64_t>(max_tokens, limits_.max_tokens_limit));
    return true;
  }

  bool Stop() {
    const json* s = Get("stop");
    if (!s) return true;
    std::vector<const json*> items;
    if (s->is_string()) {
      items.push_back(s);
    } else if (s->is_array()) {
      if (s->size() > limits_.max_stop)
        return Fail("stop", "too many stop strings (at most " + std::to_string(limits_.max_stop) + ")");
      for (const json& x : *s) items.push_back(&x);
    } else {
      return Fail("stop", "'stop' must be a string or an array of strings");
    }
    for (const json* x : items) {
      std::string text;
      if (!Text(*x, "stop", &text)) return false;
      if (text.empty()) return Fail("stop", "stop strings must not be empty");
      if (text.size() > limits_.max_stop_bytes)
        return Fail("stop", "stop strings are limited to " + std::to_string(limits_.max_stop_bytes) + " bytes");
      r_.stop.push_back(std::move(text));
    }
    return true;
  }

  bool Streaming() {
    if (!Bool("stream", &r_.stream)) return false;
    if (const json* o = Get("stream_options")) {
      if (!o->is_object()) return Fail("stream_options", "'stream_options' must be an object");
      for (const auto& [k, v] : o->items()) {
        if (k != "include_usage") return Fail("stream_options." + k, "unknown stream option '" + k + "'");
        if (!v.is_boolean()) return Fail("stream_options.include_usage", "'stream_options.include_usage' must be true or false");
        r_.include_usage = v.get<bool>();
      }
    }
    return true;
  }

  bool Logprobs() {
    const json* lp = Get("logprobs");
    const json* top = Get("top_logprobs");
    if (endpoint_ == Endpoint::kCompletions) {
      // Legacy completions: logprobs is the number of alternatives (0..5 in OpenAI; we allow 20).
      if (lp) {
        if (lp->is_boolean()) {
          r_.logprobs = lp->get<bool>() ? 0 : -1;
        } else {
          int64_t n = 0;
          if (!Integer("logprobs", 0, 20, &n)) return false;
          r_.logprobs = static_cast<int>(n);
        }
      }
      if (top) {
        int64_t n = 0;
        if (!Integer("top_logprobs", 0, 20, &n)) return false;
        r_.logprobs = std::max(r_.logprobs, static_cast<int>(n));
      }
      return true;
    }
    bool want = false;
    if (!Bool("logprobs", &want)) return false;
    int64_t n = 0;
    if (!Integer("top_logprobs", 0, 20, &n)) return false;
    if (top && !want) return Fail("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    r_.logprobs = want ? static_cast<int>(n) : -1;
    return true;
  }

  // Known OpenAI fields whose non-default values akv does not implement: a clear 400 rather
  // than silently different behaviour.
  bool Unsupported() {
    int64_t n = 1;
    if (!Integer("n", 1, 1, &n)) return false;
    if (endpoint_ == Endpoint::kCompletions) {
      int64_t best_of = 1;
      if (!Integer("best_of", 1, 1, &best_of)) return false;
      bool echo = false;
      if (!Bool("echo", &echo)) return false;
      if (echo) return Fail("echo", "'echo' is not supported");
      if (Get("suffix")) return Fail("suffix", "'suffix' (insertion) is not supported");
    }
    for (const char* key : {"presence_penalty", "frequency_penalty"}) {
      float x = 0;
      if (!Number(key, -2, 2, &x)) return false;
      if (x != 0) return Fail(key, std::string("'") + key + "' is not supported (use repeat_penalty)");
    }
    if (const json* b = Get("logit_bias"); b && !(b->is_object() && b->empty()))
      return Fail("logit_bias", "'logit_bias' is not supported");
    if (endpoint_ == Endpoint::kChat) {
      if (const json* t = Get("tools"); t && !(t->is_array() && t->empty()))
        return Fail("tools", "tool calls are not supported");
      if (const json* t = Get("tool_choice"); t && *t != "none" && *t != "auto")
        return Fail("tool_choice", "tool calls are not supported");
      if (const json* f = Get("response_format"); f && !(f->is_object() && f->value("type", json()) == "text"))
        return Fail("response_format", "only {\"type\": \"text\"} responses are supported");
      if (const json* p = Get("parallel_tool_calls"); p && !p->is_boolean())
        return Fail("parallel_tool_calls", "'parallel_tool_calls' must be true or false");
    }
    return true;
  }

  bool Extension() {
    const json* ext = Get("akv");
    if (!ext) return true;
    return BuildCacheSpec(*ext, &r_.cache_spec, error_);
  }

  const json& j_;
  Endpoint endpoint_;
  const ParserLimits& limits_;
  CompletionRequest& r_;
  ApiError* error_ = nullptr;
};

}  // namespace

bool ParseCompletionRequest(std::string_view body, Endpoint endpoint, const ParserLimits& limits,
                            CompletionRequest* out, ApiError* error) {
  if (body.empty()) {
    *error = BadRequest("the request body is empty: send a JSON object", "", "invalid_json");
    return false;
  }
  if (NestingDepth(body) > limits.max_depth) {
    *error = BadRequest("the JSON body is nested deeper than " + std::to_string(limits.max_depth) + " levels", "",
                        "invalid_json");
    return false;
  }
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Parse again with exceptions only to get the parser's message (position and reason).
    std::string why = "malformed JSON";
    try {
      json again = json::parse(body.begin(), body.end());
      (void)again;
    } catch (const json::exception& e) {
      why = e.what();
    }
    *error = BadRequest("could not parse the JSON body: " + why, "", "invalid_json");
    return false;
  }
  if (!j.is_object()) {
    *error = BadRequest("the request body must be a JSON object", "", "invalid_json");
    return false;
  }
  try {
    return Parser(j, endpoint, limits, out).Run(error);
  } catch (const std::exception& e) {  // a json accessor we did not guard; still a client error
    *error = BadRequest(std::string("invalid request: ") + e.what());
    return false;
  }
}

}  // namespace akv::server
