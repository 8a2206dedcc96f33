// Fuzzes the request parser (and the text/SSE helpers behind it) with random mutations of
// valid bodies and random type substitutions. Run under ASan/UBSan by scripts/test.sh. The
// parser must never crash, throw or hang; whatever it accepts must satisfy the invariants
// the scheduler relies on; whatever it rejects must come with a JSON error body.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/utf8.h"
#include "server/chat_template.h"
#include "server/request.h"
#include "server/sse_parser.h"
#include "engine/text_stream.h"

namespace akv::server {
namespace {

const char* kSeeds[] = {
    R"({"model":"m","prompt":"Once upon a time","max_tokens":16,"temperature":0.7,"top_p":0.9,"top_k":40,"seed":1,"stop":["\n","The"],"stream":true,"stream_options":{"include_usage":true},"logprobs":2,"akv":{"cache":"akv","preset":"balanced","hot_budget":512}})",
    R"({"prompt":[1,2,3,4],"max_tokens":4,"min_p":0.1,"repeat_penalty":1.1,"repeat_last_n":32,"ignore_eos":true})",
    R"({"prompt":["caf\u00e9 \ud83d\ude00"],"echo":false,"n":1,"best_of":1,"presence_penalty":0,"logit_bias":{}})",
};
const char* kChatSeeds[] = {
    R"({"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"},{"role":"user","content":[{"type":"text","text":"more"}]}],"max_completion_tokens":8,"logprobs":true,"top_logprobs":3,"stream":false,"response_format":{"type":"text"},"tools":[]})",
    R"({"messages":[{"role":"developer","content":"x"},{"role":"user","content":"y"}],"stop":"END","temperature":0,"akv":{"cache":"full"}})",
};
const char* kFragments[] = {"[", "]", "{", "}", "\"", ":", ",", "null", "true", "-1", "1e999", "-0", "0.5",
                            "\\ud800", "\\u0000", "\xff", "\xc3", "\xe2\x82", "99999999999999999999", "\"\"", "[]", "{}",
                            "\"prompt\"", "\"messages\"", "\"max_tokens\"", "\"akv\"", "\"stop\""};

std::string Mutate(std::string s, std::mt19937& rng) {
  std::uniform_int_distribution<int> op(0, 6), n_ops(1, 4);
  const int n = n_ops(rng);
  for (int k = 0; k < n; ++k) {
    const size_t pos = s.empty() ? 0 : std::uniform_int_distribution<size_t>(0, s.size() - 1)(rng);
    switch (op(rng)) {
      case 0:  // flip a byte
        if (!s.empty()) s[pos] = static_cast<char>(rng());
        break;
      case 1:  // insert a random byte
        s.insert(s.begin() + pos, static_cast<char>(rng()));
        break;
      case 2: {  // delete a range
        const size_t len = std::uniform_int_distribution<size_t>(1, 16)(rng);
        if (!s.empty()) s.erase(pos, len);
        break;
      }
      case 3: {  // duplicate a range
        const size_t len = std::uniform_int_distribution<size_t>(1, 32)(rng);
        s.insert(pos, s.substr(pos, len));
        break;
      }
      case 4:  // insert a JSON-ish fragment
        s.insert(pos, kFragments[rng() % std::size(kFragments)]);
        break;
      case 5:  // truncate
        s.resize(pos);
        break;
      default: {  // swap two bytes
        const size_t other = s.empty() ? 0 : rng() % s.size();
        if (!s.empty()) std::swap(s[pos], s[other]);
      }
    }
  }
  return s;
}

nlohmann::json RandomValue(std::mt19937& rng, int depth = 0) {
  switch (rng() % (depth > 2 ? 7 : 9)) {
    case 0: return nullptr;
    case 1: return static_cast<bool>(rng() & 1);
    case 2: return static_cast<int64_t>(rng()) - (1ll << 31);
    case 3: return std::uniform_real_distribution<double>(-1e6, 1e6)(rng);
    case 4: return static_cast<uint64_t>(rng()) << 32 | rng();
    case 5: return "";
    case 6: return std::string(rng() % 40, static_cast<char>('a' + rng() % 26));
    case 7: {
      nlohmann::json a = nlohmann::json::array();
      for (int i = rng() % 4; i > 0; --i) a.push_back(RandomValue(rng, depth + 1));
      return a;
    }
    default: {
      nlohmann::json o = nlohmann::json::object();
      for (int i = rng() % 4; i > 0; --i) o[std::string(1, static_cast<char>('a' + rng() % 26))] = RandomValue(rng, depth + 1);
      if (rng() % 2) o["role"] = rng() % 2 ? "user" : "system";
      if (rng() % 2) o["content"] = RandomValue(rng, depth + 1);
      if (rng() % 3 == 0) o["cache"] = "akv";
      return o;
    }
  }
}

// What the scheduler and the response writer rely on for every accepted request.
void CheckAccepted(const CompletionRequest& r, const ParserLimits& limits, const std::string& body) {
  ASSERT_GE(r.max_tokens, 1) << body;
  ASSERT_LE(r.max_tokens, limits.max_tokens_limit) << body;
  ASSERT_TRUE(std::isfinite(r.sampling.temperature) && r.sampling.temperature >= 0) << body;
  ASSERT_TRUE(r.sampling.top_p > 0 && r.sampling.top_p <= 1) << body;
  ASSERT_TRUE(r.sampling.min_p >= 0 && r.sampling.min_p <= 1) << body;
  ASSERT_GT(r.sampling.repeat_penalty, 0) << body;
  ASSERT_GE(r.sampling.top_k, 0) << body;
  ASSERT_LE(r.logprobs, 20) << body;
  ASSERT_LE(r.stop.size(), limits.max_stop) << body;
  for (const std::string& s : r.stop) ASSERT_TRUE(!s.empty() && IsValidUtf8(s)) << body;
  ASSERT_TRUE(IsValidUtf8(r.prompt)) << body;
  for (const ChatMessage& m : r.messages) {
    ASSERT_TRUE(m.role == "system" || m.role == "user" || m.role == "assistant") << body;
    ASSERT_TRUE(IsValidUtf8(m.content)) << body;
  }
  for (char c : r.cache_spec) ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || std::strchr("_.-+:,=", c)) << body;
  if (r.endpoint == Endpoint::kChat) {
    ASSERT_FALSE(r.messages.empty());
    for (const char* name : {"chatml", "llama2", "llama3", "qwen"}) (void)ChatTemplateByName(name)->Render(r.messages);
  } else {
    ASSERT_TRUE(r.prompt_is_tokens ? !r.prompt_tokens.empty() : true);
  }
}

void RunOne(const std::string& body, Endpoint endpoint, const ParserLimits& limits, int* accepted) {
  CompletionRequest r;
  ApiError e;
  if (ParseCompletionRequest(body, endpoint, limits, &r, &e)) {
    ++*accepted;
    CheckAccepted(r, limits, body);
  } else {
    ASSERT_EQ(e.http_status, 400);
    ASSERT_FALSE(e.message.empty());
    auto j = nlohmann::json::parse(e.ToJson(), nullptr, false);
    ASSERT_FALSE(j.is_discarded());
    ASSERT_TRUE(j["error"]["message"].is_string());
  }
}

TEST(ServerFuzz, MutatedBodies) {
  std::mt19937 rng(1234);
  ParserLimits limits;
  limits.max_tokens_limit = 4096;
  int accepted = 0, total = 0;
  for (int iter = 0; iter < 30000; ++iter) {
    const bool chat = iter % 2;
    const std::string seed = chat ? kChatSeeds[rng() % std::size(kChatSeeds)] : kSeeds[rng() % std::size(kSeeds)];
    limits.unknown_fields = rng() % 2 ? UnknownFields::kReject : UnknownFields::kIgnore;
    RunOne(Mutate(seed, rng), chat ? Endpoint::kChat : Endpoint::kCompletions, limits, &accepted);
    ++total;
    if (HasFatalFailure()) return;
  }
  // Some mutations keep the body valid: the fuzzer exercised both paths.
  EXPECT_GT(accepted, 100);
  EXPECT_LT(accepted, total);
}

TEST(ServerFuzz, WrongTypes) {
  std::mt19937 rng(99);
  ParserLimits limits;
  int accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    const bool chat = iter % 2;
    nlohmann::json j = nlohmann::json::parse(chat ? kChatSeeds[0] : kSeeds[0]);
    const int n = 1 + rng() % 3;
    for (int k = 0; k < n; ++k) {
      auto it = j.begin();
      std::advance(it, rng() % j.size());
      *it = RandomValue(rng);
    }
    RunOne(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), chat ? Endpoint::kChat : Endpoint::kCompletions,
           limits, &accepted);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(accepted, 0);
}

