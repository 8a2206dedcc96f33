// The server's pure parts: request parsing and validation, the akv cache extension, chat
// templates, stop-string/UTF-8 streaming, logprobs, the SSE parser, metrics text.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "server/cache_spec.h"
#include "server/chat_template.h"
#include "server/conn_probe.h"
#include "server/logprobs.h"
#include "server/metrics.h"
#include "server/request.h"
#include "server/sse_parser.h"
#include "engine/text_stream.h"

namespace akv::server {
namespace {

struct Parsed {
  bool ok;
  CompletionRequest req;
  ApiError error;
};

Parsed Parse(const std::string& body, Endpoint e = Endpoint::kCompletions, ParserLimits limits = {}) {
  Parsed p;
  p.ok = ParseCompletionRequest(body, e, limits, &p.req, &p.error);
  return p;
}

TEST(ServerParser, ValidCompletion) {
  Parsed p = Parse(R"({"model":"m","prompt":"Hi","max_tokens":7,"temperature":0.5,"top_p":0.9,"top_k":5,
                       "seed":42,"stop":["\n","END"],"stream":true,"stream_options":{"include_usage":true},
                       "logprobs":3,"akv":{"cache":"akv","preset":"balanced","hot_budget":512}})");
  ASSERT_TRUE(p.ok) << p.error.message;
  EXPECT_EQ(p.req.prompt, "Hi");
  EXPECT_EQ(p.req.max_tokens, 7);
  EXPECT_FLOAT_EQ(p.req.sampling.temperature, 0.5f);
  EXPECT_EQ(p.req.sampling.top_k, 5);
  EXPECT_TRUE(p.req.seed_given);
  EXPECT_EQ(p.req.sampling.seed, 42u);
  EXPECT_EQ(p.req.stop.size(), 2u);
  EXPECT_TRUE(p.req.stream);
  EXPECT_TRUE(p.req.include_usage);
  EXPECT_EQ(p.req.logprobs, 3);
  EXPECT_EQ(p.req.cache_spec, "akv:balanced,hot_budget=512");
}

TEST(ServerParser, DefaultsAndNulls) {
  ParserLimits limits;
  limits.default_max_tokens = 33;
  Parsed p = Parse(R"({"prompt":"x","max_tokens":null,"temperature":null,"stop":null})", Endpoint::kCompletions, limits);
  ASSERT_TRUE(p.ok) << p.error.message;
  EXPECT_EQ(p.req.max_tokens, 33);
  EXPECT_EQ(p.req.sampling.temperature, SamplingParams{}.temperature);
  EXPECT_FALSE(p.req.seed_given);
  EXPECT_EQ(p.req.logprobs, -1);
}

TEST(ServerParser, PromptForms) {
  EXPECT_EQ(Parse(R"({"prompt":["one"]})").req.prompt, "one");
  Parsed t = Parse(R"({"prompt":[1,2,3]})");
  ASSERT_TRUE(t.ok);
  EXPECT_TRUE(t.req.prompt_is_tokens);
  EXPECT_EQ(t.req.prompt_tokens, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_TRUE(Parse(R"({"prompt":[[5,6]]})").req.prompt_is_tokens);
  Parsed batch = Parse(R"({"prompt":["a","b"]})");
  EXPECT_FALSE(batch.ok);
  EXPECT_NE(batch.error.message.find("batched"), std::string::npos);
  EXPECT_FALSE(Parse(R"({"prompt":[-1]})").ok);
  EXPECT_FALSE(Parse(R"({"prompt":[]})").ok);
  EXPECT_FALSE(Parse(R"({"prompt":{}})").ok);
}

TEST(ServerParser, ChatMessages) {
  Parsed p = Parse(R"({"messages":[{"role":"developer","content":"be brief"},
                                    {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
                       "logprobs":true,"top_logprobs":2,"max_completion_tokens":9})",
                   Endpoint::kChat);
  ASSERT_TRUE(p.ok) << p.error.message;
  ASSERT_EQ(p.req.messages.size(), 2u);
  EXPECT_EQ(p.req.messages[0].role, "system");
  EXPECT_EQ(p.req.messages[1].content, "ab");
  EXPECT_EQ(p.req.logprobs, 2);
  EXPECT_EQ(p.req.max_tokens, 9);
  EXPECT_FALSE(Parse(R"({"messages":[]})", Endpoint::kChat).ok);
  EXPECT_FALSE(Parse(R"({"messages":[{"role":"tool","content":"x"}]})", Endpoint::kChat).ok);
  EXPECT_FALSE(Parse(R"({"messages":[{"role":"user"}]})", Endpoint::kChat).ok);
  EXPECT_FALSE(Parse(R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", Endpoint::kChat).ok);
  EXPECT_FALSE(Parse(R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":2})", Endpoint::kChat).ok);
  EXPECT_FALSE(Parse(R"({"prompt":"x"})", Endpoint::kChat).ok);
}

// Every bad field gets a 400 whose `param` names it.
TEST(ServerParser, BadFieldsNameTheParam) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"prompt":5})", "prompt"},
      {R"({"prompt":"x","max_tokens":"10"})", "max_tokens"},
      {R"({"prompt":"x","max_tokens":1.5})", "max_tokens"},
      {R"({"prompt":"x","max_tokens":0})", "max_tokens"},
      {R"({"prompt":"x","max_tokens":-3})", "max_tokens"},
      {R"({"prompt":"x","max_tokens":1000000000})", "max_tokens"},
      {R"({"prompt":"x","max_tokens":99999999999999999999})", "max_tokens"},
      {R"({"prompt":"x","temperature":-0.1})", "temperature"},
      {R"({"prompt":"x","temperature":"hot"})", "temperature"},
      {R"({"prompt":"x","temperature":1e400})", ""},  // not JSON-representable: parse error
      {R"({"prompt":"x","top_p":0})", "top_p"},
      {R"({"prompt":"x","top_p":1.5})", "top_p"},
      {R"({"prompt":"x","top_k":-1})", "top_k"},
      {R"({"prompt":"x","min_p":2})", "min_p"},
      {R"({"prompt":"x","repeat_penalty":0})", "repeat_penalty"},
      {R"({"prompt":"x","seed":"1"})", "seed"},
      {R"({"prompt":"x","stream":"yes"})", "stream"},
      {R"({"prompt":"x","stream_options":{"bogus":true}})", "stream_options.bogus"},
      {R"({"prompt":"x","stop":""})", "stop"},
      {R"({"prompt":"x","stop":[1]})", "stop"},
      {R"({"prompt":"x","stop":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]})", "stop"},
      {R"({"prompt":"x","n":2})", "n"},
      {R"({"prompt":"x","echo":true})", "echo"},
      {R"({"prompt":"x","logprobs":21})", "logprobs"},
      {R"({"prompt":"x","presence_penalty":0.5})", "presence_penalty"},
      {R"({"prompt":"x","logit_bias":{"1":5}})", "logit_bias"},
      {R"({"prompt":"x","model":7})", "model"},
      {R"({"prompt":"x","akv":"full"})", "akv"},
      {R"({"prompt":"x","akv":{"cache":"full,evil=1"}})", "akv.cache"},
      {R"({"prompt":"x","akv":{"cache":"akv","hot_budget":[1]}})", "akv.hot_budget"},
      {R"({"prompt":"x","akv":{"preset":"balanced"}})", "akv.cache"},
      {R"({"prompt":"x","akv":{"cache":"akv","bad key":1}})", "akv"},
  };
  for (const auto& [body, param] : cases) {
    Parsed p = Parse(body);
    EXPECT_FALSE(p.ok) << body;
    EXPECT_EQ(p.error.http_status, 400) << body;
    EXPECT_EQ(p.error.param, param) << body << " -> " << p.error.message;
    EXPECT_FALSE(p.error.message.empty());
  }
}

