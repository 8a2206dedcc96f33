// Budgets, their translation into cache specs, and grid expansion.
#include <gtest/gtest.h>

#include <set>

#include "eval/eval_grid.h"

namespace akv {
namespace {

// akv-tiny-llama-25m: 8 layers, 2 KV heads of 64: 4 KiB of f16 K/V per token.
const KvGeometry kTiny{8, 2, 64};

TEST(EvalBudget, Parses) {
  auto f = Budget::Parse("0.25");
  ASSERT_TRUE(f.ok());
  EXPECT_DOUBLE_EQ(f->Fraction(4096), 0.25);
  auto p = Budget::Parse("50%");
  ASSERT_TRUE(p.ok());
  EXPECT_DOUBLE_EQ(p->Fraction(1024), 0.5);
  auto t = Budget::Parse("1024t");
  ASSERT_TRUE(t.ok());
  EXPECT_DOUBLE_EQ(t->Fraction(4096), 0.25);
  EXPECT_DOUBLE_EQ(t->Fraction(512), 1.0) << "a token budget above the context is the whole cache";
  auto b = Budget::Parse("4b");
  ASSERT_TRUE(b.ok());
  EXPECT_DOUBLE_EQ(b->Fraction(2048), 0.25);
  for (const char* bad : {"", "0", "1.5", "-0.1", "abc", "0.25x", "0t", "17b", "200%", "t", "None"})
    EXPECT_FALSE(Budget::Parse(bad).ok()) << bad;
  // "none": every method as given.
  auto none = Budget::Parse("none");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->kind, Budget::Kind::kNone);
  EXPECT_EQ(ResolveCacheSpec("akv:balanced", *none, 4096, kTiny).spec, "akv:balanced");
  EXPECT_EQ(ResolveCacheSpec("h2o", *none, 4096, kTiny).spec, "h2o");
  EXPECT_FALSE(ResolveCacheSpec("h2o", *none, 4096, kTiny).budgeted);
}

TEST(EvalBudget, TranslatesPerMethodFamily) {
  auto q = *Budget::Parse("0.25");
  EXPECT_EQ(ResolveCacheSpec("h2o", q, 4096, kTiny).spec, "h2o,max_total=1024");
  EXPECT_EQ(ResolveCacheSpec("snapkv", q, 2048, kTiny).spec, "snapkv,max_total=512");
  EXPECT_EQ(ResolveCacheSpec("window", q, 1024, kTiny).spec, "window,max_total=256");
  EXPECT_EQ(ResolveCacheSpec("streamingllm", q, 1024, kTiny).spec, "streamingllm,max_total=256");
  EXPECT_EQ(ResolveCacheSpec("akcb:origin", q, 1024, kTiny).spec, "akcb:origin,max_total=256");
  // 4096 tokens x 4 KiB = 16 MiB of f16; a quarter is 4 MiB.
  EXPECT_EQ(ResolveCacheSpec("akv:balanced", q, 4096, kTiny).spec, "akv:balanced,kv_budget_mb=4");
  EXPECT_EQ(ResolveCacheSpec("akv", q, 1024, kTiny).spec, "akv,kv_budget_mb=1");
  EXPECT_EQ(ResolveCacheSpec("akcb:mix", q, 1024, kTiny).spec, "akcb:mix,kv_budget_mb=1");
  // int4 with its f16 scale and zero per 32 values is 5 bits, over 16 x 0.25: 2 bits.
  EXPECT_EQ(ResolveCacheSpec("kivi", q, 4096, kTiny).spec, "kivi:2");
  EXPECT_EQ(ResolveCacheSpec("uniform", q, 4096, kTiny).spec, "uniform:int2");
  EXPECT_EQ(ResolveCacheSpec("kivi", *Budget::Parse("5b"), 4096, kTiny).spec, "kivi:4");
  EXPECT_EQ(ResolveCacheSpec("uniform", *Budget::Parse("0.35"), 4096, kTiny).spec, "uniform:int4");
  EXPECT_EQ(ResolveCacheSpec("uniform", *Budget::Parse("9b"), 4096, kTiny).spec, "uniform:int8");
  EXPECT_EQ(ResolveCacheSpec("uniform", *Budget::Parse("0.5"), 4096, kTiny).spec, "uniform:int4");
  EXPECT_EQ(ResolveCacheSpec("kivi", *Budget::Parse("1.0"), 4096, kTiny).spec, "kivi:4") << "KIVI has no 8-bit mode";
  EXPECT_EQ(ResolveCacheSpec("uniform", *Budget::Parse("0.1"), 4096, kTiny).spec, "uniform:int2");
  EXPECT_TRUE(WithinBudget(0.258, 0.25));
  EXPECT_FALSE(WithinBudget(0.283, 0.25));
  // Explicit budgets, the reference, unknown methods and no budget: as given.
  for (const char* m : {"kivi:2", "uniform:int8", "h2o,max_total=100", "akv,kv_budget_mb=3", "somefuture"}) {
    const ResolvedSpec r = ResolveCacheSpec(m, q, 4096, kTiny);
    EXPECT_EQ(r.spec, m);
    EXPECT_FALSE(r.budgeted) << m;
  }
  EXPECT_EQ(ResolveCacheSpec("full", q, 4096, kTiny).rule, "reference");
  EXPECT_EQ(ResolveCacheSpec("h2o", Budget{}, 4096, kTiny).spec, "h2o");
  EXPECT_EQ(ResolveCacheSpec("h2o", *Budget::Parse("512t"), 4096, kTiny).spec, "h2o,max_total=512");
  EXPECT_EQ(ResolveCacheSpec("akv", *Budget::Parse("2b"), 4096, kTiny).spec, "akv,kv_budget_mb=2");
  EXPECT_EQ(kTiny.F16Bytes(4096), 16 << 20);
}

TEST(EvalGrid, ExpandsEveryPointOnceAndTheReferenceOncePerPoint) {
  GridSpec g;
  g.tasks = {EvalTask::kRecall};
  g.methods = {"full", "akv:balanced", "h2o"};
  g.budgets = {"0.25", "0.5"};
  g.contexts = {1024, 2048};
  g.depths = {0.05, 0.5, 0.95};
  g.trials = 2;
  g.seed = 9;
  auto items = ExpandGrid(g, kTiny);
  ASSERT_TRUE(items.ok()) << items.status().ToString();
  // Per (context, trial, depth): full once + 2 methods x 2 budgets.
  EXPECT_EQ(items->size(), 2u * 2 * 3 * 5);
  std::set<std::tuple<int, int, double, std::string>> seen;
  for (const GridItem& it : *items) {
    EXPECT_TRUE(seen.insert({it.n_ctx, it.trial, it.depth, it.cache.spec}).second) << it.cache.spec;
    if (it.method == "full") {
      EXPECT_EQ(it.budget, "");
      EXPECT_EQ(it.budget_fraction, 1.0);
    } else {
      EXPECT_TRUE(it.budget == "0.25" || it.budget == "0.5");
    }
  }
  // One seed per (context, trial): every method and depth of a trial sees the same fact.
  for (const GridItem& a : *items)
    for (const GridItem& b : *items) {
      if (a.n_ctx == b.n_ctx && a.trial == b.trial) EXPECT_EQ(a.seed, b.seed);
      if (a.n_ctx != b.n_ctx || a.trial != b.trial) EXPECT_NE(a.seed, b.seed);
    }
  // Deterministic.
  auto again = ExpandGrid(g, kTiny);
  ASSERT_TRUE(again.ok());
  for (size_t i = 0; i < items->size(); ++i) EXPECT_EQ((*items)[i].seed, (*again)[i].seed);
}

TEST(EvalGrid, PerplexityAndMultiQueryHaveNoDepthAxis) {
  GridSpec g;
  g.tasks = {EvalTask::kPerplexity, EvalTask::kMultiQuery};
  g.methods = {"full", "kivi:2", "kivi"};
  g.budgets = {"0.25"};
  g.contexts = {512};
  g.depths = {0.1, 0.9};
  g.trials = 3;
  auto items = ExpandGrid(g, kTiny);
  ASSERT_TRUE(items.ok());
  int ppl = 0, mq = 0;
  for (const GridItem& it : *items) {
    EXPECT_EQ(it.depth, -1);
    if (it.task == EvalTask::kPerplexity) {
      ++ppl;
      EXPECT_EQ(it.trial, 0);
    } else {
      ++mq;
    }
  }
  EXPECT_EQ(ppl, 2);      // full, kivi:2 (given, and what "kivi" at 0.25 becomes: run once)
  EXPECT_EQ(mq, 2 * 3);   // x trials
}

TEST(EvalGrid, RejectsBadGrids) {
  GridSpec g;
  g.trials = 0;
  EXPECT_FALSE(ExpandGrid(g, kTiny).ok());
  g = GridSpec{};
  g.methods.clear();
  EXPECT_FALSE(ExpandGrid(g, kTiny).ok());
  g = GridSpec{};
  g.depths = {1.2};
  EXPECT_FALSE(ExpandGrid(g, kTiny).ok());
  g = GridSpec{};
  g.contexts = {16};
  EXPECT_FALSE(ExpandGrid(g, kTiny).ok());
  g = GridSpec{};
  g.budgets = {"lots"};
  EXPECT_FALSE(ExpandGrid(g, kTiny).ok());
  EXPECT_FALSE(ParseTask("needle").ok());
  EXPECT_EQ(*ParseTask("multiquery"), EvalTask::kMultiQuery);
  EXPECT_EQ(MethodName("akv:balanced,hot_budget=8"), "akv");
  EXPECT_EQ(SplitMethodList({"full,akv:balanced,hot_budget=256,warm_bits=2,h2o", "kivi:2"}),
            (std::vector<std::string>{"full", "akv:balanced,hot_budget=256,warm_bits=2", "h2o", "kivi:2"}));
  EXPECT_EQ(SplitMethodList({"h2o,max_total=512,,window"}), (std::vector<std::string>{"h2o,max_total=512", "window"}));
}

}  // namespace
}  // namespace akv

#include "eval/progress_bar.h"

namespace akv {
namespace {

TEST(EvalProgress, RendersBarCountsAndEta) {
  EXPECT_EQ(ProgressBar::Render(5, 10, 12.0, 10, "recall ctx=1024"), "[#####     ] 5/10 0:12 eta 0:12 recall ctx=1024");
  EXPECT_EQ(ProgressBar::Render(0, 4, 0.0, 4, ""), "[    ] 0/4 0:00");
  EXPECT_EQ(ProgressBar::Render(4, 4, 3725.0, 4, "done"), "[####] 4/4 1:02:05 done");
}

}  // namespace
}  // namespace akv