// Released text + the final flush is exactly the text, cut at the first stop string, and no
// released piece ends inside a UTF-8 character of otherwise valid text.
TEST(ServerFuzz, TextStreamInvariants) {
  std::mt19937 rng(7);
  const std::vector<std::string> alphabet = {"a", "b", "ab", "\xe2\x82\xac", "\xe2", "\x82\xac", "\n", "</", "s>", "é"};
  for (int iter = 0; iter < 5000; ++iter) {
    std::vector<std::string> stops;
    for (int i = rng() % 3; i > 0; --i) {
      std::string s;
      for (int k = 1 + rng() % 3; k > 0; --k) s += alphabet[rng() % alphabet.size()];
      stops.push_back(s);
    }
    TextStream ts(stops);
    std::string all, released;
    for (int t = rng() % 30; t > 0 && !ts.stopped(); --t) {
      const std::string piece = alphabet[rng() % alphabet.size()];
      all += piece;
      released += ts.Push(piece);
    }
    released += ts.Flush();
    size_t cut = std::string::npos;
    for (const std::string& s : stops) cut = std::min(cut, all.find(s));
    if (cut != std::string::npos) all.resize(cut);
    ASSERT_EQ(released, all);
  }
}

TEST(ServerFuzz, SseParserOnRandomChunks) {
  std::mt19937 rng(11);
  for (int iter = 0; iter < 2000; ++iter) {
    std::string stream;
    std::vector<std::string> sent;
    for (int i = rng() % 6; i > 0; --i) {
      std::string payload(rng() % 20, 'x');
      for (char& c : payload) c = "ab{}\":"[rng() % 6];
      sent.push_back(payload);
      stream += "data: " + payload + (rng() % 2 ? "\n\n" : "\r\n\r\n");
      if (rng() % 3 == 0) stream += ": keepalive\n\n";
    }
    SseParser p;
    std::vector<std::string> got;
    size_t pos = 0;
    while (pos < stream.size()) {
      const size_t n = 1 + rng() % 7;
      for (auto& e : p.Feed(std::string_view(stream).substr(pos, n))) got.push_back(e);
      pos += n;
    }
    ASSERT_EQ(got, sent);
  }
}

}  // namespace
}  // namespace akv::server