TEST(ServerParser, MalformedBodies) {
  const std::vector<std::string> bodies = {"", "{", "[]", "\"x\"", "null", "{\"prompt\":\"x\",}", "{\"prompt\":\"x\"} junk",
                                 std::string(100, '['), "{\"prompt\":\"\\ud800\"}", "{\"prompt\":\"\xff\xfe\"}",
                                 "{\"prompt\":\"\xc3\"}", std::string("{\"prompt\":\"a\0b\"}", 16)};
  for (const std::string& body : bodies) {
    Parsed p = Parse(body);
    EXPECT_FALSE(p.ok) << body;
    EXPECT_EQ(p.error.http_status, 400);
    EXPECT_NE(p.error.ToJson().find("\"error\""), std::string::npos);
  }
}

TEST(ServerParser, UnknownFieldsPolicy) {
  ParserLimits limits;
  EXPECT_TRUE(Parse(R"({"prompt":"x","frobnicate":1})", Endpoint::kCompletions, limits).ok);
  limits.unknown_fields = UnknownFields::kReject;
  Parsed p = Parse(R"({"prompt":"x","frobnicate":1})", Endpoint::kCompletions, limits);
  EXPECT_FALSE(p.ok);
  EXPECT_EQ(p.error.param, "frobnicate");
  EXPECT_EQ(p.error.code, "unknown_parameter");
  EXPECT_TRUE(Parse(R"({"prompt":"x","user":"u","model":"m"})", Endpoint::kCompletions, limits).ok);
}

