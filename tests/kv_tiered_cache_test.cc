// The tiered cache's contracts: config parsing and validation, exact attention while every token
// is hot, budgets honoured by demotion, every token kept in exactly one tier (no silent loss),
// and promotion of a cold page that a query needs.
#include "kv/tiered_cache.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>

#include "kv/cache_factory.h"
#include "kv/full_cache.h"

namespace akv {
namespace {

TEST(CacheConfig, PresetsAndOverrides) {
  auto c = CacheConfig::Parse("akv:aggressive,hot_budget=256,hadamard=false");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->preset, "aggressive");
  EXPECT_EQ(c->hot_budget, 256);
  EXPECT_FALSE(c->hadamard);
  auto again = CacheConfig::Parse(c->ToString());
  ASSERT_TRUE(again.ok()) << c->ToString();
  EXPECT_EQ(again->ToString(), c->ToString());
  for (const char* p : {"akv", "akv:quality", "akv:balanced", "akv:aggressive", "akv:lean", "akv:compact"}) EXPECT_TRUE(CacheConfig::Parse(p).ok()) << p;
  EXPECT_NE(CacheConfig::Help().find("protect_recent"), std::string::npos);
}

TEST(CacheConfig, ErrorsNameTheProblem) {
  struct Case {
    const char* spec;
    const char* needle;
  } cases[] = {
      {"akv:fast", "unknown preset 'fast' for cache method 'akv'"},
      {"akv,hot_budgte=3", "unknown cache option 'hot_budgte'"},
      {"akv,warm_bits=3", "warm_bits must be 8, 4 or 2"},
      {"akv,tau1=0.5,tau2=0.4", "tau1 < tau2 < tau3"},
      {"akv,hot_budget=10", "impossible budget"},
      {"akv,max_total=50", "impossible budget"},
      {"akv,cold_bits=8,warm_bits=4", "cold_bits"},
      {"akv,decay=x", "'x' is not a number"},
      {"akv,hadamard=maybe", "boolean"},
      {"akv,group_size=48", "group_size"},
      {"akv,page_size", "needs a value"},
      {"akv,cold_key_block=48", "cold_key_block must be 0 (off), 32, 64 or 128"},
      {"akv:compact,kivi_keys=true", "use one"},
      {"akv:compact,cold_attend_all=false", "keeps cold blocks whole"},
      {"akv:compact,max_total=0.5", "keeps cold blocks whole"},
      {"akv:compact,page_size=64", "multiple"},
  };
  for (const Case& c : cases) {
    auto r = CacheConfig::Parse(c.spec);
    ASSERT_FALSE(r.ok()) << c.spec;
    EXPECT_NE(r.status().message().find(c.needle), std::string::npos) << c.spec << ": " << r.status().message();
  }
}

struct Synthetic {
  KvShape shape{2, 2, 64, 3};
  std::mt19937 rng{7};
  std::normal_distribution<float> nd{0.f, 1.f};
  std::vector<float> Rand(size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = nd(rng);
    return v;
  }
};

// Appends n tokens to every layer of the cache, one forward-pass-like step per `chunk`, with an
// attention call per layer (so scores accumulate) and EndStep.
// policy_pool (default: pool) runs EndStep.
void Feed(KvCache& cache, Synthetic& s, int n, int chunk, ThreadPool& pool, std::vector<float>* last_out = nullptr,
          ThreadPool* policy_pool = nullptr) {
  const int kvd = s.shape.n_head_kv * s.shape.head_dim, qd = kvd * s.shape.n_q_per_kv;
  for (int done = 0; done < n; done += chunk) {
    const int c = std::min(chunk, n - done);
    std::vector<int32_t> pos(c);
    std::iota(pos.begin(), pos.end(), static_cast<int32_t>(cache.n_positions()));
    for (int l = 0; l < s.shape.n_layer; ++l) {
      auto k = s.Rand(static_cast<size_t>(c) * kvd), v = s.Rand(static_cast<size_t>(c) * kvd), q = s.Rand(static_cast<size_t>(c) * qd);
      ASSERT_TRUE(cache.Append(l, k.data(), v.data(), pos.data(), c).ok());
      std::vector<float> out(static_cast<size_t>(c) * qd);
      ASSERT_TRUE(cache.Attend(l, q.data(), pos.data(), c, out.data(), pool).ok());
      if (last_out) *last_out = out;
    }
    cache.EndStep(policy_pool ? *policy_pool : pool);
  }
}

TEST(TieredCache, PolicyOnSeveralThreadsEqualsOneThread) {
  // EndStep runs Migrate / Promote per (layer, KV head) on the pool: the result must be the
  // serial one, bit for bit (eviction, promotion and per-layer budgets all exercised).
  ThreadPool one(1), two(2);
  Synthetic a, b;
  a.shape = b.shape = KvShape{4, 3, 64, 2};
  auto cfg = CacheConfig::Parse(
      "akv,hot_budget=48,warm_budget=120,max_total=400,cold_attend_all=false,promote_k=2,promote_interval=3,"
      "n_anchors=4,protect_recent=16,prefill_chunk=32,page_size=64");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  auto serial = TieredCache::Create(*cfg, a.shape, 2048);
  auto parallel = TieredCache::Create(*cfg, b.shape, 2048);
  ASSERT_TRUE(serial.ok() && parallel.ok());
  std::vector<float> out_s, out_p;
  Feed(**serial, a, 700, 32, one, &out_s, &one);
  Feed(**parallel, b, 700, 32, one, &out_p, &two);
  Feed(**serial, a, 60, 1, one, &out_s, &one);
  Feed(**parallel, b, 60, 1, one, &out_p, &two);
  const CacheStats x = (*serial)->Stats(), y = (*parallel)->Stats();
  EXPECT_EQ(x.hot.tokens, y.hot.tokens);
  EXPECT_EQ(x.warm.tokens, y.warm.tokens);
  EXPECT_EQ(x.cold.tokens, y.cold.tokens);
  EXPECT_EQ(x.demotions, y.demotions);
  EXPECT_EQ(x.promotions, y.promotions);
  EXPECT_EQ(x.evicted, y.evicted);
  EXPECT_GT(x.demotions, 0);
  EXPECT_GT(x.evicted, 0);
  for (int l = 0; l < a.shape.n_layer; ++l)
    for (int h = 0; h < a.shape.n_head_kv; ++h)
      for (int p = 0; p < 760; ++p) ASSERT_EQ((*serial)->TierOf(l, h, p), (*parallel)->TierOf(l, h, p)) << l << " " << h << " " << p;
  EXPECT_TRUE((*parallel)->CheckInvariants().ok());
  EXPECT_EQ(out_s, out_p);
}

TEST(TieredCache, AllHotEqualsFullCache) {
  ThreadPool pool(2);
  Synthetic a, b;
  auto cfg = CacheConfig::Parse("akv,hot_budget=1,warm_budget=1");
  ASSERT_TRUE(cfg.ok());
  auto tiered = TieredCache::Create(*cfg, a.shape, 1024);
  ASSERT_TRUE(tiered.ok()) << tiered.status().ToString();
  FullCache full(b.shape, 1024);
  std::vector<float> out_t, out_f;
  Feed(**tiered, a, 300, 64, pool, &out_t);
  Feed(full, b, 300, 64, pool, &out_f);
  ASSERT_EQ(out_t.size(), out_f.size());
  double err = 0, norm = 0;
  for (size_t i = 0; i < out_t.size(); ++i) {
    err += (out_t[i] - out_f[i]) * (out_t[i] - out_f[i]);
    norm += out_f[i] * out_f[i];
  }
  EXPECT_LT(std::sqrt(err / norm), 1e-5);
  EXPECT_EQ((*tiered)->Stats().warm.tokens, 0);
}

TEST(TieredCache, BudgetsHonouredAndNothingLost) {
  ThreadPool pool(2);
  Synthetic s;
  auto cfg = CacheConfig::Parse("akv,hot_budget=96,warm_budget=200,n_anchors=8,protect_recent=32,prefill_chunk=16");
  ASSERT_TRUE(cfg.ok());
  auto cache = TieredCache::Create(*cfg, s.shape, 4096);
  ASSERT_TRUE(cache.ok());
  Feed(**cache, s, 1000, 16, pool);  // "prefill" in chunks
  Feed(**cache, s, 200, 1, pool);    // then decode steps
  ASSERT_TRUE((*cache)->CheckInvariants().ok()) << (*cache)->CheckInvariants().ToString();
  CacheStats st = (*cache)->Stats();
  const int heads = s.shape.n_layer * s.shape.n_head_kv;
  EXPECT_EQ(st.hot.tokens + st.warm.tokens + st.cold.tokens, 1200 * heads);  // nothing evicted
  EXPECT_EQ(st.evicted, 0);
  // Budgets hold up to one migration interval of new tokens.
  EXPECT_LE(st.hot.tokens, (96 + cfg->migrate_interval) * heads);
  EXPECT_LE(st.warm.tokens, 200 * heads + cfg->migrate_interval * heads);
  EXPECT_GT(st.cold.tokens, 0);
  // Protection zones stay hot.
  for (int l = 0; l < s.shape.n_layer; ++l)
    for (int h = 0; h < s.shape.n_head_kv; ++h) {
      for (int p = 0; p < 8; ++p) EXPECT_EQ((*cache)->TierOf(l, h, p), 0) << "anchor " << p;
      for (int p = 1200 - 32; p < 1200; ++p) EXPECT_EQ((*cache)->TierOf(l, h, p), 0) << "recent " << p;
    }
  EXPECT_LT(st.bits_per_value, 16.0);
  EXPECT_GT(st.demotions, 0);
}

TEST(TieredCache, EvictionOnlyWhenMaxTotalSet) {
  ThreadPool pool(1);
  Synthetic s;
  auto cfg = CacheConfig::Parse("akv,hot_budget=64,warm_budget=64,max_total=300,n_anchors=4,protect_recent=16,prefill_chunk=32");
  ASSERT_TRUE(cfg.ok());
  auto cache = TieredCache::Create(*cfg, s.shape, 4096);
  ASSERT_TRUE(cache.ok());
  Feed(**cache, s, 640, 32, pool);
  ASSERT_TRUE((*cache)->CheckInvariants().ok()) << (*cache)->CheckInvariants().ToString();
  CacheStats st = (*cache)->Stats();
  const int heads = s.shape.n_layer * s.shape.n_head_kv;
  EXPECT_EQ(st.hot.tokens + st.warm.tokens + st.cold.tokens, 300 * heads);
  EXPECT_EQ(st.evicted, 340 * heads);
}

// A query aimed at one token that sits in a non-attended cold page: the key-summary bound ranks
// that page first and it is promoted back to warm.
TEST(TieredCache, ColdTokenNeededByAQueryIsPromoted) {
  ThreadPool pool(1);
  KvShape shape{1, 1, 64, 1};
  auto cfg = CacheConfig::Parse(
      "akv,hot_budget=40,warm_budget=64,n_anchors=4,protect_recent=16,cold_attend_all=false,promote_k=1,"
      "promote_interval=1,migrate_interval=1,page_size=32,prefill_chunk=32,hadamard=false,pool_kernel=1");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  auto cache = TieredCache::Create(*cfg, shape, 2048);
  ASSERT_TRUE(cache.ok());
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 0.3f);
  const int n = 512, target = 100;
  std::vector<float> k(64 * n), v(64 * n);
  for (float& x : k) x = nd(rng);
  for (float& x : v) x = nd(rng);
  for (int c = 0; c < 64; ++c) k[target * 64 + c] = (c % 2 ? 4.f : -4.f);  // a distinctive key
  std::vector<float> q(64);
  for (int i = 0; i < n; i += 32) {
    std::vector<int32_t> pos(32);
    std::iota(pos.begin(), pos.end(), i);
    ASSERT_TRUE((*cache)->Append(0, &k[i * 64], &v[i * 64], pos.data(), 32).ok());
    // During the prompt the queries look away from the target, so it earns the least attention
    // and goes cold.
    std::vector<float> qs(32 * 64), out(32 * 64);
    for (int r = 0; r < 32; ++r)
      for (int c = 0; c < 64; ++c) qs[r * 64 + c] = (c % 2 ? -0.05f : 0.05f) + 0.01f * nd(rng);
    ASSERT_TRUE((*cache)->Attend(0, qs.data(), pos.data(), 32, out.data(), pool).ok());
    (*cache)->EndStep(pool);
  }
  ASSERT_EQ((*cache)->TierOf(0, 0, target), 2) << "the target should have been demoted to cold";
  // Decode steps whose query points at the target key.
  for (int c = 0; c < 64; ++c) q[c] = c % 2 ? 1.f : -1.f;
  for (int step = 0; step < 2; ++step) {
    std::vector<float> knew(64), vnew(64), out(64);
    for (float& x : knew) x = nd(rng);
    for (float& x : vnew) x = nd(rng);
    int32_t pos = n + step;
    ASSERT_TRUE((*cache)->Append(0, knew.data(), vnew.data(), &pos, 1).ok());
    ASSERT_TRUE((*cache)->Attend(0, q.data(), &pos, 1, out.data(), pool).ok());
    (*cache)->EndStep(pool);
  }
  EXPECT_EQ((*cache)->TierOf(0, 0, target), 1) << "the cold page holding the target was not promoted";
  EXPECT_GT((*cache)->Stats().promotions, 0);
  ASSERT_TRUE((*cache)->CheckInvariants().ok()) << (*cache)->CheckInvariants().ToString();
}

