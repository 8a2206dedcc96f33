// Bad input reaches the user as a Status naming the problem, never as a crash.
#include <gtest/gtest.h>

#include <cstdio>
#include <cmath>
#include <fstream>

#include "akv/akv.hpp"
#include "test_util.h"
#include "tiny_engine_fixture.h"

namespace akv {
namespace {

std::string WriteTemp(const std::vector<uint8_t>& bytes, const std::string& name) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return path;
}

// Replaces the first occurrence of `from` by `to` (same length) in the file image.
std::vector<uint8_t> Patch(std::vector<uint8_t> b, const std::string& from, const std::string& to) {
  EXPECT_EQ(from.size(), to.size());
  std::string s(b.begin(), b.end());
  size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) std::copy(to.begin(), to.end(), b.begin() + at);
  return b;
}

class EngineErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::SharedDir().empty()) GTEST_SKIP() << "shared fixtures not found (set AKV_SHARED)";
    bytes_ = test::ReadFileBytes(test::ModelPath("stories260K.gguf"));
  }
  Status LoadStatus(const std::vector<uint8_t>& b, const std::string& name) {
    return Engine::Load({.model_path = WriteTemp(b, name), .n_threads = 1}).status();
  }
  std::vector<uint8_t> bytes_;
};

TEST_F(EngineErrors, MissingFile) {
  Status st = Engine::Load({.model_path = "/no/such/model.gguf"}).status();
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_NE(st.message().find("/no/such/model.gguf"), std::string::npos);
}

TEST_F(EngineErrors, UnknownArchitectureIsNamed) {
  Status st = LoadStatus(Patch(bytes_, "llama", "mamba"), "mamba.gguf");
  EXPECT_EQ(st.code(), StatusCode::kUnsupported) << st.ToString();
  EXPECT_NE(st.message().find("mamba"), std::string::npos) << st.ToString();
}

TEST_F(EngineErrors, MissingTensorIsNamed) {
  Status st = LoadStatus(Patch(bytes_, "blk.3.ffn_up.weight", "blk.3.ffn_uq.weight"), "missing.gguf");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("blk.3.ffn_up.weight"), std::string::npos) << st.ToString();
}

TEST_F(EngineErrors, TruncatedFile) {
  std::vector<uint8_t> cut(bytes_.begin(), bytes_.begin() + bytes_.size() / 2);
  Status st = LoadStatus(cut, "truncated.gguf");
  EXPECT_EQ(st.code(), StatusCode::kCorrupt) << st.ToString();
  EXPECT_NE(st.message().find("past the end"), std::string::npos) << st.ToString();
}

TEST_F(EngineErrors, PromptLongerThanContext) {
  auto e = Engine::Load({.model_path = test::ModelPath("stories260K.gguf"), .n_threads = 1});
  ASSERT_TRUE(e.ok());
  auto s = (*e)->NewSession({.n_ctx = 32});
  ASSERT_TRUE(s.ok());
  std::string prompt;
  for (int i = 0; i < 40; ++i) prompt += " the";
  auto r = (*s)->Generate(prompt, {});
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(r.status().message().find("context of 32"), std::string::npos) << r.status().ToString();
  // The session stays usable after the error.
  GenerateOptions o;
  o.max_tokens = 4;
  EXPECT_TRUE((*s)->Generate("Once", o).ok());
}

TEST_F(EngineErrors, GenerationStopsAtContextEnd) {
  auto e = Engine::Load({.model_path = test::ModelPath("stories260K.gguf"), .n_threads = 1});
  ASSERT_TRUE(e.ok());
  auto s = (*e)->NewSession({.n_ctx = 24});
  ASSERT_TRUE(s.ok());
  GenerateOptions o;
  o.max_tokens = 1000;
  o.stop_at_eos = false;
  auto r = (*s)->Generate("Once upon a time", o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->finish_reason, "length");
  EXPECT_EQ(r->stats.n_prompt + r->stats.n_generated, 24 + 1);  // the last sampled token is not decoded
}