TEST(ServerParser, ErrorJsonSurvivesInvalidUtf8) {
  ApiError e = BadRequest(std::string("bad \xff byte"), "p");
  const std::string j = e.ToJson();
  EXPECT_NE(j.find("\"param\":\"p\""), std::string::npos);
  EXPECT_NE(j.find("invalid_request_error"), std::string::npos);
}

TEST(ServerCacheSpec, BuildsSpecStrings) {
  auto build = [](const char* text, std::string* spec) {
    ApiError e;
    return BuildCacheSpec(nlohmann::json::parse(text), spec, &e);
  };
  std::string spec;
  ASSERT_TRUE(build(R"({"cache":"full"})", &spec));
  EXPECT_EQ(spec, "full");
  ASSERT_TRUE(build(R"({"cache":"akv","warm_bits":4,"hot_budget":0.25})", &spec));
  EXPECT_EQ(spec, "akv,hot_budget=0.25,warm_bits=4");
  ASSERT_TRUE(build(R"({"cache":"akv","preset":"aggressive","promote":true})", &spec));
  EXPECT_EQ(spec, "akv:aggressive,promote=true");
  ASSERT_TRUE(build(R"({})", &spec));
  EXPECT_EQ(spec, "");
  EXPECT_FALSE(build(R"({"cache":"akv","x":"a=b"})", &spec));
  EXPECT_FALSE(build(R"({"cache":"akv:balanced"})", &spec));
}