TEST(CacheFactory, ParsesSpecs) {
  KvShape shape{2, 2, 64, 3};
  EXPECT_TRUE(MakeKvCache("full", shape, 128).ok());
  EXPECT_TRUE(MakeKvCache("akv:balanced", shape, 128).ok());
  auto bad = MakeKvCache("akv,group_size=128", shape, 128);
  EXPECT_NE(bad.status().message().find("head dimension"), std::string::npos) << bad.status().ToString();
  EXPECT_NE(MakeKvCache("nope", shape, 128).status().message().find("unknown KV cache method 'nope'"), std::string::npos);
}

}  // namespace
}  // namespace akv

namespace akv {
namespace {

TEST(CacheConfig, AutoPageSize) {
  CacheConfig c;
  EXPECT_EQ(c.PageSizeFor(256), 64);
  EXPECT_EQ(c.PageSizeFor(2048), 128);
  EXPECT_EQ(c.PageSizeFor(4096), 256);
  EXPECT_EQ(c.PageSizeFor(131072), 256);
  // Budgets size pages on the tokens they buy in f16: 25% of 4096 -> 1024 -> 64 slots.
  CacheConfig evict = c;
  evict.max_total = 0.25;
  EXPECT_EQ(evict.PageSizeFor(4096), 64);
  EXPECT_EQ(evict.PageSizeFor(65536), 256);
  CacheConfig bytes = c;
  bytes.kv_budget_mb = 4;  // 1024 f16 tokens of 4 KiB
  EXPECT_EQ(bytes.PageSizeFor(4096, 4096), 64);
  EXPECT_EQ(bytes.PageSizeFor(4096), 256);  // no token size: the byte budget is not converted
  EXPECT_EQ(bytes.PageSizeFor(4096, 512), 256);
  c.kivi_keys = true;
  c.group_size = 128;
  EXPECT_EQ(c.PageSizeFor(256), 128);  // a KIVI block must fill pages whole
  c.page_size = 96;
  EXPECT_EQ(c.PageSizeFor(4096), 96);
  EXPECT_FALSE(CacheConfig::Parse("akv,page_size=48").ok());
  EXPECT_TRUE(CacheConfig::Parse("akv,page_size=0").ok());
}

TEST(TieredCache, ByteBudgetIsMet) {
  ThreadPool pool(1);
  Synthetic s;
  // 1200 tokens x 4 layer-heads in f16 pages would be ~1.2 MiB; ask for 0.5 MiB. A budget this
  // small needs small pages: every tier of every layer-head keeps one partly filled page.
  auto cfg = CacheConfig::Parse("akv,hot_budget=0.5,warm_budget=1,kv_budget_mb=0.5,n_anchors=4,protect_recent=16,prefill_chunk=32,page_size=64");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  auto cache = TieredCache::Create(*cfg, s.shape, 4096);
  ASSERT_TRUE(cache.ok());
  Feed(**cache, s, 1200, 32, pool);
  CacheStats st = (*cache)->Stats();
  EXPECT_LE(st.total_bytes(), 0.5 * 1024 * 1024);
  EXPECT_EQ(st.hot.tokens + st.warm.tokens + st.cold.tokens, 1200 * 4);
  ASSERT_TRUE((*cache)->CheckInvariants().ok());
}

TEST(TieredCache, PerLayerHotBudgets) {
  ThreadPool pool(1);
  Synthetic s;
  auto bad = CacheConfig::Parse("akv,hot_budget_layers=100:200:300");
  ASSERT_TRUE(bad.ok());
  EXPECT_NE(TieredCache::Create(*bad, s.shape, 1024).status().message().find("2 layers"), std::string::npos);
  EXPECT_FALSE(CacheConfig::Parse("akv,hot_budget_layers=100:x").ok());
  auto cfg = CacheConfig::Parse("akv,hot_budget_layers=64:200,warm_budget=1,n_anchors=4,protect_recent=16,prefill_chunk=32");
  ASSERT_TRUE(cfg.ok());
  auto cache = TieredCache::Create(*cfg, s.shape, 4096);
  ASSERT_TRUE(cache.ok());
  Feed(**cache, s, 640, 32, pool);
  CacheStats st = (*cache)->Stats();
  EXPECT_EQ(st.hot_per_layer[0].tokens, 64 * s.shape.n_head_kv);
  EXPECT_EQ(st.hot_per_layer[1].tokens, 200 * s.shape.n_head_kv);
}

TEST(TieredCache, DistributionStatsOfKnownDistributions) {
  const auto uniform = *TieredCache::DistributionStats({2, 2, 2, 2, 2, 2, 2, 2});
  EXPECT_NEAR(uniform.entropy, 1.0, 1e-12);
  EXPECT_NEAR(uniform.variance, 0.0, 1e-12);
  // One-hot over n = 4: entropy 0; p - 1/n = (3/4, -1/4 x 3): n^2 var = n - 1 = 3, kurtosis
  // ((n-1)^3 + 1) / (n (n-1)) = 28 / 12.
  const auto one_hot = *TieredCache::DistributionStats({5, 0, 0, 0});
  EXPECT_NEAR(one_hot.entropy, 0.0, 1e-12);
  EXPECT_NEAR(one_hot.variance, 3.0, 1e-12);
  EXPECT_NEAR(one_hot.kurtosis, 28.0 / 12.0, 1e-12);
  // Two equal halves over n = 4 ({1/2, 1/2, 0, 0}): entropy log 2 / log 4, n^2 var = 1, kurtosis 1.
  const auto halves = *TieredCache::DistributionStats({0, 3, 0, 3});
  EXPECT_NEAR(halves.entropy, 0.5, 1e-12);
  EXPECT_NEAR(halves.variance, 1.0, 1e-12);
  EXPECT_NEAR(halves.kurtosis, 1.0, 1e-12);
  // Scale-free; degenerate inputs (nothing attended, one weight) give no statistics, not NaN.
  const auto scaled = *TieredCache::DistributionStats({0, 300, 0, 300});
  EXPECT_NEAR(scaled.variance, halves.variance, 1e-12);
  EXPECT_FALSE(TieredCache::DistributionStats({0, 0, 0}).has_value());
  EXPECT_FALSE(TieredCache::DistributionStats({4}).has_value());
  EXPECT_FALSE(TieredCache::DistributionStats({}).has_value());
}

TEST(TieredCache, LayerRulesKeepTheTotalHotBudget) {
  auto cfg = CacheConfig::Parse("akv,layer_stats=entropy");
  ASSERT_TRUE(cfg.ok());
  // Entropy bands (tau 0.1 / 0.3 / 0.6): 0.5, 0.75, 1, 1.5 before renormalization (mean 0.9375).
  std::vector<TieredCache::LayerAttentionStats> st = {{0.05, 9, 40}, {0.2, 5, 20}, {0.5, 2, 8}, {0.9, 0.5, 3}};
  auto e = TieredCache::LayerHotScales(*cfg, st);
  const double raw[] = {0.5, 0.75, 1.0, 1.5};
  for (int l = 0; l < 4; ++l) EXPECT_NEAR(e[l], raw[l] / 0.9375, 1e-12) << l;
  // ARKV: H^(1/tau1) V^(1/tau2) K^(1/tau3) over the largest, then renormalized.
  auto a_cfg = CacheConfig::Parse("akv,layer_stats=arkv,tau1=0.5,tau2=1,tau3=2");
  ASSERT_TRUE(a_cfg.ok());
  st = {{0.5, 4, 9}, {1.0, 1, 4}};
  auto a = TieredCache::LayerHotScales(*a_cfg, st);
  const double pref0 = 0.25 * 4 * 3, pref1 = 1.0 * 1 * 2;  // 3 and 2
  EXPECT_NEAR(a[0], (pref0 / 3) / ((pref0 / 3 + pref1 / 3) / 2), 1e-12);
  EXPECT_NEAR(a[1], (pref1 / 3) / ((pref0 / 3 + pref1 / 3) / 2), 1e-12);
  EXPECT_NEAR(a[0] + a[1], 2.0, 1e-12);
  EXPECT_FALSE(CacheConfig::Parse("akv,layer_stats=median").ok());
}

// Layer 0 attends with zero queries (uniform attention: entropy near 1), layer 1 with sharp ones
// (a few keys take the mass): the rule gives layer 0 more f16 tokens and fewer int4 ones, and every
// layer keeps hot + warm = the two budgets.
TEST(TieredCache, LayerAdaptiveSplitsFullAndQuantizedPerLayer) {
  for (const char* rule : {"entropy", "arkv"}) {
    ThreadPool pool(1);
    Synthetic s;
    // Entropy thresholds between the two layers' (about 0.8 and 0.99 here).
    auto cfg = CacheConfig::Parse(std::string("akv,hot_budget=128,warm_budget=256,n_anchors=4,protect_recent=16,"
                                              "prefill_chunk=32,tau1=0.5,tau2=0.9,tau3=0.97,layer_stats=") + rule);
    ASSERT_TRUE(cfg.ok());
    auto made = TieredCache::Create(*cfg, s.shape, 4096);
    ASSERT_TRUE(made.ok());
    TieredCache& cache = **made;
    const int kvd = s.shape.n_head_kv * s.shape.head_dim, qd = kvd * s.shape.n_q_per_kv, n = 1024, chunk = 32;
    const float q_scale[2] = {0.f, 6.f};
    for (int done = 0; done < n; done += chunk) {
      std::vector<int32_t> pos(chunk);
      std::iota(pos.begin(), pos.end(), done);
      for (int l = 0; l < 2; ++l) {
        auto k = s.Rand(static_cast<size_t>(chunk) * kvd), v = s.Rand(static_cast<size_t>(chunk) * kvd);
        auto q = s.Rand(static_cast<size_t>(chunk) * qd);
        for (float& x : q) x *= q_scale[l];
        ASSERT_TRUE(cache.Append(l, k.data(), v.data(), pos.data(), chunk).ok());
        std::vector<float> out(static_cast<size_t>(chunk) * qd);
        ASSERT_TRUE(cache.Attend(l, q.data(), pos.data(), chunk, out.data(), pool).ok());
      }
      cache.EndStep(pool);
    }
    ASSERT_TRUE(cache.CheckInvariants().ok()) << cache.CheckInvariants().ToString();
    const CacheStats st = cache.Stats();
    ASSERT_EQ(st.layer_policy.size(), 2u) << rule;
    for (int l = 0; l < 2; ++l)
      std::printf("%s layer %d: entropy %.3f variance %.2f kurtosis %.1f hot x %.3f\n", rule, l, st.layer_policy[l].entropy,
                  st.layer_policy[l].variance, st.layer_policy[l].kurtosis, st.layer_policy[l].hot_scale);
    EXPECT_GT(st.layer_policy[0].entropy, 0.95) << rule;
    EXPECT_LT(st.layer_policy[1].entropy, st.layer_policy[0].entropy - 0.05) << rule;
    EXPECT_GT(st.layer_policy[1].variance, st.layer_policy[0].variance) << rule;
    EXPECT_NEAR(st.layer_policy[0].hot_scale + st.layer_policy[1].hot_scale, 2.0, 1e-9) << rule;
    const int heads = s.shape.n_head_kv;
    const int64_t hot0 = st.hot_per_layer[0].tokens / heads, hot1 = st.hot_per_layer[1].tokens / heads;
    if (std::string(rule) == "entropy") EXPECT_GT(hot0, hot1) << "the spread-out layer keeps more f16 tokens";
    else EXPECT_LT(hot0, hot1) << "ARKV's preference grows with the variance (exponent 1/tau2)";
    EXPECT_NE(hot0, hot1) << rule;
    EXPECT_NEAR(static_cast<double>(hot0 + hot1), 2 * 128, 2.0) << rule << ": the layers share the total hot budget";
    for (int l = 0; l < 2; ++l) {
      const int64_t kept = (st.hot_per_layer[l].tokens + st.warm_per_layer[l].tokens) / heads;
      EXPECT_NEAR(static_cast<double>(kept), 128 + 256, 1.0) << rule << " layer " << l;
      EXPECT_EQ((st.hot_per_layer[l].tokens + st.warm_per_layer[l].tokens + st.cold_per_layer[l].tokens) / heads, n);
      EXPECT_GE(st.hot_per_layer[l].tokens / heads, 20) << rule << " layer " << l << ": the 4 + 16 protected slots stay hot";
    }
  }
}

}  // namespace
}  // namespace akv