TEST_F(EngineErrors, BadSamplingParameters) {
  auto e = Engine::Load({.model_path = test::ModelPath("stories260K.gguf"), .n_threads = 1});
  ASSERT_TRUE(e.ok());
  auto s = (*e)->NewSession({.n_ctx = 64});
  ASSERT_TRUE(s.ok());
  GenerateOptions o;
  o.sampling.temperature = -1;
  EXPECT_NE((*s)->Generate("Once", o).status().message().find("temperature"), std::string::npos);
  o.sampling.temperature = 0.5;
  o.sampling.top_p = 1.5;
  EXPECT_NE((*s)->Generate("Once", o).status().message().find("top_p"), std::string::npos);
  EXPECT_EQ((*e)->NewSession({.n_ctx = 64, .cache = "bogus"}).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(EngineErrors, SeededSamplingIsReproducible) {
  auto e = Engine::Load({.model_path = test::ModelPath("stories260K.gguf"), .n_threads = 1});
  ASSERT_TRUE(e.ok());
  GenerateOptions o;
  o.max_tokens = 24;
  o.sampling.seed = 7;
  auto s1 = (*e)->NewSession({.n_ctx = 128});
  auto s2 = (*e)->NewSession({.n_ctx = 128});
  auto a = (*s1)->Generate("Once upon a time", o);
  auto b = (*s2)->Generate("Once upon a time", o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->tokens, b->tokens);
}

}  // namespace
}  // namespace akv

namespace akv {
namespace {

// Batched decoding (one matmul over every session's token) gives each session the logits it
// would get alone.
class DecodeBatch : public test::TinyEngineTest {};

TEST_F(DecodeBatch, MatchesDecodingEachSessionAlone) {
  Engine* e = engine_.get();
  const char* prompts[] = {"Once upon a time", "The ship sailed out of the harbour", "Hello"};
  const char* caches[] = {"full", "akv:balanced", "full"};
  std::vector<std::unique_ptr<Session>> batch, alone;
  for (int i = 0; i < 3; ++i) {
    for (auto* v : {&batch, &alone}) {
      auto s = e->NewSession({.n_ctx = 128, .cache = caches[i]});
      ASSERT_TRUE(s.ok());
      ASSERT_TRUE((*s)->Prefill(e->Tokenize(prompts[i])).ok());
      v->push_back(std::move(*s));
    }
  }
  SamplingParams greedy;
  greedy.temperature = 0;
  for (int step = 0; step < 6; ++step) {
    std::vector<Session*> ptrs;
    std::vector<int32_t> toks;
    for (int i = 0; i < 3; ++i) {
      ptrs.push_back(batch[i].get());
      toks.push_back(*batch[i]->Sample(greedy));
      ASSERT_TRUE(alone[i]->Decode(toks.back()).ok());
    }
    ASSERT_TRUE(e->DecodeBatch(ptrs, toks).ok());
    for (int i = 0; i < 3; ++i) {
      auto a = batch[i]->last_logits(), b = alone[i]->last_logits();
      double err = 0, norm = 0;
      for (size_t v = 0; v < a.size(); ++v) {
        err += (a[v] - b[v]) * (a[v] - b[v]);
        norm += b[v] * b[v];
      }
      EXPECT_LT(std::sqrt(err / norm), 1e-3) << "session " << i << " step " << step;
      EXPECT_EQ(batch[i]->n_past(), alone[i]->n_past());
    }
  }
  std::vector<Session*> dup = {batch[0].get(), batch[0].get()};
  std::vector<int32_t> two = {1, 2};
  EXPECT_FALSE(e->DecodeBatch(dup, two).ok());
}

}  // namespace
}  // namespace akv

namespace akv {
namespace {

class Generate : public test::TinyEngineTest {};

TEST_F(Generate, StopStringCutsTheTextAndStreamingAgrees) {
  Engine* e = engine_.get();
  GenerateOptions o;
  o.max_tokens = 40;
  o.sampling.temperature = 0;
  o.stop_at_eos = false;
  auto s = e->NewSession({.n_ctx = 256});
  auto full = (*s)->Generate("Once upon a time", o);
  ASSERT_TRUE(full.ok());
  ASSERT_GT(full->text.size(), 30u);
  const std::string stop = full->text.substr(20, 5);
  const size_t cut = full->text.find(stop);
  o.stop = {stop};
  (*s)->Reset();
  std::string streamed;
  auto r = (*s)->Stream("Once upon a time", o, [&](const TokenEvent& ev) {
    streamed += ev.piece;
    return true;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish_reason, "stop");
  EXPECT_EQ(r->text, full->text.substr(0, cut));
  EXPECT_EQ(streamed, r->text);
}

}  // namespace
}  // namespace akv