TEST(ServerChatTemplate, RendersFamilies) {
  std::vector<ChatMessage> m = {{"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}};
  EXPECT_EQ(ChatTemplateByName("chatml")->Render(m),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
            "<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(ChatTemplateByName("qwen")->Render({{"user", "U"}}),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(ChatTemplateByName("llama2")->Render(m), "[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]");
  EXPECT_EQ(ChatTemplateByName("llama3")->Render({{"user", "U"}}),
            "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_FALSE(ChatTemplateByName("vicuna").ok());
  EXPECT_NE(ChatTemplateByName("vicuna").status().message().find("chatml"), std::string::npos);
}

TEST(ServerChatTemplate, DetectsFromJinja) {
  EXPECT_EQ(DetectChatTemplate("{% for m in messages %}<|im_start|>{{ m.role }}...")->name(), "chatml");
  EXPECT_EQ(DetectChatTemplate("{{'<|im_start|>system\\nYou are a helpful assistant.<|im_end|>'}}")->name(), "qwen");
  EXPECT_EQ(DetectChatTemplate("<|start_header_id|>{{ role }}<|end_header_id|>{{ content }}<|eot_id|>")->name(), "llama3");
  EXPECT_EQ(DetectChatTemplate("{{ bos_token }}[INST] <<SYS>>{{ system }}<</SYS>> [/INST]")->name(), "llama2");
  auto none = DetectChatTemplate("");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("--chat-template"), std::string::npos);
  auto odd = DetectChatTemplate("{% for m in messages %}### {{ m.role }}: {{ m.content }}{% endfor %}");
  ASSERT_FALSE(odd.ok());
  EXPECT_NE(odd.status().message().find("--chat-template"), std::string::npos);
}

TEST(ServerTextStream, HoldsBackPartialStopsAndCharacters) {
  TextStream s({"STOP"});
  EXPECT_EQ(s.Push("Hello S"), "Hello ");  // "S" might start "STOP"
  EXPECT_EQ(s.Push("T"), "");
  EXPECT_EQ(s.Push("x"), "STx");  // it did not
  EXPECT_EQ(s.Push("\xe2\x82"), "");  // first two bytes of the euro sign
  EXPECT_EQ(s.Push("\xac ST"), "\xe2\x82\xac ");
  EXPECT_EQ(s.Push("OP and more"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.text(), "Hello STx\xe2\x82\xac ");
  EXPECT_EQ(s.Flush(), "");
  EXPECT_EQ(s.Push("later"), "");

  TextStream t({"</end>"});
  EXPECT_EQ(t.Push("a</e"), "a");
  EXPECT_EQ(t.Flush(), "</e");  // generation ended: release what was held back
}

TEST(ServerLogprobs, MatchesSoftmax) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, -1.0f};
  double z = 0;
  for (float l : logits) z += std::exp(l);
  TokenLogprob lp = ComputeLogprob(logits, 2, 2);
  EXPECT_NEAR(lp.chosen.logprob, 2.0 - std::log(z), 1e-5);
  ASSERT_EQ(lp.top.size(), 2u);
  EXPECT_EQ(lp.top[0].token, 1);
  EXPECT_EQ(lp.top[1].token, 2);
  EXPECT_NEAR(lp.top[0].logprob, 3.0 - std::log(z), 1e-5);
  EXPECT_EQ(ComputeLogprob(logits, 0, 0).top.size(), 0u);
  EXPECT_EQ(ComputeLogprob(logits, 0, 100).top.size(), 4u);
}

TEST(ServerSse, ParsesSplitEvents) {
  SseParser p;
  EXPECT_TRUE(p.Feed("data: {\"a\"").empty());
  auto ev = p.Feed(":1}\n\n: comment\n\ndata: [DONE]\r\n\r\n");
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0], "{\"a\":1}");
  EXPECT_EQ(ev[1], "[DONE]");
}

TEST(ServerAuth, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("Bearer abc", "Bearer abc"));
  EXPECT_FALSE(ConstantTimeEquals("Bearer abd", "Bearer abc"));
  EXPECT_FALSE(ConstantTimeEquals("Bearer ab", "Bearer abc"));
  EXPECT_FALSE(ConstantTimeEquals("Bearer abcd", "Bearer abc"));
  EXPECT_FALSE(ConstantTimeEquals("", "Bearer abc"));
}

TEST(ServerMetrics, PrometheusText) {
  Metrics m;
  m.RecordStatus("/v1/completions", 200);
  m.RecordTtft(0.02);
  m.RecordTtft(0.2);
  m.RecordInterToken(0.004);
  KvSnapshot kv;
  kv.hot = {128, 4096};
  m.SetKv(kv, 3, 5, 0);
  const std::string text = m.Render();
  EXPECT_NE(text.find("akv_requests_total{endpoint=\"/v1/completions\",code=\"200\"} 1"), std::string::npos);
  EXPECT_NE(text.find("akv_time_to_first_token_seconds_bucket{le=\"0.025\"} 1"), std::string::npos);
  EXPECT_NE(text.find("akv_time_to_first_token_seconds_bucket{le=\"+Inf\"} 2"), std::string::npos);
  EXPECT_NE(text.find("akv_kv_bytes{tier=\"hot\"} 4096"), std::string::npos);
  EXPECT_NE(text.find("akv_kv_demotions_total 5"), std::string::npos);
  EXPECT_NE(text.find("# TYPE akv_inter_token_latency_seconds histogram"), std::string::npos);
}

}  // namespace
}  // namespace akv::server