namespace akv {
namespace {

std::unique_ptr<TieredCache> Make(const std::string& spec, const KvShape& shape) {
  auto cfg = CacheConfig::Parse(spec);
  EXPECT_TRUE(cfg.ok()) << spec << ": " << cfg.status().ToString();
  if (!cfg.ok()) return nullptr;
  auto c = TieredCache::Create(*cfg, shape, 8192);
  EXPECT_TRUE(c.ok()) << spec << ": " << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

TEST(Baselines, EveryMethodRunsAndKeepsItsBookkeeping) {
  ThreadPool pool(2);
  for (const auto& [method, help] : CacheConfig::Methods()) {
    Synthetic s;
    auto c = Make(method, s.shape);
    ASSERT_NE(c, nullptr) << method;
    Feed(*c, s, 600, 32, pool);
    Feed(*c, s, 40, 1, pool);
    ASSERT_TRUE(c->CheckInvariants().ok()) << method << ": " << c->CheckInvariants().ToString();
    EXPECT_GT(c->Stats().hot.tokens + c->Stats().warm.tokens + c->Stats().cold.tokens, 0) << method;
  }
}

TEST(Baselines, WindowKeepsSinksAndMostRecent) {
  ThreadPool pool(1);
  Synthetic s;
  auto c = Make("window,max_total=100", s.shape);
  Feed(*c, s, 500, 20, pool);
  for (int p : {0, 1, 2, 3}) EXPECT_EQ(c->TierOf(1, 1, p), 0) << p;
  for (int p = 4; p < 404; p += 13) EXPECT_EQ(c->TierOf(1, 1, p), -1) << p;
  for (int p = 404; p < 500; ++p) EXPECT_EQ(c->TierOf(1, 1, p), 0) << p;
  EXPECT_EQ(c->Stats().hot.tokens, 100 * 4);
}

TEST(Baselines, H2OKeepsHeavyHittersAndRecent) {
  ThreadPool pool(1);
  KvShape shape{1, 1, 64, 1};
  auto c = Make("h2o,max_total=96,protect_recent=32", shape);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 0.2f);
  // Token 50 has a key every query aligns with: it must survive as a heavy hitter.
  for (int i = 0; i < 400; i += 16) {
    std::vector<float> k(16 * 64), v(16 * 64), q(16 * 64), out(16 * 64);
    for (float& x : k) x = nd(rng);
    for (float& x : v) x = nd(rng);
    for (int r = 0; r < 16; ++r)
      for (int d = 0; d < 64; ++d) q[r * 64 + d] = 0.5f + nd(rng);
    if (i <= 50 && 50 < i + 16)
      for (int d = 0; d < 64; ++d) k[(50 - i) * 64 + d] = 1.0f;
    std::vector<int32_t> pos(16);
    std::iota(pos.begin(), pos.end(), i);
    ASSERT_TRUE(c->Append(0, k.data(), v.data(), pos.data(), 16).ok());
    ASSERT_TRUE(c->Attend(0, q.data(), pos.data(), 16, out.data(), pool).ok());
    c->EndStep(pool);
  }
  EXPECT_EQ(c->TierOf(0, 0, 50), 0);
  for (int p = 400 - 32; p < 400; ++p) EXPECT_EQ(c->TierOf(0, 0, p), 0) << p;
  EXPECT_EQ(c->Stats().hot.tokens, 96);
}

TEST(Baselines, SnapKVCompressesThePromptOnly) {
  ThreadPool pool(1);
  Synthetic s;
  auto c = Make("snapkv,max_total=64", s.shape);
  Feed(*c, s, 320, 32, pool);  // prompt
  EXPECT_EQ(c->Stats().hot.tokens, 64 * 4);
  Feed(*c, s, 30, 1, pool);  // decode: kept
  EXPECT_EQ(c->Stats().hot.tokens, (64 + 30) * 4);
}

TEST(Baselines, PyramidGivesLowerLayersMore) {
  ThreadPool pool(1);
  Synthetic s;
  auto c = Make("pyramidkv,max_total=100", s.shape);
  Feed(*c, s, 400, 32, pool);
  CacheStats st = c->Stats();
  EXPECT_EQ(st.hot_per_layer[0].tokens, 150 * 2);
  EXPECT_EQ(st.hot_per_layer[1].tokens, 50 * 2);
}

TEST(Baselines, KiviQuantizesOldBlocksPerChannel) {
  ThreadPool pool(1);
  Synthetic s;
  auto c = Make("kivi:2,protect_recent=64", s.shape);
  Feed(*c, s, 300, 20, pool);
  CacheStats st = c->Stats();
  // The recent window plus less than one block stays f16; the rest is int2 in whole blocks.
  EXPECT_GE(st.hot.tokens, 64 * 4);
  EXPECT_LT(st.hot.tokens, (64 + 32) * 4);
  EXPECT_EQ(st.warm.tokens % (32 * 4), 0);
  EXPECT_EQ(st.hot.tokens + st.warm.tokens, 300 * 4);
  for (int p = 236; p < 300; ++p) EXPECT_EQ(c->TierOf(0, 0, p), 0);
  EXPECT_EQ(c->TierOf(0, 0, 0), 1);
  EXPECT_LT(st.bits_per_value, 8.0);
}

// akv:compact: the f16 protection zones, an int4 staging block of fewer than cold_key_block tokens,
// everything older int2 with keys per channel over whole 128-token blocks; nothing lost, and the
// reported bits match the codecs' byte sizes exactly.
TEST(TieredCache, CompactPresetMovesWholeBlocksCold) {
  ThreadPool pool(2);
  Synthetic s;
  auto c = Make("akv:compact", s.shape);
  ASSERT_NE(c, nullptr);
  Feed(*c, s, 700, 64, pool);  // prefill
  Feed(*c, s, 150, 1, pool);   // decode
  ASSERT_TRUE(c->CheckInvariants().ok()) << c->CheckInvariants().ToString();
  const int n = 850, block = 128;
  for (int l = 0; l < s.shape.n_layer; ++l)
    for (int h = 0; h < s.shape.n_head_kv; ++h) {
      int count[3] = {0, 0, 0};
      for (int p = 0; p < n; ++p) {
        const int t = c->TierOf(l, h, p);
        ASSERT_GE(t, 0) << "position " << p << " lost";
        ++count[t];
      }
      EXPECT_EQ(count[2] % block, 0) << "layer " << l << " head " << h;
      EXPECT_GT(count[2], 0);
      // Warm holds less than a block beyond its (zero) budget once the policy has run.
      EXPECT_LT(count[1], block + c->config().migrate_interval);
      for (int p = 0; p < c->config().n_anchors; ++p) EXPECT_EQ(c->TierOf(l, h, p), 0) << "anchor " << p;
      for (int p = n - c->config().protect_recent; p < n; ++p) EXPECT_EQ(c->TierOf(l, h, p), 0) << "recent " << p;
    }
  const CacheStats st = c->Stats();
  EXPECT_EQ(st.hot.tokens + st.warm.tokens + st.cold.tokens, int64_t(n) * 4);
  EXPECT_EQ(st.evicted, 0);
  // head_dim 64: f16 256 bytes; warm int4 keys 32 + 2x2 (scale, zero), symmetric values 32 + 2;
  // cold int2 keys 16 + 4 * 64 / 128 per channel, symmetric int2 values 16 + 2.
  const double bits = 8.0 * (256.0 * st.hot.tokens + 70.0 * st.warm.tokens + 36.0 * st.cold.tokens) /
                      (128.0 * (st.hot.tokens + st.warm.tokens + st.cold.tokens));
  EXPECT_NEAR(st.bits_per_value, bits, 1e-9);
  EXPECT_LT(st.bits_per_value, 3.0);
}

// akv:lean under a budget of 25% of the f16 K/V bytes (as `akv eval --budgets 0.25` sets it):
// every key stays int4 (per token in warm, per channel over 128-token blocks in cold), cold values
// int2 with a scale only; nothing lost, the reported bits equal the codecs' byte sizes, and at 4K
// tokens the pages (positions, scales, summaries included) stay within 1.05x the budget, the
// harness's "in budget" (akv:balanced's floor is ~28% there).
TEST(TieredCache, LeanPresetFitsAQuarterOfF16) {
  ThreadPool pool(2);
  Synthetic s;
  // 4 stores x 4096 tokens x 256 bytes (f16 K and V, head_dim 64) = 4 MiB; a quarter: 1 MiB.
  auto c = Make("akv:lean,kv_budget_mb=1", s.shape);
  ASSERT_NE(c, nullptr);
  const int n = 4096;
  Feed(*c, s, n - 16, 512, pool);  // prefill
  Feed(*c, s, 16, 1, pool);        // decode
  ASSERT_TRUE(c->CheckInvariants().ok()) << c->CheckInvariants().ToString();
  for (int l = 0; l < s.shape.n_layer; ++l)
    for (int h = 0; h < s.shape.n_head_kv; ++h)
      for (int p = 0; p < n; p += 7) ASSERT_GE(c->TierOf(l, h, p), 0) << "position " << p << " lost";
  const CacheStats st = c->Stats();
  const int64_t tokens = int64_t(n) * s.shape.n_layer * s.shape.n_head_kv;
  EXPECT_EQ(st.hot.tokens + st.warm.tokens + st.cold.tokens, tokens);
  EXPECT_EQ(st.evicted, 0);
  EXPECT_GT(st.cold.tokens, tokens / 2);
  // head_dim 64: f16 256 bytes; warm int4 keys 32 + 2x2 (scale, zero), symmetric int4 values 32 + 2;
  // cold int4 keys 32 + 4 * 64 / 128 per channel, symmetric int2 values 16 + 2.
  const double bits = 8.0 * (256.0 * st.hot.tokens + 70.0 * st.warm.tokens + 52.0 * st.cold.tokens) / (128.0 * tokens);
  EXPECT_NEAR(st.bits_per_value, bits, 1e-9);
  EXPECT_LT(st.bits_per_value, 3.7);
  EXPECT_LE(static_cast<double>(st.total_bytes()), 1.05 * 0.25 * 256.0 * tokens);
}

TEST(CacheConfig, CompactPagesHoldWholeKeyBlocks) {
  auto ok = CacheConfig::Parse("akv:compact");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_GE(ok->PageSizeFor(512), 128);
}

TEST(Baselines, UniformQuantizesEverything) {
  ThreadPool pool(1);
  Synthetic s;
  auto c = Make("uniform:int4", s.shape);
  Feed(*c, s, 100, 16, pool);
  CacheStats st = c->Stats();
  EXPECT_EQ(st.hot.tokens, 0);
  EXPECT_EQ(st.warm.tokens, 100 * 4);
  EXPECT_NEAR(st.bits_per_value, 5.0, 1e-9);  // 4-bit codes + f16 scale and zero per 32
}

}  // namespace
}  // namespace akv
