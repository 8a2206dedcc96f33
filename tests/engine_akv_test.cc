// The adaptive cache inside the engine, on a real model: nothing lost after long generation,
// quality close to the f16 cache, `--cache` specs validated with clear errors.
#include <gtest/gtest.h>

#include "akv/akv.hpp"
#include "eval/perplexity.h"
#include "kv/tiered_cache.h"
#include "test_util.h"
#include "tiny_engine_fixture.h"

namespace akv {
namespace {

class EngineAkv : public test::TinyEngineTest {
 protected:
  void SetUp() override {
    TinyEngineTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    text_ = test::ReadFileToString(test::SharedDir() + "/data/treasure_island.txt");
  }
  std::string text_;
};

TEST_F(EngineAkv, EveryTokenInExactlyOneTierAfterLongGeneration) {
  auto s = engine_->NewSession({.n_ctx = 2048, .cache = "akv:aggressive"});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  GenerateOptions o;
  o.max_tokens = 300;
  o.stop_at_eos = false;
  o.sampling.temperature = 0;
  auto r = (*s)->Generate(text_.substr(0, 3000), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto* cache = dynamic_cast<TieredCache*>(&(*s)->cache());
  ASSERT_NE(cache, nullptr);
  ASSERT_TRUE(cache->CheckInvariants().ok()) << cache->CheckInvariants().ToString();
  const CacheStats st = (*s)->cache_stats();
  const int64_t heads = st.n_layer * st.n_head_kv;
  EXPECT_EQ(st.evicted, 0);
  EXPECT_EQ(st.hot.tokens + st.warm.tokens + st.cold.tokens, (*s)->n_past() * heads);
  EXPECT_GT(st.cold.tokens, 0);
  EXPECT_GT(st.warm.tokens, 0);
  // Every prompt position is still stored, in some tier, in every layer and head.
  for (int l = 0; l < st.n_layer; ++l)
    for (int h = 0; h < st.n_head_kv; ++h)
      for (int p = 0; p < r->stats.n_prompt; p += 7) ASSERT_GE(cache->TierOf(l, h, p), 0) << l << "/" << h << "/" << p;
}

TEST_F(EngineAkv, BalancedPerplexityCloseToF16) {
  PerplexityOptions o;
  o.n_ctx = 1024;
  o.n_chunks = 2;
  auto full = ComputePerplexity(*engine_, text_, o);
  o.cache = "akv:balanced";
  auto akv = ComputePerplexity(*engine_, text_, o);
  ASSERT_TRUE(full.ok() && akv.ok());
  EXPECT_GT(akv->ppl, full->ppl * 0.99);  // compression does not help
  EXPECT_LT(akv->ppl, full->ppl * 1.03) << "full " << full->ppl << " akv " << akv->ppl;
  EXPECT_LT(akv->cache.bits_per_value, 5.0);
}

TEST_F(EngineAkv, BadSpecsAreClearErrors) {
  auto s = engine_->NewSession({.n_ctx = 256, .cache = "akv,warm_bits=5"});
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("warm_bits"), std::string::npos);
}

}  // namespace
}  // namespace akv
